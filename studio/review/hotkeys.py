"""The 1–9 defect-type keys: one stable map per category, kept in the data folder (``hotkeys.json``).

A defect type keeps its key once it has one: types met later take the free keys in the order
they are met and never shift the others (so ``stain`` stays on 7 when ``bubble`` enters the
store). A person can pin a type to a key (:func:`pin_key`); the type that held the key moves
to the pinned type's old key (or loses its key when the pinned type had none). Writes go through
:mod:`studio.jsonfile` under a lock (:mod:`studio.filelock`), so studios sharing a data folder
share the map.

API::

    key_map(data_dir, category, types) -> list[str]      # 9 slots, "" where free; new ``types`` fill free slots
    pin_key(data_dir, category, number, defect_type) -> list[str]
    type_for_key(data_dir, category, number) -> str      # InputError for a free or invalid key
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from studio.errors import InputError
from studio.filelock import locked
from studio.jsonfile import write_json
from studio.review.labels import label_text

HOTKEYS_FILE = "hotkeys.json"
KEYS = 9


def key_map(data_dir: str | os.PathLike, category: str, types: Iterable[str] = ()) -> list[str]:
    """The category's keys 1–9 (slot ``n - 1`` is key ``n``; "" is free) after giving each of ``types``
    that has no key the next free one."""
    with locked(_lock_path(data_dir)):
        maps = _read(data_dir)
        slots = _slots(maps, category)
        changed = False
        for name in types:
            name = label_text(name, "defect type")
            if name and name not in slots and "" in slots:
                slots[slots.index("")] = name
                changed = True
        if changed or category not in maps:
            maps[category] = slots
            write_json(_path(data_dir), {"categories": maps})
        return slots


def pin_key(data_dir: str | os.PathLike, category: str, number: int, defect_type: str) -> list[str]:
    """Put ``defect_type`` on key ``number`` for ``category``; returns the new map (see the module doc)."""
    slot = _slot(number)
    name = label_text(defect_type, "defect type")
    if not name:
        raise InputError("Type the defect type to put on the key.")
    with locked(_lock_path(data_dir)):
        maps = _read(data_dir)
        slots = _slots(maps, category)
        if name in slots:
            slots[slots.index(name)] = slots[slot]
        slots[slot] = name
        maps[category] = slots
        write_json(_path(data_dir), {"categories": maps})
        return slots


def type_for_key(data_dir: str | os.PathLike, category: str, number: int) -> str:
    """The defect type on key ``number`` for ``category``."""
    slot = _slot(number)
    with locked(_lock_path(data_dir)):
        slots = _slots(_read(data_dir), category)
    if not slots[slot]:
        raise InputError(f"Key {number} has no defect type for {category or 'this category'} yet; "
                         "pin one beside the defect-type field.")
    return slots[slot]


def _slot(number: Any) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= KEYS:
        raise InputError(f"Defect-type keys are 1–{KEYS}, not {number!r}.")
    return number - 1


def _slots(maps: dict[str, list[str]], category: str) -> list[str]:
    slots = [str(s) for s in maps.get(category, [])][:KEYS]
    return slots + [""] * (KEYS - len(slots))


def _path(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / HOTKEYS_FILE


def _lock_path(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / f".{HOTKEYS_FILE}.lock"


def _read(data_dir: str | os.PathLike) -> dict[str, list[str]]:
    path = _path(data_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InputError(f"The key map {path} is unreadable ({exc}); delete it to start a new one.") from None
    maps = data.get("categories") if isinstance(data, dict) else None
    if not isinstance(maps, dict):
        raise InputError(f"The key map {path} is not a map of categories; delete it to start a new one.")
    return {str(k): list(v) for k, v in maps.items() if isinstance(v, list)}
