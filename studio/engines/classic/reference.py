"""Reference anomalies for the ``classic`` engine: estimate their region, fit them into the
sketched target region, match their colour to the target surface, and transplant them (Poisson blend + feather).

Fitting maps the reference anomaly's principal frame (centre, major axis, extents) onto the
target region's frame: a rotation to the region's orientation, an anisotropic scale to its
extents, a random (seeded) jitter of angle, size (0.5-1.2 of the region's frame), mirror and
position, and a non-rigid smooth displacement field, all applied in one ``cv2.remap``; only the
anomaly's own mask is transplanted, never its box.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from studio.engines.classic.blend import poisson, solve_size
from studio.engines.classic.defects.base import Shared, within
from studio.engines.classic.geometry import Frame, fill_holes, region_frame, ring
from studio.engines.classic.noise import perlin
from studio.engines.classic.photometry import Photometry, blur_sigma, luminance, noise_sigma, to_ycc, ycc_affine_to_rgb
from studio.engines.classic.shading import Rendered
from studio.imaging import blur, channel_medians, dilate, erode, labels_in, mask_bbox, mask_coords, pixels


#: Largest side the reference is analysed at when its anomaly region is estimated.
ESTIMATE_SIDE = 160
#: Mean |Δ| (0..255, channel mean) the transplanted anomaly must reach inside itself.
MIN_CONTRAST = 22.0

#: Most a reference anomaly is enlarged (geometric mean of its two scales) to fit a region.
MAX_ENLARGE = 1.5
#: Largest YCrCb step (0..100) between the reference's surface and the target's before the metadata warns.
BACKGROUND_STEP = 20.0
#: Gaussian sigma (px) of the feathered edge of a transplanted anomaly.
FEATHER = 2.0
#: Largest step (grey levels) between a reference anomaly and its surface that still counts as a
#: translucent change of tone (at 45 the shipped red stain would qualify, but its seams then grow on
#: wood and gravel beyond a naive paste's).
TRANSLUCENT_TONE = 25.0
#: Largest step (grey levels) at which a normal-blended smooth anomaly is still a stain through
#: which the target's texture shows (:func:`carried_texture`).
STAIN_TONE = 60.0


@dataclass
class PreparedReference:
    """A reference image cut to its anomaly (+ context) with what every candidate reuses."""

    image: np.ndarray  # float32 RGB crop around the anomaly (0..255)
    mask: np.ndarray  # bool, the anomaly inside ``image``
    frame: Frame  # principal frame of ``mask`` in crop coordinates
    colour_mean: np.ndarray  # YCrCb statistics of the surface around the anomaly
    colour_std: np.ndarray
    blur: float  # the reference's own blur (px) and noise (sigma) around its anomaly
    noise: float
    detail: float  # mean |high-pass| (grey levels) inside the anomaly: its own texture
    tone: float  # |luminance of the anomaly - that of its surface| (grey levels)
    estimated: bool


def estimate_anomaly_mask(reference: np.ndarray) -> np.ndarray:
    """Where the reference differs from its own surface: robust z-scores of each pixel's Lab
    colour against a large median-filtered background, thresholded, cleaned, largest parts kept."""
    h, w = reference.shape[:2]
    scale = min(1.0, ESTIMATE_SIDE / max(h, w))
    small = reference if scale == 1.0 else cv2.resize(
        reference, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB)
    k = max(3, (min(sh, sw) // 2) | 1)
    background = np.stack([cv2.medianBlur(np.ascontiguousarray(lab[..., c]), min(k, 255)) for c in range(3)], axis=2)
    diff = lab.astype(np.float32) - background.astype(np.float32)
    mad = channel_medians(np.abs(diff - channel_medians(diff))) * 1.4826
    z = diff / np.maximum(mad, 2.0)
    score = cv2.GaussianBlur(np.sqrt((z**2).sum(axis=2)), (5, 5), 1.0)
    mask = score > 4.0
    if mask.mean() > 0.5 or mask.sum() < 4:
        mask = score > np.quantile(score, 0.97)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:  # nothing survived cleaning: the single most unusual spot
        mask = (score >= score.max() * 0.7).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    # keep the strongest component and any component at least a quarter of its size
    strength = np.array([score[labels == i + 1].sum() for i in range(len(areas))])
    best = int(np.argmax(strength))
    keep = [i + 1 for i in range(len(areas)) if i == best or areas[i] >= 0.25 * areas[best]]
    mask = fill_holes(labels_in(labels, keep, count))
    if mask.shape != (h, w):
        mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    return mask


def prepare_reference(reference: np.ndarray, reference_mask: np.ndarray | None) -> PreparedReference:
    """Estimate the anomaly region when no mask is given, cut the anomaly with some context, and
    measure the reference surface's colour statistics around it."""
    estimated = reference_mask is None or not reference_mask.any()
    mask = estimate_anomaly_mask(reference) if estimated else reference_mask.astype(bool)
    ys, xs = mask_coords(mask)
    h, w = mask.shape
    extent = max(int(xs.max() - xs.min()), int(ys.max() - ys.min()), 8)
    margin = max(6, extent // 4)
    x0, y0 = max(int(xs.min()) - margin, 0), max(int(ys.min()) - margin, 0)
    x1, y1 = min(int(xs.max()) + 1 + margin, w), min(int(ys.max()) + 1 + margin, h)
    image = reference[y0:y1, x0:x1].astype(np.float32)
    crop_mask = mask[y0:y1, x0:x1]
    surround = ring(crop_mask, inner=2, outer=max(4, margin))
    if surround.sum() < 16:
        surround = ~crop_mask if (~crop_mask).sum() >= 16 else np.ones_like(crop_mask)
    around = pixels(to_ycc(image), surround)
    grey = luminance(image).astype(np.float32)
    near = dilate(crop_mask, 4)
    return PreparedReference(
        image=image, mask=crop_mask, frame=region_frame(crop_mask),
        colour_mean=around.mean(axis=0), colour_std=around.std(axis=0),
        blur=blur_sigma(grey, near), noise=noise_sigma(grey, near), estimated=estimated,
        detail=float(np.abs(grey - blur(grey, 2.0))[crop_mask].mean()),
        tone=abs(float(grey[crop_mask].mean()) - float(grey[surround].mean())),
    )


@dataclass
class Fit:
    """A reference anomaly warped into the target crop."""

    image: np.ndarray  # float32 RGB, the reference (anomaly and its surroundings) over ``window``
    mask: np.ndarray  # bool over the crop, the warped anomaly, clipped to the target region
    window: tuple[slice, slice]  # the part of the crop ``image`` covers (explicit bounds)
    params: dict
    scale: float = 1.0  # how much the reference was enlarged (geometric mean of the two axes)


def fit_reference(ref: PreparedReference, shared: Shared, rng: np.random.Generator) -> Fit:
    """Warp the reference so its anomaly fills the target region's frame (``shared``: what the
    request's candidates share), with seeded jitter.

    The anomaly is shrunk (up to four times by 15%) until it lies inside the region, so its own
    edge survives: an anomaly cut off by the region's edge would be faded there by the blend."""
    region = shared.region
    target = shared.frame
    src = ref.frame
    jitter = rng.normal(0.0, math.radians(20.0)) + (math.pi if rng.random() < 0.5 else 0.0)
    mirror = bool(rng.random() < 0.5)
    # a seeded size from half the region's frame to a little beyond it (then shrunk to fit inside)
    fill = rng.uniform(0.5, 1.2) * rng.uniform(0.9, 1.0, 2)
    sx = target.a / max(src.a, 1.0) * fill[0]
    sy = target.b / max(src.b, 1.0) * fill[1]
    # keep the anomaly's own aspect (within 15%): scale by the tighter of the two extents
    sx, sy = min(sx, sy * 1.15), min(sy, sx * 1.15)
    # never enlarged beyond MAX_ENLARGE (its detail would be invented by the resampling): in a larger
    # region it lies somewhere inside, at a seeded half to all of that (by the same draw), and its
    # non-rigid warp shrinks with it (``capped``)
    enlarge = math.sqrt(sx * sy)
    size = (float(np.sqrt(fill[0] * fill[1])) - 0.45) / 0.75  # 0..1 over fill's range
    capped = MAX_ENLARGE * (0.5 + 0.5 * size) / enlarge if enlarge > MAX_ENLARGE else 1.0
    sx, sy = sx * capped, sy * capped
    # a seeded position anywhere the anomaly's own extent leaves room for (a round anomaly in a long
    # region travels along it), not only around the centre
    turn = np.abs([[math.cos(jitter), math.sin(jitter)], [math.sin(jitter), math.cos(jitter)]])
    along = turn @ [src.a * sx, src.b * sy]
    room = np.maximum(np.array([target.a, target.b]) - along, 0.0)
    shift = rng.uniform(-0.85, 0.85, 2) * room
    h, w = region.shape
    # a non-rigid smooth displacement so no two candidates share a shape (drawn coarse, upsampled)
    wobble = float(rng.uniform(1.0, 3.5)) * max(1.0, min(target.a, target.b) / 12.0) * capped
    cells = max(1.5, max(h, w) / 32.0 * capped)
    coarse = (max(2, h // 8), max(2, w // 8))
    dx = cv2.resize(perlin(coarse, (cells, cells), rng), (w, h), interpolation=cv2.INTER_LINEAR) * wobble
    dy = cv2.resize(perlin(coarse, (cells, cells), rng), (w, h), interpolation=cv2.INTER_LINEAR) * wobble

    # forward map: reference crop -> target crop (rotate to the anomaly's frame, mirror, scale,
    # jitter, rotate to the region's frame, move to its centre); remap needs the inverse
    rot_src = np.array([[src.ux, src.uy], [-src.uy, src.ux]])
    flip = np.diag([1.0, -1.0 if mirror else 1.0])
    rot_j = np.array([[math.cos(jitter), -math.sin(jitter)], [math.sin(jitter), math.cos(jitter)]])
    cos_t, sin_t = math.cos(target.angle), math.sin(target.angle)
    rot_tgt = np.array([[cos_t, -sin_t], [sin_t, cos_t]])
    centre = np.array([target.cx, target.cy]) + rot_tgt @ shift
    forward = rot_tgt @ rot_j @ np.diag([sx, sy]) @ flip @ rot_src
    # only the anomaly's reach (its box mapped forward, the wobble; smaller as it shrinks) is searched
    # for where it lands, and only where it landed plus the blend's margin is warped
    wobbled = (float(np.abs(dx).max()), float(np.abs(dy).max()))
    reach = warp_reach(forward, centre, ref, wobbled)
    ref_mask = ref.mask.astype(np.float32)

    def offsets(where: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
        yy, xx = shared.grid(where)
        # float32 maps (a warp's coordinates need no more than float32's ~1e-5 px here)
        return xx + dx[where] - np.float32(centre[0]), yy + dy[where] - np.float32(centre[1])

    def maps(shrink: float) -> tuple[np.ndarray, np.ndarray]:
        inverse = np.linalg.inv(rot_tgt @ rot_j @ np.diag([sx * shrink, sy * shrink]) @ flip @ rot_src)
        a, b, c, d = (np.float32(v) for v in inverse.ravel())
        map_x, map_y = a * px, c * px  # (in place from here: a * px + b * py + cx, as one expression would)
        map_x += b * py
        map_x += np.float32(src.cx)
        map_y += d * py
        map_y += np.float32(src.cy)
        return map_x, map_y

    widest = reach_window(reach, SEARCH_MARGIN, (h, w))
    px_all, py_all = offsets(widest)
    shrink = 1.0
    for attempt in range(6):
        # a shrunk anomaly's reach lies within its first size's (the frames' centre is inside both)
        search = reach_window(warp_reach(forward * shrink, centre, ref, wobbled), SEARCH_MARGIN, (h, w))
        part = within(search, widest)
        px, py = px_all[part], py_all[part]
        rim, inside = shared.rim[search], region[search]  # rim: the pixels just outside the region
        map_x, map_y = maps(shrink)
        warped = cv2.remap(ref_mask, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.5
        fitted = warped & inside
        perimeter = np.count_nonzero(fitted & ~erode(fitted, 1))
        if np.count_nonzero(warped & rim) <= 0.03 * max(perimeter, 1) or attempt == 5:
            break
        shrink *= 0.87
    mask = np.zeros((h, w), bool)
    mask[search] = fitted
    params = {
        "rotation_deg": round(math.degrees(target.angle - src.angle + jitter) % 360.0, 3),
        "mirror": mirror,
        "scale": [round(float(sx * shrink), 4), round(float(sy * shrink), 4)],
        "shift_px": [round(float(v), 2) for v in rot_tgt @ shift],
        "wobble_px": round(wobble, 3),
    }
    if np.count_nonzero(mask) < 4:  # the jitter pushed it out of a very small region: the region takes it
        mask, window = region.copy(), (slice(0, h), slice(0, w))
        params["mask_fallback"] = True
    else:  # where it landed, and the margin the transplant reads around it
        x, y, bw, bh = cv2.boundingRect(mask.view(np.uint8))
        window = reach_window((x, y, x + bw, y + bh), WORK_MARGIN, (h, w), WORK_SHARE)
    if window != search:
        px, py = (px_all, py_all) if window == widest else offsets(window)
        map_x, map_y = maps(shrink)
    image = cv2.remap(ref.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return Fit(image=image, mask=mask, params=params, scale=float(math.sqrt(sx * sy)) * shrink, window=window)


#: Px around the box of a warped anomaly where it landed that the transplant reads (the Poisson ring and
#: the solve's downscaling, the camera's blur, the feather), and the share of the crop from which the
#: whole crop is worked on instead.
WORK_MARGIN, WORK_SHARE = 40, 0.5
#: Px around the reach where the anomaly's landing place is searched (it cannot land beyond the reach).
SEARCH_MARGIN = 2


def warp_reach(forward: np.ndarray, centre: np.ndarray, ref: PreparedReference,
               wobble: tuple[float, float]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), unclipped: the box of the crop a warped anomaly can reach (its mask's box
    mapped by ``forward`` about the frames' centres, moved by at most ``wobble`` (x, y) px)."""
    x, y, bw, bh = cv2.boundingRect(ref.mask.view(np.uint8))
    corners = np.array([[cx, cy] for cx in (x - 1, x + bw) for cy in (y - 1, y + bh)], float)
    reach = (corners - [ref.frame.cx, ref.frame.cy]) @ forward.T + centre
    x0, y0 = np.floor(reach.min(axis=0) - wobble - 1).astype(int)
    x1, y1 = np.ceil(reach.max(axis=0) + wobble + 2).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


def reach_window(reach: tuple[int, int, int, int], margin: int, shape: tuple[int, int],
                 share: float = 1.0) -> tuple[slice, slice]:
    """The ``reach`` grown by ``margin`` px and clipped to the crop; the whole crop when it lies off
    the crop or covers ``share`` of it or more."""
    h, w = shape
    x0, y0, x1, y1 = max(reach[0] - margin, 0), max(reach[1] - margin, 0), min(reach[2] + margin, w), min(reach[3] + margin, h)
    if x1 <= x0 or y1 <= y0 or (x1 - x0) * (y1 - y0) >= share * h * w:
        return slice(0, h), slice(0, w)
    return slice(y0, y1), slice(x0, x1)


def match_colour(fit: Fit, ref: PreparedReference, shared: Shared) -> tuple[np.ndarray, dict]:
    """Move the reference onto the target surface's colour statistics (YCrCb).

    The reference's surface is mapped Reinhard-style (mean and contrast) onto the target surface;
    the anomaly keeps its lightness *ratio* to its own surface (a spot half as light as the
    reference surface is half as light as the target surface) and half of its own hue (a red
    stain stays reddish on a green board). The target's statistics come from every third pixel;
    the result covers ``fit.window``; ``shared``: what the candidates on the target surface share."""
    region = shared.region
    surface = region & ~fit.mask
    if np.count_nonzero(surface) < 16:
        surface = region
    sample = pixels(shared.ycc_thirds, surface[::3, ::3])
    if sample.shape[0] < 4:
        sample = pixels(to_ycc(shared.crop), surface)
    mean_t, std_t = sample.mean(axis=0), sample.std(axis=0)
    gain = np.clip((std_t + 1.0) / (ref.colour_std + 1.0), 0.6, 1.6)
    # both mappings are per-channel affine in YCrCb, hence affine in RGB: one cv2.transform each
    surround = ycc_affine_to_rgb(gain, mean_t - ref.colour_mean * gain)
    ratio = (mean_t[0] + 1.0) / (ref.colour_mean[0] + 1.0)
    hue = np.array([0.0, *(0.5 * (mean_t[1:] - ref.colour_mean[1:]))])
    spot = ycc_affine_to_rgb(np.array([ratio, 1.0, 1.0]), hue)
    mapped = cv2.transform(fit.image, surround)
    # the anomaly's own mapping, faded in over 2 px around it (its box + 2 px: the blur's reach)
    anomaly = fit.mask[fit.window]
    y0, y1, x0, x1 = box_of(anomaly, 2)
    win = (slice(y0, y1), slice(x0, x1))
    weight = cv2.GaussianBlur(anomaly[win].astype(np.float32), (5, 5), 1.0)[..., None]
    background = mapped[win]
    mapped[win] = background + weight * (cv2.transform(fit.image[win], spot) - background)
    step = float(np.abs(mean_t - ref.colour_mean).max())
    info = {"space": "YCrCb", "target_mean": [round(float(v), 2) for v in mean_t],
            "reference_mean": [round(float(v), 2) for v in ref.colour_mean],
            "texture_gain": [round(float(v), 3) for v in gain], "background_step": round(step, 2)}
    if step > BACKGROUND_STEP:
        info["note"] = ("The reference's own background differs strongly from the target surface "
                        f"({step:.0f} on a 0-100 scale); its anomaly was moved onto the target's colours, "
                        "but a reference photographed on a similar surface transfers better.")
    return np.clip(mapped, 0, 255), info


def naive_paste(crop: np.ndarray, fit: Fit) -> np.ndarray:
    """The baseline the engine must beat: the warped reference pasted as is, cut hard by its mask."""
    out = crop.copy()
    part, anomaly = out[fit.window], fit.mask[fit.window]
    part[anomaly] = fit.image[anomaly]
    return out


def transplant(crop: np.ndarray, shared: Shared, ref: PreparedReference, rng: np.random.Generator,
               photo: Photometry) -> tuple[Rendered, dict]:
    """Fit the reference anomaly into the region, match its colour, noise and blur to the target,
    Poisson-blend it (normal or mixed gradients, by the target's texture), feather it. ``crop`` is
    the target crop (uint8), ``shared`` what the request's candidates share (its float crop, region, ...).
    Returns the crop with the anomaly (on the feather's reach, out of which it equals the crop) and the
    metadata."""
    shared = shared.seeded_host(rng)  # it lies on one surface (a coin, a stone, a brick), not across two
    fit = fit_reference(ref, shared, rng)
    # colour, camera and blend work on the fit's window (the whole crop unless the anomaly is small in it)
    coloured, colour_info = match_colour(fit, ref, shared)
    coloured, camera_info = match_camera(coloured, fit.mask[fit.window], ref, fit.scale, photo, rng)
    mode, texture = blend_mode(photo, ref)
    side = max(crop.shape[:2])
    size = solve_size(coloured.shape, side)
    small = None if size is None else shared.shrunk(fit.window, size)
    blended, poisson_scale = poisson(crop[fit.window], coloured, fit.mask[fit.window], mode, side, small)
    carried = carried_texture(photo, ref, mode)
    # from here on only the feather's reach (the anomaly's box + 1 + 3 sigma px) can differ from the crop
    y0, y1, x0, x1 = window = box_of(fit.mask, 1 + math.ceil(3 * FEATHER))
    win = (slice(y0, y1), slice(x0, x1))
    top, left = fit.window[0].start, fit.window[1].start
    anomaly, target = fit.mask[win], shared.crop[win]
    blended = blended[y0 - top:y1 - top, x0 - left:x1 - left]
    if carried:  # a smooth stain on a textured surface: the surface's texture continues through it
        blended = blended + (target - shared.base[win]) * carried * anomaly[..., None]
    # keep the anomaly visible: scale its deviation from the surface up to MIN_CONTRAST
    contrast = float(np.abs(pixels(blended, anomaly) - pixels(target, anomaly)).mean())
    boost = 1.0
    if contrast < MIN_CONTRAST:
        boost = min(MIN_CONTRAST / max(contrast, 1.0), 6.0)
        blended = target + (blended - target) * boost
    # feather: the anomaly (and a pixel around it) fades into the untouched surface
    core = anomaly & shared.interior[win]
    core = core if core.any() else anomaly
    alpha = blur(dilate(core, 1).astype(np.float32), FEATHER)[..., None]
    out = Rendered(target * (1.0 - alpha) + blended * alpha, window)
    extra = {
        "generator": "reference",
        "reference_mask_estimated": ref.estimated,
        "fit": fit.params,
        "colour_transfer": colour_info,
        "camera_match": camera_info,
        "poisson": poisson_scale is not None,
        "poisson_mode": mode,
        "poisson_scale": poisson_scale,
        "texture": texture,
        "contrast_boost": round(boost, 3),
        "texture_carried": round(carried, 3),
    }
    return out, extra


def box_of(mask: np.ndarray, margin: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of a non-empty ``mask``'s bounding box grown by ``margin`` px, clipped."""
    x0, y0, x1, y1 = mask_bbox(mask, margin)
    return y0, y1, x0, x1


def match_camera(image: np.ndarray, anomaly: np.ndarray, ref: PreparedReference, scale: float,
                 photo: Photometry, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Give the warped reference the target's sharpness and noise. The reference's own blur and
    noise were measured once around its anomaly; warped by ``scale`` its blur scales with it and
    bilinear upsampling smooths its noise (by about 0.7). Blur by what the target is softer by,
    add the noise the reference lacks."""
    own_blur = ref.blur * scale
    own_noise = ref.noise * (1.0 if scale <= 1.0 else 0.7)
    extra_blur = math.sqrt(max(photo.blur**2 - own_blur**2, 0.0))
    if extra_blur > 0.2:
        image = blur(image, extra_blur)
        own_noise *= min(1.0, 1.0 / (2.0 * math.sqrt(math.pi) * extra_blur))  # white noise under a blur of sigma b
    extra_noise = math.sqrt(max(photo.noise**2 - own_noise**2, 0.0))
    if extra_noise > 0.3:
        image = image + (rng.standard_normal(anomaly.shape, dtype=np.float32) * extra_noise)[..., None]
    return image, {"reference_blur": round(own_blur, 3), "added_blur": round(extra_blur, 3),
                   "reference_noise": round(own_noise, 3), "added_noise": round(extra_noise, 3)}


def carried_texture(photo: Photometry, ref: PreparedReference, mode: str) -> float:
    """How much of the target's fine texture a normal-blended anomaly takes on (0..1): a smooth,
    translucent one (a stain, within ``STAIN_TONE`` of its surface) on a textured target would
    otherwise read as a flat pasted patch; an opaque one (a hole, a crack's opening) or one with
    texture of its own keeps its own look; mixed blending carries the texture already."""
    if mode != "normal" or photo.texture < 6.0 or ref.tone >= STAIN_TONE:
        return 0.0
    return float(np.clip(1.0 - ref.detail / photo.texture, 0.0, 1.0))


def blend_mode(photo: Photometry, ref: PreparedReference) -> tuple[str, dict]:
    """``mixed`` gradients when the target is textured and the anomaly is a translucent change of
    tone (its interior smoother than the target's texture, its level within ``TRANSLUCENT_TONE`` of its
    own surface's: a faint stain, not a hole or a crack's dark opening), so the texture continues through it;
    ``normal`` (the anomaly's own gradients) otherwise. Decided once per request from the measured
    surroundings and the prepared reference."""
    mixed = photo.texture >= 6.0 and ref.detail < 0.5 * photo.texture and ref.tone < TRANSLUCENT_TONE
    return ("mixed" if mixed else "normal"), {"target_detail": round(photo.texture, 3),
                                              "anomaly_detail": round(ref.detail, 3), "tone_step": round(ref.tone, 3)}
