"""The batch jobs panel: the batches ``anomaly-studio batch --review`` wrote into this data folder, each
opened as one review queue across all its jobs (job after job, each with its own labels pinned), with
the progress of every job (decided / total, finished ones marked)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from studio.review.batch import BatchInfo
from studio.ui import session as ss
from studio.ui.events import QUIET, UI
from studio.ui import review_queue as queue
from studio.ui.review_queue import BUNDLE
from studio.ui.service import StudioService
from studio.ui.widgets.feedback import keeps_work

if TYPE_CHECKING:
    from studio.ui.panels.review import ReviewPanel


def batch_choice(info: BatchInfo) -> tuple[str, str]:
    """A batch as a dropdown choice: ``✓`` when every candidate is decided, then its title and progress."""
    return f"{'✓ ' if info.finished else ''}{info.title} · {info.decided}/{info.candidates} decided", info.batch


def jobs_progress(info: BatchInfo | None, counts: dict[str, tuple[int, int]] | None = None) -> str:
    """One line per job of the batch: its prompt and decided / total, finished ones marked ✓ (``counts``: job ->
    (decided, total) as the open queue has them; else as on disk when the list was read)."""
    if info is None:
        return "No batch review jobs in this data folder yet."
    lines = ["Jobs (as of opening or **Refresh list**; the candidate line counts as you decide):"]
    for n, job in enumerate(info.jobs, 1):
        done, total = (counts or info.progress).get(job, (0, 0))
        mark = "✓" if done == total else "·"
        lines.append(f"{mark} job {n} `{job[:16]}` · {info.prompts.get(job) or 'no prompt'} · {done}/{total}"
                     + (" finished" if done == total else ""))
    return "  \n".join(lines)


class BatchJobsPanel:
    """The "Batch jobs" tab."""

    def __init__(self, service: StudioService, review: ReviewPanel) -> None:
        self.service, self.review = service, review

    def render(self) -> None:
        with gr.Tab("Batch jobs", elem_id="batch-tab"):
            gr.Markdown("Batches written by `anomaly-studio batch --review` into this data folder: open one to "
                        "review all its jobs in one queue, with the same keys.", elem_classes=["hint"])
            self.job = gr.Dropdown(choices=[], value=None, label="Batches", elem_id="review-job")
            self.progress = gr.Markdown("", elem_classes=["hint"], elem_id="batch-progress")
            with gr.Row():
                self.refresh = gr.Button("Refresh list", size="sm", elem_id="review-refresh")
                self.open = gr.Button("Open for review", size="sm", variant="primary", elem_id="review-open")

    def wire(self, demo: gr.Blocks) -> None:
        review = self.review
        for trigger in (demo.load, self.refresh.click, self.job.select):
            trigger(self.list_jobs, self.job, [self.job, self.progress, review.message], api_name="ui_review_jobs",
                    **QUIET)
        self.open.click(self.open_job, [review.session, self.job, review.view],
                        [*review.bundle, *review.labels, self.progress, review.message],
                        api_name="ui_open_review", show_progress_on=[review.viewer],
                        **UI).then(*review.will_store_event, **QUIET)

    @keeps_work(3)
    def list_jobs(self, current: str | None = None) -> tuple[Any, str, Any]:
        """The batches of the data folder as dropdown choices (keeping the chosen one) and its jobs' progress; the
        message line is left alone (at page load it holds the note on the queue the tab had open, written by the
        page's own load event, which may finish first)."""
        batches = self.service.batches()
        keys = [b.batch for b in batches]
        value = current if current in keys else (keys[0] if keys else None)
        chosen = next((b for b in batches if b.batch == value), None)
        return (gr.update(choices=[batch_choice(b) for b in batches], value=value,
                          label=f"Batches ({len(batches)})"), jobs_progress(chosen), gr.skip())

    @keeps_work(BUNDLE + 5)
    def open_job(self, state: ss.Session | None, batch: str | None, view: str) -> tuple[Any, ...]:
        """Load every job of the chosen batch into one queue. Returns the review bundle, the labels of the job
        under review (defect type, category, note: the fields), the jobs' progress and a message."""
        state, info = self.service.open_batch(state, batch)
        left = sum(r.status == ss.UNDECIDED for r in state.candidates)
        shown = queue.pinned(state)
        message = (f"{info.candidates} candidate(s) in {len(info.jobs)} job(s) of batch {info.title.split(' · ')[0]}, "
                   f"{info.candidates - left} decided already (by any session): review the {left} left with the keys.")
        return (*self.review.show(state, view), shown.defect_type or None, shown.category, shown.note,
                jobs_progress(info, queue.job_counts(state)), message)

