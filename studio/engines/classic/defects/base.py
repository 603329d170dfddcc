"""What every defect generator gets (:class:`Context`) and the shapes several of them share."""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field, replace
from functools import cached_property, wraps
from typing import Any, Callable

import cv2
import numpy as np

from studio.engines.classic.geometry import Frame, inside_distance, region_frame, ring
from studio.engines.classic.inspection import OUTLINE_BAND, busyness
from studio.engines.classic.measures import sobel
from studio.engines.classic.noise import noise_patch
from studio.engines.classic.photometry import Photometry, luminance, smooth_grey, to_lab, to_ycc
from studio.engines.classic.shading import Maps, Rendered, render
from studio.engines.classic.surfaces import pick_unit, surface_units
from studio.imaging import blur, dilate, erode, labels_in, mask_coords, pixels

#: Depth (px) inside the sketch up to which nothing changes (its outline must not show).
OUTLINE_CLEAR = 2.5
#: Gaussian sigma (px) separating an image's smooth base from its detail (texture and noise).
BASE_SIGMA = 2.0
#: How much more of a soaking stain the surface's darker texture takes, per unit of its depth relative
#: to the surface's brightness: inside a stain darkening by d the texture's contrast is then
#: 1 + d (UPTAKE - DETAIL_SHARE) times the surface's (a little more in its pores, however faint or
#: strong the texture: normalised per its own spread, the faint grooves of a turned plate became stripes).
UPTAKE = 1.0
#: Longest an organic patch (a stain, a film, a crust, a dent) is per its width: a long, thin sketch
#: holds a spot somewhere along it rather than a spindle of its own shape.
PATCH_ELONGATION = 2.2
#: Gaussian sigma (px) of the windows in which :attr:`Shared.brushing` reads the texture's direction.
BRUSH_WINDOW = 3.0


def crop_level(compute: Callable[[Shared], Any]) -> cached_property:
    """A cached part of :class:`Shared` that depends on the crop alone: a surface unit's host reads
    its parent's (computed once per request, not once per unit)."""
    @wraps(compute)
    def get(self: Shared) -> Any:
        return compute(self) if self.parent is None else getattr(self.parent, compute.__name__)
    return cached_property(get)


@dataclass(frozen=True, eq=False)
class Shared:
    """What every candidate of one request shares, computed once (each part on first use): the crop
    (float32 0..255), its region (bool) and what is derived from them (each part says what it is).
    A surface unit's host (:meth:`host`) has the request's as its ``parent`` and shares its
    crop-level parts."""

    crop: np.ndarray
    region: np.ndarray
    parent: Shared | None = None  # the whole region's, for a surface unit's host

    @classmethod
    def of(cls, crop: np.ndarray, region: np.ndarray) -> Shared:
        return cls(crop.astype(np.float32, copy=False), region)

    @crop_level
    def base(self) -> np.ndarray:
        return blur(self.crop, BASE_SIGMA)

    @cached_property
    def colour(self) -> np.ndarray:
        """The region's mean smooth colour (RGB float32; mid-grey for an empty region)."""
        return pixels(self.base, self.region).mean(axis=0) if self.region.any() else np.full(3, 128.0, np.float32)

    @cached_property
    def crop_colour(self) -> np.ndarray:
        """The region's mean colour (RGB float32, of the crop itself, texture and noise included)."""
        return pixels(self.crop, self.region).mean(axis=0)

    @crop_level
    def grey(self) -> np.ndarray:
        """The crop's luminance (float32)."""
        return luminance(self.crop).astype(np.float32)

    @crop_level
    def grey_smooth(self) -> np.ndarray:
        """The crop's luminance smoothed by a sigma-1 Gaussian (the photometry's finest detail, the
        score's busyness and the surface units' edges all read it)."""
        return smooth_grey(self.grey)

    @crop_level
    def busy(self) -> np.ndarray:
        """The crop's :func:`~studio.engines.classic.inspection.busyness` (what a candidate's score
        reads its surround's texture from)."""
        return busyness(self.grey, self.grey_smooth)

    @crop_level
    def derivatives(self) -> tuple[np.ndarray, np.ndarray]:
        """The crop's :func:`~studio.engines.classic.measures.sobel` derivatives (a candidate's seam is
        measured against them)."""
        return sobel(self.crop)

    @crop_level
    def ycc_thirds(self) -> np.ndarray:
        """The crop in YCrCb at every third pixel (what a reference's colour is matched to)."""
        return to_ycc(self.crop[::3, ::3])

    @crop_level
    def lab(self) -> np.ndarray:
        """The smooth part in CIE Lab (what a tint is worked on)."""
        return to_lab(self.base)

    @cached_property
    def texture(self) -> np.ndarray:
        """The luminance of the crop's detail per standard deviation of it over the region (at least
        one grey level): negative in the surface's darker pores, grooves and fibres."""
        detail = luminance(self.crop - self.base).astype(np.float32)
        spread = max(float(detail[self.region].std()) if self.region.any() else 0.0, 1.0)
        return detail / np.float32(spread)

    @cached_property
    def uptake(self) -> np.ndarray:
        """How much of a soaking stain each pixel takes (about 1; more in the texture's darker pores,
        grooves and fibres, by ``UPTAKE`` times their depth relative to the surface's brightness)."""
        depth = luminance(self.crop - self.base) / np.maximum(luminance(self.base), 8.0)
        return np.clip(1.0 - UPTAKE * depth, 0.4, 1.6).astype(np.float32)

    @cached_property
    def frame(self) -> Frame:
        return region_frame(self.region)

    @cached_property
    def depth(self) -> np.ndarray:
        return inside_distance(self.region)

    def grid(self, box: tuple[slice, slice] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(yy, xx) float32 pixel coordinates of the crop, or of its ``box`` (explicit slices): a
        column and a row, which broadcast to the box's grid."""
        h, w = self.region.shape
        rows, cols = box or (slice(0, h), slice(0, w))
        return (np.arange(rows.start, rows.stop, dtype=np.float32)[:, None],
                np.arange(cols.start, cols.stop, dtype=np.float32)[None, :])

    @cached_property
    def rim(self) -> np.ndarray:
        """The pixels just outside the region."""
        return ring(self.region, inner=0, outer=1)

    @cached_property
    def interior(self) -> np.ndarray:
        """The region less its outermost pixel."""
        return erode(self.region, 1)

    @crop_level
    def weave_angle(self) -> float:
        """The orientation (radians, modulo 90 degrees) of a woven surface's threads, from the 4-fold
        symmetric mean of the crop's gradient directions."""
        grey = self.grey
        gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
        theta, weight = np.arctan2(gy, gx), np.hypot(gx, gy)
        return 0.25 * math.atan2(float((weight * np.sin(4 * theta)).sum()), float((weight * np.cos(4 * theta)).sum()))

    @crop_level
    def brushing(self) -> float:
        """How strongly the crop's finest texture runs one way where it is looked at closely (0..1):
        the median over the crop of the coherence of the structure tensor of its fine detail (grey
        less a sigma-1 blur, so shading and a cup's rim drop out) in sigma-3 windows. Brushed or
        turned metal (a turned disc's circles are nearly straight in each window), wood grain and
        streaked brick ~0.8-1; stone, cloth, gravel, grass, a coin's relief, a PCB < 0.75."""
        fine = blur(self.grey - self.grey_smooth, 0.7)
        gx, gy = cv2.Sobel(fine, cv2.CV_32F, 1, 0), cv2.Sobel(fine, cv2.CV_32F, 0, 1)
        jxx, jyy, jxy = (blur(a, BRUSH_WINDOW) for a in (gx * gx, gy * gy, gx * gy))
        trace = jxx + jyy
        spread = np.sqrt((jxx - jyy) ** 2 + 4.0 * jxy * jxy)
        return float(np.median(spread / np.maximum(trace, 1e-6)))

    @cached_property
    def clear(self) -> np.ndarray:
        """How much of a change each pixel may take (0..1): nothing on the sketch's outermost 2 px,
        fully from 5 px in (a region cut by the image's edge goes on beyond it), so the sketch's
        outline never shows."""
        depth = inside_distance(self.region, open_border=True)
        return np.clip((depth - OUTLINE_CLEAR) / 2.5, 0.0, 1.0).astype(np.float32)

    @cached_property
    def outline_band(self) -> tuple[np.ndarray, np.ndarray]:
        """(ys, xs) of the sketch's inner 2-px band, where a change would show its outline."""
        return mask_coords(self.region & ~erode(self.region, OUTLINE_BAND))

    @cached_property
    def fingerprint(self) -> int:
        """A hash of the crop's pixels and its region (mixed into every candidate's random stream)."""
        return zlib.crc32(self.region.tobytes(), zlib.crc32(np.ascontiguousarray(self.crop).tobytes()))

    @cached_property
    def units(self) -> np.ndarray:
        """The region's surface units (:func:`~studio.engines.classic.surfaces.surface_units`)."""
        return surface_units(self.grey, self.region, self.grey_smooth)

    @cached_property
    def unit_areas(self) -> np.ndarray:
        """The pixel count of every surface unit, the outside (label 0) first."""
        return np.bincount(self.units.ravel())

    @property
    def unit_count(self) -> int:
        """How many surface units the region has."""
        return len(self.unit_areas) - 1

    def shrunk(self, window: tuple[slice, slice], size: tuple[int, int]) -> np.ndarray:
        """The crop's ``window`` (uint8) shrunk to ``size`` (w, h) by area averaging, made once per
        window and size for the whole request (a reference's Poisson solve reads it)."""
        made = (self.parent or self)._shrunk
        key = (window[0].start, window[0].stop, window[1].start, window[1].stop, size)
        if key not in made:
            made[key] = cv2.resize(self.crop[window].astype(np.uint8), size, interpolation=cv2.INTER_AREA)
        return made[key]

    @cached_property
    def _shrunk(self) -> dict[tuple, np.ndarray]:
        return {}

    def grown(self, px: int) -> np.ndarray:
        """The region grown by ``px`` (computed once per size; not to be written to)."""
        if px not in self._grown:
            self._grown[px] = dilate(self.region, px)
        return self._grown[px]

    @cached_property
    def _grown(self) -> dict[int, np.ndarray]:
        return {}

    @cached_property
    def _hosts(self) -> dict[int, Shared]:
        return {}

    def seeded_host(self, rng: np.random.Generator) -> Shared:
        """What the candidates placed on a seeded surface unit share (:func:`pick_unit`: the larger a
        unit, the likelier): where one defect lies when it must keep to one surface."""
        return self.host(pick_unit(self.unit_areas, rng))

    def host(self, unit: int) -> Shared:
        """What the candidates placed on surface ``unit`` share: this crop with the region cut to that
        unit (the whole region when it is one surface); computed once per unit."""
        if self.unit_count <= 1:
            return self
        if unit not in self._hosts:
            self._hosts[unit] = Shared(self.crop, self.units == unit, parent=self)
        return self._hosts[unit]


@dataclass
class Context:
    """What a generator gets: the crop (float32 0..255), its region (bool), a seeded rng, the prompt,
    the photometry (noise, blur, light) measured around the region, and what the request's candidates
    share (computed here when not given)."""

    crop: np.ndarray
    region: np.ndarray
    rng: np.random.Generator
    prompt: str
    photo: Photometry
    params: dict[str, Any] = field(default_factory=dict)
    shared: Shared | None = None
    footprint: np.ndarray | None = None  # the defect's own extent, labelled even where it barely shows

    def __post_init__(self) -> None:
        if self.shared is None:
            self.shared = Shared.of(self.crop, self.region)

    @property
    def shape(self) -> tuple[int, int]:
        return self.region.shape

    @property
    def base(self) -> np.ndarray:
        return self.shared.base

    @property
    def frame(self) -> Frame:
        return self.shared.frame

    @property
    def depth(self) -> np.ndarray:
        return self.shared.depth

    @cached_property
    def at_image_edge(self) -> np.ndarray:
        """The region's pixels on the image's border (the crop reaches it only there)."""
        edge = np.zeros(self.shape, bool)
        edge[[0, -1], :] = self.region[[0, -1], :]
        edge[:, [0, -1]] |= self.region[:, [0, -1]]
        return edge

    def record(self, **values: Any) -> None:
        for key, value in values.items():
            if isinstance(value, (float, np.floating)):
                value = round(float(value), 4)
            elif isinstance(value, (np.integer,)):
                value = int(value)
            elif isinstance(value, np.ndarray):
                value = [round(float(v), 2) for v in value.ravel()]
            self.params[key] = value

    def noise(self, cell: float, box: tuple[slice, slice] | None = None) -> np.ndarray:
        """Seeded fractal noise over the crop with features about ``cell`` px across (~[-1, 1]); with
        ``box`` (explicit slices) only that part of it (the same draws)."""
        return noise_patch(self.shape, self.rng, cell, box)

    def render(self, maps: Maps) -> Rendered:
        """The crop with ``maps`` rendered in this image's light, noise and sharpness; only the box
        around where the maps change anything (plus the blur's reach) is rendered."""
        box = support_box(maps, self.shape, 8 + math.ceil(3.0 * self.photo.blur), self.crop)
        y0, y1, x0, x1 = box
        window = (slice(y0, y1), slice(x0, x1))
        part = replace(maps, **{name: getattr(maps, name)[window] for name in MAP_FIELDS
                                if getattr(maps, name) is not None})
        # a pulled source differs from the crop only inside the window, its smooth part too (the margin
        # exceeds the blur's reach)
        base = self.base[window] if maps.source is None else blur(part.source, BASE_SIGMA)
        return Rendered(render(self.crop[window], base, part, self.photo, self.rng), box)


#: The fields of :class:`Maps` that are images over the crop.
MAP_FIELDS = ("height", "albedo", "gloss", "cover", "paint", "source")


def support_box(maps: Maps, shape: tuple[int, int], margin: int, crop: np.ndarray | None = None,
                tolerance: float = 1e-4) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the pixels the maps change (height, gloss or cover non-zero, albedo not 1,
    a pulled ``source`` not the ``crop``, by more than ``tolerance``), grown by ``margin`` px; the
    whole crop when nothing shows (or a source comes without its crop)."""
    h, w = shape
    if maps.source is not None and crop is None:
        return 0, h, 0, w
    boxes = []
    for field_, rest in ((maps.height, 0.0), (maps.gloss, 0.0), (maps.cover, 0.0), (maps.albedo, 1.0),
                         (maps.source, crop)):
        if field_ is None:
            continue
        channels = field_.shape[2] if field_.ndim == 3 else 1
        if isinstance(rest, np.ndarray):
            rest = rest.reshape(h, w * channels)
        away = field_.reshape(h, w * channels) - rest
        moved = np.abs(away, out=away) > tolerance
        x, y, bw, bh = cv2.boundingRect(moved.view(np.uint8))  # channels side by side: x counts channel samples
        if bw:
            boxes.append((y, y + bh, x // channels, -(-(x + bw) // channels)))
    if not boxes:
        return 0, h, 0, w
    y0, y1 = min(b[0] for b in boxes), max(b[1] for b in boxes)
    x0, x1 = min(b[2] for b in boxes), max(b[3] for b in boxes)
    return max(0, y0 - margin), min(h, y1 + margin), max(0, x0 - margin), min(w, x1 + margin)


def window(field: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The part of the crop where ``field`` (H, W) is non-zero, grown by ``margin`` px and clipped (the
    whole crop when it is zero everywhere): where a defect's maps are worked on."""
    h, w = field.shape
    x, y, bw, bh = cv2.boundingRect((field != 0).view(np.uint8))
    if not bw:
        return slice(0, h), slice(0, w)
    return slice(max(0, y - margin), min(h, y + bh + margin)), slice(max(0, x - margin), min(w, x + bw + margin))


def paint_window(ctx: Context, cover: np.ndarray) -> tuple[slice, slice]:
    """Where a defect's ``paint`` is read: as far as the rendered (blurred) ``cover`` reaches, its box
    grown by twice the blur's reach (and a margin); beyond, the paint may be left at 0."""
    return window(cover, 2 * math.ceil(3.0 * ctx.photo.blur) + 4)


def within(box: tuple[slice, slice], outer: tuple[slice, slice]) -> tuple[slice, slice]:
    """``box`` (explicit slices into the crop) relative to ``outer``, which holds it."""
    return tuple(slice(b.start - o.start, b.stop - o.start) for b, o in zip(box, outer))


def wide_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur for a wide ``sigma`` at a fraction of the cost: above 3 px it is done on a copy
    shrunk to 1.5 px per sigma and enlarged back (the result is smooth, so nothing is lost)."""
    if sigma <= 3.0:
        return blur(image, sigma)
    h, w = image.shape[:2]
    scale = 1.5 / sigma
    small = cv2.resize(image, (max(2, round(w * scale)), max(2, round(h * scale))), interpolation=cv2.INTER_AREA)
    return cv2.resize(blur(small, sigma * scale), (w, h), interpolation=cv2.INTER_LINEAR)


def patch_window(ctx: Context, centre: tuple[float, float], axes: tuple[float, float], angle: float,
                 rough: float, jag: float = 0.0) -> tuple[tuple[slice, slice] | None, np.ndarray]:
    """An organic field around ``centre`` on the window of the crop it can reach (beyond, it is
    negative): 1 in the middle, 0 on the boundary, negative outside. A seeded ellipse of semi-axes
    ``axes`` turned by ``angle``, its coordinates warped and its level roughened by two octaves of
    fractal noise (``rough`` ~ 0.1 slightly irregular .. 0.5 ragged), plus ``jag`` times a pixel-fine
    octave (a fracture's jagged edge). Returns (the window's slices, or None when it lies outside the
    crop; the field there)."""
    h, w = ctx.shape
    a, b = max(axes[0], 1.0), max(axes[1], 1.0)
    reach = a * (1.0 + rough) + rough * b + 2.0
    y0, y1 = max(0, int(centre[1] - reach)), min(h, int(centre[1] + reach) + 1)
    x0, x1 = max(0, int(centre[0] - reach)), min(w, int(centre[0] + reach) + 1)
    if y1 <= y0 or x1 <= x0:
        return None, np.zeros((0, 0), np.float32)
    shape = (y1 - y0, x1 - x0)
    window = (slice(y0, y1), slice(x0, x1))
    yy, xx = ctx.shared.grid(window)
    c, s = math.cos(angle), math.sin(angle)  # float32 arithmetic over the window
    dx, dy = xx - centre[0], yy - centre[1]
    warp = rough * b
    u = (dx * c + dy * s + warp * noise_patch(shape, ctx.rng, max(2.0, b))) / a
    v = (-dx * s + dy * c + warp * noise_patch(shape, ctx.rng, max(2.0, b))) / b
    coarse, fine = noise_patch(shape, ctx.rng, max(2.0, 0.6 * b)), noise_patch(shape, ctx.rng, max(1.5, 0.2 * b))
    field_ = 1.0 - np.sqrt(u * u + v * v) + rough * (0.6 * coarse + 0.4 * fine)
    if jag:
        field_ += jag * noise_patch(shape, ctx.rng, 1.5)
    return window, field_


def place(ctx: Context, reach: float) -> tuple[float, float]:
    """A seeded point of the region at least ``reach`` px inside it (the deepest points if none is)."""
    depth = ctx.depth
    where = np.flatnonzero(depth >= min(reach, 0.8 * float(depth.max())))
    y, x = divmod(int(where[int(ctx.rng.integers(where.size))]), depth.shape[1])
    return float(x), float(y)


def organic_patch(ctx: Context, extent: tuple[float, float], rough: float,
                  aspect: tuple[float, float] = (0.45, 1.0), jag: float = 0.0,
                  at_edge: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A seed-varied organic shape INSIDE the region (the sketch is where a defect may lie, not its
    outline): (mask, lift). Its length is a seeded fraction ``extent`` of the region's, its width a
    seeded ``aspect`` of that (at most the region's width), its orientation near the region's (free
    in a round region), its centre a seeded interior point; the boundary is thresholded warped noise
    and fades out before the sketch's edge (``jag``: see :func:`patch_window`); ``at_edge`` centres it on the
    image's border where the region meets it (a bite out of the edge). ``lift`` rises from 0 at the boundary to 1 inside."""
    rng, frame = ctx.rng, ctx.frame
    a = frame.a * float(rng.uniform(*extent))
    b = min(a * float(rng.uniform(*aspect)), frame.b * float(rng.uniform(0.55, 0.95)))
    a = min(a, PATCH_ELONGATION * b)  # a spot in a long, thin sketch, not a spindle in its shape
    elongation = frame.b / frame.a
    angle = frame.angle + float(rng.uniform(-1.0, 1.0)) * np.pi / 2 * elongation**2
    edge = at_edge and bool(ctx.at_image_edge.any())
    depth = inside_distance(ctx.region, open_border=True) if edge else ctx.depth
    # keep clear of the sketch's outline (not of the image's edge): the field sinks within a few px
    # of it, and a shape that would still run along it is drawn again smaller
    margin = max(3.0, 0.15 * float(depth.max()))

    def fade(part: tuple[slice, slice]) -> np.ndarray:  # on the part of the crop it is read on
        return 2.0 * np.clip(1.0 - depth[part] / margin, 0.0, 1.0)
    for _ in range(4):
        if edge:
            ys, xs = mask_coords(ctx.at_image_edge)
            i = int(rng.integers(ys.size))
            centre = (float(xs[i]), float(ys[i]))
        else:
            centre = place(ctx, 1.1 * b)
        # worked on the shape's window: beyond it the field is -1 - fade, and nothing is inside
        box, field_ = patch_window(ctx, centre, (a, b), angle, rough, jag)
        box = box or (slice(0, 0), slice(0, 0))
        field_ = field_.astype(np.float32) - fade(box)
        inside = (field_ > 0) & ctx.region[box]
        count = np.count_nonzero(inside)
        if not count or np.count_nonzero(inside & (depth[box] < margin)) <= 0.03 * count:
            break
        a, b = 0.75 * a, 0.75 * b
    mask, lift = np.zeros(ctx.shape, bool), np.zeros(ctx.shape, np.float32)
    if count < 4:  # too small to see: the region's deepest part, the field read over the whole crop
        mask = ctx.depth >= 0.5 * float(ctx.depth.max())
        whole = np.full(ctx.shape, -1.0, np.float32) - fade((slice(None), slice(None)))
        whole[box] = field_
        box, field_, inside = (slice(None), slice(None)), whole, mask
    mask[box] = inside
    peak = max(float(field_[inside].max()), 1e-3)
    lift[box] = np.clip(field_ / peak, 0.0, 1.0) * inside
    return mask, lift


def droplets(ctx: Context, blob: np.ndarray, count: int, size: float) -> np.ndarray:
    """``count`` small, slightly irregular droplets splashed a little beyond the blob, inside the region."""
    out = np.zeros(ctx.shape, bool)
    ys, xs = mask_coords(blob)
    if ys.size == 0 or count == 0:
        return out
    cy, cx = float(ys.mean()), float(xs.mean())
    for _ in range(count):
        i = int(ctx.rng.integers(ys.size))
        away = np.array([xs[i] - cx, ys[i] - cy])
        away /= max(float(np.linalg.norm(away)), 1e-6)
        reach = ctx.rng.uniform(1.5, 4.0) * size
        centre = (float(xs[i] + reach * away[0]), float(ys[i] + reach * away[1]))
        radius = size * float(ctx.rng.uniform(0.4, 1.0))
        window, field_ = patch_window(ctx, centre, (radius, radius * float(ctx.rng.uniform(0.6, 1.0))),
                                      float(ctx.rng.uniform(0, np.pi)), 0.2)
        if window is not None:
            out[window] |= field_ > 0
    return out & ctx.region


def main_parts(mask: np.ndarray, share: float = 0.05) -> np.ndarray:
    """The mask without its crumbs: the 8-connected parts of at least ``share`` of the largest one."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    return labels_in(labels, np.flatnonzero(areas >= share * areas.max()) + 1, count)


def cavity(ctx: Context, opening: np.ndarray, wall: float, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How a recess in the surface is lit: (wall weight 1 at the rim fading over ``wall`` px, side in
    [-1, 1]: +1 where the wall faces the light, i.e. on the side of the opening away from the light,
    -1 on the side towards it, in its shadow). ``depth`` is the distance (px) of its pixels from its
    rim, ``inside_distance(opening, open_border=True)`` (a recess cut by the image's edge goes on)."""
    h, w = opening.shape
    scale = min(1.0, 3.0 / max(wall, 1.0))  # a wide wall's orientation is found on a smaller copy
    small = opening.astype(np.float32)
    if scale < 1.0:
        small = cv2.resize(small, (max(4, round(w * scale)), max(4, round(h * scale))), interpolation=cv2.INTER_AREA)
    sigma = max(1.0, wall * scale)
    gy, gx = np.gradient(blur(small, 0.5 * sigma))
    # the inward normal of the rim, carried into the interior by a wider blur
    gy, gx = blur(gy, sigma), blur(gx, sigma)
    lx, ly = ctx.photo.light
    side = (gx * lx + gy * ly) / (np.sqrt(gx * gx + gy * gy) + 1e-6)
    if scale < 1.0:
        side = cv2.resize(side, (w, h), interpolation=cv2.INTER_LINEAR)
    side = np.clip(side, -1.0, 1.0)
    weight = np.zeros((h, w), np.float32)
    box = window(opening, 0)  # (nothing beyond the opening)
    weight[box] = np.exp(-depth[box] / max(wall, 0.5)) * opening[box]
    return weight, side.astype(np.float32)


#: A line keeps its first draw when this share of its points lies on its host region; else it is drawn again,
#: up to ``CURVE_DRAWS`` times, and the draw lying most on the region is kept (a curved unit, such as a wavy
#: band of wood grain, leaves a straight frame's line mostly outside, clipped to a nick).
CURVE_INSIDE = 0.75
CURVE_DRAWS = 4


def smooth_curve(ctx: Context, bend: float, n: int = 48) -> np.ndarray:
    """A smooth random curve across the region along its major axis: (n, 2) image points, offset,
    bent and tilted by the seed, its ends at a seeded fraction of the region's length; drawn again when
    most of it would leave the region (``CURVE_INSIDE``)."""
    best: tuple[float, np.ndarray] | None = None
    h, w = ctx.shape
    for _ in range(CURVE_DRAWS):
        curve = _curve(ctx, bend, n)
        xs = np.clip(np.rint(curve[:, 0]).astype(np.int64), 0, w - 1)
        ys = np.clip(np.rint(curve[:, 1]).astype(np.int64), 0, h - 1)
        share = float(ctx.region[ys, xs].mean())
        if best is None or share > best[0]:
            best = (share, curve)
        if share >= CURVE_INSIDE:
            break
    return best[1]


def _curve(ctx: Context, bend: float, n: int) -> np.ndarray:
    """One draw of :func:`smooth_curve`."""
    rng, frame = ctx.rng, ctx.frame
    lo, hi = sorted(rng.uniform(-1.0, 1.0, 2))
    lo, hi = min(lo, -0.35), max(hi, 0.35)
    u = np.linspace(lo, hi, n) * 0.85  # the ends stay clear of the sketch's outline
    coeffs = rng.normal(0.0, bend, 3)
    offset = rng.uniform(-0.5, 0.5) * frame.b
    s = offset + frame.b * (coeffs[0] * (u**2 - 1.0 / 3.0) + coeffs[1] * u**3 + coeffs[2] * np.sin(np.pi * u))
    tilt = rng.normal(0.0, 0.08)
    s = s + tilt * u * frame.a
    return frame.to_image(u * frame.a * 0.95, s)


@dataclass
class Band:
    """The pixels within ``cutoff`` px of a set of polylines, flattened: where they are, how far from
    the nearest curve, which curve (index into the paths), where along it (arc position 0..1) and on
    which side of it."""

    ys: np.ndarray
    xs: np.ndarray
    distance: np.ndarray
    path: np.ndarray
    position: np.ndarray
    side: np.ndarray  # +1 on the left of the curve's direction, -1 on its right (0 on it)

    def paint(self, shape: tuple[int, int], values: np.ndarray) -> np.ndarray:
        """A full (H, W) float32 map holding ``values`` on the band and 0 elsewhere."""
        out = np.zeros(shape, np.float32)
        out[self.ys, self.xs] = values
        return out


def curve_band(shape: tuple[int, int], paths: list[np.ndarray], cutoff: float) -> Band:
    """The :class:`Band` around ``paths``: one distance transform with pixel labels for all curves;
    every later computation touches only the band's pixels, not the whole crop."""
    canvas = np.full(shape, 255, np.uint8)
    owner = np.zeros(shape, np.int32)
    for k, points in enumerate(paths):
        pts = np.rint(points).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [pts], False, 0, 1, cv2.LINE_8)
        cv2.polylines(owner, [pts], False, k, 1, cv2.LINE_8)
    drawn = canvas == 0
    x, y, bw, bh = cv2.boundingRect(drawn.view(np.uint8))
    if not bw:
        empty = np.zeros(0, np.int64)
        return Band(empty, empty, np.zeros(0, np.float32), empty, np.zeros(0, np.float32), np.zeros(0, np.float32))
    # the distances (and nearest curve pixels) within the band are those of the curves' box grown by it:
    # a chamfer path from a curve pixel to a band pixel stays within their box
    reach = math.ceil(cutoff) + 2
    y0, x0 = max(0, y - reach), max(0, x - reach)
    box = (slice(y0, min(shape[0], y + bh + reach)), slice(x0, min(shape[1], x + bw + reach)))
    zy, zx = mask_coords(drawn[box])
    zy, zx = zy + y0, zx + x0
    distance, labels = cv2.distanceTransformWithLabels(canvas[box], cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
    # arc position of every drawn curve pixel: that of the nearest sampled point of its own curve
    curve = owner[zy, zx]
    position = np.zeros(zy.size, np.float32)
    point = np.zeros(zy.size, np.int64)  # index of that point in all the paths' points, end to end
    start = 0
    for k, points in enumerate(paths):
        mine = curve == k
        seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
        arc = np.concatenate([[0.0], np.cumsum(seg)]) / max(float(seg.sum()), 1e-6)
        near = np.argmin((zx[mine, None] - points[None, :, 0]) ** 2 + (zy[mine, None] - points[None, :, 1]) ** 2, axis=1)
        position[mine] = arc[near]
        point[mine] = start + near
        start += len(points)
    ys, xs = mask_coords(distance < cutoff + 1.5)
    nearest = labels[ys, xs] - 1
    ys, xs = ys + y0, xs + x0
    exact, side = curve_distance(ys, xs, paths, point[nearest])
    keep = exact < cutoff
    return Band(ys[keep], xs[keep], exact[keep], curve[nearest][keep], position[nearest][keep], side[keep])


def curve_distance(ys: np.ndarray, xs: np.ndarray, paths: list[np.ndarray],
                   point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance (px, float32), side: +1 left of the curve's direction, -1 right) of the pixels
    (``ys``, ``xs``) from the true curves, not from their rasterised lines (whose staircase would bead
    a groove a px wide): to the two segments of its curve beside its nearest sampled point
    (``point``: index into the paths' points laid end to end)."""
    points = np.concatenate(paths).astype(np.float32)
    last = np.concatenate([np.full(len(p), start + len(p) - 1) for p, start in
                           zip(paths, np.cumsum([0] + [len(p) for p in paths[:-1]]))])
    first = last - np.concatenate([np.full(len(p), len(p) - 1) for p in paths])
    # worked per coordinate (x, y): a sum over a short last axis is slow
    px, py = np.ascontiguousarray(points[:, 0]), np.ascontiguousarray(points[:, 1])
    hx, hy = xs.astype(np.float32), ys.astype(np.float32)
    best = np.full(ys.size, np.inf, np.float32)
    side = np.zeros(ys.size, np.float32)
    for a, b in ((np.maximum(point - 1, first[point]), point), (point, np.minimum(point + 1, last[point]))):
        ax, ay = px[a], py[a]
        sx, sy = px[b] - ax, py[b] - ay  # the segment
        dx, dy = hx - ax, hy - ay
        t = np.clip((dx * sx + dy * sy) / np.maximum(sx * sx + sy * sy, 1e-6), 0.0, 1.0)
        ex, ey = dx - t * sx, dy - t * sy
        distance = np.sqrt(ex * ex + ey * ey)
        closer = distance < best
        best = np.where(closer, distance, best)
        side = np.where(closer, np.sign(sx * dy - sy * dx), side)
    return best, side
