"""The batches the review page lists: every review job run from one spec, with its progress.

Progress comes from the :mod:`studio.batch.decisions` files in each job's folder, so every session and
process sees the same counts.

API::

    list_batches(store) -> list[BatchInfo]          # for the batch dropdown: jobs, candidates, decided, finished
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from studio.batch import decisions
from studio.batch.review import ReviewSummary, review_summaries
from studio.store import Store


@dataclass(frozen=True)
class BatchInfo:
    """A batch as the dropdown lists it."""

    batch: str
    title: str
    jobs: list[str]
    candidates: int
    decided: int
    finished_jobs: list[str]
    #: Job -> (decided, total) and job -> prompt, for the list of the batch's jobs.
    progress: dict[str, tuple[int, int]] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.decided == self.candidates


def list_batches(store: Store) -> list[BatchInfo]:
    """Every batch with review jobs in the store's data folder (oldest first), with its progress."""
    groups: dict[str, list[ReviewSummary]] = {}
    for summary in review_summaries(store.root):
        groups.setdefault(summary.batch, []).append(summary)
    out = []
    for batch, summaries in groups.items():
        done = {s.job_id: len(decisions.read_decisions(store, s)) for s in summaries}
        total = sum(s.count for s in summaries)
        out.append(BatchInfo(batch, f"{Path(batch).name} · {len(summaries)} job(s) · {total} candidate(s)",
                             [s.job_id for s in summaries], total, sum(done.values()),
                             [s.job_id for s in summaries if done[s.job_id] == s.count],
                             {s.job_id: (done[s.job_id], s.count) for s in summaries},
                             {s.job_id: s.prompt for s in summaries}))
    return out
