"""SGA from IP-Adapter's SD-1.5 file: exact key names and shapes, tiny and full-size UNet, training starts from it."""
from __future__ import annotations

import json
import pytest
import torch
from safetensors.torch import save_file

from bench.train_gpu import write_synthetic_anomalies
from studio.cli import main
from studio.engines.anomalycontrol.ip_adapter import apply_ip_adapter, load_ip_adapter
from studio.engines.anomalycontrol.sga import FORMAT_NAME, attach_sga, load_adapter
from studio.engines.anomalycontrol.training.train import TrainSettings, fresh_adapter, train
from studio.engines.anomalycontrol.models import load_bundle
from studio.engines.anomalycontrol.weights import configs_dir
from studio.errors import WeightsError


def ip_adapter_file(unet, generator: torch.Generator | None = None, embed_dim: int = 1024,
                    num_tokens: int = 4) -> dict[str, torch.Tensor]:
    """The tensors of an IP-Adapter SD-1.5 file for ``unet``, named and numbered as the released file.

    Written from IP-Adapter's layout, independently of the code under test: one ``ip_adapter.<k>``
    per attention processor in ``unet.attn_processors`` order (k counts self- and cross-attention
    alike), ``to_k_ip`` / ``to_v_ip`` only on cross-attention (``attn2``) layers, of width
    (block channels, cross-attention dim), as diffusers' loader reads them.
    """
    config = unet.config
    cross = config.cross_attention_dim

    def fill(*shape):
        return torch.randn(*shape, generator=generator) if generator is not None else torch.empty(*shape).normal_()

    tensors = {
        "image_proj.proj.weight": fill(num_tokens * cross, embed_dim), "image_proj.proj.bias": fill(num_tokens * cross),
        "image_proj.norm.weight": fill(cross), "image_proj.norm.bias": fill(cross),
    }
    for k, name in enumerate(unet.attn_processors):
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = config.block_out_channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(config.block_out_channels))[int(name[len("up_blocks.")])]
        else:
            hidden = config.block_out_channels[int(name[len("down_blocks.")])]
        tensors[f"ip_adapter.{k}.to_k_ip.weight"] = fill(hidden, cross)
        tensors[f"ip_adapter.{k}.to_v_ip.weight"] = fill(hidden, cross)
    return tensors


def _targets(adapter, unet) -> dict[str, torch.Tensor]:
    """IP-Adapter key -> the adapter tensor it must land in (by processor name, not by the code's mapping)."""
    state = adapter.state_dict()
    out = {f"image_proj.{n}": state[f"projection.image_proj.{n}"]
           for n in ("proj.weight", "proj.bias", "norm.weight", "norm.bias")}
    for k, name in enumerate(unet.attn_processors):
        if not name.endswith("attn2.processor"):
            continue
        layer = name.removesuffix(".processor").replace(".", "_")
        out[f"ip_adapter.{k}.to_k_ip.weight"] = state[f"to_k_sg.{layer}.weight"]
        out[f"ip_adapter.{k}.to_v_ip.weight"] = state[f"to_v_sg.{layer}.weight"]
    return out


def _assert_loaded(source: dict[str, torch.Tensor], adapter, unet) -> None:
    targets = _targets(adapter, unet)
    assert targets.keys() == source.keys()
    for key, tensor in source.items():
        assert torch.equal(targets[key], tensor.to(targets[key].dtype)), key


@pytest.fixture(scope="module")
def bundle():
    return load_bundle("tiny", device="cpu")


def test_tiny_unet_loads_every_ip_adapter_tensor_from_a_file(bundle, tmp_path):
    adapter = fresh_adapter(bundle, 0)
    source = ip_adapter_file(bundle.unet, torch.Generator().manual_seed(0))
    assert sorted(int(k.split(".")[1]) for k in source if k.endswith("to_k_ip.weight"))[:2] == [1, 3]
    path = tmp_path / "ip-adapter_sd15.safetensors"
    save_file({k: v.half() for k, v in source.items()}, str(path))  # the released file is fp16
    before = adapter.projection.to_embed.weight.clone()
    untouched = load_ip_adapter(adapter, path)
    _assert_loaded({k: v.half() for k, v in source.items()}, adapter, bundle.unet)
    assert untouched == ["projection.to_embed.bias", "projection.to_embed.weight"]
    assert torch.equal(adapter.projection.to_embed.weight, before)  # 768 -> 1024 has no IP-Adapter counterpart


def test_full_size_sd15_unet_maps_all_sixteen_layers_without_allocating_the_unet():
    from diffusers import UNet2DConditionModel

    config = json.loads((configs_dir() / "stable-diffusion-inpainting" / "unet" / "config.json").read_text())
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
        adapter = attach_sga(unet, 768)
    assert next(unet.parameters()).is_meta
    adapter.to_empty(device="cpu")  # only the adapter (~17M parameters) is real
    source = ip_adapter_file(unet)
    keys = sorted(int(k.split(".")[1]) for k in source if k.endswith("to_k_ip.weight"))
    assert keys == list(range(1, 32, 2))  # the released file's ip_adapter.1 ... ip_adapter.31
    assert {"image_proj.proj.weight", "image_proj.norm.bias", "ip_adapter.31.to_v_ip.weight"} <= source.keys()
    assert len(source) == 4 + 2 * 16 and source["image_proj.proj.weight"].shape == (3072, 1024)
    assert {tuple(source[f"ip_adapter.{k}.to_k_ip.weight"].shape) for k in keys} == {(320, 768), (640, 768), (1280, 768)}
    apply_ip_adapter(adapter, source)
    _assert_loaded(source, adapter, unet)


def test_a_foreign_or_partial_file_is_a_clear_error(bundle, tmp_path):
    adapter = fresh_adapter(bundle, 0)
    source = ip_adapter_file(bundle.unet, torch.Generator().manual_seed(1))
    partial = dict(source)
    partial.pop("ip_adapter.1.to_v_ip.weight")
    with pytest.raises(WeightsError, match="missing .*ip_adapter.1.to_v_ip.weight"):
        apply_ip_adapter(adapter, partial)
    wider = dict(source, **{"image_proj.proj.weight": torch.zeros(4 * 32, 1280)})  # e.g. an SDXL/ViT-bigG file
    with pytest.raises(WeightsError, match="image_proj.proj.weight is \\[128, 1280\\]"):
        apply_ip_adapter(adapter, wider)
    pickled = tmp_path / "ip-adapter_sd15.bin"
    torch.save(source, pickled)
    with pytest.raises(WeightsError, match="pickle"):
        load_ip_adapter(adapter, pickled)


def test_training_starts_from_ip_adapter(bundle, tmp_path):
    data = write_synthetic_anomalies(tmp_path / "data", {"widget": {"scratch": 2, "hole": 2}})
    source = ip_adapter_file(bundle.unet, torch.Generator().manual_seed(2))
    path = tmp_path / "ip-adapter_sd15.safetensors"
    save_file(source, str(path))
    settings = TrainSettings(steps=2, batch_size=2, grad_accum=1, lr=1e-12, lr_warmup=0, workers=0,
                             checkpoint_every=0, asea_steps=1)
    result = train(data, "tiny", tmp_path / "adapter.safetensors", settings, init_ip_adapter=path, bundle=bundle)
    assert result.step == 2 and all(torch.isfinite(torch.tensor(result.losses)))
    trained = fresh_adapter(bundle, 5)
    load_adapter(trained, result.out)
    targets = _targets(trained, bundle.unet)
    for key, tensor in source.items():  # a negligible learning rate: the weights are still IP-Adapter's
        torch.testing.assert_close(targets[key], tensor, atol=1e-6, rtol=0)
    code = main(["train", "--data", str(data), "--weights", "tiny", "--out", str(tmp_path / "cli.safetensors"),
                 "--steps", "1", "--batch-size", "2", "--grad-accum", "1", "--workers", "0", "--asea-steps", "0",
                 "--init-ip-adapter", str(path)])
    assert code == 0


def test_checkpoints_of_the_old_format_get_a_clear_message(tmp_path):
    old = tmp_path / "adapter.safetensors"
    save_file({"projection.proj.weight": torch.zeros(4, 4)}, str(old), metadata={"format": FORMAT_NAME, "version": "1"})
    adapter = fresh_adapter(load_bundle("tiny", device="cpu"), 0)
    with pytest.raises(WeightsError, match="format version 1.*Train it again.*--init-ip-adapter"):
        load_adapter(adapter, old)

