"""A client that goes away mid-request (a closed tab, an upload cancelled halfway) is not a server error.

uvicorn logs the ``ClientDisconnect`` such a request raises as "Exception in ASGI application" with a
traceback at ERROR; :class:`ClientDisconnects` (on the ``uvicorn.error`` logger, :func:`install`) turns
that record into one INFO line, so the log's errors stay the studio's own.
"""
from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect

#: The logger uvicorn reports a request's exception on.
UVICORN_ERRORS = "uvicorn.error"


def is_disconnect(exc: BaseException | None) -> bool:
    """True for a client disconnect, alone or wrapped in an exception group (every member one)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(is_disconnect(e) for e in exc.exceptions)
    return isinstance(exc, ClientDisconnect)


class ClientDisconnects(logging.Filter):
    """Rewrites a logged client disconnect as one INFO line without a traceback; other records pass as they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if is_disconnect(exc):
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.msg, record.args = "a client disconnected mid-request (%s); nothing to do", (type(exc).__name__,)
            record.exc_info, record.exc_text = None, None
        return True


def install() -> None:
    """Add the filter to uvicorn's error logger (once)."""
    logger = logging.getLogger(UVICORN_ERRORS)
    if not any(isinstance(f, ClientDisconnects) for f in logger.filters):
        logger.addFilter(ClientDisconnects())
