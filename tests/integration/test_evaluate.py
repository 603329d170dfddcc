"""``anomaly-studio evaluate``: MVTec-layout reading, the U-Net protocol end to end, errors.

The training set is made by the classic engine; the test set holds *differently generated*
defects (flat-coloured blobs and lines drawn here) on held-out normal images, as in the paper's
protocol of synthetic training data vs real test defects.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.errors import InputError
from studio.datasets import mvtec
from tests.helpers.evaluation_data import SIDE, make_classic_train, make_drawn_test, save_image, surface

@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("evaluate")
    make_classic_train(root / "train" / "plate", seed=1)
    make_drawn_test(root / "test" / "plate", seed=2)
    return root / "train", root / "test"


def _run(train: Path, test: Path, out: Path, *extra: str) -> int:
    return main(["evaluate", "--train", str(train), "--test", str(test), "--out", str(out),
                 "--resolution", str(SIDE), "--epochs", "8", "--batch-size", "8", "--device", "cpu", *extra])


def test_evaluate_end_to_end_writes_json_and_png(datasets, tmp_path: Path, capsys) -> None:
    train, test = datasets
    assert _run(train, test, tmp_path / "a", "--seed", "3") == 0
    document = json.loads((tmp_path / "a" / "metrics.json").read_text())
    entry = document["categories"]["plate"]
    metrics = entry["metrics"]
    for name in ("pixel_auroc", "pixel_ap", "pixel_f1_max", "image_auroc", "aupro"):
        assert metrics[name] is not None and 0.0 <= metrics[name] <= 1.0, name
    assert metrics["pixel_auroc"] > 0.6  # trained on classic defects, it finds drawn ones better than chance
    assert entry["counts"] == {"train_images": 42, "train_anomalous": 30, "test_images": 16,
                               "test_anomalous": 10, "test_good": 6, "test_regions": entry["counts"]["test_regions"]}
    assert entry["counts"]["test_regions"] >= 10
    assert len(entry["train"]["epoch_losses"]) == 8
    assert entry["train"]["epoch_losses"][-1] < entry["train"]["epoch_losses"][0]
    assert set(entry["curves"]) == {"pixel_roc", "image_roc", "pro"}
    assert document["settings"]["resolution"] == SIDE and document["settings"]["seed"] == 3
    png = np.asarray(Image.open(tmp_path / "a" / "report.png"))
    assert png.ndim == 3 and png.shape[0] > 400 and png.shape[1] >= 900
    printed = capsys.readouterr().out
    assert "pixel_auroc" in printed and "plate" in printed

    # same seed, same numbers
    assert _run(train, test, tmp_path / "b", "--seed", "3") == 0
    again = json.loads((tmp_path / "b" / "metrics.json").read_text())["categories"]["plate"]
    assert again["metrics"] == metrics
    assert again["train"]["epoch_losses"] == entry["train"]["epoch_losses"]


def test_reads_root_or_category_folder_and_both_mask_names(tmp_path: Path) -> None:
    category = tmp_path / "root" / "widget"
    make_drawn_test(category, seed=5, good=2, anomalies=2)
    plain = category / "ground_truth" / "drawn" / "001_mask.png"
    plain.rename(plain.with_name("001.png"))  # VisA-style mask name
    save_image(category / "train" / "good" / "000.jpg", surface(np.random.default_rng(0)))
    from_root = mvtec.find_categories(tmp_path / "root")
    from_category = mvtec.find_categories(category)
    assert [c.name for c in from_root] == [c.name for c in from_category] == ["widget"]
    cat = from_root[0]
    assert cat.counts() == {"train_good": 1, "test_good": 2, "test_anomalous": 2}
    assert [s.mask.name for s in cat.test_anomalous] == ["000_mask.png", "001.png"]
    images, masks = mvtec.load_samples(cat.test, 32)
    assert images.shape == (4, 32, 32, 3) and masks.shape == (4, 32, 32)
    for sample, mask in zip(cat.test, masks):
        assert mask.any() == sample.anomalous


def test_layout_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="MVTec layout"):
        mvtec.find_categories(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        mvtec.find_categories(tmp_path / "nope")
    category = tmp_path / "c"
    make_drawn_test(category, seed=1, good=1, anomalies=1)
    (category / "ground_truth" / "drawn" / "000_mask.png").unlink()
    with pytest.raises(InputError, match="has no mask"):
        mvtec.find_categories(category)
    a, b = tmp_path / "a", tmp_path / "b"
    for name in ("x", "y"):
        make_drawn_test(a / name, seed=1, good=1, anomalies=1)
    make_drawn_test(b / "z", seed=1, good=1, anomalies=1)
    make_drawn_test(b / "w", seed=1, good=1, anomalies=1)
    with pytest.raises(InputError, match="share no category"):
        mvtec.pair_categories(mvtec.find_categories(a), mvtec.find_categories(b))


def test_cli_errors_exit_2_with_one_line(tmp_path: Path, capsys) -> None:
    normal_only = tmp_path / "normal" / "cat"
    for i in range(2):
        save_image(normal_only / "train" / "good" / f"{i}.png", surface(np.random.default_rng(i)))
    test = tmp_path / "test" / "cat"
    make_drawn_test(test, seed=1, good=1, anomalies=1)
    assert _run(tmp_path / "normal", tmp_path / "test", tmp_path / "out") == 2
    assert "no anomalous images" in capsys.readouterr().err
    assert main(["evaluate", "--train", str(test), "--test", str(test), "--out", str(tmp_path / "o"),
                 "--resolution", "50"]) == 2
    assert "--resolution must be a multiple of 8" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_metrics_json_has_no_nan_when_a_metric_is_undefined(tmp_path: Path) -> None:
    # a test split without good images: image AUROC is undefined and must be null, not NaN
    train, test = tmp_path / "train" / "c", tmp_path / "test" / "c"
    make_drawn_test(train, seed=1, good=2, anomalies=3)
    make_drawn_test(test, seed=2, good=0, anomalies=2)
    assert main(["evaluate", "--train", str(train), "--test", str(test), "--out", str(tmp_path / "o"),
                 "--resolution", "32", "--epochs", "1", "--device", "cpu"]) == 0
    text = (tmp_path / "o" / "metrics.json").read_text()
    assert "NaN" not in text
    metrics = json.loads(text)["categories"]["c"]["metrics"]
    assert metrics["image_auroc"] is None and not math.isnan(metrics["pixel_auroc"])


def test_several_categories_are_paired_by_name_and_averaged(tmp_path: Path) -> None:
    for name, seed in (("bolt", 1), ("plate", 2)):
        make_drawn_test(tmp_path / "train" / name, seed=seed, good=2, anomalies=3)
        make_drawn_test(tmp_path / "test" / name, seed=seed + 10, good=2, anomalies=2)
    make_drawn_test(tmp_path / "test" / "unpaired", seed=9, good=1, anomalies=1)
    assert main(["evaluate", "--train", str(tmp_path / "train"), "--test", str(tmp_path / "test"),
                 "--out", str(tmp_path / "o"), "--resolution", "32", "--epochs", "2", "--device", "cpu"]) == 0
    document = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert sorted(document["categories"]) == ["bolt", "plate"]
    per = [document["categories"][c]["metrics"]["pixel_auroc"] for c in ("bolt", "plate")]
    assert document["mean"]["pixel_auroc"] == pytest.approx(sum(per) / 2, abs=1e-6)
    assert (tmp_path / "o" / "report.png").stat().st_size > 0


def test_diverging_training_is_a_clear_error(monkeypatch) -> None:
    from studio.evaluation import segmenter

    monkeypatch.setattr(segmenter, "segmentation_loss", lambda logits, target: logits.mean() * float("nan"))
    images = np.zeros((2, 16, 16, 3), np.uint8)
    masks = np.zeros((2, 16, 16), bool)
    with pytest.raises(InputError, match="diverged.*lower --lr"):
        segmenter.train_segmenter(images, masks, segmenter.TrainConfig(epochs=1, batch_size=2))
