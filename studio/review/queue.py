"""A review queue: the candidates one session reviews, the labels pinned to them, and safe decisions.

A :class:`ReviewQueue` is plain data (deep-copyable, fit for ``gr.State``); what a decision does to
the store and the disk is a :class:`Decider`'s job (:mod:`studio.review.generation` for a fresh
generation, :mod:`studio.review.batch` for batch review jobs, shared on disk). Every call that
decides takes the decider and the id of the candidate the key was pressed on.

Safe keys: :meth:`ReviewQueue.press` applies a key only when ``candidate_id`` is the candidate the
queue shows now (:attr:`ReviewQueue.current`); a press for any other candidate (the screen had not
caught up, the candidate was decided by another session meanwhile) is refused with a message and
changes nothing, never landing on another candidate. The service calls ``press`` for one session
at a time, in the order the presses came (hold a per-session lock), so presses are applied in order.

Labels: each entry carries the :class:`~studio.review.labels.QueueLabels` pinned when the queue
opened; an accept stores exactly those. :meth:`ReviewQueue.relabel_remaining` is the one way to
change them (undecided entries only).

API (``q`` a ReviewQueue, ``d`` a Decider)::

    q.press(d, candidate_id, action) -> Outcome       # action: "accept" | "reject" | "undo"
    q.select(candidate_id) / q.step(delta)            # navigation (arrows, strip clicks)
    q.relabel_remaining(labels, job_id=None) -> int   # explicit "apply to the remaining candidates"
    q.refresh(d)                                      # re-read shared decisions (other sessions, restart)
    q.progress() -> Progress                          # decided / total, per job, finished jobs
    q.shown() -> QueueEntry | None; q.state(entry_id) -> EntryState
    q.to_dict() / ReviewQueue.from_dict(data)         # plain JSON, to restore a session's queue after a reload
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from studio.batch.decisions import ACCEPTED, REJECTED, UNDECIDED, DecisionRefused
from studio.errors import InputError
from studio.review.labels import QueueLabels

ACTIONS = ("accept", "reject", "undo")


@dataclass(frozen=True)
class QueueEntry:
    """One candidate in a queue: its id (``<job-id>/NN`` or ``<generation>/NN``), where it comes from,
    the labels an accept stores and whether a reference anomaly was used to make it."""

    id: str
    index: int
    labels: QueueLabels
    reference_used: bool
    job_id: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class EntryState:
    """An entry's decision as last seen: status, the session that made it ("" unknown), its sample id."""

    status: str = UNDECIDED
    session: str = ""
    sample_id: str | None = None
    at: str = ""


@dataclass(frozen=True)
class Outcome:
    """What a key press did: ``applied`` False means nothing changed and ``message`` says why."""

    applied: bool
    message: str
    entry: QueueEntry | None = None
    sample_id: str | None = None


@dataclass(frozen=True)
class Progress:
    """Decided / total over the queue and per batch job; a job is finished when all its candidates are decided."""

    decided: int
    total: int
    accepted: int
    rejected: int
    jobs: dict[str, tuple[int, int]]

    @property
    def finished_jobs(self) -> list[str]:
        return [job for job, (done, total) in self.jobs.items() if done == total]


class Decider(Protocol):
    """What a decision does outside the queue (store, shared decision files)."""

    def accept(self, entry: QueueEntry, session: str) -> EntryState:
        """Store ``entry`` with ``entry.labels`` (once); raise DecisionRefused when another session decided it."""

    def reject(self, entry: QueueEntry, session: str) -> EntryState:
        """Record the reject; raise DecisionRefused when another session decided it."""

    def undo(self, entry: QueueEntry, state: EntryState, session: str) -> None:
        """Remove ``session``'s decision ``state`` (and an accept's sample); DecisionRefused when it is not its own."""

    def states(self, entries: list[QueueEntry]) -> dict[str, EntryState]:
        """The shared decisions on ``entries`` (entry id -> state); {} when decisions are the session's alone."""


@dataclass
class ReviewQueue:
    """One session's queue: entries in display order, their states, the one shown, this session's decisions."""

    session: str
    entries: list[QueueEntry]
    title: str = ""
    states: dict[str, EntryState] = field(default_factory=dict)
    current: str | None = None
    #: Entry ids this session decided, oldest first (what undo takes back, newest first).
    history: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        ids = [e.id for e in self.entries]
        if len(set(ids)) != len(ids):
            raise InputError("A review queue cannot hold the same candidate twice.")
        if self.current is None and self.entries:
            self.current = self.next_undecided(None) or self.entries[0].id

    # ------------------------------------------------------------------ saving
    def to_dict(self) -> dict[str, Any]:
        """The queue as plain JSON data (:meth:`from_dict` reads it back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ReviewQueue":
        """A queue saved by :meth:`to_dict`; InputError when ``data`` is not one."""
        try:
            entries = [QueueEntry(**{**e, "labels": QueueLabels(**e["labels"])}) for e in data["entries"]]
            states = {k: EntryState(**v) for k, v in data.get("states", {}).items()}
            return cls(str(data["session"]), entries, str(data.get("title", "")), states, data.get("current"),
                       [str(i) for i in data.get("history", [])])
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"The saved review queue is unreadable ({exc}); open the queue again.") from None

    # ------------------------------------------------------------------ reading
    def entry(self, entry_id: str) -> QueueEntry:
        for e in self.entries:
            if e.id == entry_id:
                return e
        raise InputError(f"Candidate {entry_id!r} is not in this queue.")

    def state(self, entry_id: str) -> EntryState:
        return self.states.get(entry_id, EntryState())

    def shown(self) -> QueueEntry | None:
        """The entry under review (None for an empty queue)."""
        return self.entry(self.current) if self.current is not None else None

    def position(self) -> int:
        """The shown entry's 0-based place in the queue."""
        return next((i for i, e in enumerate(self.entries) if e.id == self.current), 0)

    def progress(self) -> Progress:
        jobs: dict[str, list[int]] = {}
        counts = {UNDECIDED: 0, ACCEPTED: 0, REJECTED: 0}
        for e in self.entries:
            status = self.state(e.id).status
            counts[status] += 1
            if e.job_id is not None:
                tally = jobs.setdefault(e.job_id, [0, 0])
                tally[0] += status != UNDECIDED
                tally[1] += 1
        decided = counts[ACCEPTED] + counts[REJECTED]
        return Progress(decided, len(self.entries), counts[ACCEPTED], counts[REJECTED],
                        {job: (d, t) for job, (d, t) in jobs.items()})

    # ------------------------------------------------------------------ navigation
    def select(self, entry_id: str) -> QueueEntry:
        """Show ``entry_id`` (a strip click)."""
        entry = self.entry(entry_id)
        self.current = entry.id
        return entry

    def step(self, delta: int) -> QueueEntry | None:
        """Move ``delta`` places along the queue (stops at both ends)."""
        if not self.entries:
            return None
        here = min(max(self.position() + delta, 0), len(self.entries) - 1)
        self.current = self.entries[here].id
        return self.entries[here]

    def next_undecided(self, after: str | None) -> str | None:
        """The first undecided entry after ``after`` (wrapping round), or None when all are decided."""
        ids = [e.id for e in self.entries]
        start = ids.index(after) + 1 if after in ids else 0
        for entry_id in ids[start:] + ids[:start]:
            if self.state(entry_id).status == UNDECIDED:
                return entry_id
        return None

    # ------------------------------------------------------------------ decisions
    def press(self, decider: Decider, candidate_id: str, action: str) -> Outcome:
        """Apply ``action`` to ``candidate_id`` if it is the candidate shown now (see the module doc).

        After an accept or reject the next undecided candidate is shown; after an undo, the undone one.
        """
        if action not in ACTIONS:
            raise InputError(f"Unknown review action {action!r}; use one of {', '.join(ACTIONS)}.")
        if not self.entries:
            return Outcome(False, "There is no open queue: generate candidates or open a batch first.")
        if candidate_id != self.current:
            pressed = self._name(candidate_id)
            return Outcome(False, f"Not applied: the key was pressed on {pressed}, but {self._name(self.current)} "
                                  "is shown now. Nothing changed; press again if you meant this one.")
        entry = self.entry(candidate_id)
        if action == "undo":
            return self._undo(decider)
        self.refresh(decider, [entry])  # what other sessions did to it since this queue last looked
        before = self.state(entry.id)
        wanted = ACCEPTED if action == "accept" else REJECTED
        if before.status != UNDECIDED and before.session == self.session:
            if before.status == wanted:
                return Outcome(False, f"{self._name(entry.id)} is already {wanted}; nothing changed.", entry,
                               before.sample_id)
            if before.status == ACCEPTED:
                return Outcome(False, f"{self._name(entry.id)} is accepted; press Z to undo that first. "
                                      "Nothing changed.", entry, before.sample_id)
        try:
            state = decider.accept(entry, self.session) if action == "accept" else decider.reject(entry, self.session)
        except DecisionRefused as refused:
            self.refresh(decider, [entry])
            return Outcome(False, str(refused), entry)
        self.states[entry.id] = state
        if entry.id in self.history:
            self.history.remove(entry.id)
        self.history.append(entry.id)
        self.current = self.next_undecided(entry.id) or entry.id
        if state.status == ACCEPTED:
            return Outcome(True, f"Accepted {self._name(entry.id)} as {entry.labels.describe()}.", entry,
                           state.sample_id)
        return Outcome(True, f"Rejected {self._name(entry.id)}.", entry)

    def relabel_remaining(self, labels: QueueLabels, job_id: str | None = None) -> int:
        """Give every undecided entry (of ``job_id`` only, when given) these labels; returns how many.

        Decided entries keep the labels they were stored with."""
        changed = 0
        for i, e in enumerate(self.entries):
            if self.state(e.id).status == UNDECIDED and (job_id is None or e.job_id == job_id) and e.labels != labels:
                self.entries[i] = replace(e, labels=labels)
                changed += 1
        return changed

    def refresh(self, decider: Decider, entries: list[QueueEntry] | None = None) -> None:
        """Re-read the shared decisions (all entries, or these); this session's own ones join its history
        (so undo works after a reload), in the order they were made."""
        shared = decider.states(list(self.entries if entries is None else entries))
        for entry_id, state in shared.items():
            self.states[entry_id] = state
        for e in entries if entries is not None else self.entries:
            if e.id not in shared and e.job_id is not None:
                self.states.pop(e.id, None)  # undone elsewhere (or its sample was removed)
        own = sorted((s.at, i) for i, s in self.states.items() if s.session == self.session and s.status != UNDECIDED)
        kept = [i for i in self.history if i in {x for _, x in own}]
        self.history = kept + [i for _, i in own if i not in kept]

    # ------------------------------------------------------------------ internals
    def _undo(self, decider: Decider) -> Outcome:
        if not self.history:
            return Outcome(False, "There is no decision of yours to undo in this queue.")
        entry = self.entry(self.history[-1])
        try:
            decider.undo(entry, self.state(entry.id), self.session)
        except DecisionRefused as refused:
            self.history.pop()
            self.refresh(decider, [entry])
            return Outcome(False, str(refused), entry)
        undone = self.state(entry.id)
        self.history.pop()
        self.states.pop(entry.id, None)
        self.current = entry.id
        return Outcome(True, f"Undid the {undone.status} decision on {self._name(entry.id)}: undecided again.",
                       entry, undone.sample_id)

    def _name(self, entry_id: str | None) -> str:
        """``#3 of 40`` for the page."""
        ids = [e.id for e in self.entries]
        if entry_id not in ids:
            return "a candidate that is not in this queue"
        return f"#{ids.index(entry_id) + 1} of {len(ids)}"
