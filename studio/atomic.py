"""Durable writes: stage in the same file system, fsync, rename into place, fsync the folder.

Everything the studio keeps (store samples and blobs, exports, batch review folders, session
scratch files) is written through here, so a file or folder that is visible is complete.
A write that runs out of space raises :class:`DiskFullError` with a sentence the user can act on.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import shutil
from pathlib import Path
from typing import Iterator, Literal

from studio.errors import DiskFullError, StudioError

log = logging.getLogger(__name__)

#: The errno values that mean "no room left" (space or quota).
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
_TAKEN = frozenset({errno.EEXIST, errno.ENOTEMPTY, errno.EACCES, errno.EPERM})

IfExists = Literal["error", "keep", "unique"]


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename or new entry in ``path`` durable (no-op where directories cannot be opened)."""
    if os.name != "posix":  # pragma: no cover - directories cannot be opened on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new(path: str | os.PathLike, data: bytes, *, sync: bool = False) -> None:
    """Create ``path`` (it must not exist) with ``data``; for files inside a :class:`staged_dir`, which
    syncs them all before its rename (``sync`` fsyncs this one at once)."""
    with open(path, "xb") as fh:
        fh.write(data)
        if sync:
            fh.flush()
            os.fsync(fh.fileno())


def write_bytes(path: str | os.PathLike, data: bytes, *, staging_dir: str | os.PathLike | None = None) -> Path:
    """Replace ``path`` with ``data`` in one step: staged (in ``staging_dir`` or beside it), fsync'd, renamed.

    ``staging_dir`` must be on the same file system; returns ``path``.
    """
    target = Path(path)
    folder = Path(staging_dir) if staging_dir is not None else target.parent
    staging = folder / f".{target.name[:100]}.{secrets.token_hex(4)}.tmp"
    try:
        write_new(staging, data, sync=True)
        os.replace(staging, target)
    finally:
        remove_path(staging)
    fsync_dir(target.parent)
    return target


def sync_tree(root: Path) -> None:
    """fsync every file and folder under ``root`` (what a staging folder holds before its rename)."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(folder)


def place(staging: Path, final: Path, *, if_exists: IfExists = "error") -> Path:
    """Rename a finished ``staging`` entry to ``final`` and fsync the folder; returns where it landed.

    When ``final`` is taken: ``"error"`` raises FileExistsError, ``"keep"`` leaves the existing
    one (another writer finished the same thing) and returns it, ``"unique"`` uses
    ``<name>.<hex>`` beside it.
    """
    target = final
    for _ in range(5):
        try:
            os.rename(staging, target)
            break
        except OSError as exc:
            if exc.errno not in _TAKEN or not target.exists():
                raise
            if if_exists == "keep":
                return target
            if if_exists == "error":
                raise FileExistsError(errno.EEXIST, "already exists", str(target)) from None
            target = final.with_name(f"{final.name}.{secrets.token_hex(4)}")
    else:  # pragma: no cover - five random names all taken
        raise StudioError(f"Cannot place {final.name} in {final.parent}.")
    fsync_dir(target.parent)
    return target


#: What marks a staging entry's name: ``.<final name>.partial-<hex>``.
PARTIAL = ".partial-"


def staging_path(final: Path, staging_root: Path | None = None) -> Path:
    """A hidden, unique staging name for ``final`` (``.<name>.partial-<hex>``) in ``staging_root`` or beside it."""
    return (staging_root or final.parent) / f".{final.name[:100]}{PARTIAL}{secrets.token_hex(4)}"


def remove_staging_leftovers(folder: Path, older_than: float = float("inf"), final_name: str = "") -> int:
    """Delete the staging entries (:func:`staging_path`; only those for ``final_name`` when given) that an
    interrupted writer left in ``folder``, modified before ``older_than``; returns how many went."""
    if not folder.is_dir():
        return 0
    prefix = f".{final_name[:100]}{PARTIAL}" if final_name else "."
    removed = 0
    for entry in folder.iterdir():
        if entry.name.startswith(prefix) and PARTIAL in entry.name and mtime(entry) < older_than:
            remove_path(entry)
            removed += 1
    return removed


class staged_dir:  # noqa: N801 - used like contextlib's context managers
    """``with staged_dir(final) as folder:`` yields a hidden staging folder; on success it is synced and
    renamed to ``final``, on failure removed. ``.final`` is where it landed (see :func:`place`).

    ``if_exists`` is :func:`place`'s; ``staging_root`` (same file system) defaults to ``final``'s folder.
    """

    def __init__(self, final: str | os.PathLike, *, staging_root: str | os.PathLike | None = None,
                 if_exists: IfExists = "error") -> None:
        self.final = Path(final)
        self.if_exists = if_exists
        self.path = staging_path(self.final, Path(staging_root) if staging_root is not None else None)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.mkdir()
        return self.path

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is None:
                sync_tree(self.path)
                self.final = place(self.path, self.final, if_exists=self.if_exists)
        finally:
            remove_path(self.path)


def remove_path(path: Path) -> None:
    """Delete a file or folder if it is there; a failure is logged (recovery removes it later)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:  # pragma: no cover - e.g. permissions
        log.warning("could not remove %s: %s", path, exc)


def mtime(path: Path) -> float:
    """``path``'s own modification time (not a link target's); 0 when it is gone."""
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is an OSError meaning the disk (or quota) is full."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE


def disk_full_error(action: str, folder: str | os.PathLike, what: str = "the data folder") -> DiskFullError:
    """The sentence for a write that ran out of space: what failed, where, how much is free."""
    try:
        free = shutil.disk_usage(folder).free
        room = f"{_size(free)} free"
    except OSError:
        room = "free space unknown"
    error = DiskFullError(f"{action} failed: the disk holding {what} {folder} is full ({room}); "
                          "nothing was half-written. Free some space and try again.")
    error.errno = errno.ENOSPC
    return error


@contextlib.contextmanager
def disk_space_guard(action: str, folder: str | os.PathLike, what: str = "the data folder") -> Iterator[None]:
    """Turn an out-of-space OSError inside the block into :func:`disk_full_error`."""
    try:
        yield
    except DiskFullError:
        raise
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(action, folder, what) from None
        raise


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024:
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"
