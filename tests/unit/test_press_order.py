"""Presses on the review buttons take effect in the order pressed, whatever order their requests arrive in."""
from __future__ import annotations

import pytest

from studio.errors import InputError
from studio.ui.press_order import OUT_OF_ORDER, PressOrder


def applied(order: PressOrder, *stamps: str) -> list[bool]:
    """For each decision ``stamps`` in arrival order: was it let through?"""
    out = []
    for stamp in stamps:
        try:
            order.admit(stamp)
            out.append(True)
        except InputError as exc:
            assert str(exc) == OUT_OF_ORDER
            out.append(False)
    return out


def test_presses_arriving_in_order_all_go_through():
    assert applied(PressOrder(), "p1:1", "p1:2", "p1:3") == [True, True, True]


def test_a_press_that_overtakes_an_earlier_one_is_refused_and_the_earlier_one_goes_through():
    # R (1) then A (2) pressed on the same candidate; A's request arrives first
    order = PressOrder()
    assert applied(order, "p1:2", "p1:1") == [False, True]
    assert applied(order, "p1:3") == [True]  # and the tab goes on as before


def test_a_press_that_never_arrives_costs_one_refused_press():
    order = PressOrder()
    assert applied(order, "p1:2", "p1:3", "p1:4") == [False, True, True]


def test_a_press_older_than_one_applied_is_refused():
    order = PressOrder()
    assert applied(order, "p1:2") == [False]  # gives up on 1
    assert applied(order, "p1:3") == [True]
    assert applied(order, "p1:1") == [False]  # 1 comes after all, behind 3 that was applied


def test_moves_are_counted_but_never_refused():
    order = PressOrder()
    order.admit("p1:2", decision=False)  # → overtook an earlier → : both moves apply
    order.admit("p1:1", decision=False)
    assert applied(order, "p1:3") == [True]
    order.admit("p1:5", decision=False)
    assert applied(order, "p1:4") == [True]  # the move pressed later changes nothing for this decision


def test_a_decision_overtaking_a_move_is_refused():
    # → (1) then A (2): A was pressed on the candidate before the move; it must not land on it after the move
    order = PressOrder()
    assert applied(order, "p1:2") == [False]
    order.admit("p1:1", decision=False)
    assert applied(order, "p1:3") == [True]


def test_a_new_page_load_starts_counting_again_and_unstamped_calls_are_not_ordered():
    order = PressOrder()
    assert applied(order, "p1:1", "p1:2", "p1:3") == [True, True, True]
    assert applied(order, "p2:1") == [True]  # the tab reloaded
    assert applied(order, "", "not a stamp", "p2:2") == [True, True, True]


@pytest.mark.parametrize("stamp", ["p1:-1", "p1:1e9", "P1:1", "p1:1:2", "x" * 41 + ":1", "p1:" + "9" * 13])
def test_a_malformed_stamp_is_ignored(stamp):
    order = PressOrder()
    order.admit(stamp)
    assert (order.page, order.applied, order.settled, order.arrived) == ("", 0, 0, set())
