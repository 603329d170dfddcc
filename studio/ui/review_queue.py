"""The review queue of a session: which candidate is under review, in which order, and undo.

Pure bookkeeping on a :class:`~studio.ui.session.Session` (the store is :mod:`studio.ui.service`'
business). The session's ``selected`` candidate is the one truth: the strip highlights it and
``A``/``R`` act on it, so what is highlighted is always what a decision stores.
"""
from __future__ import annotations

from studio.errors import InputError
from studio.review.labels import QueueLabels
from studio.ui.session import UNDECIDED, CandidateRecord, Decision, Session, candidate_key

#: The outputs every review callback starts with: session, viewer, slider, strip, details, shown candidate's key.
BUNDLE = 6
#: How many thumbnails the strip shows around the selected candidate (a 500-candidate job stays fast).
STRIP_WINDOW = 6


def order(state: Session) -> list[int]:
    """Candidate indices in the order shown: generation order, or best score first (no score last)."""
    indices = [r.index for r in state.candidates]
    if not state.best_first:
        return indices
    scored = {r.index: r.score for r in state.candidates}
    return sorted(indices, key=lambda i: (scored[i] is None, -(scored[i] or 0.0), i))


def current(state: Session | None) -> CandidateRecord:
    """The candidate under review (refuses when there is none)."""
    if state is None or not state.candidates:
        raise InputError("There are no candidates yet: generate some first (or load a batch review job).")
    if state.selected is None:
        state.selected = first_undecided(state)
    return state.candidates[state.selected]


def in_press_order(state: Session | None, press: str, decision: bool = True) -> None:
    """Count ``press`` (the page's stamp of a click on a review button) in its tab's order; a ``decision``
    pressed while an earlier press was still on its way is refused (:mod:`studio.ui.press_order`). Called
    first, before anything else can refuse the press, so every press that arrives is counted."""
    if state is not None:
        state.presses.admit(press, decision)


def pressed_on(state: Session | None, key: str) -> CandidateRecord:
    """The candidate under review when ``key`` (the id the page showed as the key was pressed) is its
    id; a press on a candidate no longer shown is refused, never applied to another one. An empty
    ``key`` (a caller without a screen) means the one under review."""
    record = current(state)
    if key and key != candidate_key(state, record):
        shown = [r for r in state.candidates if candidate_key(state, r) == key]
        pressed = f"#{shown[0].index + 1}" if shown else "a candidate of an earlier queue"
        raise InputError(f"Not applied: the key was pressed on {pressed}, but #{record.index + 1} is shown now. "
                         "Nothing changed; press again if you meant this one.")
    return record


def first_undecided(state: Session) -> int:
    """The first undecided candidate in display order (the first one when all are decided)."""
    shown = order(state)
    return next((i for i in shown if state.candidates[i].status == UNDECIDED), shown[0])


def select(state: Session, index: int) -> None:
    """Put candidate ``index`` under review."""
    if not 0 <= index < len(state.candidates):
        raise InputError(f"There is no candidate #{index + 1}.")
    state.selected = index


def step(state: Session, delta: int) -> None:
    """Move the selection ``delta`` places along the display order (stops at both ends)."""
    shown = order(state)
    here = shown.index(current(state).index)
    state.selected = shown[min(max(here + delta, 0), len(shown) - 1)]


def advance(state: Session) -> bool:
    """Select the next undecided candidate after the current one (wrapping round); False when none is left."""
    shown = order(state)
    here = shown.index(current(state).index)
    for index in shown[here + 1:] + shown[:here + 1]:
        if state.candidates[index].status == UNDECIDED:
            state.selected = index
            return True
    return False


def remember(state: Session, record: CandidateRecord, previous: str) -> None:
    """Note a decision on ``record`` (whose status was ``previous``) for undo."""
    state.history.append(Decision(index=record.index, previous=previous, sample_id=record.sample_id))


def last_decision(state: Session | None) -> Decision:
    """The most recent decision still to undo (refuses when there is none)."""
    if state is None or not state.history:
        raise InputError("There is no decision to undo.")
    return state.history[-1]


def window(state: Session) -> list[int]:
    """The candidate indices the strip shows: up to ``STRIP_WINDOW`` around the selected one."""
    shown = order(state)
    if len(shown) <= STRIP_WINDOW:
        return shown
    here = shown.index(current(state).index)
    start = min(max(here - STRIP_WINDOW // 3, 0), len(shown) - STRIP_WINDOW)
    return shown[start:start + STRIP_WINDOW]


def tally(state: Session) -> dict[str, int]:
    """How many candidates are undecided, accepted and rejected."""
    counts = {"undecided": 0, "accepted": 0, "rejected": 0}
    for record in state.candidates:
        counts[record.status] += 1
    return counts


def pinned(state: Session | None, record: CandidateRecord | None = None) -> QueueLabels | None:
    """The labels ``A`` stores for ``record`` (default: the one under review): its batch job's, else the
    queue's; None when no queue is open (the fields are used then)."""
    if state is None or not state.candidates:
        return None
    record = record or current(state)
    return record.labels or state.labels


def shown_job(state: Session | None) -> str | None:
    """The batch job of the candidate under review (None for a generation or no queue)."""
    return current(state).job if state is not None and state.candidates else None


def scope(state: Session | None) -> str:
    """What a relabel changes, for the page: ``this job`` in a batch queue, else ``this queue``."""
    return "this job" if shown_job(state) is not None else "this queue"


def entered_job(state: Session | None, before: str | None) -> QueueLabels | None:
    """The labels of the candidate under review when it belongs to another batch job than ``before`` (the job
    the label fields showed): what the fields show from now on; None when they stay as they are."""
    job = shown_job(state)
    return current(state).labels if job is not None and job != before else None


def relabel_undecided(state: Session, labels: QueueLabels) -> int:
    """Pin ``labels`` to the undecided candidates (decided ones keep what they were stored with): in a batch
    queue those of the shown candidate's job only (the other jobs keep their own), else the whole queue's;
    returns how many."""
    job = shown_job(state)
    undecided = [r for r in state.candidates if r.status == UNDECIDED and r.job == job]
    for record in undecided:
        record.labels = labels if job is not None else None  # None: the queue's labels from now on
    if job is None:
        state.labels = labels
    else:  # one set of labels across the batch, or None: each job's own
        state.labels = labels if {r.labels for r in state.candidates} == {labels} else None
    return len(undecided)


def job_counts(state: Session) -> dict[str, tuple[int, int]]:
    """Batch job -> (decided, total) over the session's queue, jobs in queue order ({} for a generation)."""
    counts: dict[str, list[int]] = {}
    for record in state.candidates:
        if record.job:
            entry = counts.setdefault(record.job, [0, 0])
            entry[0] += record.status != UNDECIDED
            entry[1] += 1
    return {job: (done, total) for job, (done, total) in counts.items()}


def progress(state: Session) -> str:
    """``decided 12/40 · job 2 of 5 (3/8) · 1 job(s) finished`` for a batch queue; "" for a generation."""
    jobs = job_counts(state)
    here = current(state).job
    if not jobs or here is None:
        return ""
    done, count = jobs[here]
    finished = sum(d == t for d, t in jobs.values())
    return (f"decided {sum(d for d, _ in jobs.values())}/{sum(t for _, t in jobs.values())} · job "
            f"{list(jobs).index(here) + 1} of {len(jobs)} ({done}/{count}{' ✓ finished' if done == count else ''})"
            f" · {finished} job(s) finished")
