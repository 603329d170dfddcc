"""Pushes to the local hub double: a trained adapter with its model card, an export as a dataset with its card."""
from __future__ import annotations

import io
import json

import pytest

from studio.cli import main
from studio.engines.anomalycontrol.hub import ADAPTER_FILE
from studio.engines.anomalycontrol.weights import BLIP_REPO, SD_REPO
from studio.store import Store
from tests.helpers.samples import fill
from tests.helpers.hub import TOKEN, error_lines, hub, real_repos  # noqa: F401 - fixtures

LABELS = [("bottle", "crack"), ("bottle", "scratch"), ("cable", "crack"), ("bottle", "crack"), ("cable", "hole")]


@pytest.fixture
def store_dir(tmp_path):
    with Store(tmp_path / "data") as store:
        fill(store, LABELS)
    return tmp_path / "data"


def test_export_push_to_hub_sends_parquet_and_a_dataset_card(hub, store_dir, tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    rc = main(["export", "--data-dir", str(store_dir), "--format", "imagefolder", "--out", str(tmp_path / "hf"),
               "--push-to-hub", "me/defects", "--license", "cc-by-4.0"])
    assert rc == 0, capsys.readouterr().err
    repo = hub.repo("me/defects", "dataset")
    shards = [name for name in repo.files if name.endswith(".parquet")]
    assert shards, sorted(repo.files)
    table = pq.read_table(io.BytesIO(repo.files[shards[0]]))
    assert table.num_rows == len(LABELS)
    assert {"image", "mask", "normal", "defect_type", "category", "prompt", "engine"} <= set(table.column_names)
    card = repo.files["README.md"].decode()
    assert "license: cc-by-4.0" in card and "dataset_info" in card      # ours, and datasets' merged into it
    for row in ("| bottle / crack | 2 |", "| bottle / scratch | 1 |", "| cable / crack | 1 |", "| cable / hole | 1 |"):
        assert row in card
    assert "fake" in card and "--push-to-hub me/defects" in card      # engines and how it was made
    assert TOKEN not in card and TOKEN not in capsys.readouterr().err


def test_export_push_refuses_other_formats_before_exporting(hub, store_dir, tmp_path, capsys):
    rc = main(["export", "--data-dir", str(store_dir), "--format", "mvtec", "--out", str(tmp_path / "mv"),
               "--push-to-hub", "me/defects"])
    assert rc == 2 and "imagefolder" in error_lines(capsys.readouterr())[0]
    assert not (tmp_path / "mv").exists() and hub.requests == []


def test_train_push_to_hub_sends_the_adapter_and_a_model_card(hub, tmp_path, capsys):
    from bench.train_gpu import write_synthetic_anomalies

    data = write_synthetic_anomalies(tmp_path / "anomalies", {"widget": {"scratch": 2, "hole": 2}})
    out = tmp_path / "adapter.safetensors"
    rc = main(["train", "--data", str(data), "--weights", "tiny", "--out", str(out), "--steps", "2",
               "--batch-size", "2", "--grad-accum", "1", "--workers", "0", "--asea-steps", "0",
               "--checkpoint-every", "0", "--push-to-hub", "me/widget-sga"])
    assert rc == 0, capsys.readouterr().err
    repo = hub.repo("me/widget-sga")
    assert repo.files[ADAPTER_FILE] == out.read_bytes()
    card = repo.files["README.md"].decode()
    assert "Steps: 2" in card and "Final loss: " in card and "widget" in card and "--push-to-hub me/widget-sga" in card
    assert "tiny" in card and SD_REPO not in card.split("---")[1]           # base recorded as trained on
    assert TOKEN not in card


def test_model_card_lists_the_real_base_models_for_sd15():
    from studio.engines.anomalycontrol.hub import adapter_card

    card = adapter_card(repo="me/x", base="sd15", data_summary="d", steps=3, final_loss=0.5, command=["c"])
    assert card.data.base_model == [SD_REPO, BLIP_REPO] and card.data.library_name == "anomaly-studio"
    assert card.data.license == "creativeml-openrail-m"  # the base model's licence
    assert json.dumps(card.data.to_dict())
