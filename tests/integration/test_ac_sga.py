"""SGA: λ=0 is exactly the base UNet, λ>0 changes it, checkpoints round-trip and bad files are refused."""
from __future__ import annotations

import copy

import pytest
import torch

from studio.engines.anomalycontrol.sga import (
    SGAdapter,
    attach_sga,
    cross_attention_layers,
    load_adapter,
    plain_attention,
    save_adapter,
)
from studio.engines.anomalycontrol.tiny import build_tiny_components
from studio.errors import WeightsError

FEATURE_DIM = 32



@pytest.fixture(scope="module")
def base_unet():
    return build_tiny_components()["unet"]


@pytest.fixture
def sga_unet(base_unet):
    unet = copy.deepcopy(base_unet)
    torch.manual_seed(3)
    adapter = attach_sga(unet, FEATURE_DIM)
    _perturb(adapter)
    return unet, adapter


def _perturb(adapter: SGAdapter, seed: int = 11) -> None:
    """Trained adapters differ from their initialisation; so should the test's."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapter.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)


def _inputs(batch: int = 2):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 9, 8, 8, generator=gen)
    text = torch.randn(batch, 77, 32, generator=gen)
    feature = torch.randn(batch, 8, FEATURE_DIM, generator=gen)
    return x, torch.tensor(500), text, feature


@torch.no_grad()
def _run(unet, adapter, scale, x, t, text, tokens):
    with adapter.scaled(scale):
        return unet(x, t, encoder_hidden_states=torch.cat([text, tokens], dim=1)).sample


@torch.no_grad()
def test_scale_zero_is_the_base_unet_and_positive_scale_is_not(base_unet, sga_unet):
    unet, adapter = sga_unet
    x, t, text, feature = _inputs()
    plain = base_unet(x, t, encoder_hidden_states=text).sample
    tokens = adapter.tokens(feature)
    assert tokens.shape == (2, 4, 32)
    assert (_run(unet, adapter, 0.0, x, t, text, tokens) - plain).abs().max().item() <= 1e-6
    with_sga = _run(unet, adapter, 1.0, x, t, text, tokens)
    assert (with_sga - plain).abs().max().item() > 1e-4
    half = _run(unet, adapter, 0.5, x, t, text, tokens)
    assert not torch.allclose(half, with_sga)


@torch.no_grad()
def test_dropped_images_get_the_unconditional_tokens(sga_unet):
    """Training's image dropout and CFG's unconditional branch share the tokens of no image (a zero embedding)."""
    _, adapter = sga_unet
    _, _, _, feature = _inputs()
    drop = torch.tensor([True, False])
    tokens = adapter.tokens(feature, drop)
    unconditional = adapter.unconditional_tokens(1)
    assert unconditional.shape == (1, 4, 32)
    assert torch.equal(tokens[0], unconditional[0])
    assert torch.equal(tokens[1], adapter.tokens(feature)[1]) and not torch.equal(tokens[1], unconditional[0])


def test_adapter_holds_exactly_the_trainable_parameters(base_unet):
    unet = copy.deepcopy(base_unet)
    keys_before = set(unet.state_dict())
    adapter = attach_sga(unet, FEATURE_DIM)
    layers = cross_attention_layers(unet)
    assert len(layers) == len(adapter.to_k_sg) == len(adapter.to_v_sg) > 0
    assert set(unet.state_dict()) == keys_before  # processors are not submodules of the UNet
    params = adapter.trainable_parameters()
    # 768 -> 1024 linear, IP-Adapter's projection (linear + LayerNorm), to_k_sg/to_v_sg per layer (no bias)
    assert len(params) == 2 + 4 + 2 * len(layers)
    unet_ids = {id(p) for p in unet.parameters()}
    assert not any(id(p) in unet_ids for p in params)
    # to_k_sg / to_v_sg start as the layer's own to_k / to_v
    name, attn = next(iter(layers.items()))
    key = name.removesuffix(".processor").replace(".", "_")
    assert torch.equal(adapter.to_k_sg[key].weight, attn.to_k.weight)
    assert torch.equal(adapter.to_v_sg[key].weight, attn.to_v.weight)
    assert isinstance(adapter.projection.image_proj.norm, torch.nn.LayerNorm)
    assert adapter.projection.to_embed.out_features == adapter.projection.image_proj.proj.in_features == 1024


@torch.no_grad()
def test_plain_attention_restores_processors(base_unet, sga_unet):
    unet, adapter = sga_unet
    x, t, text, feature = _inputs()
    with plain_attention(unet):
        plain = unet(x, t, encoder_hidden_states=text).sample
    assert torch.allclose(plain, base_unet(x, t, encoder_hidden_states=text).sample, atol=1e-6)
    assert (_run(unet, adapter, 1.0, x, t, text, adapter.tokens(feature)) - plain).abs().max() > 1e-4


@torch.no_grad()
def test_save_load_round_trip_is_exact(base_unet, sga_unet, tmp_path):
    unet, adapter = sga_unet
    path = save_adapter(adapter, tmp_path / "sga" / "adapter.safetensors")
    fresh_unet = copy.deepcopy(base_unet)
    fresh = attach_sga(fresh_unet, FEATURE_DIM)
    x, t, text, feature = _inputs()
    assert not torch.equal(_run(fresh_unet, fresh, 1.0, x, t, text, fresh.tokens(feature)),
                           _run(unet, adapter, 1.0, x, t, text, adapter.tokens(feature)))
    load_adapter(fresh, path)
    for (k, a), (k2, b) in zip(adapter.state_dict().items(), fresh.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert torch.equal(_run(fresh_unet, fresh, 1.0, x, t, text, fresh.tokens(feature)),
                       _run(unet, adapter, 1.0, x, t, text, adapter.tokens(feature)))


def test_wrong_shape_checkpoint_is_a_clear_error(base_unet, sga_unet, tmp_path):
    _, adapter = sga_unet
    path = save_adapter(adapter, tmp_path / "adapter.safetensors")
    other = attach_sga(copy.deepcopy(base_unet), FEATURE_DIM * 2)  # a BLIP-2 with another width
    with pytest.raises(WeightsError, match="does not fit the loaded models") as err:
        load_adapter(other, path)
    assert "projection.to_embed.weight" in str(err.value) and "[1024, 32]" in str(err.value)
    fewer_tokens = attach_sga(copy.deepcopy(base_unet), FEATURE_DIM, num_tokens=2)
    with pytest.raises(WeightsError, match="does not fit"):
        load_adapter(fewer_tokens, path)


def test_pickles_and_truncated_files_are_refused(sga_unet, tmp_path):
    _, adapter = sga_unet
    pickled = tmp_path / "adapter.pt"
    torch.save(adapter.state_dict(), pickled)
    with pytest.raises(WeightsError, match="only .safetensors"):
        load_adapter(adapter, pickled)
    disguised = tmp_path / "disguised.safetensors"
    disguised.write_bytes(pickled.read_bytes())
    with pytest.raises(WeightsError, match="pickle"):
        load_adapter(adapter, disguised)
    good = save_adapter(adapter, tmp_path / "good.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated"):
        load_adapter(adapter, truncated)
    with pytest.raises(WeightsError, match="does not exist"):
        load_adapter(adapter, tmp_path / "absent.safetensors")
    with pytest.raises(WeightsError, match=".safetensors"):
        save_adapter(adapter, tmp_path / "adapter.bin")
