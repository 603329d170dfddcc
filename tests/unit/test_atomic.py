"""The shared primitives: atomic writes, request building, candidate files, shapes, the JSON sanitiser."""
from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.atomic import disk_space_guard, staged_dir, write_bytes
from studio.errors import DiskFullError
from studio.candidates import read_candidates, write_candidates
from studio.errors import InputError, StudioError
from studio.imaging import SHAPES, label_mask, load_image, shape_mask, to_png_bytes, write_png
from studio.jsonfile import dumps, json_safe
from studio.requests import build_request, load_request_inputs
from studio.types import Candidate


def image(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def box_mask(h: int = 48, w: int = 64) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[10:30, 20:40] = 255
    return mask


# --------------------------------------------------------------------- atomic
def test_write_bytes_replaces_in_one_step_and_leaves_no_staging(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    write_bytes(target, b"old")
    write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["a.bin"]


def test_write_bytes_failure_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "a.bin"
    write_bytes(target, b"old")

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.bin"]


def test_staged_dir_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    final = tmp_path / "job"
    with staged_dir(final) as folder:
        assert folder.parent == tmp_path and folder.name.startswith(".") and not final.exists()
        (folder / "x.txt").write_text("x")
    assert (final / "x.txt").read_text() == "x" and os.listdir(tmp_path) == ["job"]
    with pytest.raises(RuntimeError), staged_dir(tmp_path / "other") as folder:
        (folder / "y.txt").write_text("y")
        raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == ["job"]


def test_staged_dir_when_the_name_is_taken(tmp_path: Path) -> None:
    final = tmp_path / "job"
    final.mkdir()
    (final / "first").write_text("1")
    with pytest.raises(FileExistsError), staged_dir(final) as folder:
        (folder / "second").write_text("2")
    with staged_dir(final, if_exists="keep") as folder:
        (folder / "second").write_text("2")
    assert os.listdir(final) == ["first"]
    staged = staged_dir(final, if_exists="unique")
    with staged as folder:
        (folder / "second").write_text("2")
    assert staged.final != final and staged.final.parent == tmp_path and (staged.final / "second").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["job", staged.final.name])


def test_disk_space_guard_turns_enospc_into_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(DiskFullError) as caught, disk_space_guard("Saving the thing", tmp_path):
        raise OSError(28, "No space left on device")
    message = str(caught.value)
    assert isinstance(caught.value, StudioError) and isinstance(caught.value, OSError)
    assert message.startswith("Saving the thing failed") and str(tmp_path) in message and "free)" in message
    with pytest.raises(PermissionError), disk_space_guard("Saving", tmp_path):  # other errors pass unchanged
        raise PermissionError(13, "denied")


# --------------------------------------------------------------------- png and shapes
def test_one_png_encoder_round_trips_rgb_grey_and_bool(tmp_path: Path) -> None:
    rgb = image()
    for fast in (False, True):
        assert np.array_equal(load_image(to_png_bytes(rgb, fast=fast)), rgb)
    grey = np.asarray(Image.open(io.BytesIO(to_png_bytes(box_mask()))))
    assert grey.ndim == 2 and np.array_equal(grey, box_mask())
    as_bool = np.asarray(Image.open(io.BytesIO(to_png_bytes(box_mask() > 0))))
    assert np.array_equal(as_bool, box_mask())
    assert to_png_bytes(rgb) == to_png_bytes(rgb.copy())  # deterministic
    path = write_png(tmp_path / "a.png", rgb)
    assert np.array_equal(load_image(path), rgb) and os.listdir(tmp_path) == ["a.png"]


@pytest.mark.parametrize("shape", SHAPES)
def test_shape_mask_draws_each_shape_where_asked(shape: str) -> None:
    mask = shape_mask((100, 80), shape, (30, 40), (12, 6), thickness=3)
    ys, xs = np.nonzero(mask)
    assert mask.shape == (80, 100) and mask.any()
    assert abs(xs.mean() - 30) < 2 and abs(ys.mean() - 40) < 2 and xs.max() - xs.min() <= 2 * 12 + 6


def test_shape_vocabulary_box_is_a_rectangle() -> None:
    a = shape_mask((64, 64), "box", (32, 32), (10, 5), angle=30)
    assert np.array_equal(a, shape_mask((64, 64), "rectangle", (32, 32), (10, 5), angle=30))
    with pytest.raises(InputError, match="Unknown shape"):
        shape_mask((64, 64), "star", (32, 32), (10, 5))


# --------------------------------------------------------------------- requests
def test_build_request_takes_paths_bytes_pil_and_arrays_alike(tmp_path: Path) -> None:
    img, mask, ref = image(), box_mask(), image(seed=1)
    (tmp_path / "i.png").write_bytes(to_png_bytes(img))
    (tmp_path / "m.png").write_bytes(to_png_bytes(mask))
    sources = [
        (tmp_path / "i.png", tmp_path / "m.png"),
        (str(tmp_path / "i.png"), to_png_bytes(mask)),
        (Image.fromarray(img), Image.fromarray(mask)),
        (img, mask > 0),
        (io.BytesIO(to_png_bytes(img)), lambda size: np.asarray(mask > 0)),
    ]
    for image_source, mask_source in sources:
        request = build_request(image_source, mask_source, reference=ref, reference_mask=mask, prompt="a scratch",
                                num=2, seed=5, params={"strength": 0.5})
        assert np.array_equal(request.image, img) and np.array_equal(request.mask, mask > 0)
        assert np.array_equal(request.reference, ref) and np.array_equal(request.reference_mask, mask > 0)
        assert (request.num, request.seed, request.params["strength"]) == (2, 5, 0.5)


def test_request_inputs_resize_masks_and_name_the_input_in_errors() -> None:
    small = box_mask()[::2, ::2]
    inputs = load_request_inputs(image(), small)
    assert inputs.mask.shape == (48, 64) and inputs.reference is None
    with pytest.raises(InputError, match="defect region of job 3 is empty"):
        load_request_inputs(image(), np.zeros((48, 64), np.uint8), where=" of job 3")
    with pytest.raises(InputError, match="without a reference image"):
        load_request_inputs(image(), box_mask(), reference_mask=box_mask())
    with pytest.raises(InputError, match="reference mask is empty"):
        load_request_inputs(image(), box_mask(), image(), np.zeros((48, 64), np.uint8))
    assert load_request_inputs(image(), box_mask(), image(), np.zeros((48, 64), np.uint8),
                               empty_reference_mask_is_none=True).reference_mask is None


# --------------------------------------------------------------------- candidate files
def test_candidate_files_round_trip(tmp_path: Path) -> None:
    cands = [Candidate(image=image(seed=k), mask=box_mask(), seed=10 + k, metadata={"engine": "x", "k": k})
             for k in range(3)]
    written = write_candidates(tmp_path / "out", cands)
    assert [p.name for p in written] == ["candidate_00.png", "candidate_01.png", "candidate_02.png"]
    back = read_candidates(tmp_path / "out")
    assert len(back) == 3
    for a, b in zip(cands, back):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
        assert b.seed == a.seed and b.metadata["k"] == a.metadata["k"]
    assert len(read_candidates(tmp_path / "out", 2)) == 2
    (tmp_path / "out" / "candidate_01.json").write_text("{broken")
    with pytest.raises(InputError, match="Candidate 1"):
        read_candidates(tmp_path / "out")


def test_label_mask_is_0_255_from_any_mask() -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[1, 2, 1] = 7
    assert label_mask(rgb).tolist() == label_mask(rgb.any(axis=2)).tolist()
    assert set(np.unique(label_mask(rgb))) == {0, 255}


# --------------------------------------------------------------------- json
def test_one_json_sanitiser() -> None:
    value = {"a": np.float32(0.25), "b": np.arange(3), "n": math.nan, "inf": np.float64(np.inf),
             "big": np.zeros(100), "t": (1, 2), "p": Path("x/y"), 3: np.bool_(True)}
    safe = json_safe(value)
    assert safe == {"a": 0.25, "b": [0, 1, 2], "n": None, "inf": None, "big": "<array (100,) float64>",
                    "t": [1, 2], "p": "x/y", "3": True}
    assert json_safe({"x": 1 / 3, "big": np.zeros(100)}, array_limit=None, digits=7) == {
        "x": 0.3333333, "big": [0.0] * 100}
    assert json.loads(dumps(value)) == safe
