"""How callbacks talk back: readable errors and progress bars.

:func:`friendly` (the API) turns a :class:`~studio.errors.StudioError` into a ``gr.Error`` with the
same sentence, and any other exception into a generic ``gr.Error`` (logged with its traceback), so
bad input never takes the page or another session down. :func:`keeps_work` (the page) never
raises: a failed call leaves every output as it was (``gr.skip()``), says what went wrong in its
last output (the message line) and in a warning toast, so no gallery is replaced by an error badge.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable

import gradio as gr

from studio.errors import StudioError
from studio.types import ProgressFn

log = logging.getLogger(__name__)

#: Seconds a warning toast stays up (the message line keeps the sentence afterwards).
TOAST_S = 6


def user_message(exc: BaseException, where: str) -> str:
    """The sentence a user sees for ``exc`` (unexpected ones are logged with their traceback)."""
    if isinstance(exc, (StudioError, gr.Error)):
        return str(exc.message if isinstance(exc, gr.Error) else exc)
    if isinstance(exc, MemoryError):
        log.exception("out of memory in %s", where)
        return "The server ran out of memory for this request; try a smaller image or fewer candidates."
    log.exception("unexpected error in %s", where)
    return (f"Something went wrong ({type(exc).__name__}); the page is still usable, "
            "try again or change the inputs.")


def friendly(fn: Callable) -> Callable:
    """Turn studio errors into ``gr.Error`` with their sentence; anything else into a generic one."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise gr.Error(user_message(exc, fn.__name__), print_exception=False) from None

    return wrapper


def keeps_work(outputs: int) -> Callable[[Callable], Callable]:
    """For a page callback with ``outputs`` outputs, the last being its message line: on failure
    every other output is left as it was and the message says what went wrong."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                text = user_message(exc, fn.__name__)
                gr.Warning(text, duration=TOAST_S)
                unchanged = tuple(gr.skip() for _ in range(outputs - 1))
                return (*unchanged, f"⚠️ {text}") if outputs > 1 else f"⚠️ {text}"

        return wrapper

    return decorate


def progress_fn(progress: Any) -> ProgressFn | None:
    """Adapt ``gr.Progress`` to the engines' ``(done, total, description)`` callback (work on a ZeroGPU
    slot gets none: :mod:`studio.ui.zerogpu`)."""
    if progress is None:
        return None

    def update(done: int, total: int, description: str) -> None:
        try:
            progress((done, total), desc=description)
        except Exception:  # progress is cosmetic
            pass

    return update
