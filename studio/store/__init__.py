"""The curated store: accepted samples as files on disk plus an SQLite index.

Layout of a data folder (default ``./studio_data``)::

    index.sqlite            the index (WAL mode); a sample exists iff its row exists
    store.lock              held shared by every open Store, exclusively during recovery
    samples/<id>/           image.png (composited), mask.png (0/255 label), metadata.json
    normals/<sha256>.png    normal images, shared by the samples made from them
    references/<sha256>.png reference anomaly images and their masks, shared likewise
    tmp/                    files being written; anything here after a crash is debris
    review/<job-id>/        batch candidates waiting for review (see studio.batch.review)

Durability: a sample's files are written under ``tmp/``, flushed with fsync, and the
folder is renamed into ``samples/`` (directory fsync'd); only then is its row committed
(``synchronous=FULL``). An ``add`` that has returned survives SIGKILL and power loss; a
sample interrupted half-way has no row, so it is never visible, and its files are
removed the next time the store is opened while no other process has it open. A full
disk raises :class:`~studio.errors.DiskFullError` (a StudioError) saying so.

Modules: ``records`` (ids, labels, the records in and out), ``index`` (SQLite), ``files``
(sample folders and blobs), ``recovery`` (debris and the folder lock), ``store`` (the facade).
Sample ids are generated (ULID-like) or, for batch jobs, derived from a content hash —
never taken from user text.
"""
from __future__ import annotations

from studio.store.records import (
    DEFAULT_CATEGORY, DEFAULT_DEFECT_TYPE, SAMPLE_ID_RE, NewSample, RecoveryReport, SampleRecord, clean_label,
    new_sample_id, now_iso,
)
from studio.store.store import Store

__all__ = [
    "DEFAULT_CATEGORY", "DEFAULT_DEFECT_TYPE", "SAMPLE_ID_RE", "NewSample", "RecoveryReport", "SampleRecord",
    "Store", "clean_label", "new_sample_id", "now_iso",
]
