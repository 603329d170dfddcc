"""The loader: tiny saved with save_pretrained loads through the real path; missing pieces give one message."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from studio import config
from studio.engines.anomalycontrol import weights
from studio.engines.anomalycontrol.pipeline import AnomalyControlEngine
from studio.engines.anomalycontrol import pipeline as pipeline_module
from studio.engines.anomalycontrol.models import load_bundle, save_bundle
from studio.engines.anomalycontrol.weights import sd15_available
from studio.errors import WeightsError
from studio.types import SynthesisRequest



@pytest.fixture(scope="module")
def tiny():
    return load_bundle("tiny")


@pytest.fixture(scope="module")
def saved(tiny, tmp_path_factory) -> Path:
    return save_bundle(tiny, tmp_path_factory.mktemp("weights"))


@pytest.fixture
def no_network(monkeypatch):
    """Record (and refuse) every attempt to open a network connection."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return attempts


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _request(seed: int = 0) -> SynthesisRequest:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    mask = np.zeros((96, 96), bool)
    mask[30:60, 20:70] = True
    ref = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ref_mask = np.zeros((64, 64), bool)
    ref_mask[16:40, 16:48] = True
    return SynthesisRequest.create(image, mask, "a crack", reference=ref, reference_mask=ref_mask,
                                   reference_text="crack", seed=seed, params={"steps": 6})


def test_tiny_saved_with_save_pretrained_loads_through_the_real_loader(tiny, saved, no_network):
    layout = {p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file()}
    for required in ("stable-diffusion-inpainting/unet/diffusion_pytorch_model.safetensors",
                     "stable-diffusion-inpainting/text_encoder/model.safetensors",
                     "blip2-itm-vit-g/model.safetensors", "sga/adapter.safetensors"):
        assert required in layout
    assert not any(name.endswith((".bin", ".pt", ".ckpt")) for name in layout)
    loaded = load_bundle(str(saved))
    assert loaded.profile == str(saved) and loaded.guidance_source == str(saved / weights.SGA_FILE)
    assert loaded.guidance == "sga"
    for name in ("unet", "vae", "text_encoder", "blip2", "adapter"):
        a, b = getattr(tiny, name).state_dict(), getattr(loaded, name).state_dict()
        assert a.keys() == b.keys(), name
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert loaded.resolution == tiny.resolution == 64
    request = _request()
    ours = AnomalyControlEngine(tiny).generate(request)[0]
    theirs = AnomalyControlEngine(loaded).generate(request)[0]
    assert np.array_equal(ours.image, theirs.image)
    assert not no_network


def test_a_missing_piece_gives_the_one_message(saved, tmp_path, no_network):
    folder = _copy(saved, tmp_path / "w")
    (folder / "blip2-itm-vit-g" / "model.safetensors").unlink()
    with pytest.raises(WeightsError) as err:
        load_bundle(str(folder))
    text = str(err.value)
    assert text.startswith("The anomalycontrol engine's weights are incomplete")
    assert "missing: BLIP-2 image-text matching model" in text
    assert "blip2-itm-vit-g/ (missing model.safetensors)" in text
    files = " ".join(weights.BLIP_FILES)
    assert f'hf download Salesforce/blip2-itm-vit-g {files} --local-dir {folder / "blip2-itm-vit-g"}' in text
    assert "Stable Diffusion" not in text and "guidance mode text" in text
    assert "--weights tiny" in text
    assert not no_network


def test_an_empty_folder_names_every_piece(tmp_path, no_network):
    with pytest.raises(WeightsError) as err:
        load_bundle(str(tmp_path))
    text = str(err.value)
    assert "missing: Stable Diffusion 1.5 inpainting" in text and "missing: BLIP-2" in text
    assert "hf download stable-diffusion-v1-5/stable-diffusion-inpainting" in text
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in text and ".bin" not in text
    assert "optional: an SGA adapter" in text and "fetch --ip-adapter" in text
    assert "Traceback" not in text and not no_network


def test_sd15_profile_looks_in_weights_and_the_hub_cache_offline(tmp_path, monkeypatch, no_network):
    monkeypatch.setattr(config, "WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert sd15_available() is False
    with pytest.raises(WeightsError, match="and the Hugging Face cache"):
        AnomalyControlEngine.load("sd15")
    with pytest.raises(WeightsError, match="incomplete"):
        AnomalyControlEngine.load(None)
    # a populated hub cache counts (file checks only)
    for repo, required in ((weights.SD_REPO, weights.SD_REQUIRED), (weights.BLIP_REPO, weights.BLIP_REQUIRED)):
        base = tmp_path / "hub" / ("models--" + repo.replace("/", "--"))
        (base / "refs").mkdir(parents=True)
        (base / "refs" / "main").write_text("abc123")
        for alternatives in required:
            path = base / "snapshots" / "abc123" / alternatives[0]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
    assert sd15_available() is True
    assert not no_network


def test_truncated_weights_are_a_clear_error(saved, tmp_path, no_network):
    folder = _copy(saved, tmp_path / "w")
    unet_file = folder / "stable-diffusion-inpainting" / "unet" / "diffusion_pytorch_model.safetensors"
    data = unet_file.read_bytes()
    unet_file.write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsError, match="could not be loaded") as err:
        load_bundle(str(folder))
    assert "fetch them again with: hf download stable-diffusion-v1-5/stable-diffusion-inpainting" in str(err.value)


def test_without_an_adapter_or_ip_adapter_the_mode_is_text_everywhere_and_generate_skips_asea(
        saved, tmp_path, monkeypatch):
    folder = _copy(saved, tmp_path / "w")
    (folder / weights.SGA_FILE).unlink()
    engine = AnomalyControlEngine.load(str(folder))
    assert engine.guidance == "text" and engine.bundle.guidance_source is None
    assert "guidance text" in engine.status() and engine.label.endswith("· text")
    assert "Guidance mode text" in engine.hint
    names = {p.name for p in engine.parameters()}
    assert not names & {"sga_scale", "ip_adapter_scale"} and "steps" in names
    assert {"asea_steps", "asea_lr"} <= names  # they drive the attention preview, which runs in every mode
    asea_calls = []
    real_asea = pipeline_module.run_asea
    monkeypatch.setattr(pipeline_module, "run_asea", lambda *a, **k: asea_calls.append(1) or real_asea(*a, **k))
    request = _request()
    (cand,) = engine.generate(request)
    assert asea_calls == []
    guidance = cand.metadata["guidance"]
    assert guidance["mode"] == "text" and guidance["active"] is False and guidance["scale"] == 0.0
    assert guidance["parameter"] is None and "guidance mode text" in guidance["off_reason"]
    assert cand.metadata["asea"]["ran"] is False and "text" in cand.metadata["asea"]["skipped"]
    assert engine.explain(request).steps and asea_calls == [1]  # the preview still runs ASEA
    # the GPU estimate charges no ASEA to a text-mode generate, but does to the preview
    p = request.using(engine.parameters()).params
    assert engine.gpu_work_seconds(request) == pytest.approx(
        request.num * (int(p["steps"] * p["strength"]) * pipeline_module.GPU_STEP_S + pipeline_module.GPU_SCORE_S))
    assert engine.gpu_work_seconds(request, explain=True) == p["asea_steps"] * pipeline_module.GPU_ASEA_STEP_S
    assert pipeline_module.GPU_MIN_S <= engine.gpu_seconds(request, "generate") <= pipeline_module.GPU_MAX_S


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(WeightsError, match="Unknown weights 'sd21'"):
        load_bundle("sd21")
    with pytest.raises(WeightsError, match="does not exist"):
        load_bundle("/no/such/weights")


def test_shipped_full_size_configs_describe_sd15_inpainting_and_blip2_itm():
    root = weights.configs_dir()
    unet = json.loads((root / "stable-diffusion-inpainting/unet/config.json").read_text())
    assert unet["in_channels"] == 9 and unet["cross_attention_dim"] == 768 and unet["sample_size"] == 64
    blip = json.loads((root / "blip2-itm-vit-g/config.json").read_text())
    assert blip["vision_config"]["hidden_size"] == 1408 and blip["vision_config"]["num_hidden_layers"] == 39
    assert blip["qformer_config"]["use_qformer_text_input"] is True and blip["num_query_tokens"] == 32
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        model = UNet2DConditionModel.from_config(unet)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == 859.5


def test_sd15_available_needs_no_torch(tmp_path):
    code = ("import sys; from studio.engines.anomalycontrol.weights import sd15_available; "
            f"assert sd15_available({str(tmp_path)!r}) is False; "
            "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_slow_tokenizer_without_merges_is_named_missing(saved, tmp_path, no_network):
    """SD-1.5's tokenizer is vocab.json + merges.txt; vocab alone (no tokenizer.json) cannot load."""
    folder = _copy(saved, tmp_path / "w")
    tokenizer = folder / "stable-diffusion-inpainting" / "tokenizer"
    for name in ("tokenizer.json", "merges.txt"):  # which one a save writes depends on the transformers version
        (tokenizer / name).unlink(missing_ok=True)
    (tokenizer / "vocab.json").write_text("{}")
    with pytest.raises(WeightsError) as err:
        load_bundle(str(folder))
    assert "stable-diffusion-inpainting/ (missing tokenizer/merges.txt)" in str(err.value)
    assert not sd15_available(folder)


def test_shipped_configs_follow_the_weights_folder_setting(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "WEIGHTS_DIR", tmp_path / "elsewhere")
    assert weights.configs_dir() == tmp_path / "elsewhere" / "configs"
    with pytest.raises(WeightsError, match="shipped model configs are missing"):
        load_bundle("sd15-random", device="cpu")


def test_sd15_random_builds_from_configs_in_the_shipped_layout(tmp_path):
    """The sd15-random path end to end (configs read, models built, bundle finished), on miniature
    configs written in the shipped layout so it runs on a CPU in seconds."""
    from studio.engines.anomalycontrol import models, tiny

    shipped = config.WEIGHTS_DIR / "configs"
    cfg = tiny.tiny_configs(len(tiny.clip_tokenizer()), len(tiny.bert_tokenizer()))
    sd, blip = tmp_path / weights.SD_DIR, tmp_path / weights.BLIP_DIR
    for name in ("unet", "vae", "text_encoder"):
        (sd / name).mkdir(parents=True)
        (sd / name / "config.json").write_text(json.dumps(cfg[name]))
    (sd / "scheduler").mkdir()
    (sd / "scheduler" / "scheduler_config.json").write_bytes(
        (shipped / weights.SD_DIR / "scheduler" / "scheduler_config.json").read_bytes())
    blip.mkdir()
    (blip / "config.json").write_text(json.dumps(cfg["blip2"]))
    processor = json.loads((shipped / weights.BLIP_DIR / "preprocessor_config.json").read_text())
    processor["size"] = {"height": 64, "width": 64}
    (blip / "preprocessor_config.json").write_text(json.dumps(processor))
    bundle = models.build_random_bundle(tmp_path, device="cpu", dtype=torch.float32)
    assert bundle.profile == "sd15-random" and bundle.note == weights.RANDOM_NOTE
    assert bundle.unet.config.in_channels == 9 and bundle.unet.config.cross_attention_dim == 32
