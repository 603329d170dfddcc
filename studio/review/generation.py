"""A queue over one fresh generation: decisions belong to the session; accepts go straight to the store.

The session's candidate files stay the UI's business: :class:`GenerationDecider` is given a
``load(index) -> NewSample`` (candidate, normal image, reference or None) and sets the labels
itself, from the queue entry, so an accept stores exactly the labels pinned to the queue.

API::

    open_generation(session, labels, count, *, reference_used, scores=None, best_first=False) -> ReviewQueue
    GenerationDecider(store, load)          # load(index) -> NewSample (labels ignored)
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from studio.batch.decisions import ACCEPTED, REJECTED
from studio.errors import InputError
from studio.review.labels import QueueLabels
from studio.review.queue import EntryState, QueueEntry, ReviewQueue
from studio.store import NewSample, Store, now_iso


def open_generation(session: str, labels: QueueLabels, count: int, *, reference_used: bool,
                    scores: Sequence[float | None] | None = None, best_first: bool = False) -> ReviewQueue:
    """A queue over candidates ``0..count-1`` of a new generation, all with ``labels``.

    Entry ids carry a fresh token, so a key pressed on an earlier generation's candidate never
    matches one of these. ``best_first`` orders by ``scores`` (no score last)."""
    if count < 1:
        raise InputError("There are no candidates to review.")
    token = f"gen-{secrets.token_hex(4)}"
    scores = list(scores) if scores is not None else [None] * count
    entries = [QueueEntry(f"{token}/{i:02d}", i, labels, reference_used, None, scores[i]) for i in range(count)]
    if best_first:
        entries.sort(key=lambda e: (e.score is None, -(e.score or 0.0), e.index))
    return ReviewQueue(session, entries, title=f"{count} new candidate(s)")


@dataclass
class GenerationDecider:
    """Accept stores the candidate (a new sample id each time it is accepted); reject stores nothing;
    undo removes the sample its accept stored."""

    store: Store
    load: Callable[[int], NewSample]

    def accept(self, entry: QueueEntry, session: str) -> EntryState:
        labels = entry.labels
        sample = replace(self.load(entry.index), category=labels.category, defect_type=labels.defect_type,
                         note=labels.note, sample_id=None)
        sample_id = self.store.add_many([sample])[0]
        return EntryState(ACCEPTED, session, sample_id, now_iso())

    def reject(self, entry: QueueEntry, session: str) -> EntryState:
        return EntryState(REJECTED, session, None, now_iso())

    def undo(self, entry: QueueEntry, state: EntryState, session: str) -> None:
        if state.status == ACCEPTED and state.sample_id and state.sample_id in self.store:
            self.store.remove(state.sample_id)

    def states(self, entries: list[QueueEntry]) -> dict[str, EntryState]:
        return {}
