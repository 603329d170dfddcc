"""The studio page: the header with the status line, and the tabs, composed from the panels.

The Workstation tab holds the inputs (① image, ② reference, Advanced, batch jobs, ③ description and
Generate) on the left and the review panel on the right; the curated workspace has its own tab; the
documented API's hidden endpoints come last. Panels talk through the service and explicit states and
component handles given to their ``wire``; engines are read through the context at call time, so a
default engine swapped in a running studio is used by the next call (and named by the status line).
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from studio.ui import review_queue as queue
from studio.ui import session as ss
from studio.ui.assets import Assets
from studio.ui.context import StudioContext
from studio.ui.events import QUIET
from studio.ui.panels.advanced import AdvancedPanel
from studio.ui.panels.api import ApiPanel
from studio.ui.panels.batch_jobs import BatchJobsPanel
from studio.ui.panels.curated import CuratedPanel
from studio.ui.panels.inputs import InputsPanel
from studio.ui.panels.reference import ReferencePanel
from studio.ui.panels.review import HOTKEYS, ReviewPanel
from studio.ui.service import StudioService
from studio.ui.space import on_space
from studio.ui.widgets import keyboard

HEADER = "## AnomalyControl Studio"
#: The tab's session id survives a reload (sessionStorage: one per tab), so its batch decisions stay its own and
#: the queue it had open comes back; whether a queue was open (the candidate line) is noted whenever the details
#: change and as the page goes, so a queue the studio no longer has (restarted) is said to be gone. A details pane
#: caught mid-update (a progress overlay's text before the line) leaves the last definite note as it was.
SESSION_JS = """(engine, category, sid, queued) => {
  let kept = sessionStorage.getItem('studio-session');
  if (!kept) { kept = crypto.randomUUID().replaceAll('-', ''); sessionStorage.setItem('studio-session', kept); }
  const had = sessionStorage.getItem('studio-queue') || '';
  const note = () => {  // only a definite view decides: a re-render in flight keeps the last note
    const details = document.querySelector('#details');
    if (details?.querySelector('.no-queue')) sessionStorage.setItem('studio-queue', '');
    else if (/#\\d+ of \\d+/.test(details?.innerText || '')) sessionStorage.setItem('studio-queue', 'open');
  };
  const details = document.querySelector('#details');  // noted as it changes, and as the page goes
  if (details) new MutationObserver(note).observe(details, {childList: true, subtree: true, characterData: true});
  window.addEventListener('pagehide', note);
  return [engine, category, kept, had];
}"""
RESTORED = "Restored the review queue this tab had open before the reload: {left} undecided of {total}."
GONE = ("⚠️ The review queue this tab had open before the reload is gone (the studio restarted, or the queue "
        "expired). Batch decisions are kept: reopen the batch on Batch jobs. A generated queue must be generated "
        "again; what you accepted is in the curated set.")


def head_html() -> str:
    """What ``launch(head=...)`` adds: the keyboard script of the panels' hotkeys and the outer CSS."""
    return keyboard.head_html(HOTKEYS)


class Page:
    """Every panel of one studio page, bound to one service (the handles tests and benchmarks reach)."""

    def __init__(self, ctx: StudioContext, assets: Assets | None = None) -> None:
        self.service = StudioService(ctx, assets)
        self.session = gr.State(None, time_to_live=ss.SESSION_TTL_S, delete_callback=ss.delete_session)
        self.review = ReviewPanel(self.service, self.session)
        self.reference = ReferencePanel(self.service)
        self.advanced = AdvancedPanel(self.service)
        self.inputs = InputsPanel(self.service, self.reference, self.advanced, self.review)
        self.batch_jobs = BatchJobsPanel(self.service, self.review)
        self.curated = CuratedPanel(self.service)
        self.api = ApiPanel(self.service)

    def render(self) -> gr.Blocks:
        """The whole page, wired."""
        normal, reference, category, prompt, text, defect = self.inputs.initial_example()
        with gr.Blocks(title="AnomalyControl Studio", fill_width=True, delete_cache=(1800, 3 * 3600)) as demo:
            self.session.render()
            self.session_id = gr.Textbox("", visible="hidden", elem_id="session-id")
            self.queued = gr.Textbox("", visible="hidden", elem_id="queue-before-reload")
            with gr.Row(equal_height=False):
                gr.Markdown(HEADER, elem_id="title")
                self.status = gr.Markdown(self.service.ctx.status_markdown(), elem_id="status-line")
            self.timer = gr.Timer(2.0, active=on_space())  # only a Space's background fetch changes the status
            with gr.Tabs(elem_id="main-tabs"):
                with gr.Tab("Workstation", id="workstation", elem_id="workstation-tab"):
                    with gr.Row(equal_height=False):
                        with gr.Column(scale=2, min_width=340):
                            with gr.Tabs():
                                self.inputs.render_image_tab(normal)
                                self.reference.render(reference, text)
                                with gr.Tab("Advanced", elem_id="advanced"):
                                    self.advanced.render()
                                self.batch_jobs.render()
                            self.inputs.render_generate_row(prompt, reference[1])
                        with gr.Column(scale=3, min_width=360):
                            self.review.render(category, defect)
                self.curated.render()
            self.api.render(self.session)
            self.wire(demo)
        return demo

    def wire(self, demo: gr.Blocks) -> None:
        """Each panel's events, then the page's own: load and the status timer."""
        review = self.review
        self.inputs.wire()
        self.reference.wire(self.inputs, self.advanced, review.message, review.defect_type)
        self.advanced.wire([self.reference.preview_btn, self.reference.attention_hint])
        self.batch_jobs.wire(demo)
        review.wire()
        self.curated.wire()
        engine_outputs = [*self.advanced.controls.values(), self.reference.preview_btn, self.reference.attention_hint,
                          self.advanced.params_hint]
        demo.load(self.load, [self.advanced.engine, review.category, self.session_id, self.queued],
                  [self.status, self.advanced.engine, *engine_outputs, *review.load_outputs, *review.bundle,
                   review.message], api_name="ui_load", js=SESSION_JS, **QUIET).then(*review.will_store_event, **QUIET)
        self.timer.tick(self.status_line, self.status, self.status, api_name="ui_status", queue=False, **QUIET)

    def load(self, engine: str, category: str = "", session_id: str = "", queued: str = "") -> tuple[Any, ...]:
        """Page load: the status line, the Advanced panel for the chosen engine, the category's defect-type keys
        and the tab's session (its id kept across a reload) with the queue it had open, or a note that it is gone
        (``queued``: the tab had one open when it went)."""
        state = self.service.resume(session_id) if session_id else None
        if state is not None:
            left = queue.tally(state)["undecided"]
            note = RESTORED.format(left=left, total=len(state.candidates))
        else:
            state, note = ss.new_session(self.service.ctx.temp_root, session_id), GONE if queued else ""
        return (self.service.ctx.status_markdown(), *self.advanced.load(engine),
                *self.review.load(category, queue.pinned(state)), *self.review.show(state, "image"), note)

    def status_line(self, shown: str = "") -> Any:
        """The status line (a timer refreshes it: a default engine swapped in a running studio shows up);
        unchanged when it says what the page already shows."""
        text = self.service.ctx.status_markdown()
        return gr.skip() if text == shown else text


def build_demo(ctx: StudioContext, assets: Assets | None = None) -> gr.Blocks:
    """The studio page bound to ``ctx`` (engines, store and temp folders shared by all sessions)."""
    return Page(ctx, assets).render()
