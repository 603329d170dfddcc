"""An exclusive lock on a file, shared by threads and processes: ``with locked(path): ...``.

Each entry opens ``path`` afresh and takes a POSIX ``flock`` on it, so two threads of one process
exclude each other just as two processes do. Where POSIX locks do not exist only a process-wide
thread lock is taken (one process per data folder there).
"""
from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_FALLBACK = threading.Lock()


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing; its content is never used)."""
    if fcntl is None:  # pragma: no cover - Windows
        with _FALLBACK:
            yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # released when the file closes
        yield
