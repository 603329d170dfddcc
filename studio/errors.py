"""Errors a user can act on. Anything else escaping to a user is a bug."""
from __future__ import annotations


class StudioError(Exception):
    """Base class: the message is one clear sentence meant for the user."""


class InputError(StudioError):
    """An input (image, mask, text, number, file) is unusable; the message says why."""


class WeightsError(StudioError):
    """Model weights are missing or broken; the message says what, where, and how to fetch."""


class DiskFullError(StudioError, OSError):
    """A write ran out of disk space (errno ENOSPC); nothing half-written was left visible."""
