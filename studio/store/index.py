"""The store's SQLite index (WAL, ``synchronous=FULL``): a sample exists iff its row exists.

One connection per Store guarded by a lock (safe for many threads); several processes may
open the same index (WAL, ``busy_timeout``, ``BEGIN IMMEDIATE``).
"""
from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from studio.errors import StudioError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
INDEX_FILE = "index.sqlite"
SCHEMA = """
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
COLUMNS = ("id, folder, category, defect_type, note, accepted_at, normal_sha, reference_sha, "
           "reference_mask_sha, width, height, job_id, metadata")


class Index:
    """The connection, its lock, and the two ways in: :meth:`query` and :meth:`transaction`.

    ``on_full`` builds the error raised when SQLite reports the disk full.
    """

    def __init__(self, root: Path, on_full: Callable[[], Exception]) -> None:
        self.path = root / INDEX_FILE
        self.lock = threading.RLock()
        self._on_full = on_full
        self._conn: sqlite3.Connection | None = _connect(self.path)

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE: the database write lock is taken up front)."""
        with self.lock:
            conn = self._require()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if _is_full(exc):
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise self._on_full() from None
                raise

    def query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple]:
        with self.lock:
            return self._require().execute(sql, tuple(args)).fetchall()

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StudioError("The store has been closed.")
        return self._conn


def _is_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == getattr(sqlite3, "SQLITE_FULL", 13) or "disk is full" in str(exc)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 60000")
    for attempt in range(50):  # switching to WAL needs a moment without other writers
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError:
            time.sleep(0.05 * (attempt + 1))
    else:  # pragma: no cover
        raise StudioError(f"The store index {path} is locked by another program.")
    if str(mode).lower() != "wal":
        log.warning("store %s: SQLite WAL mode unavailable (journal mode %s)", path.parent, mode)
    conn.execute("PRAGMA synchronous = FULL")
    try:
        conn.execute("BEGIN IMMEDIATE")
        for statement in filter(str.strip, SCHEMA.split(";")):
            conn.execute(statement)
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if version is None:
            conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(version[0]) > SCHEMA_VERSION:
            raise StudioError(f"The store {path.parent} was written by a newer anomaly-studio "
                              f"(schema {version[0]}); upgrade to open it.")
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        conn.close()
        raise StudioError(f"The store index {path} is unreadable ({exc}).") from None
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        conn.close()
        raise
    return conn
