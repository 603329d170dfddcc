"""``anomaly-studio generate --engine classic``: files written, byte-identical per seed,
reference paths, engine parameters recorded, user errors exit 2 with one line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from studio import config
from studio.cli import main as cli_main
from studio.imaging import load_image, load_mask

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((config.ASSETS_DIR / "manifest.json").read_text(encoding="utf-8"))
NORMAL = MANIFEST["normal"][0]
REFERENCE = MANIFEST["references"][0]


def asset(path: str) -> str:
    return str(config.ASSETS_DIR / path)


def generate(out: Path, *extra: str, seed: int = 3, num: int = 2) -> int:
    return cli_main(["generate", "--engine", "classic", "--image", asset(NORMAL["image"]),
                     "--mask", asset(NORMAL["mask"]), "--prompt", NORMAL["prompt"],
                     "--num", str(num), "--seed", str(seed), "--out", str(out), *extra])


def read(out: Path, i: int) -> tuple[bytes, bytes, dict]:
    stem = out / f"candidate_{i:02d}"
    return (Path(f"{stem}.png").read_bytes(), Path(f"{stem}_mask.png").read_bytes(),
            json.loads(Path(f"{stem}.json").read_text(encoding="utf-8")))


def test_generate_writes_candidates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert generate(tmp_path / "refused", "--steps", "30") == 2  # the classic engine uses no --steps
    assert "does not use the parameter(s) steps" in capsys.readouterr().err
    assert generate(out) == 0
    assert "wrote 2 candidate(s)" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [
        "candidate_00.json", "candidate_00.png", "candidate_00_mask.png",
        "candidate_01.json", "candidate_01.png", "candidate_01_mask.png",
    ]
    image = load_image(asset(NORMAL["image"]))
    normal_mask = load_mask(asset(NORMAL["mask"]), (image.shape[1], image.shape[0]))
    for i in range(2):
        candidate = load_image(out / f"candidate_{i:02d}.png")
        label = load_image(out / f"candidate_{i:02d}_mask.png")[..., 0]
        assert candidate.shape == image.shape and label.shape == normal_mask.shape
        assert set(np.unique(label)) <= {0, 255} and label.any()
        meta = read(out, i)[2]
        assert meta["engine"] == "classic" and meta["weights"] == "none" and meta["seed"] == 3 + i
        assert meta["generator"] == "scratch"  # the asset's suggested prompt is "a dark scratch"
        assert meta["params"] == {}  # nothing it does not use is recorded
        assert meta["sha256"]["image"] and meta["version"]


def test_same_seed_byte_identical_files(tmp_path: Path) -> None:
    assert generate(tmp_path / "a") == 0
    assert generate(tmp_path / "b") == 0
    assert generate(tmp_path / "c", seed=4) == 0
    for i in range(2):
        png_a, mask_a, meta_a = read(tmp_path / "a", i)
        png_b, mask_b, meta_b = read(tmp_path / "b", i)
        assert png_a == png_b and mask_a == mask_b
        meta_a.pop("created_at"), meta_b.pop("created_at")
        assert meta_a == meta_b
    # seed 4 candidate 0 is seed 3 candidate 1; seed 3 candidate 0 is not repeated
    assert read(tmp_path / "c", 0)[0] == read(tmp_path / "a", 1)[0]
    assert read(tmp_path / "a", 0)[0] != read(tmp_path / "a", 1)[0]


def test_reference_with_and_without_mask(tmp_path: Path) -> None:
    ref = ["--ref", asset(REFERENCE["image"]), "--ref-text", REFERENCE["text"]]
    assert generate(tmp_path / "masked", *ref, "--ref-mask", asset(REFERENCE["mask"]), num=1) == 0
    assert generate(tmp_path / "estimated", *ref, num=1) == 0
    masked, estimated = read(tmp_path / "masked", 0)[2], read(tmp_path / "estimated", 0)[2]
    assert masked["generator"] == estimated["generator"] == "reference"
    assert masked["reference_mask_estimated"] is False and estimated["reference_mask_estimated"] is True
    assert masked["reference_text"] == REFERENCE["text"]
    assert not (tmp_path / "masked" / "attention.json").exists(), "the classic engine has no attention maps"


@pytest.mark.parametrize("args,phrase", [
    (["--ref-mask", "REFMASK"], "--ref-mask needs --ref"),
    (["--num", "0"], "number of candidates"),
    (["--seed", "-1"], "seed"),
    (["--strength", "7"], "strength"),
    (["--engine", "nonsense"], "Unknown engine"),
])
def test_bad_arguments_exit_2(args: list[str], phrase: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    args = [asset(REFERENCE["mask"]) if a == "REFMASK" else a for a in args]
    code = cli_main(["generate", "--image", asset(NORMAL["image"]), "--mask", asset(NORMAL["mask"]),
                     "--prompt", "a crack", "--out", str(tmp_path / "out"), *(["--engine", "classic"] if "--engine" not in args else []), *args])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and phrase in lines[0], err


def test_console_entry_point_subprocess(tmp_path: Path) -> None:
    """The real process, as a user runs it: exit 0 and the three files."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "generate", "--engine", "classic", "--image", asset(NORMAL["image"]),
         "--mask", asset(NORMAL["mask"]), "--prompt", "a red stain", "--seed", "5", "--out", str(out)],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert {p.name for p in out.iterdir()} == {"candidate_00.png", "candidate_00_mask.png", "candidate_00.json"}
