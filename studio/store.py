"""The curated store: accepted samples as files on disk plus an SQLite index.

Layout of a data folder (default ``./studio_data``)::

    index.sqlite            the index (WAL mode); a sample exists iff its row exists
    store.lock              held shared by every open Store, exclusively during recovery
    samples/<id>/           image.png (composited), mask.png (0/255 label), metadata.json
    normals/<sha256>.png    normal images, shared by the samples made from them
    references/<sha256>.png reference anomaly images and their masks, shared likewise
    tmp/                    files being written; anything here after a crash is debris
    review/<job-id>/        batch candidates waiting for review (see studio.batch)

Durability: a sample's files are written under ``tmp/``, flushed with fsync, and the
folder is renamed into ``samples/`` (directory fsync'd); only then is its row committed
(``synchronous=FULL``). An ``add`` that has returned survives SIGKILL and power loss; a
sample interrupted half-way has no row, so it is never visible, and its files are
removed the next time the store is opened while no other process has it open.

Concurrency: one SQLite connection per Store guarded by a lock (safe for many threads);
several processes may open the same folder (WAL, ``busy_timeout``, ``BEGIN IMMEDIATE``).
Sample ids are generated (ULID-like) or, for batch jobs, derived from a content hash —
never taken from user text.
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from PIL import Image

from studio.errors import InputError, StudioError
from studio.types import Candidate, array_sha256, clean_text

try:  # POSIX advisory locks; on other systems recovery only removes old debris
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DEFAULT_CATEGORY = "product"
DEFAULT_DEFECT_TYPE = "defect"
IMAGE_FILE = "image.png"
MASK_FILE = "mask.png"
METADATA_FILE = "metadata.json"
INDEX_FILE = "index.sqlite"
LOCK_FILE = "store.lock"

#: What a sample id may look like: generated ids and batch ids both match; nothing else is accepted.
SAMPLE_ID_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,63}$")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_NO_LOCK_DEBRIS_AGE_S = 3600.0


def new_sample_id() -> str:
    """A ULID: 48-bit millisecond timestamp + 80 random bits, 26 Crockford base-32 characters, time-sortable."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def now_iso() -> str:
    """UTC timestamp with milliseconds, ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def clean_label(text: str | None, what: str, default: str) -> str:
    """User text for a category / defect type: cleaned (studio.types.clean_text), ``default`` when empty."""
    return clean_text(text, what) or default


@dataclass
class SampleRecord:
    """One accepted sample as stored: labels, file paths (absolute) and the full metadata."""

    id: str
    category: str
    defect_type: str
    note: str
    accepted_at: str
    image_path: Path
    mask_path: Path
    normal_path: Path
    reference_path: Path | None
    reference_mask_path: Path | None
    metadata: dict
    width: int = 0
    height: int = 0
    job_id: str | None = None


@dataclass
class NewSample:
    """One sample to add with :meth:`Store.add_many` (what :meth:`Store.add` takes, as a record)."""

    candidate: Candidate
    normal_image: np.ndarray
    reference: np.ndarray | None = None
    reference_mask: np.ndarray | None = None
    category: str = ""
    defect_type: str = ""
    note: str = ""
    #: Only for deterministic batch ids (must match SAMPLE_ID_RE); generated when None.
    sample_id: str | None = None


@dataclass
class RecoveryReport:
    """What :meth:`Store.recover` found and removed."""

    temp_entries: int = 0
    orphan_samples: int = 0
    orphan_blobs: int = 0
    damaged_rows: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def cleaned(self) -> int:
        return self.temp_entries + self.orphan_samples + self.orphan_blobs


@dataclass
class _Prepared:
    """A sample ready to be written: encoded files, labels and the metadata row."""

    id: str
    category: str
    defect_type: str
    note: str
    accepted_at: str
    image_png: bytes
    mask_png: bytes
    width: int
    height: int
    blobs: dict[str, tuple[str, np.ndarray | bytes | Path]]  # role -> (sha, array to encode, PNG bytes or a file)
    metadata: dict[str, Any]
    job_id: str | None = None
    folder: str = ""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
    id TEXT PRIMARY KEY,
    folder TEXT NOT NULL UNIQUE,
    category TEXT NOT NULL,
    defect_type TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    accepted_at TEXT NOT NULL,
    normal_sha TEXT NOT NULL,
    reference_sha TEXT,
    reference_mask_sha TEXT,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    job_id TEXT,
    metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_category ON samples (category, defect_type);
CREATE INDEX IF NOT EXISTS samples_defect ON samples (defect_type);
CREATE INDEX IF NOT EXISTS samples_job ON samples (job_id);
CREATE TABLE IF NOT EXISTS batch_jobs (
    job_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    sample_ids TEXT NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (job_id, mode)
);
"""
_COLUMNS = ("id, folder, category, defect_type, note, accepted_at, normal_sha, reference_sha, "
            "reference_mask_sha, width, height, job_id, metadata")


class Store:
    """A data folder of accepted samples. Thread-safe; several processes may share one folder."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser().absolute()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._lock_file = None
        try:
            for sub in ("samples", "normals", "references", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StudioError(f"Cannot create the data folder {str(self.root)!r}: {exc.strerror or exc}.") from None
        self._lock_file = open(self.root / LOCK_FILE, "a+b")  # noqa: SIM115 - held for the Store's life
        try:
            exclusive = _try_flock(self._lock_file, exclusive=True)
            try:
                self._conn = self._connect()
                if exclusive:
                    self.last_recovery = self._recover()
                else:
                    self.last_recovery = RecoveryReport(skipped="another process has the store open")
            finally:
                _flock_shared(self._lock_file)  # downgrade (or wait for another process's recovery)
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Close the index and release the folder lock; the Store is unusable afterwards."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._lock_file is not None:
                self._lock_file.close()  # releases the flock
                self._lock_file = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # ----------------------------------------------------------------- writing
    def add(
        self,
        candidate: Candidate,
        *,
        normal_image: np.ndarray,
        reference: np.ndarray | None = None,
        reference_mask: np.ndarray | None = None,
        category: str = "",
        defect_type: str = "",
        note: str = "",
    ) -> str:
        """Accept one candidate; returns its new id. Durable on disk when this returns."""
        return self.add_many([NewSample(candidate, normal_image, reference, reference_mask,
                                        category, defect_type, note)])[0]

    def add_many(self, samples: Iterable[NewSample], *, job_id: str | None = None, mode: str = "store",
                 job_info: dict | None = None) -> list[str]:
        """Accept several samples in one transaction (all or none); returns their ids in order.

        With ``job_id`` the batch job is recorded as finished in the same transaction, so a
        re-run can skip it; if it was already finished, nothing is written and the ids
        recorded then are returned.
        """
        if job_id is not None:
            done = self.job_samples(job_id, mode)
            if done is not None:
                return done
        prepared = [self._prepare(s, job_id) for s in samples]
        written: list[_Prepared] = []
        try:
            for item in prepared:
                self._write_sample(item)
                written.append(item)
            return self._commit(prepared, job_id, mode, job_info)
        except BaseException:
            for item in written:  # not committed: remove what we placed (recovery would too)
                if not self._folder_committed(item.folder):
                    self._discard_folder(item.folder)
            raise

    def remove(self, sample_id: str) -> None:
        """Delete a sample (row first, then its files). Unknown id -> InputError."""
        self._check_id(sample_id)
        with self._transaction() as conn:
            row = conn.execute("SELECT folder FROM samples WHERE id = ?", (sample_id,)).fetchone()
            if row is None:
                raise self._unknown(sample_id)
            conn.execute("DELETE FROM samples WHERE id = ?", (sample_id,))
        self._discard_folder(row[0])

    def relabel(self, sample_id: str, *, defect_type: str | None = None, category: str | None = None,
                note: str | None = None) -> None:
        """Change a sample's defect type, category and/or note (None leaves a field as it is)."""
        self._check_id(sample_id)
        updates: dict[str, str] = {}
        if defect_type is not None:
            updates["defect_type"] = clean_label(defect_type, "defect type", DEFAULT_DEFECT_TYPE)
        if category is not None:
            updates["category"] = clean_label(category, "category", DEFAULT_CATEGORY)
        if note is not None:
            updates["note"] = clean_text(note, "note")
        if not updates:
            self.get(sample_id)
            return
        with self._transaction() as conn:
            row = conn.execute("SELECT folder, metadata FROM samples WHERE id = ?", (sample_id,)).fetchone()
            if row is None:
                raise self._unknown(sample_id)
            folder, metadata = row[0], json.loads(row[1])
            metadata.update(updates)
            metadata["relabelled_at"] = now_iso()
            text = _dump_json(metadata)
            # The file is replaced atomically while we hold the write lock; the row (the truth) commits after.
            self._atomic_write(self.root / "samples" / folder / METADATA_FILE, text.encode("utf-8"))
            sets = ", ".join(f"{k} = ?" for k in updates)
            conn.execute(f"UPDATE samples SET {sets}, metadata = ? WHERE id = ?",
                         (*updates.values(), text, sample_id))

    # ----------------------------------------------------------------- reading
    def list(self, *, category: str | None = None, defect_type: str | None = None) -> list[SampleRecord]:
        """All samples, oldest first, optionally filtered by (cleaned) category and/or defect type."""
        clauses, args = [], []
        if category is not None:
            clauses.append("category = ?")
            args.append(clean_label(category, "category", DEFAULT_CATEGORY))
        if defect_type is not None:
            clauses.append("defect_type = ?")
            args.append(clean_label(defect_type, "defect type", DEFAULT_DEFECT_TYPE))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(f"SELECT {_COLUMNS} FROM samples{where} ORDER BY accepted_at, id", args)
        return [self._record(r) for r in rows]

    def get(self, sample_id: str) -> SampleRecord:
        """One sample by id; an unknown or malformed id raises InputError."""
        self._check_id(sample_id)
        rows = self._query(f"SELECT {_COLUMNS} FROM samples WHERE id = ?", (sample_id,))
        if not rows:
            raise self._unknown(sample_id)
        return self._record(rows[0])

    def __contains__(self, sample_id: object) -> bool:
        if not isinstance(sample_id, str) or not SAMPLE_ID_RE.match(sample_id):
            return False
        return bool(self._query("SELECT 1 FROM samples WHERE id = ?", (sample_id,)))

    def __len__(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM samples")[0][0])

    def stats(self) -> dict:
        """Counts: total, by defect type, by category, by (category, defect type), distinct normal images."""
        total = len(self)
        by_defect = dict(self._query("SELECT defect_type, COUNT(*) FROM samples GROUP BY defect_type ORDER BY 1"))
        by_category = dict(self._query("SELECT category, COUNT(*) FROM samples GROUP BY category ORDER BY 1"))
        pairs = self._query("SELECT category, defect_type, COUNT(*) FROM samples GROUP BY 1, 2 ORDER BY 1, 2")
        nested: dict[str, dict[str, int]] = {}
        for cat, defect, n in pairs:
            nested.setdefault(cat, {})[defect] = n
        normals = int(self._query("SELECT COUNT(DISTINCT normal_sha) FROM samples")[0][0])
        jobs = int(self._query("SELECT COUNT(*) FROM batch_jobs")[0][0])
        return {"total": total, "by_defect_type": by_defect, "by_category": by_category,
                "by_category_and_defect_type": nested, "normal_images": normals, "batch_jobs": jobs}

    # ----------------------------------------------------------------- batch jobs
    def job_samples(self, job_id: str, mode: str = "store") -> list[str] | None:
        """The sample ids a finished batch job produced, or None when it has not finished."""
        rows = self._query("SELECT sample_ids FROM batch_jobs WHERE job_id = ? AND mode = ?", (job_id, mode))
        return json.loads(rows[0][0]) if rows else None

    def finished_jobs(self, mode: str = "store") -> set[str]:
        """Ids of the batch jobs recorded as finished in ``mode`` ("store" or "review")."""
        return {r[0] for r in self._query("SELECT job_id FROM batch_jobs WHERE mode = ?", (mode,))}

    def mark_job_done(self, job_id: str, mode: str, sample_ids: list[str] | None = None,
                      info: dict | None = None) -> None:
        """Record a batch job as finished (used for review-mode jobs; store-mode jobs record themselves)."""
        with self._transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO batch_jobs VALUES (?, ?, ?, ?, ?)",
                         (job_id, mode, now_iso(), json.dumps(sample_ids or []), _dump_json(info or {})))

    # ----------------------------------------------------------------- merge
    def merge_from(self, other: "Store | str | os.PathLike", progress: Any = None) -> tuple[int, int]:
        """Copy every sample (and finished-job record) of another store that this one lacks.

        Returns (added, skipped). Ids are kept, so merging the stores that several machines
        filled from one batch spec gives the same store one machine would have made.
        """
        source = other if isinstance(other, Store) else Store(other)
        try:
            if source.root == self.root:
                raise InputError("Cannot merge a store into itself.")
            records = source.list()
            added = skipped = 0
            for i, rec in enumerate(records):
                if rec.id in self:
                    skipped += 1
                else:
                    self._import(rec)
                    added += 1
                if progress is not None:
                    progress(i + 1, len(records), rec.id)
            jobs = source._query("SELECT job_id, mode, finished_at, sample_ids, info FROM batch_jobs")
            with self._transaction() as conn:
                conn.executemany("INSERT OR IGNORE INTO batch_jobs VALUES (?, ?, ?, ?, ?)", jobs)
            return added, skipped
        finally:
            if source is not other:
                source.close()

    # ----------------------------------------------------------------- recovery
    def recover(self) -> RecoveryReport:
        """Remove debris of interrupted writes, if no other process has the store open right now."""
        with self._lock:
            assert self._lock_file is not None, "store is closed"
            if not _try_flock(self._lock_file, exclusive=True):
                return RecoveryReport(skipped="another process has the store open")
            try:
                self.last_recovery = self._recover()
                return self.last_recovery
            finally:
                _flock_shared(self._lock_file)

    def _recover(self) -> RecoveryReport:
        """Called with the folder lock held exclusively (or without locks on systems that lack them)."""
        report = RecoveryReport()
        cutoff = time.time() - _NO_LOCK_DEBRIS_AGE_S if fcntl is None else float("inf")
        for entry in (self.root / "tmp").iterdir():
            if _mtime(entry) < cutoff:
                _remove_path(entry)
                report.temp_entries += 1
        review = self.root / "review"  # half-written batch review folders (studio.batch)
        if review.is_dir():
            for entry in review.iterdir():
                if entry.name.startswith(".") and ".partial-" in entry.name and _mtime(entry) < cutoff:
                    _remove_path(entry)
                    report.temp_entries += 1
        rows = self._query("SELECT id, folder, normal_sha, reference_sha, reference_mask_sha FROM samples")
        folders = {r[1] for r in rows}
        for entry in (self.root / "samples").iterdir():
            if entry.name not in folders and _mtime(entry) < cutoff:
                log.warning("store %s: removing %s, a sample interrupted before it was committed", self.root, entry.name)
                _remove_path(entry)
                report.orphan_samples += 1
        for kind, used in (("normals", {r[2] for r in rows}), ("references", {r[3] for r in rows} | {r[4] for r in rows})):
            for entry in (self.root / kind).iterdir():
                if entry.name.removesuffix(".png") not in used and _mtime(entry) < cutoff:
                    _remove_path(entry)
                    report.orphan_blobs += 1
        for sample_id, folder, normal, ref, ref_mask in rows:
            needed = [self.root / "samples" / folder / n for n in (IMAGE_FILE, MASK_FILE, METADATA_FILE)]
            needed += [self._blob_path(k, s) for k, s in (("normals", normal), ("references", ref),
                                                          ("references", ref_mask)) if s]
            if not all(p.is_file() for p in needed):
                report.damaged_rows.append(sample_id)
        if report.temp_entries:
            log.warning("store %s: removed %d temporary file(s) left by an interrupted write", self.root,
                        report.temp_entries)
        if report.damaged_rows:
            log.error("store %s: %d sample(s) have missing files (deleted by hand?): %s", self.root,
                      len(report.damaged_rows), ", ".join(report.damaged_rows[:10]))
        return report

    # ----------------------------------------------------------------- internals
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.root / INDEX_FILE, timeout=60.0, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 60000")
        for attempt in range(50):  # switching to WAL needs a moment without other writers
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError:
                time.sleep(0.05 * (attempt + 1))
        else:  # pragma: no cover
            raise StudioError(f"The store index {self.root / INDEX_FILE} is locked by another program.")
        if str(mode).lower() != "wal":
            log.warning("store %s: SQLite WAL mode unavailable (journal mode %s)", self.root, mode)
        conn.execute("PRAGMA synchronous = FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if version is None:
                conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(version[0]) > SCHEMA_VERSION:
                raise StudioError(f"The store {self.root} was written by a newer anomaly-studio "
                                  f"(schema {version[0]}); upgrade to open it.")
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            conn.close()
            raise StudioError(f"The store index {self.root / INDEX_FILE} is unreadable ({exc}).") from None
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE: the database write lock is taken up front)."""
        with self._lock:
            conn = self._require_conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._require_conn().execute(sql, tuple(args)).fetchall()

    def _require_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StudioError("The store has been closed.")
        return self._conn

    def _record(self, row: tuple) -> SampleRecord:
        (sid, folder, category, defect, note, accepted, normal, ref, ref_mask, width, height, job,
         metadata) = row
        base = self.root / "samples" / folder
        return SampleRecord(
            id=sid, category=category, defect_type=defect, note=note, accepted_at=accepted,
            image_path=base / IMAGE_FILE, mask_path=base / MASK_FILE,
            normal_path=self._blob_path("normals", normal),
            reference_path=self._blob_path("references", ref) if ref else None,
            reference_mask_path=self._blob_path("references", ref_mask) if ref_mask else None,
            metadata=json.loads(metadata), width=width, height=height, job_id=job,
        )

    def _blob_path(self, kind: str, sha: str) -> Path:
        return self.root / kind / f"{sha}.png"

    def _check_id(self, sample_id: str) -> None:
        if not isinstance(sample_id, str) or not SAMPLE_ID_RE.match(sample_id):
            raise InputError(f"{sample_id!r} is not a sample id.")

    def _unknown(self, sample_id: str) -> InputError:
        return InputError(f"No sample with id {sample_id!r} in the store at {self.root}.")

    def _prepare(self, sample: NewSample, job_id: str | None) -> _Prepared:
        cand = sample.candidate
        image = np.asarray(cand.image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InputError("The candidate image must be an RGB uint8 array.")
        h, w = image.shape[:2]
        mask = _label_mask(cand.mask, (h, w), "candidate mask")
        normal = np.asarray(sample.normal_image)
        if normal.dtype != np.uint8 or normal.shape != image.shape:
            raise InputError(f"The normal image must be an RGB uint8 array of the candidate's size ({w}x{h}).")
        blobs: dict[str, tuple[str, np.ndarray | bytes | Path]] = {"normal": _blob(normal)}
        if sample.reference_mask is not None and sample.reference is None:
            raise InputError("A reference mask was given without a reference image.")
        if sample.reference is not None:
            ref = np.asarray(sample.reference)
            if ref.dtype != np.uint8 or ref.ndim != 3 or ref.shape[2] != 3:
                raise InputError("The reference image must be an RGB uint8 array.")
            blobs["reference"] = _blob(ref)
            if sample.reference_mask is not None:
                blobs["reference_mask"] = _blob(_label_mask(sample.reference_mask, ref.shape[:2], "reference mask"))
        if sample.sample_id is None:
            sample_id = new_sample_id()
        else:
            self._check_id(sample.sample_id)
            sample_id = sample.sample_id
        category = clean_label(sample.category, "category", DEFAULT_CATEGORY)
        defect_type = clean_label(sample.defect_type, "defect type", DEFAULT_DEFECT_TYPE)
        note = clean_text(sample.note, "note")
        accepted_at = now_iso()
        metadata = _json_safe(dict(cand.metadata or {}))
        metadata.setdefault("seed", int(cand.seed))
        metadata.update({
            "id": sample_id, "category": category, "defect_type": defect_type, "note": note,
            "accepted_at": accepted_at, "image_size": [w, h],
            "normal_sha256": blobs["normal"][0],
            "reference_sha256": blobs["reference"][0] if "reference" in blobs else None,
            "reference_mask_sha256": blobs["reference_mask"][0] if "reference_mask" in blobs else None,
        })
        if job_id is not None:
            metadata["batch_job"] = job_id
        return _Prepared(sample_id, category, defect_type, note, accepted_at, _png(image),
                         _png(mask), w, h, blobs, metadata, job_id)

    def _import(self, rec: SampleRecord) -> None:
        """Copy one record of another store (same id, labels, metadata and files)."""
        blobs: dict[str, tuple[str, np.ndarray | bytes | Path]] = {"normal": (rec.normal_path.stem, rec.normal_path)}
        if rec.reference_path is not None:
            blobs["reference"] = (rec.reference_path.stem, rec.reference_path)
        if rec.reference_mask_path is not None:
            blobs["reference_mask"] = (rec.reference_mask_path.stem, rec.reference_mask_path)
        item = _Prepared(rec.id, rec.category, rec.defect_type, rec.note, rec.accepted_at,
                         rec.image_path.read_bytes(), rec.mask_path.read_bytes(), rec.width, rec.height,
                         blobs, rec.metadata, rec.job_id)
        self._write_sample(item)
        try:
            self._commit([item], None, "store", None)
        except BaseException:
            if not self._folder_committed(item.folder):
                self._discard_folder(item.folder)
            raise

    def _write_sample(self, item: _Prepared) -> None:
        """Shared blobs first, then the sample folder: written in tmp/, fsync'd, renamed into samples/."""
        for role, (sha, content) in item.blobs.items():
            self._put_blob("normals" if role == "normal" else "references", sha, content)
        staging = self.root / "tmp" / f"{item.id}.{secrets.token_hex(4)}"
        staging.mkdir()
        try:
            _write_synced(staging / IMAGE_FILE, item.image_png)
            _write_synced(staging / MASK_FILE, item.mask_png)
            _write_synced(staging / METADATA_FILE, _dump_json(item.metadata).encode("utf-8"))
            fsync_dir(staging)
            samples = self.root / "samples"
            folder = item.id
            for _ in range(5):
                try:
                    os.rename(staging, samples / folder)
                    break
                except OSError as exc:  # a folder of that name exists (debris of a killed writer)
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EACCES, errno.EPERM):
                        raise
                    folder = f"{item.id}.{secrets.token_hex(4)}"
            else:  # pragma: no cover
                raise StudioError(f"Cannot place sample {item.id} in {samples}.")
            fsync_dir(samples)
            item.folder = folder
        except BaseException:
            _remove_path(staging)
            raise

    def _put_blob(self, kind: str, sha: str, content: np.ndarray | bytes | Path) -> None:
        """Content-addressed file: written once, atomically; concurrent writers of the same content are harmless."""
        target = self._blob_path(kind, sha)
        if target.is_file():
            return
        if isinstance(content, np.ndarray):
            data = _png(content)  # encoded only when not stored yet
        else:
            data = content.read_bytes() if isinstance(content, Path) else content
        self._atomic_write(target, data)

    def _commit(self, items: list[_Prepared], job_id: str | None, mode: str, job_info: dict | None) -> list[str]:
        ids = [item.id for item in items]
        with self._transaction() as conn:
            if job_id is not None:
                row = conn.execute("SELECT sample_ids FROM batch_jobs WHERE job_id = ? AND mode = ?",
                                   (job_id, mode)).fetchone()
                if row is not None:  # another process finished the same job meanwhile: keep its samples
                    for item in items:
                        self._discard_folder(item.folder)
                    return json.loads(row[0])
            try:
                conn.executemany(
                    f"INSERT INTO samples ({_COLUMNS}) VALUES ({', '.join('?' * 13)})",
                    [(i.id, i.folder, i.category, i.defect_type, i.note, i.accepted_at, i.blobs["normal"][0],
                      i.blobs.get("reference", (None,))[0], i.blobs.get("reference_mask", (None,))[0],
                      i.width, i.height, i.job_id, _dump_json(i.metadata)) for i in items],
                )
            except sqlite3.IntegrityError:
                raise InputError(f"A sample with one of the ids {', '.join(ids)} is already in the store.") from None
            if job_id is not None:
                conn.execute("INSERT INTO batch_jobs VALUES (?, ?, ?, ?, ?)",
                             (job_id, mode, now_iso(), json.dumps(ids), _dump_json(job_info or {})))
        return ids

    def _folder_committed(self, folder: str) -> bool:
        try:
            return bool(self._query("SELECT 1 FROM samples WHERE folder = ?", (folder,)))
        except (sqlite3.Error, StudioError):
            return True  # cannot tell: leave the files for recovery

    def _discard_folder(self, folder: str) -> None:
        """Move a sample folder out of samples/ (one rename), then delete it."""
        if not folder:
            return
        path = self.root / "samples" / folder
        trash = self.root / "tmp" / f"trash-{folder}.{secrets.token_hex(4)}"
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return
        _remove_path(trash)

    def _atomic_write(self, target: Path, data: bytes) -> None:
        """Replace ``target`` with ``data`` in one step (staged in tmp/, fsync'd, renamed, directory fsync'd)."""
        staging = self.root / "tmp" / f"{target.name}.{secrets.token_hex(4)}"
        try:
            _write_synced(staging, data)
            os.replace(staging, target)
        finally:
            _remove_path(staging)
        fsync_dir(target.parent)


# --------------------------------------------------------------------- helpers
def _label_mask(mask: Any, shape: tuple[int, int], what: str) -> np.ndarray:
    """A 0/255 uint8 (H, W) label mask from a bool or numeric mask of the given shape."""
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask.any(axis=2) if mask.dtype == bool else (mask != 0).any(axis=2)
    if mask.shape != tuple(shape):
        raise InputError(f"The {what} is {mask.shape[1]}x{mask.shape[0]} but its image is {shape[1]}x{shape[0]}.")
    return np.where(mask != 0, 255, 0).astype(np.uint8)


def _png(array: np.ndarray) -> bytes:
    """PNG bytes, zlib level 3: ~3x faster than PIL's default level 6 and no larger on photos."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def _blob(array: np.ndarray) -> tuple[str, np.ndarray]:
    array = np.ascontiguousarray(array)
    return array_sha256(array) or "", array


def _json_safe(value: Any) -> Any:
    """Metadata made JSON-serialisable: numpy scalars/arrays, paths and tuples converted."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 64 else f"<array {value.shape} {value.dtype}>"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _dump_json(data: Any) -> str:
    return json.dumps(_json_safe(data), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    """Make a rename or new entry in ``path`` durable (no-op where directories cannot be opened)."""
    if os.name != "posix":  # pragma: no cover - directories cannot be opened on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_path(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:  # pragma: no cover - e.g. permissions: leave it for the next recovery
        log.warning("could not remove %s: %s", path, exc)


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def _try_flock(fh: Any, *, exclusive: bool) -> bool:
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fh.fileno(), (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _flock_shared(fh: Any) -> None:
    if fcntl is not None and fh is not None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_SH)
