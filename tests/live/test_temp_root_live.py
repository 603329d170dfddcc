"""The live app's private temp root: gone after SIGTERM; after a SIGKILL, removed by the next start
while the root of an app that still runs is kept."""
from __future__ import annotations

import os
import signal
from pathlib import Path

from gradio_client import Client

from tests.helpers.ui_client import files, generate  # noqa: F401 - fixture
from tests.helpers.ui_server import LiveApp, start_app, stop_app


def _start(tmp_path: Path, name: str) -> LiveApp:
    return start_app(tmp_path / name / "data", tmp_path / f"{name}.log", "--engine", "classic",
                     temp_dir=tmp_path / "tmp")


def _own_root(app: LiveApp, others: list[Path]) -> Path:
    [root] = [r for r in app.temp_roots() if r not in others]
    return root


def test_sigterm_removes_the_temp_root_with_session_files_and_uploads(tmp_path: Path, files) -> None:  # noqa: F811
    app = _start(tmp_path, "a")
    try:
        [root] = app.temp_roots()
        generate(Client(app.url, verbose=False), files, files["image"], files["mask"], num=1, reference=False,
                 prompt="a scratch")
        assert list(root.glob("sessions/*/gen*/candidate_*.png")), "the session files live in the root"
        assert (root / "gradio").is_dir(), "Gradio's uploads live in the root too"
        os.killpg(app.process.pid, signal.SIGTERM)
        assert app.process.wait(timeout=20) == -signal.SIGTERM
        assert not root.exists()
        assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == []
    finally:
        stop_app(app.process)


def test_sigkill_root_is_removed_by_the_next_start_and_a_live_root_is_kept(tmp_path: Path) -> None:
    killed, alive, third = _start(tmp_path, "killed"), None, None
    try:
        killed_root = _own_root(killed, [])
        alive = _start(tmp_path, "alive")
        alive_root = _own_root(alive, [killed_root])
        os.killpg(killed.process.pid, signal.SIGKILL)
        killed.process.wait(timeout=20)
        assert killed_root.is_dir(), "nothing runs on SIGKILL: the root stays until the next start"
        third = _start(tmp_path, "third")
        assert not killed_root.exists(), "the next start removes the dead process's root"
        assert alive_root.is_dir(), "a running app's root is never touched"
        assert len(third.temp_roots()) == 2
    finally:
        for app in (killed, alive, third):
            if app is not None:
                stop_app(app.process)
    assert list((tmp_path / "tmp").glob("anomaly_studio_*")) == []
