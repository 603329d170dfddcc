"""The batch jobs panel: the review jobs ``anomaly-studio batch --review`` wrote into this data folder,
opened into the same review queue (with the job's labels in the fields)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from studio.ui import session as ss
from studio.ui.events import QUIET, UI
from studio.ui.inputs import as_text
from studio.ui.review_queue import BUNDLE
from studio.ui.service import StudioService
from studio.ui.widgets.feedback import keeps_work

if TYPE_CHECKING:
    from studio.ui.panels.review import ReviewPanel


class BatchJobsPanel:
    """The "Batch jobs" tab."""

    def __init__(self, service: StudioService, review: ReviewPanel) -> None:
        self.service, self.review = service, review

    def render(self) -> None:
        with gr.Tab("Batch jobs", elem_id="batch-tab"):
            gr.Markdown("Candidates written by `anomaly-studio batch --review` into this data folder: open a job "
                        "and review it with the same keys.", elem_classes=["hint"])
            self.job = gr.Dropdown(choices=[], value=None, label="Batch review jobs", elem_id="review-job")
            with gr.Row():
                self.refresh = gr.Button("Refresh list", size="sm", elem_id="review-refresh")
                self.open = gr.Button("Open for review", size="sm", variant="primary", elem_id="review-open")

    def wire(self, demo: gr.Blocks) -> None:
        review = self.review
        for trigger in (demo.load, self.refresh.click):
            trigger(self.list_jobs, self.job, [self.job, review.message], api_name="ui_review_jobs", **QUIET)
        self.open.click(self.open_job, [review.session, self.job, review.view],
                        [*review.bundle, review.category, review.defect_type, review.message],
                        api_name="ui_open_review", show_progress_on=[review.viewer],
                        **UI).then(*review.will_store_event, **QUIET)

    @keeps_work(2)
    def list_jobs(self, current: str | None = None) -> tuple[Any, str]:
        """The batch review jobs of the data folder as dropdown choices (keeping the chosen one)."""
        jobs = self.service.review_jobs()
        decided = self.service.decided_counts(jobs)
        choices = [(f"{'✓ ' if decided[j.job_id] == j.candidates else ''}{j.job_id[:8]}… · "
                    f"{decided[j.job_id]}/{j.candidates} decided · {j.prompt[:48] or 'no prompt'}", j.job_id)
                   for j in jobs]
        ids = [j.job_id for j in jobs]
        value = current if current in ids else (ids[0] if ids else None)
        return gr.update(choices=choices, value=value, label=f"Batch review jobs ({len(jobs)})"), ""

    @keeps_work(BUNDLE + 3)
    def open_job(self, state: ss.Session | None, job_id: str | None, view: str) -> tuple[Any, ...]:
        """Load a batch review job's candidates into the queue and its labels into the fields.
        Returns the review bundle, category, defect type and a message."""
        state, job = self.service.open_review(state, job_id)
        left = sum(r.status == ss.UNDECIDED for r in state.candidates)
        message = (f"{job.count} candidate(s) of batch review job `{job.job_id}` "
                   f"({as_text(job.info.get('prompt')) or 'no prompt'}), {job.count - left} decided already "
                   f"(by any session): review the {left} left with the keys.")
        return (*self.review.show(state, view), job.category, gr.update(value=job.defect_type or None), message)
