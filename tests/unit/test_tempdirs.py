"""Private temp roots: stamped with their owner, removed at exit and on signals, swept when the owner died."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from studio import tempdirs

REPO = Path(__file__).resolve().parents[2]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _root(parent: Path, name: str, stamp: dict | None, age_s: float = 0.0) -> Path:
    root = parent / name
    root.mkdir()
    if stamp is not None:
        (root / tempdirs.STAMP).write_text(json.dumps(stamp))
    if age_s:
        then = time.time() - age_s
        os.utime(root, (then, then))
    return root


def test_sweep_removes_only_roots_whose_owner_is_gone(tmp_path: Path) -> None:
    me = {"pid": os.getpid(), "started": tempdirs.process_start_time(os.getpid())}
    dead = _root(tmp_path, "app_dead", {"pid": _dead_pid(), "started": None})
    reused = _root(tmp_path, "app_reused", {"pid": os.getpid(), "started": "1"})  # same pid, another process
    alive = _root(tmp_path, "app_alive", me)
    starting = _root(tmp_path, "app_starting", None)  # no stamp yet: another process just made it
    abandoned = _root(tmp_path, "app_old", None, age_s=tempdirs.UNSTAMPED_GRACE_S + 60)
    other = _root(tmp_path, "other_dead", {"pid": _dead_pid(), "started": None})  # another prefix
    removed = tempdirs.sweep_stale("app_", tmp_path)
    assert sorted(removed) == sorted([dead, reused, abandoned])
    assert alive.is_dir() and starting.is_dir() and other.is_dir()
    assert not dead.exists() and not reused.exists() and not abandoned.exists()


def test_an_unreadable_stamp_is_left_alone(tmp_path: Path) -> None:
    odd = _root(tmp_path, "app_odd", None)
    (odd / tempdirs.STAMP).write_text("{not json")
    assert tempdirs.sweep_stale("app_", tmp_path) == [] and odd.is_dir()


SCRIPT = """
import os, signal, sys, time
from studio.tempdirs import private_root
if sys.argv[2:] == ["ignore-sigint"]:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell starts a background job
else:  # a normal start, whatever the test process inherited
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
root = private_root("cleanup_probe_")
(root / "work.txt").write_text("x")
print(root, flush=True)
sys.stdin.readline()  # the test looks at the root, then lets the process go on
print("root kept" if root.is_dir() else "root gone", flush=True)
mode = sys.argv[1]
if mode == "exit":
    sys.exit(0)
if mode == "raise":
    raise RuntimeError("boom")
"""


def _run_probe(tmp_path: Path, mode: str, signum: int | None = None, *extra: str) -> tuple[Path, int]:
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, mode, *extra], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    root = Path(proc.stdout.readline().strip())
    assert root.is_dir() and root.parent == tmp_path and (root / tempdirs.STAMP).is_file()
    if signum is not None:
        proc.send_signal(signum)  # while it waits on its standard input
    else:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    code = proc.wait(timeout=30)
    proc.stdin.close()
    proc.stdout.close()
    return root, code


def test_root_removed_on_exit_error_sigterm_and_sigint(tmp_path: Path) -> None:
    import signal

    # an uncaught KeyboardInterrupt ends Python by SIGINT too, so both signals show in the exit code
    for mode, signum, expected in [("exit", None, 0), ("raise", None, 1), ("wait", signal.SIGTERM, -signal.SIGTERM),
                                   ("wait", signal.SIGINT, -signal.SIGINT)]:
        root, code = _run_probe(tmp_path, mode, signum)
        assert code == expected, (mode, signum, code)
        assert not root.exists(), f"{mode}/{signum}: the root outlived its process"


def test_an_ignored_sigint_stays_ignored_and_keeps_the_root(tmp_path: Path) -> None:
    import signal

    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, "exit", "ignore-sigint"], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    root = Path(proc.stdout.readline().strip())
    proc.send_signal(signal.SIGINT)  # ignored, as before the studio started: it goes on working in its root
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "root kept"  # the signal, handled before the line was read
    assert proc.wait(timeout=30) == 0
    proc.stdin.close()
    proc.stdout.close()
    assert not root.exists()  # removed at its normal exit, not by the ignored signal


def test_sigkill_leaves_a_root_that_the_next_start_removes(tmp_path: Path) -> None:
    import signal

    killed, code = _run_probe(tmp_path, "wait", signal.SIGKILL)
    assert code == -signal.SIGKILL and killed.is_dir()  # nothing can run on SIGKILL
    survivor, _ = _run_probe(tmp_path, "exit")  # the next process with that prefix sweeps it
    assert not killed.exists() and not survivor.exists()
