"""An acknowledged accept is never lost: a writer killed with SIGKILL at random moments, 24 times.

The child process adds samples in a loop (one thread, or three threads at once) and
prints each id after ``add`` returned. After every kill the parent opens the store and
checks: every printed id is intact (row, files, exact pixels, metadata), every visible
row is whole, and recovery has left no debris behind.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from studio.store import Store
from tests.helpers.samples import make_sample, read_png

REPO = Path(__file__).resolve().parents[2]
KILLS = 24

CHILD = r"""
import sys, threading
sys.path.insert(0, {repo!r})
from tests.helpers.samples import make_sample
from studio.store import Store

root, start, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = Store(root)
lock = threading.Lock()

def loop(t):
    i = start + t
    while True:
        cand, normal = make_sample(i, size=24, normal_value=i % 5)
        sid = store.add(cand, normal_image=normal, category="c%d" % (i % 3), defect_type="d", note=str(i))
        with lock:
            sys.stdout.write("%s %d\n" % (sid, i))
            sys.stdout.flush()
        i += threads

workers = [threading.Thread(target=loop, args=(t,), daemon=True) for t in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
"""


def read_acks(proc: subprocess.Popen, acks: dict[str, int], stop: threading.Event) -> None:
    for line in proc.stdout:  # only whole lines count: the add had returned before the print
        if not line.endswith("\n"):
            break
        sid, i = line.split()
        acks[sid] = int(i)
        if stop.is_set():
            break


def check_store(root: Path, acks: dict[str, int]) -> int:
    """Verify the store after a kill; returns how many debris entries recovery removed."""
    with Store(root) as store:
        assert store.last_recovery.skipped is None
        assert not store.last_recovery.damaged_rows
        records = {r.id: r for r in store.list()}
        missing = set(acks) - set(records)
        assert not missing, f"acknowledged samples lost: {sorted(missing)[:5]}"
        for rec in records.values():  # every visible sample is whole
            i = int(rec.note)
            cand, normal = make_sample(i, size=24, normal_value=i % 5)
            assert np.array_equal(read_png(rec.image_path), cand.image)
            assert np.array_equal(read_png(rec.mask_path), cand.mask)
            assert np.array_equal(read_png(rec.normal_path), normal)
            assert json.loads((rec.image_path.parent / "metadata.json").read_text())["k"] == i
            if rec.id in acks:
                assert acks[rec.id] == i
        assert list((root / "tmp").iterdir()) == []
        assert {p.name for p in (root / "samples").iterdir()} == {r.image_path.parent.name for r in records.values()}
        used = {r.normal_path.name for r in records.values()}
        assert {p.name for p in (root / "normals").iterdir()} == used
        return store.last_recovery.cleaned


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_never_loses_an_acknowledged_sample(tmp_path):
    root = tmp_path / "data"
    rng = random.Random(1234)
    code = CHILD.format(repo=str(REPO))
    acks: dict[str, int] = {}
    interrupted = 0  # kills that landed inside an add (recovery had debris to remove)
    start = 0
    for kill in range(KILLS):
        threads = 1 if kill % 2 == 0 else 3
        proc = subprocess.Popen([sys.executable, "-c", code, str(root), str(start), str(threads)],
                                stdout=subprocess.PIPE, text=True, bufsize=1)
        stop = threading.Event()
        reader = threading.Thread(target=read_acks, args=(proc, acks, stop), daemon=True)
        before = len(acks)
        reader.start()
        want = rng.randint(1, 6)
        deadline = time.monotonic() + 60
        while len(acks) - before < want and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        assert proc.poll() is None, "the writer died on its own"
        time.sleep(rng.uniform(0, 0.02))  # land somewhere inside a later add
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        reader.join(timeout=30)
        interrupted += check_store(root, acks) > 0
        start += 1000
    assert len(acks) >= KILLS
    assert interrupted >= KILLS // 4, f"only {interrupted} kills landed inside an add"
