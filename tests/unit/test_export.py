"""Exports read by real tools: anomalib's MVTec layout, pycocotools, Hugging Face datasets; names; atomicity."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.datasets import sink as sink_mod
from studio.cli import main
from studio.errors import InputError
from studio.export import EXPORT_FORMATS, export_dataset
from studio.naming import NameAllocator, safe_name
from studio.store import Store
from tests.helpers.samples import fill, read_png

HOSTILE = ["../../etc", "CON", "", "x" * 300, "🔩 défaut ✨", "a/b\\c", "good", "nul.txt", "..", " . ", "COM1"]


@pytest.fixture
def filled(tmp_path):
    labels = [("bottle", "crack"), ("bottle", "scratch"), ("cable", "crack"), ("bottle", "crack"),
              ("cable", "hole"), ("cable", "crack"), ("bottle", "scratch")]
    with Store(tmp_path / "data") as store:
        fill(store, labels)
        yield store


def tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith("index.sqlite")}


def test_mvtec_layout(filled, tmp_path):
    out = export_dataset(filled, "mvtec", tmp_path / "mvtec")
    assert out == (tmp_path / "mvtec").absolute()
    assert sorted(p.name for p in out.iterdir()) == ["bottle", "cable", "export.json"]
    for category in ("bottle", "cable"):
        cdir = out / category
        assert sorted(p.name for p in cdir.iterdir()) == ["ground_truth", "test", "train"]
        assert [p.name for p in (cdir / "train").iterdir()] == ["good"]
        tests = sorted((cdir / "test").rglob("*.png"))
        assert tests and all(p.stem.isdigit() and len(p.stem) == 3 for p in tests)
        for image_path in tests:
            mask_path = cdir / "ground_truth" / image_path.parent.name / f"{image_path.stem}_mask.png"
            assert mask_path.is_file()
            with Image.open(image_path) as img, Image.open(mask_path) as mask:
                assert img.size == mask.size and img.mode == "RGB" and mask.mode == "L"
                assert set(np.unique(np.asarray(mask))) <= {0, 255}
        assert {p.name for p in (cdir / "test").iterdir()} == {r.defect_type for r in filled.list(category=category)}
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["format"] == "mvtec" and len(manifest["samples"]) == len(filled)
    for entry in manifest["samples"]:  # every file is the stored one
        rec = filled.get(entry["id"])
        assert (out / entry["image"]).read_bytes() == rec.image_path.read_bytes()
        assert (out / entry["mask"]).read_bytes() == rec.mask_path.read_bytes()
        assert (out / entry["normal"]).read_bytes() == rec.normal_path.read_bytes()
    assert len(list((out / "bottle" / "train" / "good").iterdir())) == len(
        {r.normal_path for r in filled.list(category="bottle")})


def test_export_of_a_selection_holds_exactly_those_samples(filled, tmp_path):
    chosen = filled.list(category="cable")
    out = export_dataset(filled, "mvtec", tmp_path / "sel", records=chosen)
    manifest = json.loads((out / "export.json").read_text())
    assert sorted(e["id"] for e in manifest["samples"]) == sorted(r.id for r in chosen)
    assert sorted(p.name for p in out.iterdir()) == ["cable", "export.json"]
    with pytest.raises(InputError, match="no samples"):
        export_dataset(filled, "mvtec", tmp_path / "none", records=[])


def test_coco_loads_and_masks_match(filled, tmp_path):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    out = export_dataset(filled, "coco", tmp_path / "coco")
    coco = COCO(str(out / "annotations.json"))
    assert sorted(c["name"] for c in coco.loadCats(coco.getCatIds())) == ["crack", "hole", "scratch"]
    assert len(coco.getImgIds()) == len(filled) == len(coco.getAnnIds())
    for img in coco.loadImgs(coco.getImgIds()):
        rec = filled.get(img["sample_id"])
        with Image.open(out / "images" / img["file_name"]) as pil:
            assert pil.size == (img["width"], img["height"])
        (ann,) = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
        assert coco.loadCats(ann["category_id"])[0]["name"] == rec.defect_type
        decoded = coco.annToMask(ann)
        stored = read_png(rec.mask_path) > 0
        assert np.array_equal(decoded.astype(bool), stored)
        assert np.array_equal(mask_utils.decode(ann["segmentation"]).astype(bool), stored)
        assert ann["area"] == stored.sum()
        ys, xs = np.nonzero(stored)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert ann["iscrowd"] == 0


def test_imagefolder_loads_with_datasets(filled, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = export_dataset(filled, "imagefolder", tmp_path / "hf")
    ds = datasets.load_dataset("imagefolder", data_dir=str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert len(ds) == len(filled)
    for col in ("image", "mask", "normal", "reference", "defect_type", "prompt", "seed", "engine", "sample_id"):
        assert col in ds.column_names
    for row in ds:
        rec = filled.get(row["sample_id"])
        assert np.array_equal(np.asarray(row["image"]), read_png(rec.image_path))
        assert np.array_equal(np.asarray(row["mask"]), read_png(rec.mask_path))
        assert np.array_equal(np.asarray(row["normal"]), read_png(rec.normal_path))
        assert (row["reference"] is None) == (rec.reference_path is None)
        assert row["defect_type"] == rec.defect_type and row["seed"] == rec.metadata["seed"]
        assert row["prompt"] == rec.metadata["prompt"] and row["engine"] == "fake"
        assert json.loads(row["metadata"])["id"] == rec.id


def test_imagefolder_without_references(tmp_path):
    datasets = pytest.importorskip("datasets")
    with Store(tmp_path / "data") as store:
        fill(store, [("a", "b"), ("a", "c")], with_reference=False)
        out = export_dataset(store, "imagefolder", tmp_path / "hf")
    ds = datasets.load_dataset("imagefolder", data_dir=str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert len(ds) == 2 and "reference" not in ds.column_names and "mask" in ds.column_names


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_zip_export(filled, tmp_path, fmt):
    out = export_dataset(filled, fmt, tmp_path / "ds", make_zip=True)
    assert out == (tmp_path / "ds.zip").absolute() and out.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "ds.zip"]  # no folder, no partial files
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        assert "ds/export.json" in names and all(n.startswith("ds/") for n in names)
        zf.extractall(tmp_path / "unzipped")
    assert json.loads((tmp_path / "unzipped" / "ds" / "export.json").read_text())["format"] == fmt


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_export_never_modifies_store(filled, tmp_path, fmt):
    before = tree_digest(filled.root)
    export_dataset(filled, fmt, tmp_path / "out")
    assert tree_digest(filled.root) == before


def test_hostile_names_stay_inside(tmp_path):
    labels = [(c, d) for c, d in zip(HOSTILE, reversed(HOSTILE))] + [("CON", "con"), ("con", "CON")]
    with Store(tmp_path / "data") as store:
        fill(store, labels, with_reference=False)
        for fmt in EXPORT_FORMATS:
            out = export_dataset(store, fmt, tmp_path / f"out_{fmt}").resolve()
            files = [p for p in out.rglob("*") if p.is_file()]
            assert len(files) >= len(labels)
            for path in out.rglob("*"):
                assert path.resolve().is_relative_to(out)
                for part in path.relative_to(out).parts:
                    assert part and part not in (".", "..") and len(part.encode()) <= 255
                    assert part.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL", "COM1", "LPT1"}
                    assert not set(part) & set('<>:"/\\|?*') and not part.endswith((".", " "))
            if fmt == "mvtec":
                manifest = json.loads((out / "export.json").read_text())
                assert len({e["image"] for e in manifest["samples"]}) == len(labels)
                # "good" as a defect type must not land in a folder anomalib reads as normal
                assert not list(out.glob("*/test/good"))
                # distinct categories never merge, even when they sanitise alike or differ by case only
                assert len({e["image"].split("/")[0] for e in manifest["samples"]}) == len(
                    {r.category for r in store.list()})


def test_safe_name_rules():
    assert safe_name("../../etc") == "_.._etc"
    assert safe_name("CON") == "_CON" and safe_name("nul.txt") == "_nul.txt" and safe_name("com1") == "_com1"
    assert safe_name("") == "unnamed" and safe_name("..", "x") == "x" and safe_name(" . / ", "x") == "x"
    assert safe_name("🔩 défaut") == "🔩 défaut"
    assert len(safe_name("é" * 300).encode()) <= 80
    assert safe_name("a\x00b\u202ec") == "abc"
    alloc = NameAllocator("d", reserved=("good",))
    names = [alloc(t) for t in ("a/b", "a_b", "A_B", "good", "a/b")]
    assert names[0] == names[4] == "a_b" and len({n.casefold() for n in names[:4]}) == 4
    assert names[3] != "good"


def test_destination_rules(filled, tmp_path):
    (tmp_path / "empty").mkdir()
    export_dataset(filled, "coco", tmp_path / "empty")  # an empty folder is fine
    with pytest.raises(InputError, match="already exists"):
        export_dataset(filled, "coco", tmp_path / "empty")
    export_dataset(filled, "mvtec", tmp_path / "empty", overwrite=True)
    assert (tmp_path / "empty" / "bottle").is_dir() and not (tmp_path / "empty" / "images").exists()
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(InputError, match="not a previous export"):
        export_dataset(filled, "coco", precious, overwrite=True)
    assert (precious / "thesis.tex").exists()
    with pytest.raises(InputError, match="outside the data folder"):
        export_dataset(filled, "coco", filled.root / "exports")
    with pytest.raises(InputError, match="Unknown export format"):
        export_dataset(filled, "voc", tmp_path / "voc")
    with Store(tmp_path / "nothing") as empty, pytest.raises(InputError, match="no samples"):
        export_dataset(empty, "coco", tmp_path / "x")


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
@pytest.mark.parametrize("make_zip", [False, True])
def test_failed_export_leaves_nothing(filled, tmp_path, monkeypatch, fmt, make_zip):
    calls = {"n": 0}
    sink_class = sink_mod.ZipSink if make_zip else sink_mod.FolderSink
    real_copy = sink_class.copy

    def flaky_copy(self, src, rel):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        return real_copy(self, src, rel)

    monkeypatch.setattr(sink_class, "copy", flaky_copy)
    dest = tmp_path / "exports" / "ds"
    with pytest.raises(OSError):
        export_dataset(filled, fmt, dest, make_zip=make_zip)
    assert calls["n"] == 5
    assert list((tmp_path / "exports").iterdir()) == []


def test_progress_callback(filled, tmp_path):
    seen = []
    export_dataset(filled, "coco", tmp_path / "c", progress=lambda d, t, w: seen.append((d, t)))
    assert [d for d, _ in seen] == list(range(1, len(filled) + 1)) and {t for _, t in seen} == {len(filled)}


def test_export_cli(filled, tmp_path, capsys):
    root = str(filled.root)
    assert main(["export", "--data-dir", root, "--format", "mvtec", "--out", str(tmp_path / "m")]) == 0
    assert Path(capsys.readouterr().out.strip()) == (tmp_path / "m").absolute()
    assert main(["export", "--data-dir", root, "--format", "coco", "--zip", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c.zip").is_file()
    assert main(["export", "--data-dir", root, "--format", "coco", "--out", str(tmp_path / "m")]) == 2
    assert "already exists" in capsys.readouterr().err
