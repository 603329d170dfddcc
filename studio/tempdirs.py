"""Private temporary folders that never outlive their process.

A process asks for one root (:func:`private_root`); the root holds a stamp naming its owner
(pid and the process's start time, so a reused pid is not mistaken for the owner). The root is
removed on normal exit, on SIGTERM and on SIGINT. Roots whose owner died without cleaning up
(SIGKILL, power loss) are removed by the next process that asks for a root with the same prefix.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Callable

log = logging.getLogger(__name__)

STAMP = ".owner.json"
#: A root without a stamp is another process's that is still starting, unless older than this.
UNSTAMPED_GRACE_S = 3600.0

_lock = threading.Lock()
_roots: list[Path] = []
_previous: dict[int, Callable | int | None] = {}


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot) where /proc has it, else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its closing one
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def owner_alive(pid: int, started: str | None) -> bool:
    """Whether process ``pid`` still runs and is the one that started at ``started``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    if started is None:
        return True
    current = process_start_time(pid)
    return current is None or current == started


def sweep_stale(prefix: str, parent: Path | None = None) -> list[Path]:
    """Remove roots named ``prefix*`` whose owner is gone; returns what was removed."""
    parent = Path(parent or tempfile.gettempdir())
    removed: list[Path] = []
    for root in sorted(parent.glob(f"{prefix}*")):
        if not root.is_dir() or root.is_symlink() or root in _roots:
            continue
        if _is_stale(root):
            shutil.rmtree(root, ignore_errors=True)
            if not root.exists():
                removed.append(root)
    if removed:
        log.info("removed %d temporary folder(s) left by processes that died: %s",
                 len(removed), ", ".join(p.name for p in removed))
    return removed


def _is_stale(root: Path) -> bool:
    try:
        stamp = json.loads((root / STAMP).read_text())
        return not owner_alive(int(stamp["pid"]), stamp.get("started"))
    except FileNotFoundError:
        try:
            return time.time() - root.stat().st_mtime > UNSTAMPED_GRACE_S
        except OSError:
            return False
    except (OSError, ValueError, KeyError, TypeError):
        return False  # unreadable stamp: not ours to judge


def private_root(prefix: str) -> Path:
    """A new folder ``<tmp>/<prefix>XXXX`` owned by this process and removed when it ends.

    Stale roots with the same prefix are removed first. Cleanup runs at normal exit (atexit),
    and on SIGTERM/SIGINT through handlers that then hand the signal on to what was there before.
    """
    sweep_stale(prefix)
    root = Path(tempfile.mkdtemp(prefix=prefix))
    stamp = {"pid": os.getpid(), "started": process_start_time(os.getpid())}
    (root / STAMP).write_text(json.dumps(stamp))
    with _lock:
        first = not _roots
        _roots.append(root)
    if first:
        atexit.register(remove_roots)
        _install_signal_handlers()
    return root


def remove_roots() -> None:
    """Remove every root this process made (idempotent)."""
    with _lock:
        roots, _roots[:] = list(_roots), []
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)


def _install_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers; atexit still covers a normal exit
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        if previous is _on_signal or previous == signal.SIG_IGN:
            continue  # an ignored signal (e.g. SIGINT of a background job) goes on being ignored: root kept
        _previous[signum] = previous
        signal.signal(signum, _on_signal)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    remove_roots()
    previous = _previous.get(signum)
    if callable(previous):
        previous(signum, frame)  # e.g. Python's KeyboardInterrupt for SIGINT
        return
    signal.signal(signum, signal.SIG_DFL)  # die of the signal as if we had never caught it
    os.kill(os.getpid(), signum)
