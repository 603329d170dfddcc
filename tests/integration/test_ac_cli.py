"""`anomaly-studio generate --engine anomalycontrol`: tiny end to end offline; missing weights exit 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio import config
from studio.cli import main

pytestmark = pytest.mark.timeout(300)


def _inputs(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    paths = {name: folder / f"{name}.png" for name in ("image", "mask", "ref", "ref_mask")}
    image = np.clip(rng.normal(140, 12, (200, 260, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(image).save(paths["image"])
    mask = np.zeros((200, 260), np.uint8)
    mask[80:120, 90:170] = 255
    Image.fromarray(mask).save(paths["mask"])
    Image.fromarray(rng.integers(0, 256, (120, 150, 3), dtype=np.uint8)).save(paths["ref"])
    ref_mask = np.zeros((120, 150), np.uint8)
    ref_mask[30:80, 40:110] = 255
    Image.fromarray(ref_mask).save(paths["ref_mask"])
    return paths


def test_generate_with_tiny_weights_end_to_end_offline(tmp_path):
    paths = _inputs(tmp_path)
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "generate", "--engine", "anomalycontrol", "--weights", "tiny",
         "--image", str(paths["image"]), "--mask", str(paths["mask"]), "--ref", str(paths["ref"]),
         "--ref-mask", str(paths["ref_mask"]), "--ref-text", "a scratch on brushed steel",
         "--prompt", "a long thin scratch", "--num", "2", "--seed", "7", "--steps", "20", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=240, cwd=config.REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for i in range(2):
        image = np.asarray(Image.open(out / f"candidate_{i:02d}.png"))
        label = np.asarray(Image.open(out / f"candidate_{i:02d}_mask.png"))
        assert image.shape == (200, 260, 3) and label.shape == (200, 260)
        assert np.array_equal(label > 0, np.asarray(Image.open(paths["mask"])) > 0)
        meta = json.loads((out / f"candidate_{i:02d}.json").read_text())
        assert meta["engine"] == "anomalycontrol" and meta["weights"] == "tiny" and meta["seed"] == 7 + i
    attention = json.loads((out / "attention.json").read_text())
    fractions = attention["inmask_fraction"]
    assert len(fractions) == 6 and fractions[-1] > fractions[0]
    assert attention["note"] == "tiny random model: the maps show the mechanism only"
    for step in range(6):
        heat = Image.open(out / f"attention_step_{step:02d}.png")
        assert heat.size == (150, 120)


def test_missing_weights_exit_2_with_one_error(tmp_path, capsys):
    paths = _inputs(tmp_path)
    empty = tmp_path / "no-weights"
    empty.mkdir()
    code = main(["generate", "--engine", "anomalycontrol", "--weights", str(empty), "--image", str(paths["image"]),
                 "--mask", str(paths["mask"]), "--prompt", "a dent", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: The anomalycontrol engine's weights are incomplete")
    assert err.count("error:") == 1 and "Traceback" not in err
    assert "hf download stable-diffusion-v1-5/stable-diffusion-inpainting" in err
    code = main(["generate", "--engine", "anomalycontrol", "--weights", "nonsense", "--image", str(paths["image"]),
                 "--mask", str(paths["mask"]), "--prompt", "a dent", "--out", str(tmp_path / "out")])
    assert code == 2 and "Unknown weights 'nonsense'" in capsys.readouterr().err


def test_label_flag_chooses_sketch_or_changed_pixels(tmp_path):
    paths = _inputs(tmp_path)
    common = ["generate", "--engine", "anomalycontrol", "--weights", "tiny", "--image", str(paths["image"]),
              "--mask", str(paths["mask"]), "--prompt", "a dent", "--steps", "4", "--num", "1"]
    sketch = np.asarray(Image.open(paths["mask"])) > 0
    labels = {}
    for mode in ("sketch", "changed"):
        out = tmp_path / mode
        assert main([*common, "--label", mode, "--out", str(out)]) == 0
        meta = json.loads((out / "candidate_00.json").read_text())
        assert meta["label"]["mode"] == mode
        labels[mode] = np.asarray(Image.open(out / "candidate_00_mask.png")) > 0
    assert np.array_equal(labels["sketch"], sketch)
    assert labels["changed"].any() and not (labels["changed"] & ~sketch).any()
    assert labels["changed"].sum() < sketch.sum()
