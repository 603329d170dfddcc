"""Run every test module alone, one pytest process each, to prove none depends on another's leftovers.

    python tests/run_each_module.py [DIR_OR_FILE ...]    # default: every module under tests/

Each module runs with its own fresh TMPDIR (removed afterwards); prints one line per module
(outcome, counts, seconds) and a summary, and exits 1 if any module failed alone.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SUMMARY = re.compile(r"^=+ (.*) in [\d.]+s", re.M)


def modules(paths: list[Path]) -> list[Path]:
    """Every ``test_*.py`` given or below the folders given, sorted."""
    return sorted({p for path in paths for p in ([path] if path.is_file() else path.rglob("test_*.py"))})


def run_alone(module: Path) -> tuple[int, str, float]:
    """(exit code, pytest's summary line, seconds) of one module run in its own process."""
    temp = Path(tempfile.mkdtemp(prefix="run_each_"))
    env = dict(os.environ, TMPDIR=str(temp))
    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(module.relative_to(REPO))],
                              cwd=REPO, env=env, capture_output=True, text=True)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    found = SUMMARY.findall(proc.stdout)
    lines = proc.stdout.strip().splitlines() or ["(no output)"]
    return proc.returncode, found[-1] if found else lines[-1], time.perf_counter() - started


def main(argv: list[str]) -> int:
    folders = [Path(a).resolve() for a in argv] or [TESTS]
    failed = []
    for module in modules(folders):
        code, summary, seconds = run_alone(module)
        ok = code in (0, 5)  # 5: every test skipped or deselected
        print(f"{'ok  ' if ok else 'FAIL'} {module.relative_to(REPO)}: {summary} ({seconds:.1f} s)", flush=True)
        if not ok:
            failed.append(module)
    print(f"{len(failed)} module(s) failed when run alone" + (": " + ", ".join(map(str, failed)) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
