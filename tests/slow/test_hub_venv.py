"""What a Space builder does: a fresh venv, CPU torch, then only ``requirements.txt``; ``python app.py`` answers 200."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.helpers.ui_server import free_port, stop_app, wait_http_ok

REPO = Path(__file__).resolve().parents[2]


def _requirements() -> list[str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_requirements_are_the_packages_runtime_dependencies():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert _requirements() == project["dependencies"]


def test_readme_front_matter_is_a_valid_space_config():
    yaml = pytest.importorskip("yaml")
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md must start with the Space's YAML front matter"
    meta = yaml.safe_load(match.group(1))
    assert meta["sdk"] == "gradio" and (REPO / meta["app_file"]).is_file()
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(meta["sdk_version"]))
    gradio_pin = next(r for r in _requirements() if r.startswith("gradio>"))
    low, high = re.findall(r"[\d.]+", gradio_pin)
    version = tuple(int(x) for x in str(meta["sdk_version"]).split("."))
    assert tuple(int(x) for x in low.split(".")) <= version < tuple(int(x) for x in high.split("."))
    assert len(meta.get("short_description", "")) <= 60


@pytest.mark.slow
def test_a_fresh_venv_with_cpu_torch_and_requirements_txt_starts_the_app(tmp_path):
    import torch

    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONUNBUFFERED": "1"})
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, env=env, timeout=120)
    python = venv / "bin" / "python"
    torch_spec = os.environ.get("TORCH_SPEC") or f"torch=={torch.__version__.split('+')[0]}"
    # --no-compile halves the run (no .pyc for all of torch); the app compiles what it imports.
    for args in ([torch_spec], ["-r", str(REPO / "requirements.txt")]):
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-compile", *args], env=env,
                              timeout=1200, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]

    port = free_port()
    env.update({"SPACE_ID": "me/anomaly-studio", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                "HF_HUB_CACHE": str(tmp_path / "cache"), "ANOMALY_STUDIO_WEIGHTS": str(tmp_path / "no-weights")})
    log = tmp_path / "app.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([str(python), "app.py", "--host", "127.0.0.1", "--port", str(port),
                                    "--data-dir", str(tmp_path / "data")], cwd=REPO, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/", process, timeout=120)
    except Exception:
        raise AssertionError(log.read_text(errors="replace")[-4000:]) from None
    finally:
        stop_app(process)
