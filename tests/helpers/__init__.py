"""Shared test helpers. Test modules import from here (or get fixtures from conftest.py), never from each other."""
from __future__ import annotations

from pathlib import Path

#: The repository root (tests/helpers/__init__.py is two folders below it).
REPO = Path(__file__).resolve().parents[2]
