"""Batch review decisions on disk: shared by sessions and processes, durable across restarts, undo only
one's own, a batch's jobs listed with their progress, and ``batch --review`` counting what it wrote."""
from __future__ import annotations

import multiprocessing
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
from studio.review.batch import list_batches
from studio.store import Store
from studio.types import Candidate

SPEC = "/specs/line3.yaml"


def write_job(data: Path, job_id: str, count: int = 3, *, spec: str = SPEC, category: str = "bottle",
              defect_type: str = "crack") -> Path:
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
    return write_review_job(review_root(data), job_id, candidates, normal, None, None,
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


def test_batches_list_their_jobs_with_progress_and_finished_jobs(tmp_path):
    write_job(tmp_path, "job1", 2, category="bottle", defect_type="crack")
    write_job(tmp_path, "job2", 3, category="cap", defect_type="dent")
    write_job(tmp_path, "other", 2, spec="/specs/elsewhere.yaml")
    with Store(tmp_path) as store:
        batches = {b.batch: b for b in list_batches(store)}
        assert set(batches) == {SPEC, "/specs/elsewhere.yaml"} and batches[SPEC].candidates == 5
        assert batches[SPEC].jobs == ["job1", "job2"] and batches[SPEC].decided == 0
        job1, job2 = (load_review_job(review_root(tmp_path) / j) for j in ("job1", "job2"))
        for i in range(2):
            decisions.accept(store, job1, i, "tab1", category="bottle", defect_type="crack", note="")
        decisions.reject(store, job2, 0, "tab1")
        listed = {b.batch: b for b in list_batches(store)}[SPEC]
        assert listed.decided == 3 and listed.finished_jobs == ["job1"] and not listed.finished
        assert listed.progress == {"job1": (2, 2), "job2": (1, 3)}


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
    with Store(data) as store:  # both jobs of the spec are one batch
        (batch,) = list_batches(store)
        assert len(batch.jobs) == 2 and batch.candidates == 4 and batch.decided == 0
        assert batch.progress == {job: (0, 2) for job in batch.jobs}


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
