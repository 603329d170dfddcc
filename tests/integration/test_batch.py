"""Batch generation: spec parsing, deterministic job ids, resumability after a kill, sharding, review mode."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from studio.batch import (
    accept_review, distributed_env, find_review_job, generate_mask, job_id_for, list_review_jobs, load_review_job,
    load_spec, review_summaries, review_summary, run_batch, shard,
)
from studio.cli import main
from studio.errors import InputError
from studio.store import Store
from tests.helpers.samples import make_spec

REPO = Path(__file__).resolve().parents[2]


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """id -> (seed, sha256 of the composited image) for a whole store."""
    with Store(root) as store:
        return {r.id: (r.metadata["seed"], hashlib.sha256(r.image_path.read_bytes()).hexdigest())
                for r in store.list()}


def finished_jobs(root: Path) -> int:
    try:
        with sqlite3.connect(f"file:{root / 'index.sqlite'}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM batch_jobs").fetchone()[0]
    except sqlite3.Error:
        return 0


def studio_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "studio", *args]


def run_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}


@pytest.fixture(scope="module")
def spec40(tmp_path_factory) -> Path:
    return make_spec(tmp_path_factory.mktemp("spec40"))


@pytest.fixture(scope="module")
def single_run(spec40, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The 40-job spec run once, in one process, through the CLI."""
    data = tmp_path_factory.mktemp("single") / "data"
    proc = subprocess.run(studio_cmd("batch", "--spec", str(spec40), "--data-dir", str(data)),
                          capture_output=True, text=True, timeout=300, env=run_env(), cwd=REPO)
    return data, proc


# ------------------------------------------------------------------- spec
def test_spec_parsing(tmp_path):
    spec = load_spec(make_spec(tmp_path, jobs=6))
    assert len(spec.jobs) == 6
    job = spec.jobs[0]
    assert job.image == tmp_path / "inputs" / "normal0.png" and job.mask is None
    assert job.mask_generator == {"type": "ellipse", "seed": 0, "count": 1, "min_size": 0.06, "max_size": 0.2}
    assert job.reference == tmp_path / "inputs" / "ref.png" and job.reference_text == "a dark dent"
    assert job.engine == "classic" and job.params == {}  # the classic engine takes no parameters
    assert spec.jobs[1].mask == tmp_path / "inputs" / "mask.png"
    assert spec.jobs[1].sample_ids() == [f"{spec.jobs[1].job_id}-00", f"{spec.jobs[1].job_id}-01"]
    (tmp_path / "jobs.json").write_text(json.dumps({"jobs": [{"image": "inputs/normal0.png", "mask": "inputs/mask.png",
                                                              "prompt": "x", "params": {"strength": 0.5}}]}))
    (jjob,) = load_spec(tmp_path / "jobs.json").jobs
    assert jjob.params["strength"] == 0.5 and jjob.count == 1 and jjob.engine == "auto"
    assert jjob.seed == int(jjob.job_id[:8], 16)  # no seed given: derived from the job, still deterministic
    for where in ({"blur_sigma": 2}, {"params": {"blur_sigma": 2}}):  # one its engine does not use: refused
        (tmp_path / "jobs.json").write_text(json.dumps({"jobs": [{"image": "inputs/normal0.png", "engine": "classic",
                                                                  "mask": "inputs/mask.png", **where}]}))
        with pytest.raises(InputError, match="does not use the parameter"):
            load_spec(tmp_path / "jobs.json")


@pytest.mark.parametrize("jobs, message", [
    ("notalist", "'jobs:' list"),
    ([], "no jobs"),
    (["image.png"], "must be a mapping"),
    ([{"mask": "inputs/mask.png", "prompt": "x"}], "'image'"),
    ([{"image": "inputs/normal0.png", "prompt": "x"}], "exactly one of 'mask' and 'mask_generator'"),
    ([{"image": "inputs/missing.png", "mask": "inputs/mask.png"}], "does not exist"),
    ([{"image": "inputs/normal0.png", "mask": "inputs/mask.png", "colour": "red"}], "unknown key"),
    ([{"image": "inputs/normal0.png", "mask": "inputs/mask.png", "count": 0}], "count"),
    ([{"image": "inputs/normal0.png", "mask": "inputs/mask.png", "seed": -1}], "seed"),
    ([{"image": "inputs/normal0.png", "mask": "inputs/mask.png", "strength": 3}], "strength"),
    ([{"image": "inputs/normal0.png", "mask_generator": {"type": "star"}}], "mask_generator"),
    ([{"image": "inputs/normal0.png", "mask": "inputs/mask.png", "reference_mask": "inputs/mask.png"}], "reference"),
    ([{"image": "inputs/normal0.png", "mask": "inputs/mask.png", "engine": "dalle"}], "unknown engine"),
    ([{"image": "inputs/normal0.png", "mask": "inputs/mask.png", "params": [1, 2]}], "'params' must be a mapping"),
    ([{"image": "inputs/normal0.png", "mask_generator": {"type": "ellipse", "min_size": "big"}}], "min_size"),
    ([{"image": "inputs/normal0.png", "mask_generator": {"type": "ellipse", "max_size": 0.9}}], "max_size"),
])
def test_spec_errors_name_the_job(tmp_path, jobs, message):
    make_spec(tmp_path, jobs=1)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"jobs": jobs}))
    with pytest.raises(InputError, match=message):
        load_spec(tmp_path / "bad.yaml")
    (tmp_path / "broken.yaml").write_text("jobs: [\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_spec(tmp_path / "broken.yaml")


def test_job_ids_follow_content_and_position(tmp_path):
    a = load_spec(make_spec(tmp_path, jobs=5))
    b = load_spec(tmp_path / "jobs.yaml")
    assert [j.job_id for j in a.jobs] == [j.job_id for j in b.jobs]
    assert len({j.job_id for j in a.jobs}) == 5
    entry = {"image": "x.png", "mask": "m.png", "prompt": "p"}
    assert job_id_for(entry, 0) != job_id_for(entry, 1) != job_id_for({**entry, "seed": 1}, 1)
    assert job_id_for(entry, 3) == job_id_for(dict(reversed(entry.items())), 3)


def test_shards_are_disjoint_and_cover(tmp_path, monkeypatch):
    jobs = load_spec(make_spec(tmp_path, jobs=11)).jobs
    for world in (1, 2, 3, 5):
        parts = [shard(jobs, r, world) for r in range(world)]
        ids = [j.job_id for p in parts for j in p]
        assert sorted(ids) == sorted(j.job_id for j in jobs) and len(ids) == len(set(ids))
    with pytest.raises(InputError):
        shard(jobs, 2, 2)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert distributed_env() == (0, 1, 0)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed_env() == (3, 4, 1)


def test_generated_masks_are_seeded():
    gen = {"type": "ellipse", "seed": 5, "count": 2, "min_size": 0.1, "max_size": 0.2}
    a, b = generate_mask(gen, (80, 60)), generate_mask(gen, (80, 60))
    assert a.shape == (60, 80) and a.dtype == bool and np.array_equal(a, b) and 0 < a.mean() < 0.5
    assert not np.array_equal(a, generate_mask({**gen, "seed": 6}, (80, 60)))
    assert generate_mask({**gen, "type": "rectangle"}, (80, 60)).any()


# ------------------------------------------------------------------- running
def test_forty_jobs_with_progress_bar(single_run, spec40):
    data, proc = single_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "40/40" in proc.stderr and "job" in proc.stderr  # the tqdm bar
    assert "40 job(s) done" in proc.stderr
    expected = {sid for job in load_spec(spec40).jobs for sid in job.sample_ids()}
    snap = snapshot(data)
    assert set(snap) == expected and len(snap) == 80
    with Store(data) as store:
        stats = store.stats()
        assert stats["by_defect_type"] == {"crack": 20, "hole": 20, "scratch": 20, "stain": 20}
        assert stats["batch_jobs"] == 40
        rec = store.get(load_spec(spec40).jobs[5].sample_ids()[1])
        assert rec.reference_path is not None and rec.metadata["batch_index"] == 5
        assert rec.metadata["seed"] == 1006 and rec.metadata["engine"] == "classic"
    again = subprocess.run(studio_cmd("batch", "--spec", str(spec40), "--data-dir", str(data)),
                           capture_output=True, text=True, timeout=300, env=run_env(), cwd=REPO)
    assert again.returncode == 0 and "40 already finished" in again.stderr
    assert snapshot(data) == snap


def test_kill_halfway_then_resume(single_run, spec40, tmp_path):
    data = tmp_path / "data"
    proc = subprocess.Popen(studio_cmd("batch", "--spec", str(spec40), "--data-dir", str(data), "--no-progress"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=run_env(), cwd=REPO)
    deadline = time.monotonic() + 120
    while finished_jobs(data) < 8 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.003)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    done_at_kill = finished_jobs(data)
    assert 8 <= done_at_kill < 40, f"kill landed after {done_at_kill} jobs"
    resumed = subprocess.run(studio_cmd("batch", "--spec", str(spec40), "--data-dir", str(data)),
                             capture_output=True, text=True, timeout=300, env=run_env(), cwd=REPO)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{40 - done_at_kill} job(s) done, {done_at_kill} already finished" in resumed.stderr
    # exactly the samples (ids, seeds and pixels) of an uninterrupted run: nothing twice, nothing missing
    assert snapshot(data) == snapshot(single_run[0])
    with Store(data) as store:
        assert len(list((data / "samples").iterdir())) == len(store) == 80


def test_accelerate_two_processes_match_one(single_run, spec40, tmp_path):
    accelerate = Path(sys.executable).parent / "accelerate"
    if not accelerate.exists():
        pytest.skip("accelerate is not installed in this environment")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = tmp_path / "data"
    # On a CPU-only machine `--multi_gpu` is what makes accelerate spawn K processes (through torchrun);
    # `--cpu` alone starts one. Each process reads RANK / WORLD_SIZE and takes its shard.
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
           "-m", "studio", "batch", "--spec", str(spec40), "--data-dir", str(data)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=run_env(), cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(shard 1/2): 20 job(s) done" in proc.stderr and "(shard 2/2): 20 job(s) done" in proc.stderr
    assert snapshot(data) == snapshot(single_run[0])


def test_manual_shards_fill_one_store(spec40, single_run, tmp_path):
    data = tmp_path / "data"
    spec = load_spec(spec40)
    results = [run_batch(spec, data, rank=r, world=3, show_progress=False) for r in range(3)]
    assert sorted(len(r.done) for r in results) == [13, 13, 14]
    assert snapshot(data) == snapshot(single_run[0])


def test_failed_job_does_not_stop_the_batch(tmp_path, capsys):
    spec_path = make_spec(tmp_path, jobs=4)
    (tmp_path / "inputs" / "normal1.png").write_bytes(b"not a png at all")
    spec = load_spec(spec_path)
    result = run_batch(spec, tmp_path / "data", show_progress=False)
    assert len(result.done) == 2 and len(result.failed) == 2
    assert all("could not" in m or "not an image" in m for _, m in result.failed)
    assert main(["batch", "--spec", str(spec_path), "--data-dir", str(tmp_path / "data"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "2 already finished, 2 failed" in err and "error: job 2" in err
    with pytest.raises(InputError):
        run_batch(spec, tmp_path / "data", show_progress=False, fail_fast=True)


def test_review_mode(tmp_path):
    spec_path = make_spec(tmp_path, jobs=3, count=3)
    data = tmp_path / "data"
    result = run_batch(load_spec(spec_path), data, review=True, show_progress=False)
    assert len(result.done) == 3 and result.sample_ids == []
    folders = list_review_jobs(data)
    assert sorted(f.name for f in folders) == sorted(j.job_id for j in load_spec(spec_path).jobs)
    names = {p.name for p in folders[0].iterdir()}
    assert {"candidate_00.png", "candidate_00_mask.png", "candidate_00.json", "candidate_02.png",
            "normal.png", "job.json"} <= names
    job = load_review_job(data / "review" / load_spec(spec_path).jobs[0].job_id)
    assert len(job.candidates) == 3 and job.reference is not None and job.reference_mask is not None
    assert job.defect_type == "scratch" and job.candidates[0].mask.max() == 255
    with Store(data) as store:
        assert len(store) == 0
        ids = accept_review(store, job, [0, 2])
        assert ids == [f"{job.job_id}-00", f"{job.job_id}-02"]
        assert accept_review(store, job, [0]) == []  # already accepted
        assert store.get(ids[1]).defect_type == "scratch" and store.get(ids[1]).reference_path is not None
    again = run_batch(load_spec(spec_path), data, review=True, show_progress=False)
    assert len(again.skipped) == 3 and not again.done
    auto = run_batch(load_spec(spec_path), data, show_progress=False)  # accepting the rest skips the reviewed ones
    assert len(auto.done) == 3 and not auto.failed
    with Store(data) as store:
        assert len(store) == 9 and store.get(ids[1]).metadata["batch_job"] == job.job_id
    shutil.rmtree(data / "review")
    assert main(["batch", "--spec", str(spec_path), "--data-dir", str(data), "--review", "--no-progress"]) == 0
    assert list_review_jobs(data) == []  # finished jobs stay finished, even after the folders were cleared


def test_review_summary_find_and_partial_cleanup(tmp_path):
    spec_path = make_spec(tmp_path, jobs=2, count=2)
    data = tmp_path / "data"
    run_batch(load_spec(spec_path), data, review=True, show_progress=False)
    jobs = load_spec(spec_path).jobs
    summaries = review_summaries(data)
    assert sorted(s.job_id for s in summaries) == sorted(j.job_id for j in jobs)
    first = next(s for s in summaries if s.job_id == jobs[0].job_id)
    assert (first.candidates, first.defect_type, first.prompt) == (2, "scratch", jobs[0].prompt)
    assert find_review_job(data, jobs[0].job_id) == first.folder
    with pytest.raises(InputError, match="no batch review job"):
        find_review_job(data, "../../etc")
    (first.folder / "job.json").write_text("{not json")
    with pytest.raises(InputError, match="not a batch review folder"):
        review_summary(first.folder)
    assert [s.job_id for s in review_summaries(data)] == [jobs[1].job_id]  # the unreadable one is left out
    partial = data / "review" / f".{jobs[0].job_id}.partial-0000"
    partial.mkdir()
    (partial / "candidate_00.png").write_bytes(b"half")
    with Store(data) as store:  # opening with no other process recovers: the partial folder goes
        assert store.last_recovery.temp_entries >= 1
    assert not partial.exists() and list_review_jobs(data)


def test_accepting_one_reviewed_candidate_reads_only_that_one(tmp_path):
    spec_path = make_spec(tmp_path, jobs=1, count=3)
    data = tmp_path / "data"
    run_batch(load_spec(spec_path), data, review=True, show_progress=False)
    folder = list_review_jobs(data)[0]
    for name in ("candidate_01.png", "candidate_02_mask.png"):  # the others may even be unreadable
        (folder / name).write_bytes(b"not a png")
    job = load_review_job(folder).relabelled(category="cap", defect_type="dent", note="checked")
    with Store(data) as store:
        assert accept_review(store, job, [0]) == [f"{job.job_id}-00"]
        rec = store.get(f"{job.job_id}-00")
        assert (rec.category, rec.defect_type, rec.note) == ("cap", "dent", "checked")
        with pytest.raises(InputError, match="candidate 1 image"):
            accept_review(store, job, [1])
        with pytest.raises(InputError, match="does not exist"):
            accept_review(store, job, [3])
        assert len(store) == 1


def test_bad_shard_flag(tmp_path, capsys):
    spec_path = make_spec(tmp_path, jobs=1)
    assert main(["batch", "--spec", str(spec_path), "--data-dir", str(tmp_path / "d"), "--shard", "2/2"]) == 2
    assert "RANK must be" in capsys.readouterr().err
