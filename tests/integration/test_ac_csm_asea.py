"""CSM and ASEA on the tiny BLIP-2: shapes, attention steering, frozen weights, only e_g trains."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from studio.engines.anomalycontrol import asea as asea_module
from studio.engines.anomalycontrol.asea import run_asea
from studio.engines.anomalycontrol.csm import CrossModalSemantics
from studio.engines.anomalycontrol.tiny import build_tiny_components



@pytest.fixture(scope="module")
def csm() -> CrossModalSemantics:
    parts = build_tiny_components()
    return CrossModalSemantics(parts["blip2"], parts["blip_tokenizer"])


def _reference(seed: int, shape=(90, 120)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def _box_mask(shape, y0, y1, x0, x1) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_csm_returns_query_features_and_cross_attention_maps(csm):
    out = csm(_reference(0), "a deep scratch on brushed metal")
    cfg = csm.model.config
    q, d = cfg.num_query_tokens, cfg.qformer_config.hidden_size
    assert out.features.shape == (1, q, d)
    cross_layers = sum(1 for layer in csm.model.qformer.encoder.layer if layer.has_cross_attention)
    assert len(out.cross_attentions) == cross_layers
    heads = cfg.qformer_config.num_attention_heads
    for att in out.cross_attentions:
        assert att.shape == (1, heads, q, 1 + csm.grid ** 2)
        assert torch.allclose(att.sum(-1), torch.ones(()), atol=1e-5)
    patches = csm.patch_attention(out.cross_attentions)
    assert patches.shape == (1, csm.grid ** 2) and float(patches.sum()) < 1.0  # CLS excluded
    # the text matters: the Q-Former reads it together with the queries
    other = csm(_reference(0), "a round hole")
    assert not torch.allclose(out.features, other.features)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("box", [(10, 40, 10, 50), (50, 88, 60, 118), (30, 60, 40, 80)])
def test_asea_moves_attention_into_the_reference_mask(csm, seed, box):
    reference = _reference(seed)
    mask = _box_mask(reference.shape[:2], *box)
    result = run_asea(csm, reference, mask, "a deep scratch", steps=5, lr=0.1)
    fractions = result.trace.inmask_fractions
    assert len(fractions) == 6  # before the first step, then after each of the 5
    assert fractions[-1] > fractions[0] + 0.05, fractions
    losses = [s.loss for s in result.trace.steps]
    assert losses[-1] < losses[0]
    assert losses[0] == pytest.approx((1 - fractions[0]) ** 2, rel=1e-5)
    for step in result.trace.steps:
        assert step.heatmap.shape == reference.shape[:2] and step.heatmap.dtype == np.float32
        assert 0.0 <= step.heatmap.min() and step.heatmap.max() <= 1.0
    assert result.features.shape[:2] == (1, csm.model.config.num_query_tokens)


def test_asea_changes_only_the_guidance_variable(csm, monkeypatch):
    model = csm.model
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimisers = []

    class RecordingAdam(torch.optim.Adam):
        def __init__(self, params, **kwargs):
            params = list(params)
            optimisers.append(params)
            super().__init__(params, **kwargs)

    monkeypatch.setattr(asea_module.torch.optim, "Adam", RecordingAdam)
    reference = _reference(5)
    result = run_asea(csm, reference, _box_mask(reference.shape[:2], 20, 60, 20, 70), "a crack", steps=3, lr=0.1)
    assert len(optimisers) == 1 and len(optimisers[0]) == 1
    (e_g,) = optimisers[0]
    assert e_g.shape == csm.encode_image(reference).shape  # the frozen ViT tokens' shape
    assert e_g.grad is not None and e_g.abs().sum() > 0
    assert torch.equal(result.guidance, e_g.detach())
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]), f"{name} changed"
        assert p.grad is None and not p.requires_grad, name


def test_asea_zero_steps_shows_the_plain_csm_map(csm):
    reference = _reference(2)
    mask = _box_mask(reference.shape[:2], 0, 45, 0, 60)
    result = run_asea(csm, reference, mask, "stain", steps=0, lr=0.1)
    assert len(result.trace.steps) == 1
    plain = csm(reference, "stain").features
    assert torch.allclose(result.features, plain, atol=1e-6)


def _fine_texture(size: int = 1024) -> np.ndarray:
    """A 1-2 px texture (checker + noise): where a non-antialiased resize aliases."""
    yy, xx = np.mgrid[:size, :size]
    checker = ((xx + yy) % 2) * 160 + 40
    noise = np.random.default_rng(0).integers(-20, 20, (size, size))
    return np.clip(checker + noise, 0, 255).astype(np.uint8)[..., None].repeat(3, axis=-1)


def _normalise(resized: np.ndarray, mean, std) -> np.ndarray:
    return ((resized.astype(np.float32) / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).transpose(2, 0, 1)


def test_csm_input_of_a_fine_texture_is_pil_bicubic_not_aliased(csm):
    from PIL import Image

    from studio.engines.anomalycontrol.csm import CLIP_MEAN, CLIP_STD

    texture = _fine_texture()
    size = csm.image_size
    ours = csm.pixel_values(texture)[0].numpy()
    pil = _normalise(np.asarray(Image.fromarray(texture).resize((size, size), Image.BICUBIC)), CLIP_MEAN, CLIP_STD)
    aliased = _normalise(cv2.resize(texture, (size, size), interpolation=cv2.INTER_CUBIC), CLIP_MEAN, CLIP_STD)
    assert np.abs(ours - pil).max() < 1e-4
    # The old cv2 cubic input kept a large share of the checker's contrast (aliasing); PIL averages it away.
    assert ours.std(axis=(1, 2)).mean() < 0.25 * aliased.std(axis=(1, 2)).mean()


def test_csm_reads_the_checkpoints_own_preprocessor_settings():
    parts = build_tiny_components()
    config = {"size": {"height": 32, "width": 32}, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25],
              "resample": 3, "image_processor_type": "BlipImageProcessor"}
    csm = CrossModalSemantics(parts["blip2"], parts["blip_tokenizer"], config)
    image = _reference(4)
    from PIL import Image

    expected = _normalise(np.asarray(Image.fromarray(image).resize((32, 32), Image.BICUBIC)), [0.5] * 3, [0.25] * 3)
    assert csm.image_size == 32 and csm.grid == 32 // csm.patch_size
    assert np.abs(csm.pixel_values(image)[0].numpy() - expected).max() < 1e-4


def test_attention_hooks_do_not_accumulate_across_engines():
    """Two engines on one shared BLIP-2: no hook outlives a call, each call sees only its own maps."""
    from studio.engines.anomalycontrol.pipeline import AnomalyControlEngine
    from studio.engines.anomalycontrol.models import load_bundle

    bundle = load_bundle("tiny", device="cpu")
    first, second = AnomalyControlEngine(bundle).csm, AnomalyControlEngine(bundle).csm
    layers = [layer.crossattention.attention for layer in bundle.blip2.qformer.encoder.layer
              if layer.has_cross_attention]
    first(_reference(1), "a scratch")
    hooks = [len(layer._forward_hooks) for layer in layers]  # transformers may keep recorder hooks of its own
    for _ in range(3):
        out = first(_reference(1), "a scratch")
        assert len(out.cross_attentions) == len(layers)
    assert len(second(_reference(2), "a hole").cross_attentions) == len(layers)
    assert [len(layer._forward_hooks) for layer in layers] == hooks  # the old CSM left one per engine per layer
    assert not any(isinstance(v, list) and v for v in vars(second).values())  # nothing captured lying around
