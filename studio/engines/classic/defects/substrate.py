"""What a hole or a chip reveals: new material (a fracture surface, the fibres of cardboard, bare
metal under paint, a rougher stone core), not the surface darkened. Its colour comes from a small
substrate table picked by the prompt; its fine detail is seeded noise whose strength matches the
surround's fine detail (:attr:`Photometry.fine`), so it is as grainy as the photo but does not repeat the host's pattern."""
from __future__ import annotations

import cv2
import numpy as np

from studio.engines.classic.defects.base import Context, window, within
from studio.engines.classic.keywords import mentions
from studio.engines.classic.photometry import fine_pass, luminance, robust_sigma
from studio.engines.classic.noise import noise_patch
from studio.imaging import blur

#: Substrate -> (prompt word stems, RGB colour or None for the surface's own tone, grain cell px, fibre stretch).
SUBSTRATES: dict[str, tuple[tuple[str, ...], tuple[float, float, float] | None, float, float]] = {
    "cardboard": (("cardboard", "carton", "box", "package", "paper"), (168, 138, 98), 1.5, 4.0),
    "bare metal": (("paint", "coat", "lacquer", "enamel", "powder"), (172, 174, 178), 1.2, 1.0),
    "core": ((), None, 1.5, 1.0),
}
#: Depth (px) inside an opening from which its floor begins (the outer px are its wall).
FLOOR_DEPTH = 2.0


def substrate_kind(prompt: str) -> str:
    """The substrate the prompt's words point at (the surface's own rougher core by default)."""
    for kind, (stems, *_rest) in SUBSTRATES.items():
        if stems and mentions(prompt, stems):
            return kind
    return "core"


def substrate(ctx: Context, tone: float, floor: np.ndarray,
              box: tuple[slice, slice] | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """(colour (3,) of the revealed material at ``tone`` of the surface's brightness, detail to add to
    it over ``box`` (explicit slices; the whole crop when None), the substrate's name). The detail's
    strength is set on the ``floor`` (bool over the crop, the pixels it will be seen on; the region
    when under 16 px): a small floor is a handful of grains, and it is their spread, not the noise's
    on average, that must match the surround's."""
    kind = substrate_kind(ctx.prompt)
    _, rgb, cell, stretch = SUBSTRATES[kind]
    surface = ctx.shared.colour
    colour = surface * tone if rgb is None else np.asarray(rgb, np.float32) * (luminance(surface) / 160.0) ** 0.5
    h, w = ctx.shape
    where = floor if np.count_nonzero(floor) >= 16 else ctx.region
    # worked on the box and the floor with the blurs' reach around it (the same draws as the whole crop's)
    box = box or (slice(0, h), slice(0, w))
    near = window(where, int(np.ceil(3.0 * ctx.photo.blur)) + 4)
    work = (slice(min(box[0].start, near[0].start), max(box[0].stop, near[0].stop)),
            slice(min(box[1].start, near[1].start), max(box[1].stop, near[1].stop)))
    grain = 0.7 * ctx.noise(cell, work) + 0.3 * ctx.noise(2.5 * cell, work)
    if stretch > 1.0:  # fibres: noise drawn on a squeezed grid and stretched along x
        fibres = noise_patch((h, max(2, round(w / stretch))), ctx.rng, cell)
        grain = 0.4 * grain + 0.6 * cv2.resize(fibres, (w, h), interpolation=cv2.INTER_LINEAR)[work]
    where = where[work]
    grain = grain - float(grain[where].mean()) if where.any() else grain
    # the detail matches the surround's as the camera sees it: after the photo's blur
    seen = fine_pass(blur(grain, ctx.photo.blur))
    level = robust_sigma(seen[where]) if where.any() else 1.0
    strength = max(ctx.photo.fine, 0.8) * float(ctx.rng.uniform(0.75, 1.0)) / max(level, 1e-3)
    ctx.record(substrate=kind)
    return colour.astype(np.float32), (grain[within(box, work)] * strength).astype(np.float32), kind


def beside_shading(ctx: Context, detail: np.ndarray, shading: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """``detail`` (from :func:`substrate`) less what the floor's own ``shading`` (luminance of its
    painted walls, shadow and tone ramp, before any grain) already shows the camera on the ``floor``:
    the two together, not the grain alone, match the surround's fine detail (at least a quarter of it
    stays grain). All three cover the same part of the crop, the floor and 4 px around it at least."""
    if floor.sum() < 16:
        return detail
    x, y, w, h = cv2.boundingRect(floor.astype(np.uint8))
    win = (slice(max(0, y - 4), y + h + 4), slice(max(0, x - 4), x + w + 4))

    def seen(image: np.ndarray) -> float:
        return robust_sigma(fine_pass(blur(image[win], ctx.photo.blur))[floor[win]])
    grain, own = seen(detail), seen(shading.astype(np.float32))
    if grain <= 1e-3:
        return detail
    keep = float(np.sqrt(max(grain * grain - own * own, (0.25 * grain) ** 2))) / grain
    ctx.record(floor_shading=own)
    return (detail * keep).astype(np.float32)
