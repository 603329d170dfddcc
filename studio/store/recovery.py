"""Recovery: removing what interrupted writers left, while no other process has the store open.

Every open Store holds ``store.lock`` shared; recovery runs only when it can take it
exclusively (on systems without POSIX locks, only debris older than an hour is removed).
A sample folder without a row, a blob no row uses, anything in ``tmp/`` and half-written
review folders are debris; a row whose files are missing is reported, never deleted.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from studio.atomic import mtime, remove_path, remove_staging_leftovers
from studio.store.files import blob_path
from studio.store.index import Index
from studio.store.records import IMAGE_FILE, MASK_FILE, METADATA_FILE, RecoveryReport

try:  # POSIX advisory locks; on other systems recovery only removes old debris
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOCK_FILE = "store.lock"
_NO_LOCK_DEBRIS_AGE_S = 3600.0


def recover(root: Path, index: Index) -> RecoveryReport:
    """Remove debris under ``root``; call with the folder lock held exclusively."""
    report = RecoveryReport()
    cutoff = time.time() - _NO_LOCK_DEBRIS_AGE_S if fcntl is None else float("inf")
    for entry in (root / "tmp").iterdir():
        if mtime(entry) < cutoff:
            remove_path(entry)
            report.temp_entries += 1
    for folder in (p for p in root.iterdir() if p.is_dir()):  # e.g. review/: folders staged by any writer
        report.temp_entries += remove_staging_leftovers(folder, older_than=cutoff)
    rows = index.query("SELECT id, folder, normal_sha, reference_sha, reference_mask_sha FROM samples")
    folders = {r[1] for r in rows}
    for entry in (root / "samples").iterdir():
        if entry.name not in folders and mtime(entry) < cutoff:
            log.warning("store %s: removing %s, a sample interrupted before it was committed", root, entry.name)
            remove_path(entry)
            report.orphan_samples += 1
    for kind, used in (("normals", {r[2] for r in rows}), ("references", {r[3] for r in rows} | {r[4] for r in rows})):
        for entry in (root / kind).iterdir():
            if entry.name.removesuffix(".png") not in used and mtime(entry) < cutoff:
                remove_path(entry)
                report.orphan_blobs += 1
    for sample_id, folder, normal, ref, ref_mask in rows:
        needed = [root / "samples" / folder / n for n in (IMAGE_FILE, MASK_FILE, METADATA_FILE)]
        needed += [blob_path(root, k, s) for k, s in (("normals", normal), ("references", ref),
                                                     ("references", ref_mask)) if s]
        if not all(p.is_file() for p in needed):
            report.damaged_rows.append(sample_id)
    if report.temp_entries:
        log.warning("store %s: removed %d temporary file(s) left by an interrupted write", root, report.temp_entries)
    if report.damaged_rows:
        log.error("store %s: %d sample(s) have missing files (deleted by hand?): %s", root,
                  len(report.damaged_rows), ", ".join(report.damaged_rows[:10]))
    return report


def try_flock(fh: Any, *, exclusive: bool) -> bool:
    """Take the folder lock without waiting; False when another process holds it."""
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fh.fileno(), (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def flock_shared(fh: Any) -> None:
    """Hold the folder lock shared (waiting for another process's recovery to finish)."""
    if fcntl is not None and fh is not None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_SH)

