"""Training the Semantic Guided Adapter (tiny profile, CPU): loss, frozen models, resume, engine loading, CLI."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bench.train_gpu import write_synthetic_anomalies as write_dataset
from studio.cli import main
from studio.engines.anomalycontrol.pipeline import AnomalyControlEngine
from studio.engines.anomalycontrol.sga import SGAdapter
from studio.engines.anomalycontrol.training.checkpoints import resolve_checkpoint, save_checkpoint
from studio.engines.anomalycontrol.training.conditioning import condition_dropout
from studio.engines.anomalycontrol.training.data import (
    StreamBatches, read_training_set, sample_position, template_caption,
)
from studio.engines.anomalycontrol.training.train import TrainSettings, check_frozen, fresh_adapter, train
from studio.engines.anomalycontrol.models import load_bundle, save_bundle
from studio.errors import InputError
from studio.types import SynthesisRequest

STEPS = 40
#: Over-fitting a tiny set: a high rate, small batches accumulated twice (the paper's accumulation).
FAST = dict(batch_size=4, grad_accum=2, lr=5e-2, seed=0, workers=0, lr_warmup=0)



@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data"), {"widget": {"scratch": 3, "hole": 3}, "plate": {"scratch": 2}})


def _frozen_state(bundle) -> dict[str, torch.Tensor]:
    models = {"unet": bundle.unet, "vae": bundle.vae, "text": bundle.text_encoder, "blip2": bundle.blip2}
    return {f"{m}.{k}": v.detach().clone() for m, model in models.items() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    """One uninterrupted 40-step run (features cached), checkpointing at step 20."""
    work = tmp_path_factory.mktemp("run")
    bundle = load_bundle("tiny", device="cpu")
    before = _frozen_state(bundle)
    init = {k: v.clone() for k, v in fresh_adapter(bundle, FAST["seed"]).state_dict().items()}
    settings = TrainSettings(steps=STEPS, checkpoint_every=20, cache_features=True, **FAST)
    result = train(dataset, "tiny", work / "adapter.safetensors", settings, log_file=work / "log.jsonl", bundle=bundle)
    return {"result": result, "bundle": bundle, "before": before, "init": init, "work": work}


def test_training_lowers_the_loss(trained):
    losses = trained["result"].losses
    assert len(losses) == STEPS and trained["result"].step == STEPS
    assert all(np.isfinite(losses))
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


def test_cached_features_encode_each_reference_once(trained, dataset):
    samples = STEPS * FAST["batch_size"] * FAST["grad_accum"]
    assert 2 <= trained["result"].references_encoded <= len(read_training_set(dataset)) < samples


def test_only_the_adapter_learns(trained):
    bundle, before = trained["bundle"], trained["before"]
    after = _frozen_state(bundle)
    assert after.keys() == before.keys()
    assert all(torch.equal(before[k], after[k]) for k in before), "a frozen parameter changed"
    frozen = (bundle.unet, bundle.vae, bundle.text_encoder, bundle.blip2)
    assert all(p.grad is None and not p.requires_grad for m in frozen for p in m.parameters())
    trained_state = load_file(trained["result"].out)
    assert trained_state.keys() == trained["init"].keys()
    moved = [k for k in trained_state if not torch.equal(trained_state[k], trained["init"][k])]
    assert any(k.startswith("projection.") for k in moved)
    assert any(k.startswith("to_k_sg.") for k in moved) and any(k.startswith("to_v_sg.") for k in moved)


def test_check_frozen_refuses_a_trainable_base_model():
    bundle = load_bundle("tiny", device="cpu")
    adapter = fresh_adapter(bundle, 0)
    optimizer = torch.optim.AdamW(adapter.trainable_parameters())
    check_frozen(bundle, adapter, optimizer)
    next(bundle.vae.parameters()).requires_grad_(True)
    with pytest.raises(RuntimeError, match="VAE must be frozen"):
        check_frozen(bundle, adapter, optimizer)
    with pytest.raises(RuntimeError, match="exactly the SGA adapter"):
        check_frozen(load_bundle("tiny", device="cpu"), adapter, torch.optim.AdamW(adapter.projection.parameters()))


def test_log_has_one_json_line_per_step(trained):
    lines = (trained["work"] / "log.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    assert [r["loss"] for r in records] == pytest.approx(trained["result"].losses)
    assert all(set(r) == {"step", "loss"} for r in records)


def test_resume_from_step_20_reaches_the_uninterrupted_weights(trained, dataset, tmp_path, capsys):
    checkpoints = trained["work"] / "adapter-checkpoints"
    assert [p.name for p in checkpoints.iterdir()] == ["step-000020"]
    out, log = tmp_path / "resumed.safetensors", tmp_path / "log.jsonl"
    code = main([
        "train", "--data", str(dataset), "--weights", "tiny", "--out", str(out), "--steps", str(STEPS),
        "--resume", str(checkpoints), "--log", str(log), "--checkpoint-every", "0", "--workers", "1",
        "--batch-size", str(FAST["batch_size"]), "--grad-accum", str(FAST["grad_accum"]), "--lr", str(FAST["lr"]),
        "--seed", str(FAST["seed"]), "--no-cache-features", "--lr-warmup", "0",
    ])
    assert code == 0, capsys.readouterr().err
    assert "step 40" in capsys.readouterr().err
    resumed, uninterrupted = load_file(out), load_file(trained["result"].out)
    assert resumed.keys() == uninterrupted.keys()
    for key in uninterrupted:
        torch.testing.assert_close(resumed[key], uninterrupted[key], atol=1e-6, rtol=0)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(21, STEPS + 1))
    # Without --cache-features every reference is re-encoded: the losses are the same.
    assert [r["loss"] for r in records] == pytest.approx(trained["result"].losses[20:], abs=1e-6)


def test_saved_adapter_loads_into_the_engine_and_steers_it(trained, tmp_path):
    folder = save_bundle(load_bundle("tiny", device="cpu"), tmp_path / "weights", with_sga=False)
    (folder / "sga").mkdir()
    shutil.copy(trained["result"].out, folder / "sga" / "adapter.safetensors")
    engine = AnomalyControlEngine.load(str(folder), device="cpu")
    assert engine.guidance == "sga"
    stored = load_file(trained["result"].out)
    assert all(torch.equal(v, stored[k]) for k, v in engine.adapter.state_dict().items())

    rng = np.random.default_rng(1)
    image = rng.integers(60, 200, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[16:40, 20:44] = True

    def generate(scale: float) -> np.ndarray:
        request = SynthesisRequest.create(
            image, mask, "a widget with a scratch defect", reference=image, reference_mask=mask,
            reference_text="a scratch", params={"sga_scale": scale, "steps": 6, "asea_steps": 1}, seed=3)
        candidate = engine.generate(request)[0]
        assert candidate.metadata["guidance"]["active"] == (scale > 0)
        return candidate.image

    assert not np.array_equal(generate(1.0), generate(0.0))


def test_cli_rejects_bad_data_with_one_line(tmp_path, capsys):
    good = write_dataset(tmp_path / "ok", {"widget": {"scratch": 2}})
    cases = [
        ("does not exist", ["--data", str(tmp_path / "missing")]),
        ("no anomaly images", ["--data", str(write_dataset(tmp_path / "empty", {"widget": {}}))]),
        ("has no mask", ["--data", str(write_dataset(tmp_path / "nomask", {"widget": {"hole": 2}}, masks=False))]),
        ("single anomaly image", ["--data", str(write_dataset(tmp_path / "one", {"widget": {"hole": 1}})),
                                  "--pairing", "same-category"]),
        (".safetensors", ["--data", str(good), "--out", str(tmp_path / "adapter.pt")]),
        ("not valid JSON", ["--data", str(good), "--captions", str(_text(tmp_path / "c.json", "{oops"))]),
        ("mapping image paths", ["--data", str(good), "--captions", str(_text(tmp_path / "l.json", "[1, 2]"))]),
        ("needs a GPU", ["--data", str(good), "--mixed-precision", "fp16", "--cpu"]),
        ("not a training checkpoint", ["--data", str(good), "--resume", str(tmp_path)]),
        ("--batch-size must be at least 1", ["--data", str(good), "--batch-size", "0"]),
        ("does not exist", ["--data", str(good), "--init-adapter", str(tmp_path / "none.safetensors")]),
    ]
    for expected, args in cases:
        if "--out" not in args:
            args = [*args, "--out", str(tmp_path / "adapter.safetensors")]
        code = main(["train", "--weights", "tiny", *args])
        err = capsys.readouterr().err
        assert code == 2, (expected, err)
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and expected in errors[0] and "Traceback" not in err, (expected, err)
    assert not (tmp_path / "adapter.safetensors").exists()


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_captions_templates_and_non_matching_references(dataset, tmp_path):
    captions = _text(tmp_path / "captions.json", json.dumps({
        "widget/test/hole/001.png": "a round dark hole in the widget",
        str((dataset / "plate/test/scratch/000.png").resolve()): "a thin bright scratch",
    }))
    data = read_training_set(dataset, captions, pairing="same-category", split="all")
    by_name = {str(a.image.relative_to(dataset)): a for a in data.anomalies}
    assert len(data) == 8
    assert by_name["widget/test/hole/001.png"].caption == "a round dark hole in the widget"
    assert by_name["plate/test/scratch/000.png"].caption == "a thin bright scratch"
    assert by_name["widget/test/hole/000.png"].caption == template_caption("widget", "hole") \
        == "a widget with a hole defect"
    for i, anomaly in enumerate(data.anomalies):  # same-category: the same defect type within the same category
        pool = data.references[i]
        assert i not in pool and pool
        assert all((data.anomalies[j].category, data.anomalies[j].defect) == (anomaly.category, anomaly.defect)
                   for j in pool)
    plate_scratch = list(by_name).index("plate/test/scratch/000.png")
    assert {data.anomalies[j].category for j in data.references[plate_scratch]} == {"plate"}
    across = read_training_set(dataset, pairing="same-defect", split="all")  # the old pooling: a defect name in any category
    assert {across.anomalies[j].category for j in across.references[plate_scratch]} == {"plate", "widget"}
    assert read_training_set(dataset, split="all").references[plate_scratch] == (plate_scratch,)  # default: self
    with pytest.raises(InputError, match="--pairing must be one of"):
        read_training_set(dataset, pairing="random")

    lonely_root = write_dataset(tmp_path / "lonely", {"widget": {"hole": 2, "crack": 1}, "plate": {"crack": 2}})
    lonely = read_training_set(lonely_root, pairing="same-category", split="all")
    crack = next(i for i, a in enumerate(lonely.anomalies) if (a.category, a.defect) == ("widget", "crack"))
    # alone in its type: the other anomalies of its category, not plate's (differently meant) cracks
    assert sorted(lonely.anomalies[j].image.parent.name for j in lonely.references[crack]) == ["hole", "hole"]
    assert {lonely.anomalies[j].category for j in lonely.references[crack]} == {"widget"}


def test_sample_stream_is_a_seeded_permutation_per_epoch_and_shards_across_processes():
    size = 7
    epoch0 = [sample_position(p, size, seed=3) for p in range(size)]
    epoch1 = [sample_position(p, size, seed=3) for p in range(size, 2 * size)]
    assert sorted(epoch0) == sorted(epoch1) == list(range(size)) and epoch0 != epoch1
    assert epoch0 == [sample_position(p, size, seed=3) for p in range(size)]
    single = [pos for batch in StreamBatches(4, start=2, count=3, processes=1) for pos in batch]
    two = [list(StreamBatches(2, start=2, count=3, process=p, processes=2)) for p in (0, 1)]
    assert [a + b for a, b in zip(*two)] == list(StreamBatches(4, start=2, count=3))
    assert single[0] == 8  # micro-batch 2 of 4 positions starts at position 8 (what a resumed run continues with)


def test_checkpoints_keep_the_latest_and_resolve_to_it(tmp_path):
    adapter = SGAdapter(4, 4, {"layer": (4, False)}, num_tokens=2)
    optimizer = torch.optim.AdamW(adapter.parameters())
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, step, adapter, optimizer, schedule, None, {}, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000020", "step-000030"]
    assert resolve_checkpoint(tmp_path) == tmp_path / "step-000030"
    assert resolve_checkpoint(tmp_path / "step-000020") == tmp_path / "step-000020"
    with pytest.raises(InputError, match="not a training checkpoint"):
        resolve_checkpoint(tmp_path / "nowhere")


def test_condition_dropout_drops_image_caption_and_both_at_five_percent_each():
    drop_image, drop_text = condition_dropout(200_000, torch.Generator().manual_seed(0))
    rates = {"image only": (drop_image & ~drop_text), "caption only": (drop_text & ~drop_image),
             "both": (drop_image & drop_text)}
    for name, hits in rates.items():
        assert hits.float().mean().item() == pytest.approx(0.05, abs=0.003), name
    assert (~drop_image & ~drop_text).float().mean().item() == pytest.approx(0.85, abs=0.004)
    none_image, none_text = condition_dropout(1000, torch.Generator().manual_seed(0), rate=0.0)
    assert not none_image.any() and not none_text.any()


def test_training_feeds_dropped_captions_empty_and_dropped_images_the_unconditional_tokens(dataset, monkeypatch):
    from studio.engines.anomalycontrol.training import train as train_module

    bundle = load_bundle("tiny", device="cpu")
    seen: dict[str, list] = {"captions": [], "tokens": []}
    real_embeddings, real_tokens = train_module.caption_embeddings, SGAdapter.tokens

    def record_captions(b, captions):
        seen["captions"] += captions
        return real_embeddings(b, captions)

    def record_tokens(self, feature, drop=None):
        tokens = real_tokens(self, feature, drop)
        if drop is not None:
            unconditional = self.unconditional_tokens(1).detach()[0]  # at this step's weights
            seen["tokens"] += [(bool(d), torch.allclose(t, unconditional, atol=1e-5)) for d, t in zip(drop, tokens.detach())]
        return tokens

    monkeypatch.setattr(train_module, "caption_embeddings", record_captions)
    monkeypatch.setattr(SGAdapter, "tokens", record_tokens)
    settings = TrainSettings(steps=6, checkpoint_every=0, asea_steps=0, condition_dropout=0.3,
                             gradient_checkpointing=True, **FAST)
    result = train(dataset, "tiny", Path(dataset.parent) / "dropout.safetensors", settings, bundle=bundle)
    assert result.step == 6 and not bundle.unet.is_gradient_checkpointing  # switched off again for the engine
    empty = sum(c == "" for c in seen["captions"]) / len(seen["captions"])
    assert 0.3 < empty < 0.9  # 2 x 0.3 expected
    # every dropped image got the tokens of no image (the same tokens CFG's unconditional branch uses), no other did
    assert any(d for d, _ in seen["tokens"]) and all(d == same for d, same in seen["tokens"])


def test_gradient_checkpointing_gives_the_same_gradients_and_recomputes(monkeypatch):
    import torch.utils.checkpoint as checkpoint_module

    bundle = load_bundle("tiny", device="cpu")
    adapter = fresh_adapter(bundle, 0)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 9, 8, 8, generator=generator)
    text = torch.randn(2, 77, 32, generator=generator)
    features = torch.randn(2, 32, generator=generator)

    def gradients() -> list[torch.Tensor]:
        adapter.zero_grad(set_to_none=True)
        tokens = adapter.tokens(features)
        out = bundle.unet(x, torch.tensor([10, 500]), encoder_hidden_states=torch.cat([text, tokens], dim=1)).sample
        out.square().mean().backward()
        return [p.grad.clone() for p in adapter.trainable_parameters()]

    plain = gradients()
    calls = []
    real = checkpoint_module.checkpoint
    monkeypatch.setattr(checkpoint_module, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    bundle.unet.enable_gradient_checkpointing()
    try:
        checkpointed = gradients()
    finally:
        bundle.unet.disable_gradient_checkpointing()
    assert calls, "no block was checkpointed"
    for a, b in zip(plain, checkpointed):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_default_recipe_is_the_authors_not_a_thousand_steps():
    defaults = TrainSettings()
    assert defaults.steps * defaults.batch_size * defaults.grad_accum >= 160_000  # 10x the old 16k samples
    assert defaults.cache_features and defaults.condition_dropout == 0.05 and defaults.pairing == "self"
    assert defaults.split == "authors"
    assert defaults.lr_warmup > 0 and (defaults.lr, defaults.weight_decay) == (1e-4, 1e-2)


def test_the_authors_split_trains_on_the_first_third_of_each_defect_type_by_name(tmp_path):
    root = write_dataset(tmp_path / "d", {"widget": {"scratch": 7, "hole": 2}})
    data = read_training_set(root)
    names = sorted(str(a.image.relative_to(root)) for a in data.anomalies)
    assert names == ["widget/test/hole/000.png", "widget/test/scratch/000.png", "widget/test/scratch/001.png"]
    assert data.split == "authors" and "authors' split" in data.summary()
    assert len(read_training_set(root, split="all")) == 9
    with pytest.raises(InputError, match="--split must be one of"):
        read_training_set(root, split="half")


def test_the_adapter_records_its_training_images_and_evaluate_refuses_them(trained, dataset, tmp_path, capsys):
    import hashlib

    from studio.engines.anomalycontrol.sga import adapter_training_images

    seen = adapter_training_images(trained["result"].out)
    used = read_training_set(dataset)
    assert seen == {hashlib.sha256(a.image.read_bytes()).hexdigest() for a in used.anomalies} and len(seen) == 3
    args = ["evaluate", "--train", str(dataset), "--out", str(tmp_path / "eval"), "--adapter", str(trained["result"].out)]
    assert main([*args, "--test", str(dataset)]) == 2
    err = capsys.readouterr().err
    assert "trained the adapter" in err and "leak" in err and not (tmp_path / "eval").exists()
    held_out = tmp_path / "held-out"  # the authors' other two thirds only: accepted
    shutil.copytree(dataset, held_out)
    for anomaly in used.anomalies:
        (held_out / anomaly.image.relative_to(dataset)).unlink()
        (held_out / anomaly.mask.relative_to(dataset)).unlink()
    from studio.cli.evaluate import refuse_seen_test_images

    refuse_seen_test_images(str(held_out), str(trained["result"].out))
