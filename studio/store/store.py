"""The :class:`Store`: accepted samples in a data folder, behind one thread-safe object."""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from studio.atomic import disk_full_error, disk_space_guard, write_bytes
from studio.errors import InputError, StudioError
from studio.jsonfile import dumps
from studio.store import files
from studio.store.index import COLUMNS, Index
from studio.store.recovery import LOCK_FILE, flock_shared, recover, try_flock
from studio.store.records import (
    DEFAULT_CATEGORY, DEFAULT_DEFECT_TYPE, IMAGE_FILE, MASK_FILE, METADATA_FILE, SAMPLE_ID_RE, NewSample,
    PreparedSample, RecoveryReport, SampleRecord, check_sample_id, clean_label, now_iso, prepare,
)
from studio.types import Candidate, clean_text

_ACCEPT = "Accepting the sample"


class Store:
    """A data folder of accepted samples. Thread-safe; several processes may share one folder."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser().absolute()
        self._index: Index | None = None
        self._lock_file = None
        try:
            for sub in files.SUBFOLDERS:
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StudioError(f"Cannot create the data folder {str(self.root)!r}: {exc.strerror or exc}.") from None
        self._lock_file = open(self.root / LOCK_FILE, "a+b")  # noqa: SIM115 - held for the Store's life
        try:
            exclusive = try_flock(self._lock_file, exclusive=True)
            try:
                self._index = Index(self.root, lambda: disk_full_error(_ACCEPT, self.root))
                if exclusive:
                    self.last_recovery = recover(self.root, self._index)
                else:
                    self.last_recovery = RecoveryReport(skipped="another process has the store open")
            finally:
                flock_shared(self._lock_file)  # downgrade (or wait for another process's recovery)
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Close the index and release the folder lock; the Store is unusable afterwards."""
        if self._index is not None:
            self._index.close()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    @property
    def index(self) -> Index:
        if self._index is None:
            raise StudioError("The store has been closed.")
        return self._index

    # ----------------------------------------------------------------- writing
    def add(self, candidate: Candidate, *, normal_image: np.ndarray, reference: np.ndarray | None = None,
            reference_mask: np.ndarray | None = None, category: str = "", defect_type: str = "",
            note: str = "") -> str:
        """Accept one candidate; returns its new id. Durable on disk when this returns."""
        return self.add_many([NewSample(candidate, normal_image, reference, reference_mask,
                                        category, defect_type, note)])[0]

    def add_many(self, samples: Iterable[NewSample], *, job_id: str | None = None, mode: str = "store",
                 job_info: dict | None = None) -> list[str]:
        """Accept several samples in one transaction (all or none); returns their ids in order.

        With ``job_id`` the batch job is recorded as finished in the same transaction, so a
        re-run can skip it; if it was already finished, nothing is written and the ids
        recorded then are returned. A full disk raises :class:`~studio.errors.DiskFullError`
        and leaves nothing of these samples visible.
        """
        if job_id is not None:
            done = self.job_samples(job_id, mode)
            if done is not None:
                return done
        prepared = [prepare(s, job_id) for s in samples]
        return self._place(prepared, job_id, mode, job_info)

    def remove(self, sample_id: str) -> None:
        """Delete a sample (row first, then its files). Unknown id -> InputError."""
        check_sample_id(sample_id)
        with self.index.transaction() as conn:
            row = conn.execute("SELECT folder FROM samples WHERE id = ?", (sample_id,)).fetchone()
            if row is None:
                raise self._unknown(sample_id)
            conn.execute("DELETE FROM samples WHERE id = ?", (sample_id,))
        files.discard_folder(self.root, row[0])

    def relabel(self, sample_id: str, *, defect_type: str | None = None, category: str | None = None,
                note: str | None = None) -> None:
        """Change a sample's defect type, category and/or note (None leaves a field as it is)."""
        check_sample_id(sample_id)
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
        with disk_space_guard("Relabelling the sample", self.root), self.index.transaction() as conn:
            row = conn.execute("SELECT folder, metadata FROM samples WHERE id = ?", (sample_id,)).fetchone()
            if row is None:
                raise self._unknown(sample_id)
            folder, metadata = row[0], json.loads(row[1])
            metadata.update(updates)
            metadata["relabelled_at"] = now_iso()
            text = dumps(metadata)
            # The file is replaced atomically while we hold the write lock; the row (the truth) commits after.
            write_bytes(self.root / "samples" / folder / METADATA_FILE, text.encode("utf-8"),
                        staging_dir=self.root / "tmp")
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
        rows = self.index.query(f"SELECT {COLUMNS} FROM samples{where} ORDER BY accepted_at, id", args)
        return [self._record(r) for r in rows]

    def get(self, sample_id: str) -> SampleRecord:
        """One sample by id; an unknown or malformed id raises InputError."""
        check_sample_id(sample_id)
        rows = self.index.query(f"SELECT {COLUMNS} FROM samples WHERE id = ?", (sample_id,))
        if not rows:
            raise self._unknown(sample_id)
        return self._record(rows[0])

    def __contains__(self, sample_id: object) -> bool:
        if not isinstance(sample_id, str) or not SAMPLE_ID_RE.match(sample_id):
            return False
        return bool(self.index.query("SELECT 1 FROM samples WHERE id = ?", (sample_id,)))

    def __len__(self) -> int:
        return int(self.index.query("SELECT COUNT(*) FROM samples")[0][0])

    def stats(self) -> dict:
        """Counts: total, by defect type, by category, by (category, defect type), distinct normal images."""
        query = self.index.query
        by_defect = dict(query("SELECT defect_type, COUNT(*) FROM samples GROUP BY defect_type ORDER BY 1"))
        by_category = dict(query("SELECT category, COUNT(*) FROM samples GROUP BY category ORDER BY 1"))
        nested: dict[str, dict[str, int]] = {}
        for cat, defect, n in query("SELECT category, defect_type, COUNT(*) FROM samples GROUP BY 1, 2 ORDER BY 1, 2"):
            nested.setdefault(cat, {})[defect] = n
        normals = int(query("SELECT COUNT(DISTINCT normal_sha) FROM samples")[0][0])
        jobs = int(query("SELECT COUNT(*) FROM batch_jobs")[0][0])
        return {"total": len(self), "by_defect_type": by_defect, "by_category": by_category,
                "by_category_and_defect_type": nested, "normal_images": normals, "batch_jobs": jobs}

    # ----------------------------------------------------------------- batch jobs
    def job_samples(self, job_id: str, mode: str = "store") -> list[str] | None:
        """The sample ids a finished batch job produced, or None when it has not finished."""
        rows = self.index.query("SELECT sample_ids FROM batch_jobs WHERE job_id = ? AND mode = ?", (job_id, mode))
        return json.loads(rows[0][0]) if rows else None

    def finished_jobs(self, mode: str = "store") -> set[str]:
        """Ids of the batch jobs recorded as finished in ``mode`` ("store" or "review")."""
        return {r[0] for r in self.index.query("SELECT job_id FROM batch_jobs WHERE mode = ?", (mode,))}

    def mark_job_done(self, job_id: str, mode: str, sample_ids: list[str] | None = None,
                      info: dict | None = None) -> None:
        """Record a batch job as finished (used for review-mode jobs; store-mode jobs record themselves)."""
        with self.index.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO batch_jobs VALUES (?, ?, ?, ?, ?)",
                         (job_id, mode, now_iso(), json.dumps(sample_ids or []), dumps(info or {})))

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
                    self._place([PreparedSample.from_record(rec)], None, "store", None)
                    added += 1
                if progress is not None:
                    progress(i + 1, len(records), rec.id)
            jobs = source.index.query("SELECT job_id, mode, finished_at, sample_ids, info FROM batch_jobs")
            with self.index.transaction() as conn:
                conn.executemany("INSERT OR IGNORE INTO batch_jobs VALUES (?, ?, ?, ?, ?)", jobs)
            return added, skipped
        finally:
            if source is not other:
                source.close()

    # ----------------------------------------------------------------- recovery
    def recover(self) -> RecoveryReport:
        """Remove debris of interrupted writes, if no other process has the store open right now."""
        with self.index.lock:
            assert self._lock_file is not None, "store is closed"
            if not try_flock(self._lock_file, exclusive=True):
                return RecoveryReport(skipped="another process has the store open")
            try:
                self.last_recovery = recover(self.root, self.index)
                return self.last_recovery
            finally:
                flock_shared(self._lock_file)

    # ----------------------------------------------------------------- internals
    def _place(self, items: list[PreparedSample], job_id: str | None, mode: str, job_info: dict | None) -> list[str]:
        """Write the items' files, then commit their rows; on any failure nothing of them stays visible."""
        written: list[PreparedSample] = []
        try:
            with disk_space_guard(_ACCEPT if len(items) <= 1 else f"Accepting {len(items)} samples", self.root):
                for item in items:
                    item.folder = files.write_sample(self.root, item)
                    written.append(item)
                return self._commit(items, job_id, mode, job_info)
        except BaseException:
            for item in written:  # not committed: remove what we placed (recovery would too)
                if not self._folder_committed(item.folder):
                    files.discard_folder(self.root, item.folder)
            raise

    def _commit(self, items: list[PreparedSample], job_id: str | None, mode: str,
                job_info: dict | None) -> list[str]:
        ids = [item.id for item in items]
        with self.index.transaction() as conn:
            if job_id is not None:
                row = conn.execute("SELECT sample_ids FROM batch_jobs WHERE job_id = ? AND mode = ?",
                                   (job_id, mode)).fetchone()
                if row is not None:  # another process finished the same job meanwhile: keep its samples
                    for item in items:
                        files.discard_folder(self.root, item.folder)
                    return json.loads(row[0])
            try:
                conn.executemany(
                    f"INSERT INTO samples ({COLUMNS}) VALUES ({', '.join('?' * 13)})",
                    [(i.id, i.folder, i.category, i.defect_type, i.note, i.accepted_at, i.blobs["normal"][0],
                      i.blobs.get("reference", (None,))[0], i.blobs.get("reference_mask", (None,))[0],
                      i.width, i.height, i.job_id, dumps(i.metadata)) for i in items],
                )
            except sqlite3.IntegrityError:
                raise InputError(f"A sample with one of the ids {', '.join(ids)} is already in the store.") from None
            if job_id is not None:
                conn.execute("INSERT INTO batch_jobs VALUES (?, ?, ?, ?, ?)",
                             (job_id, mode, now_iso(), json.dumps(ids), dumps(job_info or {})))
        return ids

    def _folder_committed(self, folder: str) -> bool:
        try:
            return bool(self.index.query("SELECT 1 FROM samples WHERE folder = ?", (folder,)))
        except (sqlite3.Error, StudioError):
            return True  # cannot tell: leave the files for recovery

    def _record(self, row: tuple) -> SampleRecord:
        (sid, folder, category, defect, note, accepted, normal, ref, ref_mask, width, height, job,
         metadata) = row
        base = self.root / "samples" / folder
        return SampleRecord(
            id=sid, category=category, defect_type=defect, note=note, accepted_at=accepted,
            image_path=base / IMAGE_FILE, mask_path=base / MASK_FILE,
            normal_path=files.blob_path(self.root, "normals", normal),
            reference_path=files.blob_path(self.root, "references", ref) if ref else None,
            reference_mask_path=files.blob_path(self.root, "references", ref_mask) if ref_mask else None,
            metadata=json.loads(metadata), width=width, height=height, job_id=job,
        )

    def _unknown(self, sample_id: str) -> InputError:
        return InputError(f"No sample with id {sample_id!r} in the store at {self.root}.")
