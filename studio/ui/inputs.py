"""Reading widget and API values: text, labels, whole numbers and seeds.

Every check raises :class:`~studio.errors.InputError` with one sentence the user can act on.
"""
from __future__ import annotations

import random
from typing import Any


from studio.errors import InputError
from studio.types import SEED_MAX, whole_number

#: The page's and the API's limit on candidates per request.
CANDIDATES_MAX = 8


def as_text(value: Any) -> str:
    """A widget/API value as text (None = "")."""
    return value if isinstance(value, str) else ("" if value is None else str(value))


def resolve_seed(seed: Any, randomise: bool = False) -> int:
    """A fixed seed, or a fresh random one when ``randomise`` or ``seed`` is -1 / empty."""
    if randomise or seed is None or (isinstance(seed, str) and not seed.strip()):
        return random.SystemRandom().randint(0, SEED_MAX)
    value = whole_number(seed, -1, SEED_MAX)
    if value is None:
        raise InputError(f"The seed must be a whole number from 0 to {SEED_MAX}, or -1 for random; got {seed!r}.")
    return random.SystemRandom().randint(0, SEED_MAX) if value == -1 else value


def candidate_count(value: Any) -> int:
    """Number of candidates: a whole number from 1 to 8."""
    number = whole_number(value, 1, CANDIDATES_MAX)
    if number is None:
        raise InputError(f"The number of candidates must be a whole number from 1 to {CANDIDATES_MAX}, "
                         f"got {value!r}.")
    return number
