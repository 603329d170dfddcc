"""One work region for inference and training (scale and aspect agree), and masks that keep thin defects."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.train_gpu import write_synthetic_anomalies
from studio.engines.anomalycontrol.inpainting import encode_inpainting_inputs, latent_cells, work_region
from studio.engines.anomalycontrol.pipeline import AnomalyControlEngine
from studio.engines.anomalycontrol.training.data import AnomalyPairs, load_anomaly, read_training_set, sample_position
from studio.types import SynthesisRequest


@pytest.fixture(scope="module")
def engine() -> AnomalyControlEngine:
    return AnomalyControlEngine.load("tiny")


@pytest.fixture(scope="module")
def large_set(tmp_path_factory) -> Path:
    """Anomalies on 256 px images, four times the tiny model's 64 px (as 1024 px MVTec is to SD's 512)."""
    return write_synthetic_anomalies(tmp_path_factory.mktemp("large"), {"widget": {"scratch": 2, "hole": 2}},
                                     size=256)


def test_training_sees_the_anomaly_at_the_scale_and_crop_inference_uses(engine, large_set):
    data = read_training_set(large_set)
    pairs = AnomalyPairs(data, 64, seed=0)
    for position in range(len(data)):
        sample = pairs[position]
        anomaly = data.anomalies[sample_position(position, len(data), 0)]
        image, mask = load_anomaly(anomaly)
        request = SynthesisRequest.create(image, mask, anomaly.caption, params={"steps": 2})
        region = engine.generate(request)[0].metadata["work_region"]
        expected = work_region(mask, 64)
        assert region["box"] == list(expected.box) and region["size"] == [64, 64]
        assert region["scale"] == pytest.approx(expected.scale, abs=1e-6)
        # The old training resized the whole 256 px image to 64 px: 4x smaller than the engine's crop.
        assert expected.scale > 64 / 256 * 1.5
        assert np.array_equal(_pixels(sample), expected.crop(image))
        assert np.array_equal(sample["mask"][0].numpy() > 0.5, expected.crop_mask(mask))


def _pixels(sample: dict) -> np.ndarray:
    return np.rint((sample["image"].permute(1, 2, 0).numpy() + 1.0) * 127.5).astype(np.uint8)


def test_non_square_images_are_never_stretched():
    """A wide image is cut as a square (the short side reflected in), not squashed into one."""
    height, width = 120, 400
    yy, xx = np.mgrid[:height, :width]
    image = np.dstack([(xx % 50 < 25) * 200, (yy % 40 < 20) * 200, np.full_like(xx, 90)]).astype(np.uint8)
    mask = np.zeros((height, width), bool)
    mask[40:100, 100:300] = True  # a long defect: its square (with margin) is taller than the image
    region = work_region(mask, 64, 5.0)
    x0, y0, x1, y1 = region.box
    assert x1 - x0 == y1 - y0 > height and y0 < 0 and y1 > height and 0 <= x0 < x1 <= width
    crop = region.crop(image)
    assert crop.shape == (64, 64, 3)
    # One isotropic scale: a disc stays a disc (the old 400x120 -> 64x64 resize made it 3.3x taller than wide).
    disc = (xx - 200) ** 2 + (yy - 60) ** 2 <= 45 ** 2
    ys, xs = np.nonzero(region.crop_mask(disc))
    assert xs.max() - xs.min() == pytest.approx(ys.max() - ys.min(), abs=1)
    label = region.crop_mask(np.ones((height, width), bool))
    assert not label[0].any() and not label[-1].any()  # the reflected rows are never labelled
    pasted = region.paste(image, crop)
    assert pasted.shape == image.shape


def test_a_three_pixel_line_still_covers_its_latent_cells(engine):
    vae = engine.bundle.vae
    mask = np.zeros((64, 64), np.float32)
    mask[9:12, 4:60] = 1.0                                     # 3 px wide, between nearest-neighbour samples
    cv2.line(mask, (5, 40), (58, 62), 1.0, 3)                  # and a 3 px diagonal
    mask_t = torch.from_numpy(mask)[None, None]
    image = torch.zeros(1, 3, 64, 64)
    inputs = encode_inpainting_inputs(vae, image, mask_t)
    touched = F.max_pool2d(mask_t, 8) > 0
    assert torch.equal(inputs.mask > 0.5, touched)            # every cell the sketch touches
    assert not torch.equal(F.interpolate(mask_t, size=(8, 8)) > 0.5, touched)  # what nearest sampling kept
    assert inputs.mask[0, 0, 1, 1:8].eq(1).all()              # the horizontal line's row of cells
    assert torch.equal(inputs.pixel_mask > 0.5, latent_cells(mask_t, 8) > 0.5)
    assert torch.equal(latent_cells(mask_t, 8)[..., 8:16, 8:16], torch.ones(1, 1, 8, 8))


def test_the_label_stays_the_sketched_line(engine):
    rng = np.random.default_rng(0)
    image = rng.integers(60, 200, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[30:33, 8:56] = True
    (candidate,) = engine.generate(SynthesisRequest.create(image, mask, "a thin scratch", params={"steps": 4}))
    assert np.array_equal(candidate.mask > 0, mask)
    assert candidate.metadata["label"]["mode"] == "sketch"
