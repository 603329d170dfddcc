"""Batch review decisions on disk: shared by sessions and processes, durable across restarts, undo only
one's own, one queue across a batch's jobs, and ``batch --review`` counting what it wrote."""
from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from studio.batch import decisions
from studio.batch.decisions import ACCEPTED, REJECTED, DecisionRefused
from studio.batch.review import accept_review, load_review_job, review_root, review_summaries, write_review_job
from studio.cli import main
from studio.errors import InputError
from studio.review.batch import BatchDecider, list_batches, open_batch
from studio.review.labels import QueueLabels
from studio.store import Store
from studio.types import Candidate

SPEC = "/specs/line3.yaml"


def write_job(data: Path, job_id: str, count: int = 3, *, spec: str = SPEC, category: str = "bottle",
              defect_type: str = "crack", reference: bool = False) -> Path:
    """A review job of ``count`` small candidates (distinct pixels) as ``batch --review`` writes them."""
    rng = np.random.default_rng(len(job_id) + count)
    normal = rng.integers(100, 160, (24, 24, 3), dtype=np.uint8)
    mask = np.zeros((24, 24), np.uint8)
    mask[8:16, 8:16] = 255
    candidates = []
    for i in range(count):
        image = normal.copy()
        image[8:16, 8:16] = 20 + 10 * i
        candidates.append(Candidate(image, mask, seed=i, metadata={"score": {"value": float(i)}}))
    ref = normal if reference else None
    return write_review_job(review_root(data), job_id, candidates, normal, ref, None,
                            {"spec": spec, "category": category, "defect_type": defect_type, "note": "",
                             "prompt": "a crack"})


def test_accept_is_shared_and_only_its_session_undoes_it(tmp_path):
    write_job(tmp_path, "jobA")
    with Store(tmp_path) as store:
        job = load_review_job(review_root(tmp_path) / "jobA")
        record = decisions.accept(store, job, 1, "tab1", category="cap", defect_type="dent", note="n")
        assert (record.decision, record.session, record.sample_id) == (ACCEPTED, "tab1", "jobA-01")
        assert store.get("jobA-01").category == "cap" and store.get("jobA-01").defect_type == "dent"
        with pytest.raises(DecisionRefused, match="already in the curated set, by another session"):
            decisions.accept(store, job, 1, "tab2", category="x", defect_type="y", note="")
        with pytest.raises(DecisionRefused, match="only that session can undo"):
            decisions.undo(store, job, 1, "tab2")
        with pytest.raises(DecisionRefused):
            decisions.reject(store, job, 1, "tab2")
        assert "jobA-01" in store and len(store) == 1
        assert decisions.accept(store, job, 1, "tab1", category="cap", defect_type="dent", note="n") == record
        assert len(store) == 1  # accepting again stores nothing twice
        with pytest.raises(DecisionRefused, match="undo that first"):
            decisions.reject(store, job, 1, "tab1")
        assert decisions.undo(store, job, 1, "tab1") == record
        assert "jobA-01" not in store and decisions.read_decisions(store, job) == {}


def test_decisions_survive_a_restart_and_a_curated_removal(tmp_path):
    write_job(tmp_path, "jobA")
    with Store(tmp_path) as store:
        job = load_review_job(review_root(tmp_path) / "jobA")
        decisions.accept(store, job, 0, "tab1", category="cap", defect_type="dent", note="")
        decisions.reject(store, job, 2, "tab1")
    with Store(tmp_path) as store:  # a new process
        seen = decisions.read_decisions(store, review_summaries(tmp_path)[0])
        assert {i: (r.decision, r.session) for i, r in seen.items()} == {0: (ACCEPTED, "tab1"), 2: (REJECTED, "tab1")}
        store.remove("jobA-00")  # removed from the curated set: undecided again, anyone may decide it
        job = load_review_job(review_root(tmp_path) / "jobA")
        assert set(decisions.read_decisions(store, job)) == {2}
        assert decisions.accept(store, job, 0, "tab2", category="cap", defect_type="dent", note="").session == "tab2"


def test_a_candidate_stored_outside_the_review_shows_as_accepted(tmp_path):
    write_job(tmp_path, "jobA")
    with Store(tmp_path) as store:
        job = load_review_job(review_root(tmp_path) / "jobA")
        accept_review(store, job, [2])  # the CLI / an older studio: no decision file
        record = decisions.read_decisions(store, job)[2]
        assert record.decision == ACCEPTED and record.session == decisions.UNKNOWN_SESSION
        with pytest.raises(DecisionRefused, match="outside the review"):
            decisions.reject(store, job, 2, "tab1")
        assert "jobA-02" in store


def _accept_everything(data: str, session: str, count: int, out: "multiprocessing.Queue") -> None:
    stored = refused = 0
    with Store(data) as store:
        job = load_review_job(review_root(data) / "jobA")
        for i in range(count):
            try:
                record = decisions.accept(store, job, i, session, category=session, defect_type="dent", note="")
                stored += record.session == session
            except DecisionRefused:
                refused += 1
    out.put((session, stored, refused))


def test_two_processes_accepting_the_same_job_store_each_candidate_once(tmp_path):
    count = 12
    write_job(tmp_path, "jobA", count)
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=_accept_everything, args=(str(tmp_path), s, count, results)) for s in ("p1", "p2")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    outcome = {s: (stored, refused) for s, stored, refused in (results.get(timeout=5) for _ in procs)}
    assert outcome["p1"][0] + outcome["p2"][0] == count  # every candidate stored by exactly one of them
    assert outcome["p1"][0] == outcome["p2"][1] and outcome["p2"][0] == outcome["p1"][1]
    with Store(tmp_path) as store:
        assert len(store) == count
        seen = decisions.read_decisions(store, review_summaries(tmp_path)[0])
        for i, record in seen.items():  # the labels stored are those of the session the file names
            assert store.get(f"jobA-{i:02d}").category == record.session


def test_one_queue_across_a_batch_with_progress_and_finished_jobs(tmp_path):
    write_job(tmp_path, "job1", 2, category="bottle", defect_type="crack")
    write_job(tmp_path, "job2", 3, category="cap", defect_type="dent", reference=True)
    write_job(tmp_path, "other", 2, spec="/specs/elsewhere.yaml")
    with Store(tmp_path) as store:
        batches = {b.batch: b for b in list_batches(store)}
        assert set(batches) == {SPEC, "/specs/elsewhere.yaml"} and batches[SPEC].candidates == 5
        decider = BatchDecider(store)
        queue = open_batch(store, "tab1", SPEC, decider=decider)
        assert [e.id for e in queue.entries] == ["job1/00", "job1/01", "job2/00", "job2/01", "job2/02"]
        assert [e.reference_used for e in queue.entries] == [False, False, True, True, True]
        for _ in range(2):
            assert queue.press(decider, queue.current, "accept").applied
        assert queue.current == "job2/00" and queue.press(decider, "job2/00", "reject").applied
        progress = queue.progress()
        assert (progress.decided, progress.total) == (3, 5) and progress.finished_jobs == ["job1"]
        assert store.get("job1-01").category == "bottle" and store.get("job1-01").defect_type == "crack"
        listed = {b.batch: b for b in list_batches(store)}[SPEC]
        assert listed.decided == 3 and listed.finished_jobs == ["job1"] and not listed.finished


def test_two_sessions_on_one_batch_queue(tmp_path):
    write_job(tmp_path, "job1", 3)
    with Store(tmp_path) as store:
        decider = BatchDecider(store)
        tab1 = open_batch(store, "tab1", SPEC, decider=decider)
        tab2 = open_batch(store, "tab2", SPEC, decider=decider)
        assert tab1.press(decider, "job1/00", "accept").applied
        refused = tab2.press(decider, "job1/00", "accept")  # tab2 still shows #1
        assert not refused.applied and "already in the curated set" in refused.message
        assert tab2.state("job1/00").session == "tab1" and tab2.current == "job1/00"
        undo = tab2.press(decider, "job1/00", "undo")
        assert not undo.applied and "no decision of yours" in undo.message
        assert "job1-00" in store and tab1.progress().accepted == 1
        tab2.step(1)
        assert tab2.press(decider, "job1/01", "reject").applied
        tab1.refresh(decider)
        assert tab1.state("job1/01").status == REJECTED and tab1.history == ["job1/00"]


def test_a_reopened_queue_shows_every_decision_and_undoes_its_own(tmp_path):
    write_job(tmp_path, "job1", 3)
    with Store(tmp_path) as store:
        decider = BatchDecider(store)
        queue = open_batch(store, "tab1", SPEC, decider=decider)
        queue.press(decider, "job1/00", "accept")
        queue.press(decider, "job1/01", "reject")
    with Store(tmp_path) as store:  # restart; the same session reopens, then another one
        decider = BatchDecider(store)
        again = open_batch(store, "tab1", SPEC, decider=decider)
        assert [again.state(e.id).status for e in again.entries] == [ACCEPTED, REJECTED, "undecided"]
        assert again.current == "job1/02" and again.history == ["job1/00", "job1/01"]
        other = open_batch(store, "tab9", SPEC, decider=decider)
        assert other.progress().decided == 2 and other.history == []
        assert again.press(decider, "job1/02", "undo").applied  # undoes its own last one (the reject)
        assert again.press(decider, "job1/01", "undo").applied and "job1-00" not in store
        assert open_batch(store, "tab9", SPEC, decider=decider).progress().decided == 0


def test_relabel_remaining_changes_only_what_is_still_to_accept(tmp_path):
    write_job(tmp_path, "job1", 3)
    with Store(tmp_path) as store:
        decider = BatchDecider(store)
        queue = open_batch(store, "tab1", SPEC, decider=decider)
        queue.press(decider, "job1/00", "accept")
        assert queue.relabel_remaining(QueueLabels("bottle", "scratch")) == 2
        queue.press(decider, "job1/01", "accept")
        assert store.get("job1-00").defect_type == "crack" and store.get("job1-01").defect_type == "scratch"


def test_batch_review_reports_the_candidates_it_wrote(tmp_path, capsys):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    Image.fromarray(np.full((48, 48, 3), 150, np.uint8)).save(inputs / "normal.png")
    mask = np.zeros((48, 48), np.uint8)
    mask[12:30, 12:30] = 255
    Image.fromarray(mask).save(inputs / "mask.png")
    jobs = [{"image": "inputs/normal.png", "mask": "inputs/mask.png", "prompt": "a scratch", "seed": s, "count": 2,
             "category": "plate", "defect_type": "scratch"} for s in (1, 2)]
    spec = tmp_path / "jobs.yaml"
    spec.write_text(yaml.safe_dump({"defaults": {"engine": "classic"}, "jobs": jobs}))
    data = tmp_path / "data"
    assert main(["batch", "--spec", str(spec), "--data-dir", str(data), "--review", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "4 candidate(s) written" in err and "sample(s)" not in err
    with Store(data) as store:  # both jobs of the spec are one batch, reviewed as one queue
        (batch,) = list_batches(store)
        assert len(batch.jobs) == 2 and batch.candidates == 4 and batch.decided == 0
        queue = open_batch(store, "tab1", batch.batch)
        assert {e.labels for e in queue.entries} == {QueueLabels("plate", "scratch")}


def test_two_sessions_racing_through_one_batch_in_threads_decide_each_candidate_once(tmp_path):
    count = 16
    write_job(tmp_path, "job1", count)
    with Store(tmp_path) as store:
        decider = BatchDecider(store)
        queues = [open_batch(store, s, SPEC, decider=decider) for s in ("tab1", "tab2")]
        applied = {"tab1": 0, "tab2": 0}

        def review(queue) -> None:
            for _ in range(3 * count):  # each press acts on the shown one; a refusal refreshes and moves on
                if queue.progress().decided == count:
                    return
                outcome = queue.press(decider, queue.current, "accept")
                applied[queue.session] += outcome.applied
                if not outcome.applied:
                    queue.refresh(decider)
                    queue.current = queue.next_undecided(None) or queue.current

        threads = [threading.Thread(target=review, args=(q,)) for q in queues]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert applied["tab1"] + applied["tab2"] == count == len(store)
        owners = {r.session for r in decisions.read_decisions(store, review_summaries(tmp_path)[0]).values()}
        assert owners <= {"tab1", "tab2"} and all(q.progress().decided == count for q in queues)


def test_a_decision_needs_a_session_and_a_real_candidate(tmp_path):
    write_job(tmp_path, "job1", 2)
    with Store(tmp_path) as store:
        job = load_review_job(review_root(tmp_path) / "job1")
        with pytest.raises(InputError, match="session"):
            decisions.reject(store, job, 0, "")
        with pytest.raises(InputError, match="does not exist"):
            decisions.accept(store, job, 2, "tab1", category="c", defect_type="d", note="")
        assert decisions.read_decisions(store, job) == {} and len(store) == 0


def test_a_sample_stored_by_a_batch_run_during_the_accept_is_refused_not_doubled(tmp_path, monkeypatch):
    write_job(tmp_path, "job1", 2)

    def raced(store, job, indices):  # a `batch` run in store mode commits the same id first
        accept_review(store, job.relabelled(category="cli", defect_type="cli", note=""), indices)
        raise InputError("A sample with one of the ids job1-00 is already in the store.")

    with Store(tmp_path) as store:
        job = load_review_job(review_root(tmp_path) / "job1")
        monkeypatch.setattr(decisions, "accept_review", raced)
        with pytest.raises(DecisionRefused, match="outside the review"):
            decisions.accept(store, job, 0, "tab1", category="cap", defect_type="dent", note="")
        assert len(store) == 1 and store.get("job1-00").category == "cli"
        assert decisions.read_decisions(store, job)[0].session == decisions.UNKNOWN_SESSION
