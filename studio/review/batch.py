"""One queue across a whole batch (every review job run from one spec), decided on disk.

Decisions are :mod:`studio.batch.decisions` files in each job's folder, so every session and
process sees the same ones, and a queue reopened after a reload or a restart shows them all
(:meth:`ReviewQueue.refresh`). Each job's labels come from its ``job.json`` and are pinned when the
queue opens. One :class:`BatchDecider` per process serves every session (it keeps a few jobs'
normal images decoded for their accepts).

API::

    list_batches(store) -> list[BatchInfo]          # for the batch dropdown: jobs, candidates, decided, finished
    open_batch(store, session, batch, job_ids=None, best_first=False) -> ReviewQueue
    BatchDecider(store)                             # the Decider for batch queues
    BatchDecider.files(entry) -> (image_png, mask_png)
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from studio.batch import decisions
from studio.batch.review import (ReviewJob, ReviewSummary, find_review_job, load_review_job, review_summaries,
                                 review_summary)
from studio.candidates import candidate_files, metadata_score, read_candidate_metadata
from studio.errors import InputError
from studio.review.labels import QueueLabels
from studio.review.queue import EntryState, QueueEntry, ReviewQueue
from studio.store import DEFAULT_CATEGORY, DEFAULT_DEFECT_TYPE, Store, clean_label

#: Jobs kept decoded by a decider (normal image, reference) for their accepts.
OPEN_JOBS = 4


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


def job_labels(summary: ReviewSummary) -> QueueLabels:
    """The labels a batch job's accepts store (its spec's, with the store's defaults for empty ones)."""
    return QueueLabels(clean_label(summary.category, "category", DEFAULT_CATEGORY),
                       clean_label(summary.defect_type, "defect type", DEFAULT_DEFECT_TYPE), summary.note)


def open_batch(store: Store, session: str, batch: str, job_ids: list[str] | None = None,
               decider: "BatchDecider | None" = None, best_first: bool = False) -> ReviewQueue:
    """A queue over every candidate of ``batch`` (or only of ``job_ids``), decisions read from disk.

    Entries are ``<job-id>/NN``, jobs oldest first (``best_first``: by score within each job);
    the first undecided one is shown."""
    summaries = [s for s in review_summaries(store.root) if s.batch == batch and (job_ids is None or s.job_id in job_ids)]
    if not summaries:
        raise InputError("There are no review jobs in that batch any more; refresh the list.")
    entries: list[QueueEntry] = []
    for s in summaries:
        labels, reference = job_labels(s), (s.folder / "reference.png").is_file()
        job_entries = [QueueEntry(f"{s.job_id}/{i:02d}", i, labels, reference, s.job_id,
                                  metadata_score(read_candidate_metadata(s.folder, i))) for i in range(s.count)]
        if best_first:
            job_entries.sort(key=lambda e: (e.score is None, -(e.score or 0.0), e.index))
        entries += job_entries
    queue = ReviewQueue(session, entries, title=f"{Path(batch).name} · {len(summaries)} job(s)")
    queue.refresh(decider or BatchDecider(store))
    queue.current = queue.next_undecided(None) or entries[0].id
    return queue


@dataclass
class BatchDecider:
    """The :class:`~studio.review.queue.Decider` for batch queues: decisions in the jobs' folders."""

    store: Store
    _jobs: OrderedDict[str, ReviewJob] = field(default_factory=OrderedDict, init=False, repr=False)
    _summaries: dict[str, ReviewSummary] = field(default_factory=dict, init=False, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def accept(self, entry: QueueEntry, session: str) -> EntryState:
        labels = entry.labels
        record = decisions.accept(self.store, self._job(entry), entry.index, session, category=labels.category,
                                  defect_type=labels.defect_type, note=labels.note)
        return _state(record)

    def reject(self, entry: QueueEntry, session: str) -> EntryState:
        return _state(decisions.reject(self.store, self._job(entry), entry.index, session))

    def undo(self, entry: QueueEntry, state: EntryState, session: str) -> None:
        decisions.undo(self.store, self._job(entry), entry.index, session)

    def states(self, entries: list[QueueEntry]) -> dict[str, EntryState]:
        out: dict[str, EntryState] = {}
        by_job: dict[str, dict[int, str]] = {}
        for e in entries:
            if e.job_id is not None:
                by_job.setdefault(e.job_id, {})[e.index] = e.id
        for job_id, ids in by_job.items():
            for index, record in decisions.read_decisions(self.store, self._summary(job_id), ids).items():
                out[ids[index]] = _state(record)
        return out

    def files(self, entry: QueueEntry) -> tuple[Path, Path]:
        """The candidate's image and 0/255 mask PNGs in its review folder (to show it without decoding)."""
        if entry.job_id is None:
            raise InputError("That candidate is not from a batch review job.")
        return candidate_files(self._summary(entry.job_id).folder, entry.index)

    def _job(self, entry: QueueEntry) -> ReviewJob:
        if entry.job_id is None:
            raise InputError("That candidate is not from a batch review job.")
        return self._job_by_id(entry.job_id)

    def _summary(self, job_id: str) -> ReviewSummary:
        """Review job ``job_id``'s summary (its ``job.json``), read once."""
        summary = self._summaries.get(job_id)
        if summary is None:
            summary = self._summaries[job_id] = review_summary(find_review_job(self.store.root, job_id))
        return summary

    def _job_by_id(self, job_id: str) -> ReviewJob:
        """Review job ``job_id``, read once and kept (a job's candidates and labels never change)."""
        with self._guard:
            job = self._jobs.get(job_id)
            if job is not None:
                self._jobs.move_to_end(job_id)
                return job
        job = load_review_job(find_review_job(self.store.root, job_id))
        with self._guard:
            self._jobs[job_id] = job
            while len(self._jobs) > OPEN_JOBS:
                self._jobs.popitem(last=False)
        return job


def _state(record: decisions.DecisionRecord) -> EntryState:
    return EntryState(record.decision, record.session, record.sample_id, record.at)
