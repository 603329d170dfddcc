"""Dataset exports of the curated store: MVTec (anomalib), COCO instance segmentation, HF imagefolder.

Every export is built in a hidden sibling of the destination (``.<name>.partial-<hex>``)
and renamed into place only when complete — a folder (or ``.zip``) at the destination
is always a whole export. The store is only read. Folder names made from user text
(category, defect type) go through :mod:`studio.naming`.

Layouts::

    mvtec        <out>/<category>/train/good/NNN.png               normal images
                 <out>/<category>/test/<defect_type>/NNN.png       composited samples
                 <out>/<category>/ground_truth/<defect_type>/NNN_mask.png
    coco         <out>/annotations.json  (RLE instance masks, one category per defect type)
                 <out>/images/<sample-id>.png
    imagefolder  <out>/metadata.jsonl  (file_name, mask_file_name, normal_file_name, prompt, ...)
                 <out>/images/  masks/  normals/  references/

Each export also holds ``export.json``: format, time, and which sample id became which file.
"""
from __future__ import annotations

import functools
from collections import Counter
import logging
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from studio import __version__
from studio.atomic import disk_space_guard, place, remove_path, staging_path
from studio.datasets import guidance_mode
from studio.datasets.coco import write_coco
from studio.datasets.imagefolder import write_imagefolder
from studio.datasets.mvtec import write_mvtec
from studio.datasets.sink import FolderSink, Progress, Sink, ZipSink
from studio.errors import InputError
from studio.jsonfile import dumps
from studio.store import SampleRecord, Store
from studio.types import ProgressFn

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("mvtec", "coco", "imagefolder")
MANIFEST_FILE = "export.json"

_Writer = Callable[[list[SampleRecord], Sink, Progress], dict[str, Any]]


def export_dataset(store: Store, fmt: str, out: str | os.PathLike, *, make_zip: bool = False,
                   progress: ProgressFn | None = None, overwrite: bool = False,
                   records: Iterable[SampleRecord] | None = None) -> Path:
    """Export the samples of ``store`` (all, or just ``records``, e.g. a filtered selection) as ``fmt``
    to ``out``; returns the folder, or the .zip when ``make_zip``.

    ``out`` must not exist yet (or be an empty folder) unless ``overwrite``; with ``make_zip``
    the archive is ``out`` if it ends in ``.zip``, else ``out`` + ``.zip``.
    """
    fmt = (fmt or "").strip().lower()
    if fmt not in _WRITERS:
        raise InputError(f"Unknown export format {fmt!r}; choose one of: {', '.join(EXPORT_FORMATS)}.")
    final = Path(out).expanduser().absolute()
    if make_zip and final.suffix.lower() != ".zip":
        final = final.with_name(final.name + ".zip")
    _check_destination(final, store, overwrite, make_zip)
    records = [rec for rec in (store.list() if records is None else records) if _present(rec)]
    if not records:
        raise InputError(f"The store at {store.root} has no samples yet; accept some before exporting.")
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = staging_path(final)
    partial = partial.with_name(partial.name + ".zip") if make_zip else partial
    with disk_space_guard(f"Exporting to {final}", final.parent, "the export folder"):
        sink: Sink = ZipSink(partial, final.stem) if make_zip else FolderSink(partial)
        try:
            manifest = _WRITERS[fmt](records, sink, Progress(progress, len(records), fmt))
            manifest.update({
                "guidance_modes": dict(sorted(Counter(
                    f"{rec.metadata.get('engine') or 'unknown'}: {guidance_mode(rec.metadata) or 'none'}"
                    for rec in records).items())),
                "format": fmt, "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "store": str(store.root), "anomaly_studio_version": __version__,
            })
            sink.write(MANIFEST_FILE, dumps(manifest).encode("utf-8"))
            sink.finish()  # everything flushed to disk before the rename makes it visible
            _replace(partial, final, overwrite)
        except BaseException:
            sink.abort()
            raise
    return final


_WRITERS: dict[str, _Writer] = {
    "mvtec": functools.partial(write_mvtec, reserved=(MANIFEST_FILE,)),
    "coco": write_coco,
    "imagefolder": write_imagefolder,
}


# --------------------------------------------------------------------- helpers
def _check_destination(final: Path, store: Store, overwrite: bool, make_zip: bool) -> None:
    store_root = store.root.resolve()
    resolved = final.resolve()
    if resolved == store_root or store_root in resolved.parents or resolved in store_root.parents:
        raise InputError(f"Export somewhere outside the data folder {store.root} (and not around it).")
    if final.exists() or final.is_symlink():
        if final.is_dir() and not final.is_symlink() and not any(final.iterdir()):
            return
        if not overwrite:
            raise InputError(f"{final} already exists; choose a new destination or pass --overwrite.")
        previous = (final.is_file() and make_zip) or (final.is_dir() and (final / MANIFEST_FILE).is_file())
        if final.is_symlink() or not previous:  # --overwrite never deletes a folder we did not write
            raise InputError(f"{final} exists and is not a previous export; remove it yourself.")


def _replace(src: Path, final: Path, overwrite: bool) -> None:
    """Move the finished export into place; a previous export at ``final`` is replaced only when ``overwrite``."""
    if final.is_dir() and not final.is_symlink():
        if any(final.iterdir()):
            if not overwrite:  # appeared while we were exporting
                raise InputError(f"{final} appeared during the export; nothing was replaced.")
            old = final.with_name(f".{final.name[:100]}.old-{secrets.token_hex(4)}")
            os.rename(final, old)
            place(src, final)
            remove_path(old)
            return
        final.rmdir()
    elif final.exists() and not overwrite:
        raise InputError(f"{final} appeared during the export; nothing was replaced.")
    place(src, final)  # a previous .zip is replaced by the rename


def _present(rec: SampleRecord) -> bool:
    """False (with a warning) for a sample whose files vanished (removed by hand, or just now)."""
    if rec.image_path.is_file() and rec.mask_path.is_file() and rec.normal_path.is_file():
        return True
    log.warning("sample %s has missing files (removed during the export?); skipped", rec.id)
    return False
