"""The page's review side: generate or open a batch job into the queue, the viewer, the strip and
the decisions (``A``/``R``/``Z``/arrows/``1``–``9``; the keys only click these callbacks' buttons).

Every review callback returns the same bundle first (session, viewer image, before/after slider,
strip, details) and its message line last; on failure nothing but the message changes.
"""
from __future__ import annotations

import html
from typing import Any

import gradio as gr

from studio.errors import InputError
from studio.ui import review_queue as queue
from studio.ui import session as ss
from studio.ui.feedback import keeps_work
from studio.ui.inputs import as_text, label_text
from studio.ui.page import PageCallbacks, clicked
from studio.ui.views import VIEWS, before_after, strip_caption, strip_file, view_file

#: The outputs every review callback starts with: session, viewer, slider, strip, details.
BUNDLE = 5
EMPTY_DETAILS = "No candidates yet: generate some (or open a batch review job), then review them with the keys."


class ReviewCallbacks(PageCallbacks):
    """Generate, open, navigate and decide."""

    # ------------------------------------------------------------------ what the review side shows
    def review_bundle(self, state: ss.Session | None, view: str) -> tuple[Any, ...]:
        """(session, viewer, slider, strip, details) for the candidate under review."""
        if state is None or not state.candidates:
            return state, gr.update(value=None, visible=True), gr.update(visible=False), [], EMPTY_DETAILS
        record = queue.current(state)
        shown = queue.window(state)
        items = [(strip_file(state.candidates[i]), strip_caption(state.candidates[i])) for i in shown]
        order = queue.order(state)
        first, last = order.index(shown[0]) + 1, order.index(shown[-1]) + 1
        label = f"Candidates {first}–{last} of {len(order)}" + (" (best first)" if state.best_first else "")
        strip = gr.update(value=items, selected_index=shown.index(record.index), label=label)
        if view == "before / after" and state.normal:
            viewer = gr.update(visible=False)
            slider = gr.update(value=before_after(record, state.normal), visible=True)
        else:
            viewer = gr.update(value=view_file(record, view if view in VIEWS else "image"), visible=True)
            slider = gr.update(visible=False)
        return state, viewer, slider, strip, self.details(state, record)

    @staticmethod
    def details(state: ss.Session, record: ss.CandidateRecord) -> str:
        """Seed, engine, score and decision of the candidate under review, and the queue's counts."""
        meta = record.metadata or {}
        score = meta.get("score") if isinstance(meta.get("score"), dict) else {}
        shown = "no score" if record.score is None else f"score **{record.score:.2f}**"
        if score.get("method"):
            method = html.escape(str(score["method"]), quote=True)
            shown = f"<span title=\"{method}\" class='score'>{shown}</span>"
        engine = " · ".join(f"{k} {meta[k]}" for k in ("engine", "weights") if meta.get(k))
        decision = {ss.ACCEPTED: f"✓ accepted as `{record.sample_id}`", ss.REJECTED: "✗ rejected"}.get(
            record.status, "undecided")
        counts = queue.tally(state)
        source = (f"batch job `{state.review[:8]}…` · " if state.review else "") + f"seed {record.seed}"
        return (f"**#{record.index + 1}** of {len(state.candidates)} · {source} · {engine or 'engine unknown'} · "
                f"{shown}  \n**{decision}** · {counts['undecided']} undecided, {counts['accepted']} accepted, "
                f"{counts['rejected']} rejected")

    @staticmethod
    def will_store(category: Any, defect_type: Any) -> str:
        """What ``A`` stores with the labels as they are now (or why it would be refused)."""
        cat, defect = label_text(category, "category"), label_text(defect_type, "defect type")
        missing = [w for w, v in (("category", cat), ("defect type", defect)) if not v]
        if missing:
            return f"⚠️ **A** is refused until the {' and '.join(missing)} is filled in."
        return f"**A** stores: category `{cat}` · defect type `{defect}`"

    # ------------------------------------------------------------------ a new normal image closes the queue
    def _close_queue(self, state: ss.Session | None, view: str) -> tuple[tuple[Any, ...], str]:
        """(bundle, note): the candidates of the previous image leave the queue, so that no key can
        store them with the new image's labels (accepted ones stay in the curated set)."""
        if state is None or not state.candidates:
            return self.review_bundle(state, view), ""
        undecided = queue.tally(state)["undecided"]
        ss.close_queue(state)
        note = (f" The previous image's candidates left the review queue ({undecided} undecided), so none is "
                "stored with these labels." if undecided else "")
        return self.review_bundle(state, view), note

    @keeps_work(BUNDLE + 10)
    def ui_pick_example(self, state, view: str, evt: gr.SelectData):
        """An example fills every input and label (see :meth:`pick_example`) and closes the old queue.
        Returns the bundle, the example's inputs and labels, and a message."""
        *filled, message = self.pick_example(evt)
        bundle, note = self._close_queue(state, view)
        return (*bundle, *filled, message + note)

    @keeps_work(BUNDLE + 8)
    def ui_upload_normal(self, path: str | None, state, view: str):
        """Your own normal image (see :meth:`upload_normal`); closes the old queue. Returns the bundle,
        the editor, its labels and a message."""
        *filled, message = self.upload_normal(path)
        bundle, note = self._close_queue(state, view)
        return (*bundle, *filled, message + note)

    # ------------------------------------------------------------------ filling the queue
    @keeps_work(BUNDLE + 2)
    def ui_generate(self, state, normal_value, normal_source, reference_value, reference_source, prompt: str,
                    reference_text: str, num: float, seed: float, randomise: bool, engine: str, view: str,
                    steps: float, strength: float, guidance: float, sga_scale: float, asea_steps: float,
                    asea_lr: float, blur_sigma: float, progress=gr.Progress()):
        """Generate N candidates from the sketch, reference and description with the parameters the
        chosen engine uses (Advanced); the first undecided (best, when sorted) is under review.
        Returns the bundle, the seed used and a message."""
        given = {"steps": steps, "strength": strength, "guidance": guidance, "sga_scale": sga_scale,
                 "asea_steps": asea_steps, "asea_lr": asea_lr, "blur_sigma": blur_sigma}
        params = {name: given[name] for name in self.engine_parameters(engine) if name in given}
        state, used_seed = self._generate_page(state, normal_value, normal_source, reference_value,
                                               reference_source, prompt, reference_text, num, seed, randomise,
                                               params, engine, progress)
        label = self.ctx.engine(as_text(engine)).label
        message = (f"{len(state.candidates)} candidate(s) from **{label}**, seed {used_seed}: "
                   "**A** accept · **R** reject · **→** skip · **Z** undo.")
        return (*self.review_bundle(state, view), used_seed, message)

    @keeps_work(BUNDLE + 3)
    def ui_open_review(self, state, job_id: str | None, view: str):
        """Load a batch review job's candidates into the queue and its labels into the fields.
        Returns the bundle, category, defect type and a message."""
        state, job = self._open_review(state, job_id)
        message = (f"{job.count} candidate(s) of batch review job `{job.job_id}` "
                   f"({as_text(job.info.get('prompt')) or 'no prompt'}): review them with the keys.")
        return (*self.review_bundle(state, view), job.category, gr.update(value=job.defect_type or None), message)

    # ------------------------------------------------------------------ moving through the queue
    @keeps_work(BUNDLE + 1)
    def ui_view(self, state, view: str):
        """Show the candidate under review as image, overlay, before / after or mask."""
        return (*self.review_bundle(state, view), "")

    @keeps_work(BUNDLE + 1)
    def ui_best_first(self, state, best_first: bool, view: str):
        """Order the queue by score (best first) or as generated."""
        if state is not None:
            state.best_first = bool(best_first)
        return (*self.review_bundle(state, view), "")

    @keeps_work(BUNDLE + 1)
    def ui_select_candidate(self, state, view: str, evt: gr.SelectData):
        """A thumbnail of the strip was clicked: put that candidate under review."""
        shown = queue.window(state)
        position = clicked(evt, len(shown))
        if position is None:
            raise InputError("Click one of the candidates on the strip.")
        queue.select(state, shown[position])
        return (*self.review_bundle(state, view), "")

    @keeps_work(BUNDLE + 1)
    def ui_step(self, state, view: str, delta: int):
        """← / →: the previous or next candidate in the queue's order."""
        queue.step(state, delta)
        return (*self.review_bundle(state, view), "")

    # ------------------------------------------------------------------ decisions
    def _after_decision(self, state: ss.Session, view: str, done: str) -> tuple[Any, ...]:
        """Advance to the next undecided candidate and say what happened."""
        if not queue.advance(state):
            counts = queue.tally(state)
            done += (f" All {len(state.candidates)} decided: {counts['accepted']} accepted, "
                     f"{counts['rejected']} rejected.")
        return (*self.review_bundle(state, view), done)

    @keeps_work(BUNDLE + 1)
    def ui_accept(self, state, defect_type: str, category: str, note: str, view: str):
        """A: accept the candidate under review with the labels shown, then move to the next undecided."""
        record = queue.current(state)
        sample_id, new = self._accept(state, record.index, defect_type, category, note)
        done = (f"Accepted **#{record.index + 1}** as `{sample_id}` ({label_text(category, 'category')} · "
                f"{label_text(defect_type, 'defect type')})." if new
                else f"#{record.index + 1} was already in the curated set as `{sample_id}`.")
        return self._after_decision(state, view, done)

    @keeps_work(BUNDLE + 1)
    def ui_reject(self, state, view: str):
        """R: reject the candidate under review, then move to the next undecided."""
        record = queue.current(state)
        self._reject(state, record.index)
        return self._after_decision(state, view, f"Rejected **#{record.index + 1}**.")

    @keeps_work(BUNDLE + 1)
    def ui_undo(self, state, view: str):
        """Z: undo the last decision and put that candidate under review again."""
        record = self._undo(state)
        return (*self.review_bundle(state, view), f"Undid the decision on **#{record.index + 1}**: undecided again.")

    @keeps_work(BUNDLE + 1)
    def ui_decide_all(self, state, decision: str, defect_type: str, category: str, note: str, view: str):
        """Accept or reject every undecided candidate at once."""
        count = self._decide_all(state, decision, defect_type, category, note)
        verb = "Accepted" if decision == ss.ACCEPTED else "Rejected"
        return (*self.review_bundle(state, view), f"{verb} all {count} undecided candidate(s).")

    @keeps_work(2)
    def ui_type_key(self, number: int, types: list[str]):
        """1–9: pick the n-th defect type of the list shown under the field (``types``, as the page shows it)."""
        types = list(types or [])
        if not 1 <= number <= len(types):
            raise InputError(f"There is no defect type {number}: the list has {len(types)}.")
        return gr.update(value=types[number - 1]), ""

    def ui_will_store(self, category: str, defect_type: str) -> str:
        """The line under the decision buttons: exactly what A stores."""
        try:
            return self.will_store(category, defect_type)
        except InputError as exc:
            return f"⚠️ {exc}"
