"""The anomalycontrol engine on the tiny profile: sizes, untouched pixels, labels, seeds, batching, caching."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from studio.engines import Engine
from studio.engines.anomalycontrol import pipeline as pipeline_module
from studio.engines.anomalycontrol.inpainting import work_region
from studio.engines.anomalycontrol.pipeline import AnomalyControlEngine
from studio.engines.anomalycontrol.parameters import PARAMETERS
from studio.errors import InputError
from studio.imaging import soft_mask
from studio.types import SynthesisRequest

FAST = {"steps": 10}



@pytest.fixture(scope="module")
def engine() -> AnomalyControlEngine:
    return AnomalyControlEngine.load("tiny")


@pytest.fixture(scope="module")
def reference() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)
    mask = np.zeros((80, 100), bool)
    mask[20:50, 30:70] = True
    return image, mask


def _request(surface, blob_mask, reference=None, **kwargs) -> SynthesisRequest:
    ref, ref_mask = reference if reference is not None else (None, None)
    params = {**FAST, **kwargs.pop("params", {})}
    return SynthesisRequest.create(surface, blob_mask, "a deep scratch", reference=ref, reference_mask=ref_mask,
                                   reference_text="scratch on metal", params=params, parameters=PARAMETERS, **kwargs)


def test_engine_follows_the_protocol(engine):
    assert isinstance(engine, Engine)
    assert engine.name == "anomalycontrol" and engine.profile == "tiny"
    assert "tiny" in engine.status()


def test_candidates_keep_full_size_untouched_pixels_and_sketched_labels(engine, surface, blob_mask, reference):
    request = _request(surface, blob_mask, reference, num=2, seed=4)
    candidates = engine.generate(request)
    assert len(candidates) == 2
    support = soft_mask(blob_mask, request.params["blur_sigma"]) > 0
    for cand in candidates:
        assert cand.image.shape == surface.shape and cand.image.dtype == np.uint8
        assert np.array_equal(cand.image[~support], surface[~support])
        assert (cand.image[blob_mask] != surface[blob_mask]).any()
        assert cand.mask.dtype == np.uint8 and set(np.unique(cand.mask)) == {0, 255}
        assert np.array_equal(cand.mask > 0, blob_mask)
    meta = candidates[0].metadata
    assert meta["engine"] == "anomalycontrol" and meta["weights"] == "tiny"
    assert meta["guidance"]["mode"] == "sga" and meta["guidance"]["active"] is True and meta["guidance"]["scale"] == 1.0
    assert meta["asea"]["ran"] is True and len(meta["asea"]["inmask_fraction"]) == 6
    assert meta["negative_prompt"] and meta["params"]["steps"] == 10


def test_large_input_is_inpainted_in_a_crop_and_keeps_its_resolution(engine):
    rng = np.random.default_rng(1)
    image = rng.integers(60, 200, (768, 1024, 3), dtype=np.uint8)
    mask = np.zeros((768, 1024), bool)
    mask[500:560, 700:790] = True
    request = SynthesisRequest.create(image, mask, "a dent", params=FAST, parameters=PARAMETERS)
    (cand,) = engine.generate(request)
    assert cand.image.shape == (768, 1024, 3)
    support = soft_mask(mask, request.params["blur_sigma"]) > 0
    assert np.array_equal(cand.image[~support], image[~support])
    assert (cand.image[mask] != image[mask]).any()
    x0, y0, x1, y1 = cand.metadata["work_region"]["box"]
    assert x0 <= 700 and x1 >= 790 and y0 <= 500 and y1 >= 560 and (x1 - x0) < 1024
    assert cand.metadata["work_region"]["size"] == [64, 64]
    assert cand.metadata["guidance"]["active"] is False and "no reference" in cand.metadata["guidance"]["off_reason"]


def test_work_region_contains_the_blurred_mask():
    mask = np.zeros((768, 1024), bool)
    mask[0:30, 990:1024] = True  # at the corner
    region = work_region(mask, 512, 5.0)
    x0, y0, x1, y1 = region.box
    support = soft_mask(mask, 5.0) > 0
    ys, xs = np.nonzero(support)
    assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1
    assert region.size == 512 and region.side == 512  # a small defect on a large image: its own pixel scale
    # A wide image smaller than the model: one square over the long side, the short one reflected in (never stretched).
    small = work_region(np.ones((100, 300), bool), 512, 5.0)
    assert small.box == (0, -100, 300, 200) and small.size == 512


def test_same_seed_same_candidates_and_seeds_are_per_candidate(engine, surface, blob_mask, reference):
    first = engine.generate(_request(surface, blob_mask, reference, num=3, seed=10))
    again = engine.generate(_request(surface, blob_mask, reference, num=3, seed=10))
    for a, b in zip(first, again):
        assert np.array_equal(a.image, b.image)
    assert [c.seed for c in first] == [10, 11, 12]
    # candidate i depends only on its own seed (batched numerics may move a pixel by one level)
    alone = engine.generate(_request(surface, blob_mask, reference, num=1, seed=11))[0]
    diff = np.abs(alone.image.astype(int) - first[1].image.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.05


def test_three_candidates_are_distinct_and_come_from_one_batched_call(engine, surface, blob_mask, reference):
    calls = []
    handle = engine.bundle.unet.register_forward_pre_hook(lambda m, args: calls.append(args[0].shape[0]))
    try:
        candidates = engine.generate(_request(surface, blob_mask, reference, num=3, seed=20))
    finally:
        handle.remove()
    steps = candidates[0].metadata["denoising_steps"]
    assert steps == 7  # 10 steps at strength 0.7
    assert calls == [6] * steps  # one UNet call per step, all 3 candidates x (uncond, cond)
    images = [c.image for c in candidates]
    assert not np.array_equal(images[0], images[1]) and not np.array_equal(images[1], images[2])
    assert not np.array_equal(images[0], images[2])


def test_asea_runs_once_for_preview_then_generate_and_text_encoder_once_per_request(
        engine, surface, blob_mask, monkeypatch):
    rng = np.random.default_rng(99)  # a reference no other test used, so nothing is cached yet
    ref = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ref_mask = np.zeros((64, 64), bool)
    ref_mask[10:30, 10:40] = True
    asea_calls, text_calls = [], []
    real_asea = pipeline_module.run_asea
    monkeypatch.setattr(pipeline_module, "run_asea", lambda *a, **k: asea_calls.append(1) or real_asea(*a, **k))
    handle = engine.bundle.text_encoder.register_forward_hook(lambda *a: text_calls.append(1))
    try:
        request = _request(surface, blob_mask, (ref, ref_mask), num=2)
        trace = engine.explain(request)
        assert len(asea_calls) == 1 and len(trace.steps) == 6
        candidates = engine.generate(request)
        assert len(asea_calls) == 1 and len(text_calls) == 1
        assert candidates[0].metadata["asea"]["inmask_fraction"] == [round(f, 6) for f in trace.inmask_fractions]
        engine.generate(request)
        assert len(asea_calls) == 1 and len(text_calls) == 2
        engine.generate(_request(surface, blob_mask, (ref, ref_mask), params={"asea_steps": 3}))
        assert len(asea_calls) == 2 and len(text_calls) == 3
    finally:
        handle.remove()


def test_explain_traces(engine, surface, blob_mask, reference):
    trace = engine.explain(_request(surface, blob_mask, reference))
    assert trace.skipped is None and trace.note == "tiny random model: the maps show the mechanism only"
    assert trace.inmask_fractions[-1] > trace.inmask_fractions[0]
    assert trace.steps[0].heatmap.shape == reference[0].shape[:2]
    no_mask = engine.explain(_request(surface, blob_mask, (reference[0], None)))
    assert not no_mask.steps and "no reference mask" in no_mask.skipped
    no_ref = engine.explain(_request(surface, blob_mask))
    assert not no_ref.steps and "no reference image" in no_ref.skipped


def test_progress_is_reported_per_denoising_step(engine, surface, blob_mask):
    seen = []
    engine.generate(_request(surface, blob_mask), progress=lambda done, total, what: seen.append((done, total, what)))
    denoise = [(d, t) for d, t, w in seen if w == "denoising"]
    assert denoise == [(i, 7) for i in range(1, 8)]


def test_sga_scale_zero_and_bad_step_counts(engine, surface, blob_mask, reference):
    stages = set()
    (cand,) = engine.generate(_request(surface, blob_mask, reference, params={"sga_scale": 0}),
                              progress=lambda done, total, what: stages.add(what))
    assert cand.metadata["guidance"]["active"] is False and cand.metadata["guidance"]["off_reason"] == "sga_scale is 0"
    assert stages == {"denoising"}  # λ = 0: no CSM features are needed, so ASEA does not run
    assert cand.metadata["asea"]["ran"] is False and cand.metadata["asea"]["skipped"] == "SGA is off (sga_scale is 0)"
    with pytest.raises(InputError, match="at least 2 steps"):
        engine.generate(_request(surface, blob_mask, params={"steps": 1, "strength": 0.5}))


def test_engine_imports_without_gradio():
    code = ("import sys; sys.modules['gradio'] = None; "
            "import studio.engines.anomalycontrol.pipeline, studio.engines.anomalycontrol.weights")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_candidates_are_scored_by_blip2_matching_of_their_region(engine, surface, blob_mask, reference):
    from studio.engines.anomalycontrol.scoring import region_box

    candidates = engine.generate(_request(surface, blob_mask, reference, num=2))
    for cand in candidates:
        score = cand.metadata["score"]
        assert 0.0 <= score["value"] <= 1.0 and "BLIP-2 image-text matching" in score["method"]
        assert cand.score == score["value"]
    x0, y0, x1, y1 = region_box(blob_mask)
    assert x0 <= 88 and x1 >= 168  # the blob (x 88..168) with a margin
    crops = [c.image[y0:y1, x0:x1].copy() for c in candidates]
    expected = engine.csm.match(crops, "a deep scratch").tolist()
    assert [c.score for c in candidates] == pytest.approx(expected, abs=1e-5)


def test_label_follows_the_changed_pixels_when_asked(engine, surface, blob_mask):
    sketch = engine.generate(_request(surface, blob_mask))[0]
    assert sketch.metadata["label"] == {"mode": "sketch", "threshold": 0}
    assert np.array_equal(sketch.mask > 0, blob_mask)
    changed = engine.generate(_request(surface, blob_mask, params={"label_threshold": 40}))[0]
    assert np.array_equal(changed.image, sketch.image)  # the label never changes the pixels
    label = changed.mask > 0
    assert changed.metadata["label"]["mode"] == "changed" and changed.metadata["params"]["label_threshold"] == 40
    assert label.any() and not (label & ~blob_mask).any() and label.sum() < blob_mask.sum()
    diff = np.abs(changed.image.astype(int) - surface.astype(int)).max(axis=-1)
    assert np.median(diff[label]) > np.median(diff[blob_mask & ~label])


def test_changed_pixels_are_cleaned_and_stay_in_the_sketch():
    from studio.engines.anomalycontrol.labels import candidate_label, changed_pixels

    original = np.full((40, 40, 3), 100, np.uint8)
    result = original.copy()
    sketch = np.zeros((40, 40), bool)
    sketch[5:30, 5:30] = True
    result[10:20, 10:20] = 180      # the defect
    result[25, 25] = 255            # one isolated pixel: noise, not a defect
    result[35:38, 35:38] = 0        # changed but outside the sketch
    cleaned = changed_pixels(original, result, sketch, 30)
    assert cleaned[11:19, 11:19].all() and cleaned[10:20, 10:20].sum() >= 95  # (the opening rounds corners)
    assert not cleaned[25, 25] and not cleaned[35:38, 35:38].any()
    label, meta = candidate_label(original, original, sketch, 30)  # nothing changed: the sketch is kept
    assert np.array_equal(label > 0, sketch) and meta["mode"] == "sketch" and "no sketched pixel" in meta["note"]
