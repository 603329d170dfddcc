"""The store's files: sample folders (``samples/<id>/``) and shared, content-addressed blobs.

A sample's files are written in ``tmp/``, flushed, and the folder is renamed into ``samples/``
(see :mod:`studio.atomic`); blobs (``normals/<sha256>.png``, ``references/<sha256>.png``) are
written once, atomically, so concurrent writers of the same content are harmless.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np

from studio.atomic import remove_path, staged_dir, write_bytes
from studio.imaging import to_png_bytes
from studio.jsonfile import dumps
from studio.store.records import IMAGE_FILE, MASK_FILE, METADATA_FILE, PreparedSample

SUBFOLDERS = ("samples", "normals", "references", "tmp")


def blob_path(root: Path, kind: str, sha: str) -> Path:
    """``<root>/<kind>/<sha>.png``, kind ``normals`` or ``references``."""
    return root / kind / f"{sha}.png"


def write_sample(root: Path, item: PreparedSample) -> str:
    """Write a sample's blobs and its folder; returns the folder name it got under ``samples/``.

    The folder is ``<id>`` unless debris of a killed writer holds that name (then ``<id>.<hex>``).
    """
    for role, (sha, content) in item.blobs.items():
        put_blob(root, "normals" if role == "normal" else "references", sha, content)
    staged = staged_dir(root / "samples" / item.id, staging_root=root / "tmp", if_exists="unique")
    with staged as staging:
        (staging / IMAGE_FILE).write_bytes(item.image_png)
        (staging / MASK_FILE).write_bytes(item.mask_png)
        (staging / METADATA_FILE).write_text(dumps(item.metadata), encoding="utf-8")
    return staged.final.name


def put_blob(root: Path, kind: str, sha: str, content: np.ndarray | bytes | Path) -> None:
    """A content-addressed file, written once (encoded only when not stored yet)."""
    target = blob_path(root, kind, sha)
    if target.is_file():
        return
    if isinstance(content, np.ndarray):
        data = to_png_bytes(content)
    else:
        data = content.read_bytes() if isinstance(content, Path) else content
    write_bytes(target, data, staging_dir=root / "tmp")


def discard_folder(root: Path, folder: str) -> None:
    """Move a sample folder out of ``samples/`` (one rename), then delete it."""
    if not folder:
        return
    trash = root / "tmp" / f"trash-{folder}.{secrets.token_hex(4)}"
    try:
        os.rename(root / "samples" / folder, trash)
    except FileNotFoundError:
        return
    remove_path(trash)
