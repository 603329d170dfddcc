"""A session's review queue over a fresh generation: pinned labels, keys that act only on the candidate
they were pressed on, undo of one's own decisions, and the store kept consistent."""
from __future__ import annotations

import json

import numpy as np
import pytest

from studio.errors import InputError
from studio.review.generation import GenerationDecider, open_generation
from studio.review.labels import QueueLabels
from studio.review.queue import ReviewQueue
from studio.store import NewSample, Store
from studio.types import Candidate

LABELS = QueueLabels("oak_board", "crack", "first shift")


def sample(index: int) -> NewSample:
    """Candidate ``index`` of a small generation (labels are set by the decider)."""
    normal = np.full((16, 16, 3), 140, np.uint8)
    image = normal.copy()
    image[4:8, 4:8] = 10 * index
    mask = np.zeros((16, 16), np.uint8)
    mask[4:8, 4:8] = 255
    return NewSample(Candidate(image, mask, index, {}), normal, category="wrong", defect_type="wrong")


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path) as s:
        yield s


def test_accept_stores_the_pinned_labels_exactly_once(store):
    decider = GenerationDecider(store, sample)
    queue = open_generation("tab1", LABELS, 4, reference_used=False)
    first = queue.current
    outcome = queue.press(decider, first, "accept")
    assert outcome.applied and queue.current == queue.entries[1].id
    record = store.get(outcome.sample_id)
    assert (record.category, record.defect_type, record.note) == ("oak_board", "crack", "first shift")
    assert record.reference_path is None and not queue.entry(first).reference_used
    queue.select(first)
    again = queue.press(decider, first, "accept")
    assert not again.applied and "already accepted" in again.message and len(store) == 1


def test_a_key_pressed_on_a_candidate_no_longer_shown_is_refused(store):
    decider = GenerationDecider(store, sample)
    queue = open_generation("tab1", LABELS, 3, reference_used=False)
    first, second = queue.entries[0].id, queue.entries[1].id
    assert queue.press(decider, first, "reject").applied
    late = queue.press(decider, first, "accept")  # A pressed before the screen showed #2
    assert not late.applied and "pressed on #1 of 3, but #2 of 3 is shown" in late.message
    assert queue.state(first).status == "rejected" and queue.state(second).status == "undecided"
    assert len(store) == 0 and queue.current == second


def test_presses_apply_in_order_and_a_double_press_never_reaches_the_next(store):
    decider = GenerationDecider(store, sample)
    queue = open_generation("tab1", LABELS, 3, reference_used=False)
    ids = [e.id for e in queue.entries]
    presses = [(ids[0], "accept"), (ids[0], "accept"), (ids[1], "reject"), (ids[2], "accept")]
    applied = [queue.press(decider, cid, action).applied for cid, action in presses]
    assert applied == [True, False, True, True]
    assert [queue.state(i).status for i in ids] == ["accepted", "rejected", "accepted"] and len(store) == 2


def test_a_key_from_an_earlier_generation_is_refused(store):
    decider = GenerationDecider(store, sample)
    old = open_generation("tab1", LABELS, 2, reference_used=True)
    new = open_generation("tab1", LABELS, 2, reference_used=False)
    outcome = new.press(decider, old.entries[0].id, "accept")
    assert not outcome.applied and "not in this queue" in outcome.message and len(store) == 0


def test_undo_takes_back_own_decisions_newest_first_and_keeps_the_store_consistent(store):
    decider = GenerationDecider(store, sample)
    queue = open_generation("tab1", LABELS, 3, reference_used=False)
    ids = [e.id for e in queue.entries]
    stored = queue.press(decider, ids[0], "accept").sample_id
    queue.press(decider, ids[1], "reject")
    assert queue.press(decider, ids[2], "reject").applied and queue.current == ids[2]  # all decided: stays
    assert queue.press(decider, ids[2], "undo").applied and queue.current == ids[2]
    assert queue.state(ids[2]).status == "undecided"
    assert queue.press(decider, ids[2], "undo").applied and queue.current == ids[1]
    assert queue.press(decider, ids[1], "undo").applied and stored not in store and len(store) == 0
    nothing = queue.press(decider, ids[0], "undo")
    assert not nothing.applied and "no decision of yours" in nothing.message


def test_reject_of_an_accepted_candidate_asks_for_undo(store):
    decider = GenerationDecider(store, sample)
    queue = open_generation("tab1", LABELS, 2, reference_used=False)
    first = queue.entries[0].id
    queue.press(decider, first, "accept")
    queue.select(first)
    outcome = queue.press(decider, first, "reject")
    assert not outcome.applied and "press Z" in outcome.message and len(store) == 1


def test_labels_change_only_explicitly_and_only_for_the_remaining(store):
    decider = GenerationDecider(store, sample)
    queue = open_generation("tab1", LABELS, 3, reference_used=False)
    ids = [e.id for e in queue.entries]
    kept = queue.press(decider, ids[0], "accept").sample_id
    assert queue.relabel_remaining(QueueLabels("oak_board", "knot")) == 2
    changed = queue.press(decider, ids[1], "accept").sample_id
    assert store.get(kept).defect_type == "crack" and store.get(changed).defect_type == "knot"
    assert queue.entry(ids[0]).labels == LABELS


def test_best_first_orders_by_score_and_progress_counts(store):
    decider = GenerationDecider(store, sample)
    queue = open_generation("tab1", LABELS, 3, reference_used=False, scores=[0.2, None, 0.9], best_first=True)
    assert [e.index for e in queue.entries] == [2, 0, 1] and queue.current == queue.entries[0].id
    queue.press(decider, queue.current, "accept")
    progress = queue.progress()
    assert (progress.decided, progress.total, progress.accepted, progress.jobs) == (1, 3, 1, {})


def test_unknown_actions_and_empty_generations_are_input_errors():
    with pytest.raises(InputError):
        open_generation("tab1", LABELS, 0, reference_used=False)
    queue = open_generation("tab1", LABELS, 1, reference_used=False)
    with pytest.raises(InputError, match="Unknown review action"):
        queue.press(GenerationDecider(None, sample), queue.current, "delete")  # type: ignore[arg-type]


def test_a_saved_queue_restores_with_its_decisions_and_undo(store):
    decider = GenerationDecider(store, sample)
    queue = open_generation("tab1", LABELS, 3, reference_used=True)
    stored = queue.press(decider, queue.current, "accept").sample_id
    restored = ReviewQueue.from_dict(json.loads(json.dumps(queue.to_dict())))
    assert restored == queue and restored.entries[0].reference_used
    assert restored.press(decider, restored.current, "undo").applied and stored not in store
    with pytest.raises(InputError, match="unreadable"):
        ReviewQueue.from_dict({"entries": [{"id": "x"}]})
