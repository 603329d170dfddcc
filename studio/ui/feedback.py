"""How callbacks talk back to the page: readable errors and progress bars.

:func:`friendly` turns a :class:`~studio.errors.StudioError` into a ``gr.Error`` with the same
sentence, and any other exception into a generic ``gr.Error`` (logged with its traceback), so
bad input never takes the page or another session down.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable

import gradio as gr

from studio.errors import StudioError
from studio.types import ProgressFn
from studio.ui.gpu import ON_SPACES_GPU

log = logging.getLogger(__name__)


def friendly(fn: Callable) -> Callable:
    """Turn studio errors into ``gr.Error`` with their sentence; anything else into a generic one."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except StudioError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except MemoryError:
            log.exception("out of memory in %s", fn.__name__)
            raise gr.Error("The server ran out of memory for this request; try a smaller image or fewer candidates.",
                           print_exception=False) from None
        except Exception as exc:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"Something went wrong ({type(exc).__name__}); the page is still usable, "
                           "try again or change the inputs.", print_exception=False) from None

    return wrapper


def progress_fn(progress: Any) -> ProgressFn | None:
    """Adapt ``gr.Progress`` to the engines' ``(done, total, description)`` callback."""
    if progress is None or ON_SPACES_GPU:
        return None

    def update(done: int, total: int, description: str) -> None:
        try:
            progress((done, total), desc=description)
        except Exception:  # progress is cosmetic
            pass

    return update
