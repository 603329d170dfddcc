"""The review panel: the viewer (image, overlay, before / after, mask), the candidate strip, the labels
and the decisions (``A``/``R``/``Z``/arrows/``1``–``9``/``O``; the keys only click this panel's buttons).

Blocks, events and thin callbacks over :class:`~studio.ui.service.StudioService`. Every callback returns
the queue's bundle first (session, viewer, slider, strip, details; :meth:`ReviewPanel.show`) and its
message line last; on failure nothing but the message changes. A new decision is one button, one
:class:`~studio.ui.widgets.keyboard.Hotkey` in :data:`HOTKEYS`, one event and one callback, all here.
"""
from __future__ import annotations

import html
from typing import Any, Callable

import gradio as gr

from studio.errors import InputError
from studio.ui import review_queue as queue
from studio.ui.review_queue import BUNDLE
from studio.ui import session as ss
from studio.ui.events import QUICK, QUIET, REVIEW
from studio.review.hotkeys import key_map
from studio.review.labels import QueueLabels, close_name, label_text, typed_labels
from studio.ui.service import StudioService
from studio.ui.widgets.feedback import keeps_work
from studio.ui.widgets.keyboard import PRESS_CLASS, Hotkey, keys_help, press_stamp
from studio.ui.widgets.selection import clicked
from studio.ui.widgets.views import VIEWS, before_after, defect_box, strip_caption, strip_file, view_file

#: The candidate line with no queue open; its marker greys out the decision buttons (CSS) and keys skip them.
EMPTY_DETAILS = ("<span class='no-queue'>No candidates yet: generate some (or open a batch on Batch jobs), then "
                 "review them with the keys.</span>")
#: The keys of the review panel, in the order the keys help lists them.
HOTKEYS = (
    Hotkey(("a",), "accept-btn", "A", "accept"),
    Hotkey(("r",), "reject-btn", "R", "reject"),
    Hotkey(("z",), "undo-btn", "Z", "undo"),
    Hotkey(("ArrowLeft",), "prev-btn", "←", "previous"),
    Hotkey(("ArrowRight",), "next-btn", "→", "next"),
    Hotkey(tuple("123456789"), "type-key-{key}", "1–9", "defect type"),
    Hotkey(("o",), "view", "O", "next view", cycles=True),
)


def type_keys_markdown(types: list[str]) -> str:
    """``1 crack · 2 dent · …``: the defect types the number keys pick (free keys left out)."""
    return "Keys: " + " · ".join(f"**{k}** {name}" for k, name in enumerate(types[:9], 1) if name)


def will_store(category: Any, defect_type: Any, note: Any = "", state: ss.Session | None = None) -> str:
    """What ``A`` stores: the labels pinned to the open queue (and whether the fields differ), or, with no
    queue open, what the next queue will be pinned with (or why it would be refused)."""
    try:
        fields = typed_labels(category, defect_type, note)
    except InputError as exc:
        return f"⚠️ {exc}"
    pinned = queue.pinned(state)
    labels = pinned or fields
    missing = [w for w, v in (("category", labels.category), ("defect type", labels.defect_type)) if not v]
    if missing:
        return f"⚠️ **A** is refused until the {' and '.join(missing)} is filled in" + (
            " and applied (**Apply to remaining**)." if pinned else ".")
    if pinned is None:
        return f"Next queue: category `{fields.category}` · defect type `{fields.defect_type}`"
    scope = queue.scope(state)
    line = f"**A** stores ({scope}): category `{pinned.category}` · defect type `{pinned.defect_type}`"
    if fields != pinned:
        line += f"  \n⚠️ The fields differ: **Apply to remaining** to use them for the undecided candidates of {scope}."
    return line


def job_fields(state: ss.Session | None, before: str | None) -> tuple[Any, ...]:
    """(defect type, category, note, will-store line) after a move from batch job ``before``: the labels of the
    shown candidate's job when it is another job, else all skipped (each output costs Gradio a schema rebuild)."""
    labels = queue.entered_job(state, before)
    if labels is None:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return (labels.defect_type or None, labels.category, labels.note,
            will_store(labels.category, labels.defect_type, labels.note, state))


def details(state: ss.Session, record: ss.CandidateRecord) -> str:
    """Seed, engine, score and decision of the candidate under review, and the queue's counts."""
    meta = record.metadata or {}
    score = meta.get("score") if isinstance(meta.get("score"), dict) else {}
    shown = "no score" if record.score is None else f"score **{record.score:.2f}**"
    if score.get("method"):
        method = html.escape(str(score["method"]), quote=True)
        shown = f"<span title=\"{method}\" class='score'>{shown}</span>"
    if score.get("plain_mark"):  # nothing of the drawn defect showed: the sketch's middle was marked flat
        shown += " · ⚠ **a plain mark**: nothing drawn showed here"
    engine = " · ".join(f"{k} {meta[k]}" for k in ("engine", "weights") if meta.get(k))
    decision = {ss.ACCEPTED: f"✓ accepted as `{record.sample_id}`", ss.REJECTED: "✗ rejected"}.get(
        record.status, "undecided")
    counts = queue.tally(state)
    reference = (record.metadata or {}).get(ss.REFERENCE_FIELD, "none")
    source = (f"{state.review} · job `{record.job[:8]}…` #{record.job_index + 1} · " if record.job else "") + \
        f"seed {record.seed}"
    progress = queue.progress(state)
    if record.labels is not None and state.labels is None:  # a batch whose jobs carry different labels
        progress += f" · **A** stores {record.labels.describe()}"
    box = defect_box(record.mask)  # for the viewer: a large photo opens zoomed on the defect (keyboard script)
    marker = f"<span class='defect-box' title='{' '.join(f'{v:.4f}' for v in box)}'></span>" if box else ""
    return (f"**#{record.index + 1}** of {len(state.candidates)} · {source} · {engine or 'engine unknown'} · "
            f"{shown} · reference {reference}  \n**{decision}** · {counts['undecided']} undecided, "
            f"{counts['accepted']} accepted, {counts['rejected']} rejected"
            + (f"  \n{progress}" if progress else "") + marker)


def show(state: ss.Session | None, view: str, steady: bool = False) -> tuple[Any, ...]:
    """The bundle: (session, viewer, slider, strip, details, key) for the candidate under review. ``steady``: the
    view shown stays (a decision or a move along the queue), so the picture goes as a plain value and the
    hidden one is skipped (every ``gr.update`` costs Gradio a schema rebuild, ~8 ms a key)."""
    if state is None or not state.candidates:
        strip = gr.update(value=[], label="Candidates")
        return state, gr.update(value=None, visible=True), gr.update(visible=False), strip, EMPTY_DETAILS, ""
    record = queue.current(state)
    shown = queue.window(state)
    items = [(strip_file(state.candidates[i]), strip_caption(state.candidates[i])) for i in shown]
    order = queue.order(state)
    first, last = order.index(shown[0]) + 1, order.index(shown[-1]) + 1
    label = f"Candidates {first}–{last} of {len(order)}" + (" (best first)" if state.best_first else "")
    strip = gr.update(value=items, selected_index=shown.index(record.index), label=label)
    if view == "before / after" and (record.normal or state.normal):
        pair = before_after(record, record.normal or state.normal)
        viewer, slider = (gr.skip(), pair) if steady else (gr.update(visible=False),
                                                          gr.update(value=pair, visible=True))
    else:
        picture = view_file(record, view if view in VIEWS else "image")
        viewer, slider = (picture, gr.skip()) if steady else (gr.update(value=picture, visible=True),
                                                             gr.update(visible=False))
    return state, viewer, slider, strip, details(state, record), ss.candidate_key(state, record)


def close_queue(state: ss.Session | None, view: str) -> tuple[tuple[Any, ...], str]:
    """(bundle, note) after a new normal image: the old candidates leave the queue, so that no key can store
    them with the new image's labels (accepted ones stay in the curated set)."""
    if state is None or not state.candidates:
        return show(state, view), ""
    undecided = queue.tally(state)["undecided"]
    ss.close_queue(state)
    note = (f" The previous image's candidates left the review queue ({undecided} undecided), so none is "
            "stored with these labels." if undecided else "")
    return show(state, view), note


class ReviewPanel:
    """The right side of the workstation."""

    show = staticmethod(show)
    close_queue = staticmethod(close_queue)

    def __init__(self, service: StudioService, session: gr.State) -> None:
        self.service = service
        self.session = session

    @property
    def bundle(self) -> list[Any]:
        """The outputs :func:`show` fills, in order."""
        return [self.session, self.viewer, self.slider, self.strip, self.details, self.shown_key]

    @property
    def labels(self) -> list[Any]:
        """The fields a decision stores: defect type, category, note."""
        return [self.defect_type, self.category, self.note]

    # ------------------------------------------------------------------ blocks
    def render(self, category: str, defect_type: str) -> None:
        """The viewer with the strip, and the decision column beside them."""
        types = self.service.defect_types()
        self.type_list = gr.State(self.key_types(category))  # what the number keys pick: exactly the line shown
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=360, elem_id="candidate-viewer"):
                self.viewer = gr.Image(value=None, type="filepath", format="png", label="④ Candidate", height=520,
                                       interactive=False, buttons=["fullscreen", "download"], elem_id="viewer-image")
                self.slider = gr.ImageSlider(value=None, type="filepath", format="png",
                                             label="④ Candidate: before / after", max_height=520, visible=False,
                                             interactive=False, elem_id="viewer-slider")
                self.strip = gr.Gallery(label="Candidates", columns=queue.STRIP_WINDOW, height=136,
                                        allow_preview=False, object_fit="contain", fit_columns=False, format="png",
                                        elem_id="candidate-strip")
            with gr.Column(scale=1, min_width=240, elem_id="decision-panel"):
                self._render_decisions(category, defect_type, types)
        gr.Markdown(keys_help(HOTKEYS), elem_classes=["hint"], elem_id="keys-help")
        self.type_buttons = [gr.Button(str(k), visible="hidden", elem_id=f"type-key-{k}") for k in range(1, 10)]

    def _render_decisions(self, category: str, defect_type: str, types: list[str]) -> None:
        self.details = gr.Markdown(EMPTY_DETAILS, elem_id="details")
        # the candidate shown: every decision carries it, so a key never lands on a candidate not yet seen
        self.shown_key = gr.Textbox("", visible="hidden", elem_id="shown-candidate")
        # the press's number in the tab, written by the page as it is clicked: decisions apply in the order pressed
        self.press = gr.Textbox("", visible="hidden", elem_id="press-stamp")
        # the decisions first: they stay on the 1440×900 screen (and fixed at the bottom of a phone's)
        with gr.Row(elem_id="decision-bar"):
            pressed = {"size": "sm", "elem_classes": [PRESS_CLASS]}
            self.accept_btn = gr.Button("Accept (A)", variant="primary", elem_id="accept-btn", **pressed)
            self.reject_btn = gr.Button("Reject (R)", variant="stop", elem_id="reject-btn", **pressed)
            self.undo_btn = gr.Button("Undo (Z)", elem_id="undo-btn", **pressed)
        with gr.Row():
            self.prev_btn = gr.Button("← prev", elem_id="prev-btn", **pressed)
            self.next_btn = gr.Button("next →", elem_id="next-btn", **pressed)
        self.message = gr.Markdown("", elem_id="message")
        self.will_store = gr.Markdown(will_store(category, defect_type), elem_id="will-store")
        with gr.Group():
            self.category = gr.Textbox(value=category, label="Category (product)", max_lines=1,
                                       placeholder="e.g. metal_plate", elem_id="category")
            self.defect_type = gr.Dropdown(choices=types, value=defect_type or None, allow_custom_value=True,
                                           label="Defect type (1–9)", elem_id="defect-type")
            self.note = gr.Textbox(show_label=False, placeholder="note (optional)", max_lines=1, elem_id="note")
            self.keep_labels = gr.Checkbox(value=False, label="keep labels and reference for the next photo",
                                           elem_id="keep-labels")
        self.type_keys = gr.Markdown(type_keys_markdown(self.type_list.value), elem_classes=["hint"],
                                     elem_id="type-keys")
        self.apply_btn = gr.Button("Apply to remaining", size="sm", elem_id="apply-labels-btn")
        with gr.Group():
            self.view = gr.Radio(list(VIEWS), value="image", label="View (O)", elem_id="view")
            self.best_first = gr.Checkbox(value=False, label="best score first", elem_id="best-first")
        with gr.Row():
            self.accept_all = gr.Button("Accept all undecided", size="sm", elem_id="accept-all-btn")
            self.reject_all = gr.Button("Reject all undecided", size="sm", elem_id="reject-all-btn")

    # ------------------------------------------------------------------ events
    def wire(self) -> None:
        """This panel's events. A decision refreshes nothing else: the curated tab reads the store when shown."""
        queue_io = [self.session, self.view]
        outputs = [*self.bundle, self.message]
        moving = [*self.bundle, *self.labels, self.will_store, self.message]  # the fields follow the batch job
        self.view.change(self.view_changed, queue_io, outputs, api_name="ui_view", **QUIET)
        self.best_first.change(self.order_changed, [self.session, self.best_first, self.view], outputs,
                               api_name="ui_best_first", **QUIET)
        self.strip.select(self.select_candidate, queue_io, moving, api_name="ui_select_candidate", **REVIEW)
        labelled = [self.session, *self.labels, self.view]

        def on_press(button: gr.Button, fn: Callable, inputs: list[Any], api_name: str) -> None:
            """A numbered button: its event carries the press's stamp (last input) and waits its turn."""
            button.click(fn, [*inputs, self.press], moving, api_name=api_name, js=press_stamp(button.elem_id),
                         trigger_mode="multiple", **REVIEW)

        on_press(self.prev_btn, self.previous, queue_io, "ui_step")
        on_press(self.next_btn, self.next, queue_io, "ui_step")
        on_press(self.accept_btn, self.accept, [*labelled, self.shown_key], "ui_accept")
        on_press(self.reject_btn, self.reject, [*queue_io, self.shown_key], "ui_reject")
        on_press(self.undo_btn, self.undo, queue_io, "ui_undo")
        self.accept_all.click(self.accept_all_undecided, labelled, outputs, api_name="ui_accept_all", **REVIEW)
        self.reject_all.click(self.reject_all_undecided, labelled, outputs, api_name="ui_reject_all", **REVIEW)
        self.apply_btn.click(self.apply_labels, [self.session, *self.labels, self.view], outputs,
                             api_name="ui_apply_labels", **REVIEW).then(*self.will_store_event, **QUICK)
        for k, button in enumerate(self.type_buttons, 1):
            button.click(lambda t, st, _k=k: self.type_key(_k, t, st), [self.type_list, self.session],
                         [self.defect_type, self.message], api_name="ui_type_key",
                         **REVIEW).then(*self.will_store_event, **QUICK)
        self.category.change(self.category_keys, self.category, [self.type_list, self.type_keys],
                             api_name="ui_category_keys", **QUIET)
        for field in (self.category, self.defect_type, self.note):
            field.change(*self.will_store_event, api_name="ui_will_store", **QUICK)

    def key_types(self, category: Any) -> list[str]:
        """The defect types on keys 1–9 for ``category``: a stable map kept in the data folder (a type keeps
        its key when new types enter the store; :mod:`studio.review.hotkeys`)."""
        name = label_text(category, "category") if isinstance(category, str) else ""
        return key_map(self.service.ctx.store.root, name, self.service.defect_types())

    @keeps_work(2)
    def category_keys(self, category: Any) -> tuple[Any, ...]:
        """The number keys of the category typed (the list and the line that shows it change together), and a
        warning when it is a near-duplicate of a category in the store (case, ``_``/``-``/space, one edit)."""
        types = self.key_types(category)
        name = label_text(category, "category") if isinstance(category, str) else ""
        near = close_name(name, self.service.stats().get("by_category") or {}) if name else None
        warning = (f"  \n⚠️ `{name}` is close to `{near}` in the curated set: type `{near}` if it is the same "
                   "product." if near else "")
        return types, type_keys_markdown(types) + warning

    @property
    def will_store_event(self) -> tuple[Callable, list[Any], Any]:
        """(fn, inputs, output) of the line saying what ``A`` stores: run after the fields change and after
        every event that opens or closes a queue (not after each decision: its labels do not change)."""
        return will_store, [self.category, self.defect_type, self.note, self.session], self.will_store

    def load(self, category: Any = "", restored: QueueLabels | None = None) -> tuple[Any, ...]:
        """At page load: the defect types (the list the number keys pick from, with the line that shows it:
        both change together, only here and with the category), and the label fields: those of a queue
        ``restored`` after a reload, else left as they are. Outputs: :attr:`load_outputs`."""
        if restored is None:
            keys = self.key_types(category)
            return gr.update(choices=self.service.defect_types()), keys, type_keys_markdown(keys), gr.skip(), gr.skip()
        keys = self.key_types(restored.category)
        return (gr.update(choices=self.service.defect_types(), value=restored.defect_type or None), keys,
                type_keys_markdown(keys), restored.category, restored.note)

    @property
    def load_outputs(self) -> list[Any]:
        return [self.defect_type, self.type_list, self.type_keys, self.category, self.note]

    # ------------------------------------------------------------------ moving through the queue
    @keeps_work(BUNDLE + 1)
    def view_changed(self, state: ss.Session | None, view: str) -> tuple[Any, ...]:
        """Show the candidate under review as image, overlay, before / after or mask."""
        return (*show(state, view), "")

    @keeps_work(BUNDLE + 1)
    def order_changed(self, state: ss.Session | None, best_first: bool, view: str) -> tuple[Any, ...]:
        """Order the queue by score (best first) or as generated."""
        if state is not None:
            state.best_first = bool(best_first)
        return (*show(state, view), "")

    @staticmethod
    def _moved(state: ss.Session | None, view: str, before: str | None, message: str = "") -> tuple[Any, ...]:
        """The outputs of a move along the queue (``before``: the batch job shown until now): the bundle, the
        label fields (changed only when the move entered another job) and ``message``."""
        return (*show(state, view, steady=True), *job_fields(state, before), message)

    @keeps_work(BUNDLE + 5)
    def select_candidate(self, state: ss.Session | None, view: str, evt: gr.SelectData) -> tuple[Any, ...]:
        """A thumbnail of the strip was clicked: put that candidate under review."""
        shown, before = queue.window(state), queue.shown_job(state)
        position = clicked(evt, len(shown))
        if position is None:
            raise InputError("Click one of the candidates on the strip.")
        queue.select(state, shown[position])
        return self._moved(state, view, before)

    @keeps_work(BUNDLE + 5)
    def previous(self, state: ss.Session | None, view: str, press: str = "") -> tuple[Any, ...]:
        """←: the previous candidate in the queue's order."""
        queue.in_press_order(state, press, decision=False)
        before = queue.shown_job(state)
        queue.step(state, -1)
        return self._moved(state, view, before)

    @keeps_work(BUNDLE + 5)
    def next(self, state: ss.Session | None, view: str, press: str = "") -> tuple[Any, ...]:
        """→: the next candidate in the queue's order."""
        queue.in_press_order(state, press, decision=False)
        before = queue.shown_job(state)
        queue.step(state, 1)
        return self._moved(state, view, before)

    # ------------------------------------------------------------------ decisions
    @classmethod
    def _after_decision(cls, state: ss.Session, view: str, done: str, before: str | None) -> tuple[Any, ...]:
        """Advance to the next undecided candidate and say what happened (``before``: the decided one's job)."""
        if not queue.advance(state):
            counts = queue.tally(state)
            done += (f" All {len(state.candidates)} decided: {counts['accepted']} accepted, "
                     f"{counts['rejected']} rejected.")
        return cls._moved(state, view, before, done)

    @keeps_work(BUNDLE + 5)
    def accept(self, state: ss.Session | None, defect_type: str, category: str, note: str,
               view: str, key: str = "", press: str = "") -> tuple[Any, ...]:
        """A: accept the candidate ``key`` was pressed on (refused unless it is still the one shown, or if an
        earlier press is still on its way) with the labels pinned to the queue (the fields only when no queue
        pinned any), then move to the next undecided."""
        queue.in_press_order(state, press)
        record = queue.pressed_on(state, key)
        labels = queue.pinned(state, record) or typed_labels(category, defect_type, note)
        sample_id, new = self.service.accept(state, record.index, labels.defect_type, labels.category, labels.note)
        done = (f"Accepted **#{record.index + 1}** as `{sample_id}` ({labels.category} · {labels.defect_type})."
                if new else f"#{record.index + 1} was already in the curated set as `{sample_id}`.")
        return self._after_decision(state, view, done, record.job)

    @keeps_work(BUNDLE + 5)
    def reject(self, state: ss.Session | None, view: str, key: str = "", press: str = "") -> tuple[Any, ...]:
        """R: reject the candidate ``key`` was pressed on (if still shown, and pressed in order), then move to the
        next undecided."""
        queue.in_press_order(state, press)
        record = queue.pressed_on(state, key)
        self.service.reject(state, record.index)
        return self._after_decision(state, view, f"Rejected **#{record.index + 1}**.", record.job)

    @keeps_work(BUNDLE + 5)
    def undo(self, state: ss.Session | None, view: str, press: str = "") -> tuple[Any, ...]:
        """Z: undo the last decision (if pressed in order) and put that candidate under review again."""
        queue.in_press_order(state, press)
        before = queue.shown_job(state)
        record = self.service.undo(state)
        return self._moved(state, view, before, f"Undid the decision on **#{record.index + 1}**: undecided again.")

    def _decide_all(self, state: ss.Session | None, decision: str, defect_type: str, category: str, note: str,
                    view: str) -> tuple[Any, ...]:
        labels = (state.labels if state is not None else None) or typed_labels(category, defect_type, note)
        count = self.service.decide_all(state, decision, labels.defect_type, labels.category, labels.note)
        verb = "Accepted" if decision == ss.ACCEPTED else "Rejected"
        return (*show(state, view), f"{verb} all {count} undecided candidate(s).")

    @keeps_work(BUNDLE + 1)
    def accept_all_undecided(self, state: ss.Session | None, defect_type: str, category: str, note: str,
                             view: str) -> tuple[Any, ...]:
        """Accept every undecided candidate with the labels shown."""
        return self._decide_all(state, ss.ACCEPTED, defect_type, category, note, view)

    @keeps_work(BUNDLE + 1)
    def reject_all_undecided(self, state: ss.Session | None, defect_type: str, category: str, note: str,
                             view: str) -> tuple[Any, ...]:
        """Reject every undecided candidate."""
        return self._decide_all(state, ss.REJECTED, defect_type, category, note, view)

    @keeps_work(2)
    def type_key(self, number: int, types: list[str], state: ss.Session | None = None) -> tuple[Any, str]:
        """1–9: pick the n-th defect type of the list shown under the field (``types``, as the page shows it);
        with a queue open, it is the defect type of its undecided candidates (of the shown candidate's batch job)
        from now on (said so)."""
        types = list(types or [])
        if not 1 <= number <= len(types) or not types[number - 1]:
            raise InputError(f"Key {number} has no defect type for this category yet.")
        chosen = types[number - 1]
        base = queue.pinned(state)
        if base is None:
            return gr.update(value=chosen), ""
        labels = QueueLabels(base.category, chosen, base.note)
        left = queue.relabel_undecided(state, labels)
        return gr.update(value=chosen), f"{labels.describe()} for the {left} undecided candidate(s) of {queue.scope(state)}."

    @keeps_work(BUNDLE + 1)
    def apply_labels(self, state: ss.Session | None, defect_type: str, category: str, note: str,
                     view: str) -> tuple[Any, ...]:
        """Apply to remaining: the fields become the labels of the open queue's undecided candidates (in a batch
        queue: of the shown candidate's job; decided ones keep what they were stored with)."""
        if state is None or not state.candidates:
            raise InputError("There is no open queue: the labels are used by the next Generate or batch job.")
        labels = typed_labels(category, defect_type, note)
        left = queue.relabel_undecided(state, labels)
        return (*show(state, view), f"Labels for the {left} undecided candidate(s) of {queue.scope(state)}: "
                                    f"{labels.describe()}.")
