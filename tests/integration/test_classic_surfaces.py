"""Issue 22 on images made here: a textured disc (a coin) on a cloth-like weave, a sketch across
its rim. Geometric defects stay on one surface; the sketch's outline never shows, rectangles
included; labels are the defect's own visible footprint; seeds draw different shapes on different
photos; shading follows the light's confidence; burns char; unknown words do not fill the sketch."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from studio.engines.classic import ClassicEngine
from studio.engines.classic import engine as classic_engine
from studio.engines.classic import inspection as classic_inspection
from studio.engines.classic.defects import GEOMETRIC_FAMILIES
from studio.engines.classic.inspection import (
    STAND_OUT, VISIBLE, change, floor_figures, label_parts, one_surface_share, outline_share, unchanged_share,
)
from studio.engines.classic.keywords import EXAMPLE_PROMPTS
from studio.engines.classic.measures import iou
from studio.engines.classic.photometry import fine_pass, luminance, robust_sigma, smooth_grey, to_lab
from studio.engines.classic.shading import power, shading, soft_limit
from studio.engines.classic.surfaces import COARSE_AREA, surface_units
from studio.imaging import erode
from studio.types import SynthesisRequest

ENGINE = ClassicEngine()
SIZE = 192
CENTRE, RADIUS = (84, 96), 46


def coin_on_cloth(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(image, surfaces): a bright, finely textured disc on a darker plain weave; surfaces 1 = cloth, 2 = disc."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    weave = 70 + 14 * np.sign(np.sin(xx * np.pi / 3) * np.sin(yy * np.pi / 3))
    disc = np.hypot(xx - CENTRE[0], yy - CENTRE[1]) < RADIUS
    grey = np.where(disc, 185 + 10 * np.sin(0.3 * xx + 0.2 * yy), weave) + rng.normal(0, 3, (SIZE, SIZE))
    image = np.clip(np.stack([grey, grey * 0.95, grey * 0.9], axis=2), 0, 255).astype(np.uint8)
    return image, disc.astype(np.int32) + 1


def rim_sketch(rectangle: bool = False) -> np.ndarray:
    """A sketch across the disc's right rim: two thirds on the disc, a third on the cloth."""
    mask = np.zeros((SIZE, SIZE), np.uint8)
    if rectangle:
        mask[80:112, 95:160] = 1
    else:
        cv2.ellipse(mask, (CENTRE[0] + RADIUS - 8, CENTRE[1]), (36, 15), 0, 0, 360, 1, -1)
    return mask.astype(bool)


def generate(image: np.ndarray, mask: np.ndarray, prompt: str, num: int = 4, seed: int = 3) -> list:
    return ENGINE.generate(SynthesisRequest.create(image, mask, prompt, num=num, seed=seed))


def test_the_disc_and_the_cloth_are_two_surface_units() -> None:
    image, surfaces = coin_on_cloth()
    mask = rim_sketch()
    units = surface_units(luminance(image.astype(np.float32)), mask)
    assert units.max() >= 2
    # every unit lies on one surface (>= 95% of its pixels)
    for unit in range(1, int(units.max()) + 1):
        on = np.bincount(surfaces[units == unit], minlength=3)
        assert on.max() >= 0.95 * on.sum(), f"unit {unit} straddles the rim: {on}"


def test_a_large_sketch_is_split_into_units_that_end_at_the_rim() -> None:
    """A sketch of >= COARSE_AREA px is split on a half-size copy of its tones and snapped back: its
    units still lie each on one surface, a pixel on the wrong one only where the disc's rim crosses
    it (unsnapped, the half-size copy's blocks reach a px past the rim)."""
    size, centre, radius = 512, (230, 256), 130
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:size, :size]
    weave = 70 + 14 * np.sign(np.sin(xx * np.pi / 3) * np.sin(yy * np.pi / 3))
    distance = np.hypot(xx - centre[0], yy - centre[1])
    grey = np.where(distance < radius, 185 + 10 * np.sin(0.3 * xx + 0.2 * yy), weave) + rng.normal(0, 3, (size, size))
    mask = np.zeros((size, size), np.uint8)
    cv2.ellipse(mask, (centre[0] + radius - 20, centre[1]), (150, 90), 0, 0, 360, 1, -1)
    mask = mask.astype(bool)
    assert mask.sum() >= COARSE_AREA
    units = surface_units(grey.astype(np.float32), mask)
    assert units.max() >= 2
    truth = (distance < radius).astype(np.int32) + 1
    for unit in range(1, int(units.max()) + 1):
        on = np.bincount(truth[units == unit], minlength=3)
        wrong = (units == unit) & (truth != int(np.argmax(on)))
        assert np.abs(distance - radius)[wrong].max(initial=0.0) <= 0.5, f"unit {unit} reaches past the rim"


def test_an_edge_between_two_tones_is_judged_on_the_finely_smoothed_luminance() -> None:
    """Two tones meeting at a step blurred by 3.3 px are two surfaces; blurred by 4.5 px, a gradual
    change of tone (one surface). The step's sharpness is read on the sigma-1 smoothing, whether made
    here or given (the tones' own, wider smoothing would call the 3.3-px step gradual)."""
    size = 240
    region = np.zeros((size, size), np.uint8)
    cv2.ellipse(region, (120, 120), (110, 100), 0, 0, 360, 1, -1)
    region = region.astype(bool)
    for blur_px, count in ((3.3, 2), (4.5, 1)):
        step = np.where(np.arange(size)[None, :] < 120, 90.0, 150.0) * np.ones((size, 1))
        grey = cv2.GaussianBlur(step.astype(np.float32), (0, 0), blur_px)
        assert surface_units(grey, region).max() == count, blur_px
        assert surface_units(grey, region, smooth_grey(grey)).max() == count, blur_px


def test_geometric_defects_keep_their_visible_change_on_one_surface() -> None:
    """>= 85% of the visible change on one surface in >= 75% of geometric candidates (issue 22)."""
    image, surfaces = coin_on_cloth()
    shares = []
    for family in GEOMETRIC_FAMILIES:
        for rectangle in (False, True):
            for cand in generate(image, rim_sketch(rectangle), EXAMPLE_PROMPTS[family]):
                shares.append(one_surface_share(image, cand.image, surfaces))
    kept = sum(s >= 0.85 for s in shares) / len(shares)
    assert kept >= 0.75, f"only {kept:.0%} of geometric candidates stay on one surface: {np.round(shares, 2)}"


def test_a_reference_anomaly_lies_on_one_surface() -> None:
    """A transplanted reference stain on a sketch across the disc's rim lies on the disc or on the
    cloth, not across both: >= 85% of its visible change on one surface in >= 75% of candidates
    (as for the geometric defects)."""
    image, surfaces = coin_on_cloth()
    reference = np.full((96, 96, 3), 150, np.uint8)
    cv2.circle(reference, (48, 48), 22, (120, 40, 40), -1)
    ref_mask = np.hypot(*(np.mgrid[:96, :96] - 48)) <= 22
    shares = []
    for rectangle in (False, True):
        for seed in (1, 2):
            for cand in ENGINE.generate(SynthesisRequest.create(image, rim_sketch(rectangle), "a red stain",
                                                                reference=reference, reference_mask=ref_mask,
                                                                num=4, seed=seed)):
                shares.append(one_surface_share(image, cand.image, surfaces))
    kept = sum(s >= 0.85 for s in shares) / len(shares)
    assert kept >= 0.75, f"only {kept:.0%} of reference candidates stay on one surface: {np.round(shares, 2)}"


@pytest.mark.parametrize("family", sorted(EXAMPLE_PROMPTS))
def test_the_outline_never_shows_and_labels_are_what_changed(family: str) -> None:
    """Whatever the family and the sketch's shape (an ellipse or a rectangle): nothing on the sketch's
    inner 2-px band changes by more than 8 grey levels on more than 5% of it, the label's share of
    pixels that did not visibly change is <= 25% in the median candidate, every changed pixel is
    labelled and pixels outside the grown sketch are exact."""
    image, _ = coin_on_cloth()
    halos = []
    for rectangle in (False, True):
        mask = rim_sketch(rectangle)
        grown = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        for cand in generate(image, mask, EXAMPLE_PROMPTS[family], num=3):
            assert outline_share(image, cand.image, mask) <= 0.05, f"{family}: the sketch's outline shows"
            halos.append(unchanged_share(image, cand.image, cand.mask))
            assert (change(image, cand.image)[~grown] == 0).all()
            assert not ((change(image, cand.image) > 4) & (cand.mask == 0)).any(), "a changed pixel is unlabelled"
    assert float(np.median(halos)) <= 0.25, f"{family}: the labels halo: {np.round(halos, 2)}"


def test_dents_are_labelled_in_one_piece_floor_included() -> None:
    image, _ = coin_on_cloth()
    cands = generate(image, rim_sketch(), "a dent", num=6)
    assert all(label_parts(c.mask) == 1 for c in cands), [label_parts(c.mask) for c in cands]


def test_the_same_seed_draws_different_shapes_on_different_photos() -> None:
    first, _ = coin_on_cloth(0)
    second, _ = coin_on_cloth(1)  # the same scene, another exposure's noise
    mask = rim_sketch()
    for family in ("scratch", "stain", "hole"):
        a, b = generate(first, mask, EXAMPLE_PROMPTS[family], num=1)[0], generate(second, mask, EXAMPLE_PROMPTS[family], num=1)[0]
        assert iou(a.mask, b.mask) <= 0.5, f"{family}: seed 3 draws the same shape on two photos"


def test_shading_is_only_as_strong_as_the_light_is_known() -> None:
    """A dent on a flat surface (no light measured) changes the surface less and more evenly than the
    same dent on a surface lit from one side: its lit and shadowed slopes differ less."""
    flat = np.full((SIZE, SIZE, 3), 140, np.uint8)
    flat = np.clip(flat + np.random.default_rng(0).normal(0, 2, flat.shape), 0, 255).astype(np.uint8)
    xx = np.mgrid[:SIZE, :SIZE][1]
    lit = np.clip(flat.astype(np.float32) + (0.35 * (xx - SIZE / 2))[..., None], 0, 255).astype(np.uint8)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(mask, (96, 96), (50, 40), 0, 0, 360, 1, -1)
    spreads = {}
    for name, image in (("flat", flat), ("lit", lit)):
        cands = generate(image, mask.astype(bool), "a dent", num=3)
        assert (cands[0].metadata["photometry"]["light_confidence"] < 0.15) == (name == "flat")
        signed = [(c.image.astype(np.float32) - image).mean(axis=2)[c.mask > 0] for c in cands]
        spreads[name] = float(np.mean([np.percentile(s, 95) - np.percentile(s, 5) for s in signed]))
    assert spreads["flat"] < spreads["lit"], spreads


def test_soft_limit_leaves_unchanged_pixels_exact_even_saturated() -> None:
    before = np.array([[0.0, 255.0, 250.0, 100.0]], np.float32)
    after = np.array([[0.0, 255.0, 270.0, 80.0]], np.float32)
    out = soft_limit(before, after.copy())
    assert out[0, 0] == 0.0 and out[0, 1] == 255.0, "an untouched saturated pixel moved"
    assert 250.0 < out[0, 2] < 255.0 and out[0, 3] == 80.0


def test_a_burn_chars_its_core_and_is_not_a_discoloration() -> None:
    image, _ = coin_on_cloth()
    mask = rim_sketch()
    for burn, other in zip(generate(image, mask, "a burn mark"), generate(image, mask, "discoloration")):
        assert burn.metadata["generator"] == "burn" and not np.array_equal(burn.image, other.image)
        drop = (image.astype(np.float32) - burn.image).mean(axis=2)[burn.mask > 0]
        assert np.sort(drop)[-max(1, drop.size // 10):].mean() >= 25, "no char-dark core"


@pytest.mark.parametrize("prompt", ["a misprint", "efflorescence", "flux capacitor", "x"])
def test_unknown_words_get_a_family_and_never_fill_the_sketch(prompt: str) -> None:
    image, _ = coin_on_cloth()
    mask = rim_sketch()
    for cand in generate(image, mask, prompt, num=3):
        assert cand.metadata["generator"] != "perlin"
        assert (cand.mask > 0)[mask].mean() <= 0.75, "the defect fills the sketch"
        assert (change(image, cand.image) > VISIBLE).any()
        if prompt in ("flux capacitor", "x"):
            assert "scratch" in cand.metadata["generator_note"], "the note lists the families"


def test_a_reference_on_a_very_different_background_says_so() -> None:
    """A reference photographed on light-grey plastic, transplanted onto dark cloth, carries a note;
    on a surface like its own it does not."""
    reference = np.full((96, 96, 3), 205, np.uint8)
    cv2.circle(reference, (48, 48), 20, (150, 40, 35), -1)
    ref_mask = np.zeros((96, 96), bool)
    ref_mask[28:69, 28:69] = np.hypot(*np.mgrid[-20:21, -20:21]) <= 20
    sketch = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(sketch, (96, 96), (40, 22), 0, 0, 360, 1, -1)
    mask = sketch.astype(bool)
    for grey, noted in ((60, True), (200, False)):
        image = np.full((SIZE, SIZE, 3), grey, np.uint8)
        cand = ENGINE.generate(SynthesisRequest.create(image, mask, "a red stain", reference=reference,
                                                       reference_mask=ref_mask, seed=1))[0]
        assert ("note" in cand.metadata["colour_transfer"]) == noted, grey


def striped_plate() -> tuple[np.ndarray, np.ndarray]:
    """A finely striped, grainy plate with an elliptic sketch."""
    rng = np.random.default_rng(4)
    xx = np.mgrid[:SIZE, :SIZE][1]
    grey = 150 + 6 * np.sin(xx * 2 * np.pi / 5) + cv2.GaussianBlur(rng.normal(0, 5, (SIZE, SIZE)), (0, 0), 0.7)
    image = np.clip(np.stack([grey, grey * 0.97, grey * 0.92], axis=2), 0, 255).astype(np.uint8)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(mask, (96, 96), (40, 28), 20, 0, 360, 1, -1)
    return image, mask.astype(bool)


def test_hole_and_chip_floors_are_new_material_as_grainy_as_the_surround() -> None:
    """On the striped plate, every hole's or chip's floor (its label less the rim and wall) has fine detail
    0.6-1.5 of the surround's and does not repeat the stripes (correlation <= 0.3)."""
    image, mask = striped_plate()
    floors = [f for prompt in ("a hole", "a chipped edge") for cand in generate(image, mask, prompt, num=6)
              if (f := floor_figures(image, cand.image, cand.mask, mask)) is not None]
    assert len(floors) >= 8, "too few floors to judge"
    assert all(0.6 <= ratio <= 1.5 for ratio, _ in floors), f"floor detail vs the surround's: {floors}"
    assert max(corr for _, corr in floors) <= 0.3, f"floor repeats the host: {np.round([f[1] for f in floors], 2)}"


def test_a_floor_that_does_not_fit_is_drawn_again(monkeypatch) -> None:
    """A hole whose floor is off (the check says so for the first draw) is drawn again, and the second draw is
    kept; a family that reveals no floor is never checked."""
    image, mask = striped_plate()
    checked = []

    def first_fails(*args) -> bool:
        checked.append(args)
        return len(checked) > 1
    monkeypatch.setattr(classic_engine, "floor_fits", first_fails)
    (cand,) = generate(image, mask, "a hole", num=1)
    assert len(checked) == 2 and cand.metadata["draw"] == 1
    checked.clear()
    generate(image, mask, "a long scratch", num=2)
    assert checked == []


def test_a_floor_whose_grain_reads_noisier_than_the_surround_is_drawn_again(monkeypatch) -> None:
    """A hole whose floor reads noisier than the surface around it (noise ratio outside ±35%: on gravel a
    grain as strong as the stones' edges did) is drawn again, and the draw that matches is kept."""
    image, mask = striped_plate()
    read = []

    def noisy_first(after: np.ndarray, label: np.ndarray) -> float:
        read.append(label.copy())
        return 1.6 if len(read) == 1 else 1.0
    monkeypatch.setattr(classic_inspection, "noise_ratio", noisy_first)
    (cand,) = generate(image, mask, "a hole", num=1)
    assert len(read) == 2 and cand.metadata["draw"] == 1
    assert np.count_nonzero(read[1]) == np.count_nonzero(cand.mask), "the second draw (read on its crop) is the one kept"

def test_reference_transplants_vary_with_the_seed_on_a_long_sketch() -> None:
    """A round reference anomaly on a long, narrow sketch over a plain grey surface: for each of four
    requests, 4 seeds give labels whose median pairwise IoU is <= 0.7 (size, position along the
    sketch, non-rigid warp), not one disc in the middle (0.45-0.83 before positions used the room)."""
    reference = np.full((96, 96, 3), 180, np.uint8)
    cv2.circle(reference, (48, 48), 20, (90, 60, 40), -1)
    ref_mask = np.hypot(*(np.mgrid[:96, :96] - 48)) <= 20
    image = np.full((SIZE, SIZE, 3), 120, np.uint8)
    sketch = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(sketch, (96, 150), (60, 16), 0, 0, 360, 1, -1)
    for seed in (0, 2, 4, 6):
        cands = ENGINE.generate(SynthesisRequest.create(image, sketch.astype(bool), "a stain", reference=reference,
                                                        reference_mask=ref_mask, num=4, seed=seed))
        overlaps = [iou(a.mask, b.mask) for i, a in enumerate(cands) for b in cands[i + 1:]]
        assert float(np.median(overlaps)) <= 0.7, (seed, np.round(overlaps, 2))


def test_a_small_reference_in_a_large_sketch_is_not_blown_up() -> None:
    """A 20-px granular reference disc in a sketch 360 px across is enlarged at most 1.5x (seeded
    sizes, a half to all of that), placed inside the sketch, and keeps its own grain (0.04-0.11 of
    it when it was stretched over the sketch, 4.7-7.9x)."""
    rng = np.random.default_rng(1)
    reference = np.full((96, 96, 3), 180, np.float32)
    disc = np.hypot(*(np.mgrid[:96, :96] - 48)) <= 20
    reference[disc] = np.array([90, 60, 40]) + rng.normal(0, 25, (int(disc.sum()), 1))
    reference = np.clip(reference, 0, 255).astype(np.uint8)

    def grain(image: np.ndarray, where: np.ndarray) -> float:
        return robust_sigma(fine_pass(luminance(image.astype(np.float32)).astype(np.float32))[where])
    own = grain(reference, erode(disc, 2))
    image = np.full((512, 512, 3), 120, np.uint8)
    sketch = np.zeros((512, 512), np.uint8)
    cv2.ellipse(sketch, (256, 256), (181, 144), 0, 0, 360, 1, -1)
    cands = ENGINE.generate(SynthesisRequest.create(image, sketch.astype(bool), "a stain", reference=reference,
                                                    reference_mask=disc, num=4, seed=3))
    areas = []
    for cand in cands:
        sx, sy = cand.metadata["fit"]["scale"]
        assert np.sqrt(sx * sy) <= 1.5 + 1e-3
        areas.append(int((cand.mask > 0).sum()))
        assert areas[-1] <= 1.6 * 1.5**2 * disc.sum()
        assert grain(cand.image, erode(cand.mask > 0, 3)) >= 0.25 * own
    assert max(areas) >= 1.3 * min(areas), areas


def test_a_reference_is_worked_on_where_it_landed() -> None:
    """In a large sketch the transplant (warp, colour, noise, Poisson solve) reads only the box where
    the anomaly landed grown by ``WORK_MARGIN``, not the box it could have reached: the whole crop."""
    from studio.engines.classic.defects import Shared
    from studio.engines.classic.reference import WORK_MARGIN, fit_reference, prepare_reference

    reference = np.full((96, 96, 3), 180, np.uint8)
    cv2.ellipse(reference, (48, 48), (40, 8), 30, 0, 360, (90, 60, 40), -1)
    ref_mask = np.all(reference == (90, 60, 40), axis=2)
    sketch = np.zeros((512, 512), np.uint8)
    cv2.ellipse(sketch, (256, 256), (181, 144), 0, 0, 360, 1, -1)
    shared = Shared.of(np.full((512, 512, 3), 120, np.uint8), sketch.astype(bool))
    prepared = prepare_reference(reference, ref_mask)
    for seed in range(4):
        fit = fit_reference(prepared, shared, np.random.default_rng(seed))
        x, y, w, h = cv2.boundingRect(fit.mask.view(np.uint8))
        rows, cols = fit.window
        assert fit.mask[fit.window].sum() == fit.mask.sum()  # it holds the anomaly
        assert (rows.start, cols.start) == (max(0, y - WORK_MARGIN), max(0, x - WORK_MARGIN)), (seed, fit.window)
        assert (rows.stop, cols.stop) == (min(512, y + h + WORK_MARGIN), min(512, x + w + WORK_MARGIN)), seed


def blue_print() -> tuple[np.ndarray, np.ndarray]:
    """A saturated blue printed surface with a little noise, and an elliptic sketch on it."""
    rng = np.random.default_rng(0)
    image = np.clip(np.array([40, 70, 170], np.float32) + rng.normal(0, 3, (160, 160, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((160, 160), np.uint8)
    cv2.ellipse(mask, (80, 80), (50, 30), 0, 0, 360, 1, -1)
    return image, mask.astype(bool)


def test_a_yellow_tint_on_a_blue_print_greys_it_and_does_not_turn_it_green() -> None:
    """Tints are worked in Lab with their chroma limited: yellowing a saturated blue print moves it
    towards grey (b* up), never to a green (a* < 0) nor beyond its own chroma + 12 (+ noise)."""
    image, mask = blue_print()
    before = to_lab(image.astype(np.float32))
    for cand in generate(image, mask, "yellow discoloration", num=3):
        after = to_lab(cand.image.astype(np.float32))
        moved = change(image, cand.image) > VISIBLE
        assert moved.sum() > 100
        assert (after[..., 2] - before[..., 2])[moved].mean() > 5, "no yellowing"
        assert np.percentile(after[..., 1][moved], 5) > 5, "the blue print turned green"
        chroma = np.hypot(after[..., 1], after[..., 2]) - np.hypot(before[..., 1], before[..., 2])
        assert np.percentile(chroma[moved], 99) <= 15, "the tint went neon"


def plate_and_grain() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a smooth dark-grey plate, a rough, grainy beige surface, an elliptic sketch)."""
    rng = np.random.default_rng(0)
    plate = np.clip(np.array([70, 74, 80], np.float32) + rng.normal(0, 2, (160, 160, 3)), 0, 255)
    grain = cv2.GaussianBlur(rng.normal(0, 30, (160, 160)), (0, 0), 0.8)[..., None]
    rough = np.clip(np.array([150, 130, 100], np.float32) + grain, 0, 255)
    mask = np.zeros((160, 160), np.uint8)
    cv2.ellipse(mask, (80, 80), (50, 30), 0, 0, 360, 1, -1)
    return plate.astype(np.uint8), rough.astype(np.uint8), mask.astype(bool)


def test_water_dries_to_a_whitish_ring_on_a_smooth_plate_and_darkens_a_porous_surface() -> None:
    plate, rough, mask = plate_and_grain()
    for cand in generate(plate, mask, "a water stain", num=3):
        delta = (cand.image.astype(np.float32) - plate)[cand.mask > 0]
        assert cand.metadata["generator_params"]["colour"] == "mineral"
        assert delta.mean() > 8, "a mineral deposit brightens"
        assert np.abs(delta.mean(axis=0) - delta.mean()).max() < 4, "minerals are whitish, not coloured"
        assert np.percentile(delta.mean(axis=1), 10) > -3, "nothing of it darkens"
    for cand in generate(rough, mask, "a water stain", num=3):
        assert cand.metadata["generator_params"]["colour"] == "damp"
        assert (cand.image.astype(np.float32) - rough)[cand.mask > 0].mean() < -5, "a porous surface soaks it up"


def test_oil_shows_interference_colours_only_on_a_smooth_surface() -> None:
    """On a matte, grainy surface the oil soaks in: no thin-film rainbow, so the colour of the smoothed
    change (red minus blue per grey level of it) varies less than half as much as on a smooth plate,
    where the colours cycle with the film's thickness."""
    plate, rough, mask = plate_and_grain()
    hues = {}
    for name, image in (("plate", plate), ("rough", rough)):
        spreads = []
        for cand in generate(image, mask, "an oil stain", num=3):
            iridescence = cand.metadata["generator_params"]["iridescence"]
            assert (iridescence == 0.0) == (name == "rough"), (name, iridescence)
            delta = cv2.GaussianBlur(cand.image.astype(np.float32) - image, (0, 0), 2.0)
            shown = change(image, cand.image) > VISIBLE
            tone = delta[shown] / np.maximum(np.abs(delta[shown]).mean(axis=1, keepdims=True), 1.0)
            spreads.append(float((tone[:, 0] - tone[:, 2]).std()))
        hues[name] = max(spreads)
    assert hues["rough"] < 0.5 * hues["plate"], f"the change's colour cycles on a matte surface: {hues}"


def test_a_cut_in_the_fabric_is_a_long_frayed_opening_not_a_groove() -> None:
    """"a cut in the fabric" opens the cloth: a hole-family slit, long and narrow (its darkened pixels'
    principal axes >= 3:1), with loose threads at its edges."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    weave = 120 + 25 * np.sign(np.sin(xx * np.pi / 3) * np.sin(yy * np.pi / 3))
    image = np.clip(np.stack([weave * 0.5, weave * 0.6, weave], axis=2), 0, 255).astype(np.uint8)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(mask, (96, 96), (60, 24), 10, 0, 360, 1, -1)
    for cand in generate(image, mask.astype(bool), "a cut in the fabric", num=3):
        params = cand.metadata["generator_params"]
        assert cand.metadata["generator"] == "hole" and params["style"] == "cut" and params["threads"] > 0
        dark = (image.astype(np.float32) - cand.image).mean(axis=2) > 30
        ys, xs = np.nonzero(dark)
        assert ys.size >= 20, "no opening"
        spread = np.linalg.eigvalsh(np.cov(np.stack([xs, ys]).astype(np.float64)))
        assert spread[1] >= 9 * spread[0], f"not a slit: axes {np.sqrt(spread)}"


def test_a_crack_has_a_sharp_dark_core() -> None:
    """On a plain, lightly grainy plate a crack's darkest tenth is below a quarter of the surface's
    brightness (no light reaches the bottom of the gap; 0.26-0.31 before the core was drawn), and
    that dark core is thin (mean width 2 x area / perimeter <= 3 px), not a smudge."""
    plate = np.clip(150 + np.random.default_rng(2).normal(0, 3, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(mask, (96, 96), (70, 20), 15, 0, 360, 1, -1)
    for cand in generate(plate, mask.astype(bool), "a crack", num=4):
        after = cand.image.astype(np.float32).mean(axis=2)
        inside = after[cand.mask > 0]
        assert np.sort(inside)[: max(1, inside.size // 10)].mean() < 0.25 * 150, "no dark core"
        core = ((after < 0.6 * 150) & (cand.mask > 0)).astype(np.uint8)
        contours, _ = cv2.findContours(core, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        perimeter = sum(cv2.arcLength(c, True) for c in contours)
        assert 2 * core.sum() / max(perimeter, 1.0) <= 3.0, "the core is a wide smudge"


def test_scratches_on_brushed_metal_are_one_sided_hairlines() -> None:
    """On a brushed plate (streaks along x) lit from one side, a scratch is a hairline: a single bright or
    dark line (>= 90% of its visible change one sign; a shaded groove gave 53-84%, an embossed
    bright/dark pair); on isotropic grain it stays a groove."""
    rng = np.random.default_rng(5)
    streaks = cv2.GaussianBlur(rng.normal(0, 60, (SIZE, SIZE)), (0, 0), sigmaX=9.0, sigmaY=0.6)
    lit = 0.35 * (np.mgrid[:SIZE, :SIZE][1] - SIZE / 2)  # lit from one side: relief would show as a pair
    plate = np.clip(140 + lit + streaks + rng.normal(0, 2, (SIZE, SIZE)), 0, 255)
    brushed = np.repeat(plate[..., None], 3, axis=2).astype(np.uint8)
    grain = np.clip(140 + cv2.GaussianBlur(rng.normal(0, 12, (SIZE, SIZE)), (0, 0), 0.8), 0, 255)
    isotropic = np.repeat(grain[..., None], 3, axis=2).astype(np.uint8)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(mask, (96, 96), (70, 22), 30, 0, 360, 1, -1)
    for cand in generate(brushed, mask.astype(bool), "a scratch", num=4):
        assert cand.metadata["generator_params"]["brushed"]
        signed = (cand.image.astype(np.float32) - brushed).mean(axis=2)[change(brushed, cand.image) > VISIBLE]
        assert signed.size >= 10
        assert max((signed > 0).mean(), (signed < 0).mean()) >= 0.9, "an embossed bright/dark pair"
    for cand in generate(isotropic, mask.astype(bool), "a scratch", num=2):
        assert not cand.metadata["generator_params"]["brushed"]


def turned_plate() -> np.ndarray:
    """A turned metal plate: fine concentric grooves around a centre off the image (each small window
    sees them nearly straight, the whole crop sees every direction), lit from one side."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float32)
    radius = np.hypot(xx + 40, yy - SIZE / 2)
    grooves = 9 * np.sin(radius * 2 * np.pi / 3.2) + cv2.GaussianBlur(rng.normal(0, 8, (SIZE, SIZE)), (0, 0), 0.6)
    grey = np.clip(150 + 0.3 * (xx - SIZE / 2) + grooves + rng.normal(0, 2, (SIZE, SIZE)), 0, 255)
    return np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)


def test_scratches_on_a_turned_plate_are_hairlines_though_its_grooves_turn() -> None:
    """A turned plate's grooves run every way across a sketch's crop but one way in each small window:
    it counts as brushed, and a scratch there is a one-sided hairline (>= 90% of its visible change one
    sign), not a shaded groove's embossed bright/dark pair."""
    plate = turned_plate()
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(mask, (110, 96), (60, 22), -35, 0, 360, 1, -1)
    for cand in generate(plate, mask.astype(bool), "a scratch", num=4):
        assert cand.metadata["generator_params"]["brushed"]
        signed = (cand.image.astype(np.float32) - plate).mean(axis=2)[change(plate, cand.image) > VISIBLE]
        assert signed.size >= 10
        assert max((signed > 0).mean(), (signed < 0).mean()) >= 0.9, "an embossed bright/dark pair"


def test_a_hairline_on_a_dark_soft_photo_is_drawn_visibly_not_replaced_by_a_plain_mark() -> None:
    """On a dark, softly focused brushed surface in a thin sketch, a px-wide hairline would be washed out
    by the camera's blur: it is drawn wider and deeper draws strengthen it, so no candidate falls back
    to the flat plain mark and each one's change is visible."""
    rng = np.random.default_rng(3)
    streaks = cv2.GaussianBlur(rng.normal(0, 80, (SIZE, SIZE)), (0, 0), sigmaX=9.0, sigmaY=0.6)
    red = cv2.GaussianBlur(np.clip(70 + streaks + rng.normal(0, 1.5, (SIZE, SIZE)), 0, 255), (0, 0), 1.6)
    image = np.stack([red, red * 0.3, red * 0.2], axis=2).astype(np.uint8)
    for thickness in (5, 6):
        mask = np.zeros((SIZE, SIZE), np.uint8)
        cv2.ellipse(mask, (96, 96), (40, thickness), 0, 0, 360, 1, -1)
        for cand in generate(image, mask.astype(bool), "a long scratch", num=8):
            assert cand.metadata["generator_params"]["brushed"]
            assert cand.metadata["photometry"]["blur_sigma"] > 1.0
            assert not cand.metadata.get("plain_mark"), "a plain mark instead of the scratch"
            assert (change(image, cand.image) > VISIBLE).sum() >= 15, "a hairline the camera's blur washed out"


def test_on_a_busy_surface_defects_are_drawn_again_until_they_stand_out_from_it() -> None:
    """On a busy, stony texture a defect whose mean change is under ``STAND_OUT`` times the texture around
    it is lost in it: it is drawn again deeper, so >= 75% of candidates over every family stand out (62% when
    only a 14-level change was asked for)."""
    rng = np.random.default_rng(11)
    stones = (cv2.GaussianBlur(rng.normal(0, 90, (SIZE, SIZE)), (0, 0), 1.3)
              + cv2.GaussianBlur(rng.normal(0, 40, (SIZE, SIZE)), (0, 0), 3.0))
    image = np.repeat(np.clip(128 + stones, 0, 255)[..., None], 3, axis=2).astype(np.uint8)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(mask, (96, 96), (50, 24), 15, 0, 360, 1, -1)
    standing = []
    for family in sorted(EXAMPLE_PROMPTS):
        for cand in generate(image, mask.astype(bool), EXAMPLE_PROMPTS[family], num=4):
            score = cand.metadata["score"]
            standing.append(score["visibility"] >= STAND_OUT * score["surround_texture"])
    assert np.mean(standing) >= 0.75, f"only {np.mean(standing):.0%} stand out from the stones"


def test_a_stain_drawn_again_to_stand_out_soaks_in_deeper_where_it_lay(monkeypatch) -> None:
    """A stain drawn again because it did not stand out keeps its shape and place and gets darker (a new
    place for every draw let two large patches in one sketch overlap by chance across photos)."""
    image, _ = coin_on_cloth()
    mask = np.zeros((SIZE, SIZE), bool)
    mask[60:130, 60:110] = True  # on the disc
    (first,) = generate(image, mask, "a coffee stain", num=1)
    assert first.metadata["draw"] == 0
    calls = []

    def not_at_first(*args, **kwargs) -> bool:
        calls.append(args)
        return len(calls) > 1
    monkeypatch.setattr(classic_engine, "stands_out", not_at_first)
    (deeper,) = generate(image, mask, "a coffee stain", num=1)
    assert deeper.metadata["draw"] == 1
    assert iou(first.mask, deeper.mask) >= 0.8, "drawn again somewhere else"
    both = (first.mask > 0) & (deeper.mask > 0)
    assert change(image, deeper.image)[both].mean() > change(image, first.image)[both].mean()


@pytest.mark.parametrize("family", ["stain", "oil", "rust", "contamination", "discoloration", "dent", "burn",
                                    "missing"])
def test_in_a_long_thin_sketch_an_area_defect_is_a_spot_not_a_spindle_of_its_shape(family: str) -> None:
    """A sketch 12 times as long as it is wide holds a stain, film, crust, dent, burn or chip somewhere along
    it: the label's main part is in the median candidate at most ~3 times as long as it is wide (second
    moments), not a spindle drawn in the sketch's own shape (medians 4.4-8.3 before)."""
    rng = np.random.default_rng(2)
    grey = np.clip(150 + cv2.GaussianBlur(rng.normal(0, 6, (SIZE, SIZE)), (0, 0), 0.8), 0, 255)
    image = np.stack([grey, grey * 0.97, grey * 0.92], axis=2).astype(np.uint8)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(mask, (96, 96), (84, 7), 25, 0, 360, 1, -1)
    ratios = []
    for cand in generate(image, mask.astype(bool), EXAMPLE_PROMPTS[family], num=4):
        count, parts, stats, _ = cv2.connectedComponentsWithStats((cand.mask > 0).astype(np.uint8))
        main = parts == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        ys, xs = np.nonzero(main)
        spread = np.linalg.eigvalsh(np.cov(np.stack([xs, ys]).astype(np.float64)))
        ratios.append(float(np.sqrt(spread[1] / max(spread[0], 1e-6))))
    assert np.median(ratios) <= 3.2, f"{family}: spindles in the sketch's shape {np.round(ratios, 1)}"


def test_a_bent_pin_swings_sideways_and_is_not_a_dent() -> None:
    """"a bent pin" bends the pin (family ``bend``): its centreline moves sideways by >= 3 px somewhere,
    it keeps its area (within 15%) and its colour (nothing is painted), and nothing changes outside
    the grown sketch."""
    rng = np.random.default_rng(0)
    image = np.clip(40 + rng.normal(0, 3, (160, 160, 3)), 0, 255)
    image[20:140, 74:86] = np.array([200, 170, 90]) + rng.normal(0, 3, (120, 12, 3))
    image = cv2.GaussianBlur(image, (0, 0), 0.7).astype(np.uint8)
    mask = np.zeros((160, 160), np.uint8)
    cv2.ellipse(mask, (80, 80), (22, 66), 0, 0, 360, 1, -1)
    grown = cv2.dilate(mask, np.ones((7, 7), np.uint8)) > 0
    pin = image.mean(axis=2) > 100
    cols = np.arange(160)[None, :]
    for cand in ENGINE.generate(SynthesisRequest.create(image, mask.astype(bool), "a bent pin", num=3, seed=1)):
        assert cand.metadata["generator"] == "bend"
        bent = cand.image.mean(axis=2) > 100
        rows = bent.any(axis=1) & pin.any(axis=1)
        centre = lambda m: (m * cols).sum(axis=1)[rows] / m.sum(axis=1)[rows]  # noqa: E731
        assert np.abs(centre(bent) - centre(pin)).max() >= 3, "the pin did not bend"
        assert abs(int(bent.sum()) - int(pin.sum())) <= 0.15 * pin.sum()
        assert np.abs(cand.image[bent].mean(axis=0) - image[pin].mean(axis=0)).max() <= 6, "the pin changed colour"
        assert (change(image, cand.image)[~grown] == 0).all()
        assert not ((change(image, cand.image) > 4) & (cand.mask == 0)).any()


def test_the_highlight_power_is_numpys_within_float_rounding() -> None:
    """Repeated squaring gives ``x ** n`` for the whole exponents the shading uses, within a few units in
    the last place, and a flat height field gets no highlight and unit shading."""
    values = np.random.default_rng(5).random(10_000).astype(np.float32)
    for exponent in (0, 1, 2, 3, 7, 24):
        assert np.allclose(power(values, exponent), values ** float(exponent), rtol=2e-6, atol=1e-37)
    diffuse, highlight = shading(np.zeros((8, 9), np.float32), (0.6, -0.8), gloss=np.full((8, 9), 0.5, np.float32))
    assert np.allclose(diffuse, 1.0, atol=1e-6) and np.allclose(highlight, 0.0, atol=1e-6)
    assert shading(np.zeros((8, 9), np.float32), (0.6, -0.8))[1] is None



def test_a_plain_discoloration_draws_a_heat_tint_only_on_a_neutral_metal_like_surface() -> None:
    """Blue and violet temper colours are bare metal's: "a discoloration" on wood-coloured stock never takes
    them, on a neutral grey it may."""
    rng = np.random.default_rng(9)
    mask = np.zeros((SIZE, SIZE), bool)
    mask[60:130, 50:140] = True
    kinds = {}
    for name, colour in (("wood", (200, 160, 110)), ("steel", (150, 151, 153))):
        image = np.clip(np.array(colour, np.float32) + rng.normal(0, 3, (SIZE, SIZE, 1)), 0, 255).astype(np.uint8)
        cands = ENGINE.generate(SynthesisRequest.create(image, mask, "a discoloration", num=16, seed=2))
        kinds[name] = {c.metadata["generator_params"]["kind"] for c in cands}
    assert "heat tint" not in kinds["wood"] and len(kinds["wood"]) >= 3, kinds
    assert "heat tint" in kinds["steel"], kinds
