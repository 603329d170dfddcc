"""The order of a tab's presses: decisions take effect in the order they were pressed, not the order their
requests happened to reach the server.

Two presses made within a few milliseconds (``R`` then ``A``) travel as two requests, and a browser may deliver
the second first. The page numbers every press on the review buttons as it is clicked (``<page>:<n>``, a new
``<page>`` at each load; :func:`studio.ui.widgets.keyboard.press_stamp`). A decision whose number arrives while
an earlier press of the same page is still on its way is refused (nothing changes, the person presses again);
the earlier one, when it comes, is then applied as if it had arrived first. A press that never arrives costs
one refused press. Moves along the queue are only counted, never refused (a dropped arrow would lose a step).
A call without a stamp (a ``gradio_client`` script) is not ordered.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from studio.errors import InputError

#: A stamp as the page writes it: the page load's id and the press number.
STAMP = re.compile(r"([0-9a-z]{1,40}):([0-9]{1,12})")

OUT_OF_ORDER = ("Not applied: an earlier key or click was still on its way when this one arrived. Nothing "
                "changed; press again if you meant it.")


@dataclass
class PressOrder:
    """What one tab's presses have done so far: ``page`` (the load they come from), the newest decision applied
    (``applied``), every press up to ``settled`` arrived (or given up on), and those beyond it that arrived."""

    page: str = ""
    applied: int = 0
    settled: int = 0
    arrived: set[int] = field(default_factory=set)

    def admit(self, stamp: str, decision: bool = True) -> None:
        """Count the press ``stamp``; for a ``decision``, raise :class:`InputError` when it must not take effect:
        an earlier press is still on its way, or a later one has already been applied."""
        match = STAMP.fullmatch(stamp or "")
        if match is None:
            return
        page, number = match.group(1), int(match.group(2))
        if page != self.page:
            self.page, self.applied, self.settled, self.arrived = page, 0, 0, set()
        missing = any(n not in self.arrived for n in range(self.settled + 1, number))
        self.arrived.add(number)
        if decision and (missing or number <= self.applied):
            if missing:  # the earlier ones are waited for no longer: the next press goes through
                self.settled = number - 1
            self._settle()
            raise InputError(OUT_OF_ORDER)
        if decision:
            self.applied = number
        self._settle()

    def _settle(self) -> None:
        while self.settled + 1 in self.arrived:
            self.settled += 1
        self.arrived = {n for n in self.arrived if n > self.settled}
