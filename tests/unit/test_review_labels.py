"""Queue labels, near-duplicate categories and the stable 1–9 defect-type keys."""
from __future__ import annotations

import threading

import pytest

from studio.errors import InputError
from studio.review.hotkeys import HOTKEYS_FILE, key_map, pin_key, type_for_key
from studio.review.labels import QueueLabels, close_name, typed_labels

CATEGORIES = ["oak_board", "metal_disc", "bottle"]


@pytest.mark.parametrize("typed, close", [
    ("Oak Board", "oak_board"), ("oak-board", "oak_board"), ("OAK_BOARD", "oak_board"),
    ("oak_boarda", "oak_board"), ("oak_bord", "oak_board"), ("metal_disk", "metal_disc"), ("botle", "bottle"),
    ("oak_board", None), ("carpet", None), ("bottles_x", None),
])
def test_a_new_category_close_to_an_existing_one_is_found(typed, close):
    assert close_name(typed, CATEGORIES) == close


def test_typed_labels_are_cleaned_and_bounded():
    assert typed_labels("  oak_board ", "crack\x00", None) == QueueLabels("oak_board", "crack", "")
    assert typed_labels("", "") == QueueLabels("", "", "")  # empty is allowed here: an accept refuses it
    with pytest.raises(InputError, match="keep it under"):
        typed_labels("x" * 500, "crack")


def test_the_key_map_does_not_move_when_new_types_enter_the_store(tmp_path):
    first = key_map(tmp_path, "bottle", ["crack", "scratch", "stain"])
    assert first[:3] == ["crack", "scratch", "stain"] and first[3:] == [""] * 6
    later = key_map(tmp_path, "bottle", sorted(["bubble", "crack", "scratch", "stain", "abrasion"]))
    assert later[:5] == ["crack", "scratch", "stain", "abrasion", "bubble"]  # new ones take free keys
    assert type_for_key(tmp_path, "bottle", 3) == "stain"
    assert key_map(tmp_path, "metal_disc", ["dent"])[0] == "dent"  # per category
    assert key_map(tmp_path, "bottle")[2] == "stain" and (tmp_path / HOTKEYS_FILE).is_file()


def test_a_pinned_key_swaps_and_a_full_map_gives_no_key_to_newcomers(tmp_path):
    key_map(tmp_path, "bottle", [f"type{i}" for i in range(1, 10)])
    assert key_map(tmp_path, "bottle", ["newcomer"]) == [f"type{i}" for i in range(1, 10)]
    pinned = pin_key(tmp_path, "bottle", 2, "type7")
    assert pinned[1] == "type7" and pinned[6] == "type2"
    pinned = pin_key(tmp_path, "bottle", 9, "newcomer")
    assert pinned[8] == "newcomer" and "type9" not in pinned
    with pytest.raises(InputError, match="1–9"):
        pin_key(tmp_path, "bottle", 10, "crack")
    with pytest.raises(InputError, match="no defect type"):
        type_for_key(tmp_path, "empty", 1)


def test_concurrent_writers_keep_every_type(tmp_path):
    types = [f"t{i}" for i in range(8)]
    threads = [threading.Thread(target=key_map, args=(tmp_path, "bottle", [t])) for t in types]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s for s in key_map(tmp_path, "bottle") if s) == sorted(types)


def test_an_unreadable_key_map_is_a_clear_error(tmp_path):
    (tmp_path / HOTKEYS_FILE).write_text("{not json")
    with pytest.raises(InputError, match="delete it"):
        key_map(tmp_path, "bottle", ["crack"])
