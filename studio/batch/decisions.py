"""Decisions on a batch review job, kept with the job and shared by every session and process.

Layout: ``<job folder>/decisions/NN.json`` holds the decision on candidate ``NN`` (accepted or
rejected, by which session, when, and for an accept the sample id and labels stored);
``decisions/.lock`` serialises deciders (threads and processes alike, :mod:`studio.filelock`).
Each file is replaced atomically (:func:`studio.jsonfile.write_json`), so a reader without the
lock sees a whole decision or none.

The store stays the truth about what was accepted: an accept adds the sample (``<job-id>-NN``,
exactly once) *before* its decision file is written, an undo removes the sample *before* the
file. So after a crash, or when a sample was removed from the curated set, :func:`read_decisions`
shows a stored candidate as accepted (by ``session=""`` when no file names the session) and an
accept whose sample is gone as undecided.

Rules: a session may undo or change only its own decisions; any decision on a candidate another
session (or the CLI) decided raises :class:`DecisionRefused` and changes nothing; an accepted
candidate must be undone before it is rejected.

API::

    read_decisions(store, job, indices=None) -> dict[int, DecisionRecord]   # job: ReviewJob or ReviewSummary
    accept(store, job, index, session, *, category, defect_type, note) -> DecisionRecord
    reject(store, job, index, session) -> DecisionRecord
    undo(store, job, index, session) -> DecisionRecord            # the decision removed
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ContextManager, Iterable, Protocol

from studio.atomic import remove_path
from studio.batch.review import DECISIONS_DIR, ReviewJob, accept_review
from studio.batch.spec import review_sample_id
from studio.errors import InputError
from studio.filelock import locked
from studio.jsonfile import write_json
from studio.store import Store, now_iso

UNDECIDED, ACCEPTED, REJECTED = "undecided", "accepted", "rejected"
LOCK_FILE = ".lock"
#: The session recorded for a stored candidate whose decision file is missing (the CLI, an older studio).
UNKNOWN_SESSION = ""


class DecisionRefused(InputError):
    """A decision that was not applied (another session's candidate, a stale key, nothing to undo)."""


@dataclass(frozen=True)
class DecisionRecord:
    """One candidate's decision: what, by which session, when; for an accept, the sample and its labels."""

    index: int
    decision: str
    session: str
    at: str
    sample_id: str | None = None
    category: str = ""
    defect_type: str = ""
    note: str = ""


class JobLike(Protocol):
    """What a decision needs of a job: :class:`~studio.batch.review.ReviewJob` and ``ReviewSummary`` have it."""

    folder: Path
    job_id: str

    @property
    def count(self) -> int: ...


def read_decisions(store: Store, job: JobLike, indices: Iterable[int] | None = None) -> dict[int, DecisionRecord]:
    """The decided candidates of ``job`` (all, or those of ``indices``) as index -> record, reconciled
    with the store (see the module doc)."""
    chosen = range(job.count) if indices is None else [i for i in indices if 0 <= i < job.count]
    return {i: rec for i in chosen if (rec := _current(store, job, i)) is not None}


def accept(store: Store, job: ReviewJob, index: int, session: str, *, category: str, defect_type: str,
           note: str) -> DecisionRecord:
    """Store candidate ``index`` with these labels (once) and record the accept; a candidate this
    session already accepted is left as it is (its record returned)."""
    with _lock(job):
        current = _current(store, job, _checked(job, index, session))
        _refuse_foreign(current, session, job)
        if current is not None and current.decision == ACCEPTED:
            return current
        sample_id = review_sample_id(job.job_id, index)
        try:
            accept_review(store, job.relabelled(category=category, defect_type=defect_type, note=note), [index])
        except InputError:
            if sample_id not in store:
                raise
            _refuse_foreign(_current(store, job, index), session, job)  # a batch run stored it meanwhile
            raise
        stored = store.get(sample_id)
        record = DecisionRecord(index, ACCEPTED, session, now_iso(), stored.id, stored.category,
                                stored.defect_type, stored.note)
        _write(job, record)
        return record


def reject(store: Store, job: JobLike, index: int, session: str) -> DecisionRecord:
    """Record candidate ``index`` as rejected by ``session`` (an accepted one must be undone first)."""
    with _lock(job):
        current = _current(store, job, _checked(job, index, session))
        _refuse_foreign(current, session, job)
        if current is not None and current.decision == ACCEPTED:
            raise DecisionRefused(f"Candidate #{index + 1} of job {job.job_id} is accepted; undo that first "
                                  "(or remove it from the curated set). Nothing changed.")
        if current is not None:
            return current
        record = DecisionRecord(index, REJECTED, session, now_iso())
        _write(job, record)
        return record


def undo(store: Store, job: JobLike, index: int, session: str) -> DecisionRecord:
    """Remove ``session``'s decision on candidate ``index`` (an accept's sample leaves the store first)."""
    with _lock(job):
        current = _current(store, job, _checked(job, index, session))
        if current is None:
            raise DecisionRefused(f"Candidate #{index + 1} of job {job.job_id} has no decision to undo.")
        _refuse_foreign(current, session, job, verb="undo")
        if current.decision == ACCEPTED and current.sample_id and current.sample_id in store:
            store.remove(current.sample_id)
        remove_path(_path(job, index))
        return current


def _refuse_foreign(current: DecisionRecord | None, session: str, job: JobLike, verb: str = "decide") -> None:
    """Refuse when another session (or the CLI) decided the candidate."""
    if current is None or current.session == session:
        return
    who = "outside the review (CLI or an older studio)" if current.session == UNKNOWN_SESSION else \
        f"by another session at {current.at[11:19]} UTC"
    what = "is already in the curated set" if current.decision == ACCEPTED else "was already rejected"
    raise DecisionRefused(f"Candidate #{current.index + 1} of job {job.job_id} {what}, {who}; "
                          f"only that session can {verb} it. Nothing changed.")


def _current(store: Store, job: JobLike, index: int) -> DecisionRecord | None:
    """Candidate ``index``'s decision as the store and its file say together (None: undecided)."""
    record = _read(job, index)
    sample_id = review_sample_id(job.job_id, index)
    stored = sample_id in store
    if record is not None and record.decision == ACCEPTED and not stored:
        return None  # its sample was removed (curated set, or an undo cut short): undecided again
    if stored and (record is None or record.decision != ACCEPTED):
        return DecisionRecord(index, ACCEPTED, UNKNOWN_SESSION, store.get(sample_id).accepted_at, sample_id)
    return record


def _checked(job: JobLike, index: int, session: str) -> int:
    """``index`` if the job has it and ``session`` names a session; InputError otherwise."""
    if not isinstance(session, str) or not session.strip():
        raise InputError("A review decision needs the id of the session that makes it.")
    if not isinstance(index, int) or not 0 <= index < job.count:
        raise InputError(f"Candidate {index!r} does not exist in review job {job.job_id}.")
    return index


def _lock(job: JobLike) -> ContextManager[None]:
    return locked(Path(job.folder) / DECISIONS_DIR / LOCK_FILE)


def _path(job: JobLike, index: int) -> Path:
    return Path(job.folder) / DECISIONS_DIR / f"{index:02d}.json"


def _read(job: JobLike, index: int) -> DecisionRecord | None:
    path = _path(job, index)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return DecisionRecord(**{k: data[k] for k in DecisionRecord.__dataclass_fields__ if k in data})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"The decision file {path} is unreadable ({exc}); delete it to decide again.") from None


def _write(job: JobLike, record: DecisionRecord) -> None:
    write_json(_path(job, record.index), asdict(record))
