"""The weight-free ``classic`` engine: reference anomalies transplanted with Poisson blending,
or procedural defects chosen by the prompt and rendered with the image's own light, noise and
blur (:mod:`.shading`, :mod:`.photometry`). CPU only, no model weights, fully seeded.

Per candidate it works on the sketched region's bounding box plus a margin, never the whole
image; the surroundings' photometry is measured once per request. Guarantees, for every candidate:

- pixels farther than :func:`grow_radius` px from the sketched region are the input's, exactly;
- every pixel that changed (max-channel |Δ| > ``LABEL_THRESHOLD``; fainter changes are reverted)
  is in the label mask (0/255), which adds only closing gaps, small enclosed holes and the defect's
  own footprint, and lies inside the region grown by :func:`grow_radius`;
- a procedural defect leaves the sketch's outermost 2.5 px untouched (its outline never shows);
- a faint change is strengthened by at most ``MAX_GAIN``; one still under ``MIN_VISIBLE`` (mean |Δ|
  over the label) or, but for a line, not standing out from the texture around it
  (:func:`.inspection.stands_out`: on gravel or grass a patch changed by 14 levels is lost in the
  stones' own) is drawn again deeper, up to ``DRAWS`` times, and so is a
  hole or chip whose floor is not as grainy as the surround or repeats the host's pattern
  (:func:`.inspection.floor_fits`); the first draw that passes both, else the most visible one, is
  kept; when
  nothing showed at all, the sketch's middle is marked plainly, flagged (``plain_mark``) and scored
  ``PLAIN_MARK_SCORE``, below every drawn defect;
- the output has the input's size; the same inputs and seed give byte-identical pixels, and the
  seed is mixed with a hash of the crop and the sketch (one seed, different shapes on different photos).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from studio.engines.classic.defects import (
    FLOOR_FAMILIES, GEOMETRIC_FAMILIES, LINE_FAMILIES, REGISTRY, SOAKING_FAMILIES, Context, Shared, support_box,
)
from studio.engines.classic.geometry import fill_holes, ring
from studio.engines.classic.inspection import SCORE_METHOD, floor_fits, inspection_score, stands_out
from studio.engines.classic.keywords import family_note, pick_generator
from studio.engines.classic.shading import Maps, Rendered
from studio.engines.classic.measures import seam_ratio
from studio.engines.classic.noise import warm_noise_bases
from studio.engines.classic.photometry import Photometry, largest_channel, luminance, measure
from studio.engines.classic.reference import (
    PreparedReference, fit_reference, naive_paste, prepare_reference, transplant,
)
from studio.imaging import blur, labels_in, mask_bbox, pixels
from studio.types import AttentionTrace, Candidate, EngineParameter, ProgressFn, SynthesisRequest


#: A pixel counts as changed (and is labelled) when one channel moved by more than this.
LABEL_THRESHOLD = 4

#: Mean |Δ| (0..255, channel mean) every candidate's changed pixels must reach.
MIN_VISIBLE = 14.0

#: Most pixels the change may spread beyond the sketched region.
MAX_GROW = 3

#: Most a faint change's smooth part is strengthened; fainter than that, the defect is drawn again.
MAX_GAIN = 1.5
#: Draws of a procedural defect before the most visible one is kept, and each draw's intensity.
DRAWS = 3
DRAW_INTENSITY = (1.0, 1.25, 1.5)
#: The families whose albedo change a deeper draw strengthens too (stains soak in deeper, lines cut deeper).
DEEPENING_FAMILIES = SOAKING_FAMILIES + LINE_FAMILIES
#: The score of a plain mark (nothing of the drawn defect showed, so the sketch's middle was darkened
#: or lightened flat): an inspector takes that lens for a sticker, so it sorts below every drawn defect.
PLAIN_MARK_SCORE = -5.0
#: Least albedo a deepened or soaked-in stain may reach (a surface never turns darker than black).
LEAST_ALBEDO = 0.03


def grow_radius(shape: tuple[int, ...]) -> int:
    """How far (px) beyond the sketch a change may reach: 3 px, less on tiny images (≤ 2% of the diagonal)."""
    diagonal = math.hypot(shape[0], shape[1])
    return max(0, min(MAX_GROW, int(0.02 * diagonal) - 1))


class ClassicEngine:
    """Poisson-blended reference transplants and keyword-chosen procedural defects."""

    name = "classic"
    label = "classic (weight-free)"
    profile = "none"
    can_explain = False
    hint = ("For the full AnomalyControl model put the weights under `weights/` "
            "(see `weights/README.md`) and start with `--engine anomalycontrol`.")

    #: Registry facts: no weights, always available, never a GPU.
    needs_weights = False

    @classmethod
    def load(cls, weights: str | None = None) -> "ClassicEngine":
        """The engine (it has no weights to load; its cached noise bases are computed now, not on the
        first requests)."""
        warm_noise_bases()
        return cls()

    @classmethod
    def declared_parameters(cls) -> tuple[EngineParameter, ...]:
        """Every parameter any instance may use: none (its label threshold is fixed, ``LABEL_THRESHOLD``)."""
        return ()

    @classmethod
    def available(cls) -> bool:
        return True

    @classmethod
    def fetch(cls, progress: object = None) -> str:
        """Nothing to fetch."""
        return "none"

    def parameters(self) -> tuple[EngineParameter, ...]:
        """None: the weight-free engine takes no tunable request parameters."""
        return self.declared_parameters()

    def gpu_seconds(self, request: SynthesisRequest, work: str = "generate") -> int:
        """No GPU: 0 (it never asks for a ZeroGPU slot)."""
        return 0

    def generate(self, request: SynthesisRequest, progress: ProgressFn | None = None) -> list[Candidate]:
        request = request.using(self.parameters())
        prepared = None
        if request.reference is not None:
            prepared = prepare_reference(request.reference, request.reference_mask)
        box = crop_box(request)
        x0, y0, x1, y1 = box
        shared = Shared.of(request.image[y0:y1, x0:x1], request.mask[y0:y1, x0:x1])
        photo = surroundings(shared)
        seeds = request.candidate_seeds()
        candidates = []
        for i, seed in enumerate(seeds):
            image, label, extra = synthesise(request, seed, prepared, box, photo, shared)
            candidates.append(Candidate(image=image, mask=label, seed=seed,
                                        metadata=request.metadata(self.name, self.profile, seed, **extra)))
            if progress is not None:
                progress(i + 1, len(seeds), f"candidate {i + 1}/{len(seeds)}")
        return candidates

    def explain(self, request: SynthesisRequest, progress: ProgressFn | None = None) -> AttentionTrace:
        return AttentionTrace(skipped=(
            "The classic engine has no cross-modal (CSM/ASEA) model, so there are no attention maps. "
            "Put the BLIP-2 and Stable Diffusion inpainting weights in weights/ (see weights/README.md) "
            "to see real ones, or run with --engine anomalycontrol --weights tiny to see the mechanism."
        ))

    def status(self) -> str:
        return ("Engine: classic (weight-free). For the full AnomalyControl model put weights in "
                "weights/ (see weights/README.md).")


def crop_box(request: SynthesisRequest) -> tuple[int, int, int, int]:
    """The part of the image a candidate may touch, plus the margin the blend needs: (x0, y0, x1, y1)."""
    return mask_bbox(request.mask, grow_radius(request.image.shape) + 8)


def surroundings(shared: Shared) -> Photometry:
    """Noise, blur and light of the surface around the sketched region of the crop ``shared`` holds
    (measured once per request)."""
    return measure(shared.crop, shared.grey, shared.region, ring(shared.region, 2, 8), shared.grey_smooth)


def synthesise(request: SynthesisRequest, seed: int, prepared: PreparedReference | None = None,
               box: tuple[int, int, int, int] | None = None,
               photo: Photometry | None = None, shared: Shared | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """One candidate: (image, label mask 0/255, metadata extras); ``shared`` is what the request's
    candidates share (computed here when not given)."""
    image, mask = request.image, request.mask
    grow = grow_radius(image.shape)
    x0, y0, x1, y1 = box = box or crop_box(request)
    crop = image[y0:y1, x0:x1]
    region = mask[y0:y1, x0:x1]
    shared = shared or Shared.of(crop, region)
    photo = photo or surroundings(shared)
    rng = candidate_rng(seed, shared)
    if request.reference is not None:
        if prepared is None:
            prepared = prepare_reference(request.reference, request.reference_mask)
        rendered, extra = transplant(crop, shared, prepared, rng, photo)
        out_crop, label_crop, gain, plain = finalise(crop, rendered, shared, grow, rng, photo, clear=False)
    else:
        generator, word = pick_generator(request.prompt)
        best = None
        start = rng.bit_generator.state
        for draw in range(DRAWS):  # a defect too faint to see (or a floor that looks wrong) is drawn again
            if generator in SOAKING_FAMILIES:  # a stain soaks in deeper where it lies: same shape, stronger
                rng.bit_generator.state = start
            ctx = procedural_context(request.prompt, generator, shared, photo, rng)
            maps = intensify(REGISTRY[generator](ctx), DRAW_INTENSITY[draw], generator in DEEPENING_FAMILIES)
            if generator in SOAKING_FAMILIES:
                maps = soak(maps, shared, ctx, rng)
            rendered = ctx.render(maps)
            out_crop, label_crop, gain, plain = finalise(crop, rendered, shared, grow, rng, photo, ctx.footprint,
                                                         thin=generator in LINE_FAMILIES)
            # a plain mark (nothing of the defect showed) counts as nothing seen: the next draw goes deeper
            strength = 0.0 if plain else change_strength(crop, out_crop, label_crop > 0)
            fits = generator not in FLOOR_FAMILIES or floor_fits(crop, out_crop, label_crop, region)
            # a line is followed by the eye through texture that would swallow a patch of its contrast
            seen = strength >= MIN_VISIBLE and (generator in LINE_FAMILIES
                                                or stands_out(crop, out_crop, label_crop, shared.busy))
            rank = (seen and fits, strength)
            if best is None or rank > best[0]:
                best = (rank, out_crop, label_crop, gain, plain, ctx.params, draw)
            if rank[0]:
                break
        _, out_crop, label_crop, gain, plain, params, draw = best
        extra = {"generator": generator, "generator_keyword": word, "generator_params": params, "draw": draw}
        note = family_note(word)
        if note:
            extra["generator_note"] = note
    extra["photometry"] = photo.record()
    if plain:
        extra["plain_mark"] = True
    out = image.copy()
    out[y0:y1, x0:x1] = out_crop
    label = np.zeros(mask.shape, np.uint8)
    label[y0:y1, x0:x1] = label_crop
    extra.update({"crop_box": [x0, y0, x1, y1], "grow_px": grow, "label_threshold": LABEL_THRESHOLD,
                  "visibility_gain": round(gain, 3),
                  "label_pixels": int(np.count_nonzero(label_crop)),
                  "score": candidate_score(crop, out_crop, label_crop, shared, plain)})
    return out, label, extra


def candidate_rng(seed: int, shared: Shared) -> np.random.Generator:
    """The candidate's random stream: the seed mixed with a hash of the crop and its region, so one
    seed draws different shapes on different photos or sketches."""
    return np.random.default_rng([seed, 0xC1A551C, shared.fingerprint])


def grey_if(photo: Photometry, out_f: np.ndarray) -> np.ndarray:
    """A greyscale photo gets a greyscale defect (its camera saw no colour)."""
    return np.repeat(luminance(out_f)[..., None], 3, axis=2) if photo.monochrome else out_f


def procedural_context(prompt: str, generator: str, shared: Shared, photo: Photometry,
                       rng: np.random.Generator) -> Context:
    """The generator's context: a geometric defect (scratch, crack, hole, dent, chip) is placed on one
    surface unit of the region and clipped to it; a surface defect gets the whole region."""
    host = shared.seeded_host(rng) if generator in GEOMETRIC_FAMILIES else shared
    ctx = Context(crop=host.crop, region=host.region, rng=rng, prompt=prompt, photo=photo, shared=host)
    ctx.record(surface_units=shared.unit_count)
    return ctx


def intensify(maps: Maps, factor: float, albedo: bool) -> Maps:
    """``maps`` with their change ``factor`` times as strong: deeper relief, more gloss and, with
    ``albedo`` (a stain soaking in deeper, a line cut deeper: a hairline is an albedo change only),
    a darker or more saturated albedo; the cover and the painted material stay."""
    if factor == 1.0:
        return maps
    if maps.height is not None:
        maps.height = maps.height * factor
    if albedo and maps.albedo is not None:
        maps.albedo = np.maximum(1.0 + (maps.albedo - 1.0) * factor, LEAST_ALBEDO)
    if maps.gloss is not None:
        maps.gloss = maps.gloss * factor
    return maps


def soak(maps: Maps, shared: Shared, ctx: Context, rng: np.random.Generator) -> Maps:
    """A stain soaks into the surface unevenly: more into its pores, grooves and fibres (the darker
    parts of its texture, by ``UPTAKE`` per standard deviation of it), so the texture stays in the
    stain, not under a veil; and each surface unit by its own amount (the unit holding most of it
    keeps full strength), so its edges follow the units. Its albedo change, cover and gloss are scaled."""
    # only where the maps change anything (+ the units' blur): beyond, scaling leaves them as they are
    y0, y1, x0, x1 = support_box(maps, shared.region.shape, 3, tolerance=0.0)
    win = (slice(y0, y1), slice(x0, x1))
    factor = shared.uptake[win]
    units = shared.units[win]
    count = shared.unit_count
    if count > 1:
        amount = largest_channel(np.abs(maps.albedo[win] - 1.0)) if maps.albedo is not None else maps.cover[win]
        per_unit = np.bincount(units.ravel(), weights=amount.ravel(), minlength=count + 1)[1:]
        strength = rng.uniform(0.35, 0.9, count + 1).astype(np.float32)
        strength[int(np.argmax(per_unit)) + 1] = 1.0
        strength[0] = 1.0
        factor = factor * blur(np.take(strength, units), 0.7)
        ctx.record(soak=strength[1:])
    if maps.albedo is not None:  # never below black
        maps.albedo[win] = np.maximum(1.0 + (maps.albedo[win] - 1.0) * factor[..., None], LEAST_ALBEDO)
    for name in ("cover", "gloss", "height"):
        value = getattr(maps, name)
        if value is not None:
            value[win] *= factor
    return maps


def candidate_score(crop: np.ndarray, out: np.ndarray, label: np.ndarray, shared: Shared,
                    plain: bool = False) -> dict:
    """How likely an inspector passes the candidate at a glance (higher is better; see
    :func:`~studio.engines.classic.inspection.inspection_score`); a ``plain`` mark (:func:`finalise`'s
    last resort, a flat lens in the sketch's middle) scores ``PLAIN_MARK_SCORE``, below any drawn defect."""
    if not label.any():
        return {"value": -10.0, "method": SCORE_METHOD, "visibility": 0.0}
    if plain:
        strength = change_strength(crop, out, label > 0)
        return {"value": PLAIN_MARK_SCORE, "method": SCORE_METHOD, "visibility": round(strength, 3), "plain_mark": True}
    x, y, w, h = cv2.boundingRect((label > 0).astype(np.uint8))
    near = (slice(max(0, y - 4), y + h + 4), slice(max(0, x - 4), x + w + 4))  # the seam band's reach
    seam = seam_ratio(crop[near], out[near], label[near], derivatives=tuple(d[near] for d in shared.derivatives))
    return inspection_score(crop, out, label, shared.region, shared.units, seam, shared.outline_band, shared.busy)


def finalise(crop: np.ndarray, rendered: Rendered, shared: Shared, grow: int, rng: np.random.Generator,
             photo: Photometry, footprint: np.ndarray | None = None, clear: bool = True,
             thin: bool = False) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Round; keep every pixel outside the grown region exact and, with ``clear``, the sketch's
    outline untouched (the change fades out over a few px inside it; a transplanted reference is
    cut to its own mask instead); fade out the faint tail (max-channel
    |Δ| < ``CRISP_FULL``) so it neither halos nor gets labelled unseen; label the change (closed,
    small holes filled, plus the defect's own ``footprint``); strengthen a change too faint to see
    through its smooth part, by at most ``MAX_GAIN``; a greyscale ``photo`` gets a grey change. Only
    the ``rendered`` window (and the footprint) is worked on. When nothing visible is left at all (a
    region of a pixel or two, or a change the surface cannot show), the region's middle is marked
    plainly. Returns (image, label, gain, whether it was that plain mark)."""
    region = shared.region
    allowed = shared.grown(grow)
    keep = shared.clear if clear else allowed
    # everything below runs on the window around the change and the footprint
    y0, y1, x0, x1 = box = grown_window(rendered.window, footprint, 4, region.shape)
    win = (slice(y0, y1), slice(x0, x1))
    part, part_allowed = crop[win], allowed[win]
    base = shared.crop[win]  # the crop as float32
    part_diff = grey_if(photo, rendered.over(shared.crop, box)) - base
    part_diff *= keep[win][..., None]
    part_footprint = None if footprint is None else footprint[win]
    # a faint change is strengthened through its smooth part only: scaling the fine part too would
    # scale the surface's own texture and noise inside the defect with it
    smooth = None
    gain = 1.0
    while True:
        change = part_diff if smooth is None else part_diff + smooth * (gain - 1.0)
        moved = crisp(change, thin)
        moved += base
        moved = np.clip(np.rint(moved, out=moved), 0, 255, out=moved).astype(np.uint8)
        part_out, part_label = _label(part, moved, part_allowed, part_footprint)
        if not part_label.any() or gain >= MAX_GAIN:
            break
        strength = change_strength(part, part_out, part_label)
        if strength >= MIN_VISIBLE:
            break
        smooth = blur(part_diff, 1.5) if smooth is None else smooth
        gain = min(gain * 1.15 * MIN_VISIBLE / max(strength, 1.0), MAX_GAIN)
    out, label = crop.copy(), np.zeros(region.shape, bool)
    out[win], label[win] = part_out, part_label
    plain = not label.any()
    if plain:  # nothing visible at all: mark its middle plainly
        base = crop.astype(np.float32)
        depth = shared.depth
        spot_mask = depth >= 0.5 * float(depth.max())
        factor = float(rng.uniform(0.35, 0.6))
        dark = float(luminance(pixels(base, region)).mean()) > 100
        spot = base * factor if dark else base + (255.0 - base) * (1.0 - factor)
        marked = crop.copy()
        marked[spot_mask] = np.clip(np.rint(spot[spot_mask]), 0, 255).astype(np.uint8)
        out, label = _label(crop, marked, allowed)
    return out, label.astype(np.uint8) * 255, gain, plain


#: Max-channel |Δ| below which a change fades out, and from which it is kept whole.
CRISP_FADE, CRISP_FULL = 7.0, 12.0
#: The same for a thin line, whose soft fringe (the camera's blur across a px-wide groove) would
#: otherwise be labelled unseen: it fades a level sooner.
THIN_FADE, THIN_FULL = 8.0, 13.0


def grown_window(window: tuple[int, int, int, int], footprint: np.ndarray | None, margin: int,
                 shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """``window`` (y0, y1, x0, x1) widened to hold the ``footprint`` and grown by ``margin`` px."""
    y0, y1, x0, x1 = window
    if footprint is not None and footprint.any():
        fx, fy, fw, fh = cv2.boundingRect(footprint.astype(np.uint8))
        y0, y1, x0, x1 = min(y0, fy), max(y1, fy + fh), min(x0, fx), max(x1, fx + fw)
    h, w = shape
    return max(0, y0 - margin), min(h, y1 + margin), max(0, x0 - margin), min(w, x1 + margin)


def crisp(change: np.ndarray, thin: bool = False) -> np.ndarray:
    """``change`` with its faint tail faded out: kept whole where its largest channel moves by at
    least ``CRISP_FULL``, scaled down linearly to nothing at ``CRISP_FADE``. The magnitude read is
    smoothed (a stain's texture keeps its dips); with ``thin`` (a line a px or two wide, whose
    smoothed magnitude spills onto its faint blurred fringe) it is the geometric mean of the
    pixel's own and the smoothed one, and the fade runs from ``THIN_FADE`` to ``THIN_FULL``, so the
    fringe fades instead of being labelled unseen."""
    own = largest_channel(np.abs(change))
    moved = blur(own, 1.0)  # smoothed: texture kept
    fade, full = CRISP_FADE, CRISP_FULL
    if thin:
        moved, fade, full = np.sqrt(moved * own), THIN_FADE, THIN_FULL
    moved -= fade  # (in place: ``moved`` is this call's own)
    moved /= full - fade
    return change * np.clip(moved, 0.0, 1.0, out=moved)[..., None]


def change_strength(crop: np.ndarray, out: np.ndarray, label: np.ndarray) -> float:
    """Mean |Δ| (0..255, channel mean) of ``out`` against ``crop`` over the ``label`` pixels."""
    mask = label.astype(np.uint8)
    return float(np.mean(cv2.mean(cv2.absdiff(out, crop), mask=mask)[:3])) if mask.any() else 0.0


def _label(crop: np.ndarray, out: np.ndarray, allowed: np.ndarray,
           footprint: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    changed = largest_channel(cv2.absdiff(out, crop)) > LABEL_THRESHOLD
    changed &= allowed
    out = cv2.copyTo(out, changed.view(np.uint8), crop.copy())  # the changed pixels only
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    closed = cv2.morphologyEx(changed.astype(np.uint8), cv2.MORPH_CLOSE, kernel).astype(bool)
    if footprint is not None:
        closed |= footprint & allowed
    label = (fill_small_holes(closed, max(9, int(0.05 * np.count_nonzero(changed)))) & allowed) | changed
    return out, label


def fill_small_holes(mask: np.ndarray, max_area: int) -> np.ndarray:
    """Fill the holes of ``mask`` up to ``max_area`` px (pits inside a defect, not the field a crack encloses)."""
    holes = fill_holes(mask) & ~mask
    if not holes.any():
        return mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(holes.astype(np.uint8), connectivity=4)
    small = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] <= max_area) + 1
    return mask | labels_in(labels, small, count)


def naive_candidate(request: SynthesisRequest, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same reference at the same place as :func:`synthesise` with ``seed``, cut and pasted
    with no colour matching, blending or feathering: the baseline for the seam measure."""
    image, mask = request.image, request.mask
    x0, y0, x1, y1 = crop_box(request)
    crop = image[y0:y1, x0:x1]
    prepared = prepare_reference(request.reference, request.reference_mask)
    shared = Shared.of(crop, mask[y0:y1, x0:x1])
    rng = candidate_rng(seed, shared)
    fit = fit_reference(prepared, shared.seeded_host(rng), rng)
    pasted = naive_paste(shared.crop, fit)
    out = image.copy()
    out[y0:y1, x0:x1] = np.clip(np.rint(pasted), 0, 255).astype(np.uint8)
    label = np.zeros(mask.shape, np.uint8)
    label[y0:y1, x0:x1] = fit.mask.astype(np.uint8) * 255
    return out, label
