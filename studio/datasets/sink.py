"""Where a dataset writer's files land: a hidden staging folder or a hidden .zip, plus its progress."""
from __future__ import annotations

import contextlib
import os
import shutil
import zipfile
from pathlib import Path

from studio.atomic import remove_path, sync_tree
from studio.types import ProgressFn


class Progress:
    """Counts written samples and reports ``(done, total, "<format>: <sample id>")``."""

    def __init__(self, fn: ProgressFn | None, total: int, fmt: str) -> None:
        self.fn, self.total, self.done, self.fmt = fn, total, 0, fmt

    def step(self, what: str) -> None:
        self.done += 1
        if self.fn is not None:
            self.fn(self.done, self.total, f"{self.fmt}: {what}")


class Sink:
    """Where an export's files go; the caller renames the finished result into place."""

    def copy(self, src: Path, rel: str) -> None:
        raise NotImplementedError

    def write(self, rel: str, data: bytes) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Make everything durable (the caller renames afterwards)."""

    def abort(self) -> None:
        """Remove whatever was written."""


class FolderSink(Sink):
    """Files go into a (hidden, staging) folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self._dirs: set[Path] = {root}

    def _target(self, rel: str) -> Path:
        target = self.root / rel
        if target.parent not in self._dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(target.parent)
        return target

    def copy(self, src: Path, rel: str) -> None:
        shutil.copyfile(src, self._target(rel))

    def write(self, rel: str, data: bytes) -> None:
        self._target(rel).write_bytes(data)

    def finish(self) -> None:
        sync_tree(self.root)

    def abort(self) -> None:
        remove_path(self.root)


class ZipSink(Sink):
    """Files go straight into the archive under ``top/``: PNGs stored (already compressed), text deflated."""

    def __init__(self, path: Path, top: str) -> None:
        self.path, self.top = path, top
        self.zf = zipfile.ZipFile(path, "x", allowZip64=True)

    def copy(self, src: Path, rel: str) -> None:
        method = zipfile.ZIP_STORED if src.suffix.lower() == ".png" else zipfile.ZIP_DEFLATED
        self.zf.write(src, f"{self.top}/{rel}", compress_type=method)

    def write(self, rel: str, data: bytes) -> None:
        self.zf.writestr(f"{self.top}/{rel}", data, compress_type=zipfile.ZIP_DEFLATED)

    def finish(self) -> None:
        self.zf.close()
        with open(self.path, "rb+") as fh:
            os.fsync(fh.fileno())

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # a broken archive is deleted anyway
            self.zf.close()
        remove_path(self.path)
