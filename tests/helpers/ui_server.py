"""Start and stop a live ``python app.py`` on a free port with a temporary data folder.

Import the fixture into a test module (``from tests.helpers.ui_server import live_app``) or use
:func:`start_app` directly. One server per test module keeps the suite fast.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


@dataclass
class LiveApp:
    url: str
    data_dir: Path
    process: subprocess.Popen
    log_path: Path
    startup_s: float
    #: The app's own TMPDIR (inside the test's folder): its private temp root lies in here.
    temp_dir: Path

    def temp_roots(self) -> list[Path]:
        """The app's private temp roots (one while it runs, none once it has stopped)."""
        return sorted(self.temp_dir.glob("anomaly_studio_*"))

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http_ok(url: str, process: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers 200 (or the process dies / the time is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the app exited with code {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer HTTP 200 within {timeout:.0f} s")


def start_app(data_dir: Path, log_path: Path, *extra: str, timeout: float = 90.0,
              env_extra: dict[str, str] | None = None, temp_dir: Path | None = None) -> LiveApp:
    """Run ``app.py`` on a free loopback port; returns once the page answers HTTP 200.

    The app gets its own TMPDIR (``temp_dir``, default a ``tmp`` folder beside ``data_dir``), so
    everything it writes to a temp folder stays inside the test's folder and can be checked.
    """
    port = free_port()
    env = dict(os.environ)
    env.update({"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    env.pop("GRADIO_SERVER_PORT", None)
    env.pop("GRADIO_TEMP_DIR", None)
    env["TMPDIR"] = str(temp_dir or data_dir.parent / "tmp")
    env.update(env_extra or {})
    temp_dir = Path(env["TMPDIR"])
    temp_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(data_dir), *extra],
        cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log_file.close()
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_http_ok(url, process, timeout)
    except Exception:
        stop_app(process)
        raise RuntimeError(f"app.py did not start:\n{log_path.read_text(errors='replace')[-4000:]}") from None
    return LiveApp(url, data_dir, process, log_path, time.perf_counter() - started, temp_dir)


def stop_app(process: subprocess.Popen) -> None:
    """SIGTERM the app (its own process group), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


def live_app_fixture(*extra: str, env: dict[str, str] | None = None):
    """A module-scoped fixture running ``app.py`` with ``extra`` command-line arguments."""

    @pytest.fixture(scope="module")
    def _live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
        folder = tmp_path_factory.mktemp("studio")
        app = start_app(folder / "data", folder / "app.log", *extra, env_extra=env)
        try:
            yield app
        finally:
            stop_app(app.process)
        assert app.process.returncode is not None
        assert not app.temp_roots(), f"the app left its temp root behind: {app.temp_roots()}"

    return _live


#: The default live app: classic engine, fresh data folder, a 2 MB upload limit (to test it cheaply).
UPLOAD_LIMIT = 2 * 1024 * 1024
live_app = live_app_fixture("--engine", "classic", env={"ANOMALY_STUDIO_MAX_FILE_BYTES": str(UPLOAD_LIMIT)})
