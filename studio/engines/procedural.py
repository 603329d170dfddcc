"""Procedural defect generators for the weight-free ``classic`` engine.

Each generator draws one kind of defect into a crop of the normal image, inside the
sketched region, and returns the new crop (float32, 0..255) plus the parameters it drew.
The target prompt picks the generator by keyword (:func:`pick_generator`); words it does
not know fall back to DRAEM-style Perlin-noise texture anomalies. Every random choice
comes from the ``numpy`` generator handed in, so a seed reproduces a candidate exactly.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import cv2
import numpy as np

#: Generator name -> word stems that select it (a prompt word selects it when it starts with a stem).
KEYWORDS: dict[str, tuple[str, ...]] = {
    "scratch": ("scratch", "scrape", "scuff", "abrasion", "abraded", "graze", "score", "cut"),
    "crack": ("crack", "fractur", "fissure", "split", "craz"),
    "hole": ("hole", "pit", "puncture", "perforat", "pinhole", "pore"),
    "stain": ("stain", "contamina", "spot", "smudge", "dirt", "oil", "residue", "splash", "splatter",
              "blot", "glue", "grease", "rust", "corros", "drop", "smear", "paint", "ink", "liquid"),
    "dent": ("dent", "deform", "bump", "bent", "bend", "dint", "ding", "warp", "crush", "squash",
             "indent", "dimple", "bulge"),
    "missing": ("missing", "broken", "break", "broke", "chip", "torn", "tear", "fragment", "absent", "gap"),
    "discoloration": ("discolo", "fade", "faded", "bleach", "yellowing", "burn", "scorch", "oxid",
                      "tarnish", "tint", "colour", "color"),
}
GENERATORS = (*KEYWORDS, "perlin")

#: Colour words a prompt may use to tint stains and discolorations (RGB).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (175, 28, 30), "brown": (105, 66, 32), "rust": (160, 78, 30), "orange": (210, 110, 30),
    "yellow": (205, 175, 40), "green": (45, 125, 50), "blue": (40, 70, 170), "purple": (110, 45, 130),
    "black": (22, 22, 24), "dark": (35, 33, 30), "oil": (30, 28, 24), "grey": (120, 120, 120),
    "gray": (120, 120, 120), "white": (240, 238, 232), "bright": (235, 235, 230),
}
DEFAULT_STAIN_COLOURS = ((105, 66, 32), (160, 78, 30), (35, 33, 30), (150, 130, 60))


def prompt_words(prompt: str) -> list[str]:
    return re.findall(r"[a-z]+", prompt.lower())


def pick_generator(prompt: str) -> tuple[str, str | None]:
    """(generator, the word that chose it): the earliest prompt word matching a keyword, else Perlin."""
    for word in prompt_words(prompt):
        for name, stems in KEYWORDS.items():
            if any(word.startswith(stem) for stem in stems):
                return name, word
    return "perlin", None


def prompt_colour(prompt: str) -> tuple[str, tuple[int, int, int]] | None:
    """The first colour word in the prompt and its RGB, if any."""
    for word in prompt_words(prompt):
        if word in COLOURS:
            return word, COLOURS[word]
    return None


# --------------------------------------------------------------------------- noise and geometry


def perlin(shape: tuple[int, int], periods: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """2-D gradient (Perlin) noise of ``shape`` with about ``periods`` cells per axis, values ~[-1, 1]."""
    h, w = shape
    py, px = max(1, int(round(periods[0]))), max(1, int(round(periods[1])))
    angles = rng.uniform(0.0, 2.0 * np.pi, (py + 1, px + 1))
    gx, gy = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
    y = np.linspace(0.0, py, h, endpoint=False, dtype=np.float32)
    x = np.linspace(0.0, px, w, endpoint=False, dtype=np.float32)
    yi, xi = y.astype(np.int64), x.astype(np.int64)
    yf, xf = (y - yi)[:, None], (x - xi)[None, :]
    Y0, X0 = yi[:, None], xi[None, :]

    def corner(dy: int, dx: int) -> np.ndarray:
        return gx[Y0 + dy, X0 + dx] * (xf - dx) + gy[Y0 + dy, X0 + dx] * (yf - dy)

    def fade(t: np.ndarray) -> np.ndarray:
        return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)

    u, v = fade(xf), fade(yf)
    top = corner(0, 0) * (1 - u) + corner(0, 1) * u
    bottom = corner(1, 0) * (1 - u) + corner(1, 1) * u
    return (np.sqrt(2.0) * (top * (1 - v) + bottom * v)).astype(np.float32)


def fractal(shape: tuple[int, int], periods: float, rng: np.random.Generator, octaves: int = 3) -> np.ndarray:
    """Sum of Perlin octaves (persistence 0.5), normalised to about [-1, 1]."""
    out = np.zeros(shape, np.float32)
    amp, total = 1.0, 0.0
    for k in range(octaves):
        p = periods * 2**k
        out += amp * perlin(shape, (p, p), rng)
        total += amp
        amp *= 0.5
    return out / total


@dataclass
class Frame:
    """Principal frame of a region: centre, unit major axis, semi-axes (ellipse of equal moments)."""

    cx: float
    cy: float
    ux: float
    uy: float
    a: float
    b: float

    @property
    def angle(self) -> float:
        return math.atan2(self.uy, self.ux)

    def to_local(self, xx: np.ndarray, yy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = xx - self.cx, yy - self.cy
        return dx * self.ux + dy * self.uy, -dx * self.uy + dy * self.ux

    def to_image(self, t: np.ndarray, s: np.ndarray) -> np.ndarray:
        return np.stack([self.cx + t * self.ux - s * self.uy, self.cy + t * self.uy + s * self.ux], axis=-1)


def region_frame(mask: np.ndarray) -> Frame:
    ys, xs = np.nonzero(mask)
    cx, cy = float(xs.mean()), float(ys.mean())
    if xs.size < 3:
        return Frame(cx, cy, 1.0, 0.0, 1.0, 1.0)
    cov = np.cov(np.stack([xs - cx, ys - cy]).astype(np.float64))
    vals, vecs = np.linalg.eigh(cov)
    ux, uy = float(vecs[0, 1]), float(vecs[1, 1])
    return Frame(cx, cy, ux, uy, max(2.0 * math.sqrt(max(vals[1], 0.0)), 1.0),
                 max(2.0 * math.sqrt(max(vals[0], 0.0)), 1.0))


def centreline(mask: np.ndarray, frame: Frame, step: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Points along the region's major axis, each at the middle of the region's cross-section there,
    and the local half-width; follows curved strokes, not only straight ones."""
    ys, xs = np.nonzero(mask)
    t, s = frame.to_local(xs.astype(np.float32), ys.astype(np.float32))
    lo, hi = float(t.min()), float(t.max())
    nbins = max(2, int((hi - lo) / step) + 1)
    idx = np.minimum(((t - lo) / max(hi - lo, 1e-6) * nbins).astype(np.int64), nbins - 1)
    count = np.bincount(idx, minlength=nbins)
    keep = count > 0
    mean_t = np.bincount(idx, t, nbins)[keep] / count[keep]
    mean_s = np.bincount(idx, s, nbins)[keep] / count[keep]
    var_s = np.bincount(idx, s * s, nbins)[keep] / count[keep] - mean_s**2
    half = np.sqrt(np.maximum(var_s, 0.0)) * math.sqrt(3.0) + 0.5
    if mean_s.size >= 5:  # smooth the centre line a little
        kernel = np.ones(3) / 3
        mean_s = np.concatenate([mean_s[:1], np.convolve(mean_s, kernel, "valid"), mean_s[-1:]])
    return frame.to_image(mean_t, mean_s), half


def resample(points: np.ndarray, n: int) -> np.ndarray:
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    if arc[-1] <= 0:
        return np.repeat(points[:1], n, axis=0)
    target = np.linspace(0.0, arc[-1], n)
    return np.stack([np.interp(target, arc, points[:, 0]), np.interp(target, arc, points[:, 1])], axis=1)


def draw_polyline(shape: tuple[int, int], points: np.ndarray, thickness: int) -> np.ndarray:
    """Anti-aliased polyline coverage in [0, 1] (float32), sub-pixel accurate."""
    canvas = np.zeros(shape, np.uint8)
    pts = np.rint(points * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [pts], False, 255, max(1, int(thickness)), cv2.LINE_AA, shift=4)
    return canvas.astype(np.float32) / 255.0


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return image
    k = 2 * int(math.ceil(3 * sigma)) + 1
    return cv2.GaussianBlur(image, (k, k), sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def erode(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return mask.astype(bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.erode(mask.astype(np.uint8), kernel).astype(bool)


def inside_distance(mask: np.ndarray) -> np.ndarray:
    """Distance (px) from each region pixel to the region's outside."""
    padded = np.pad(mask.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]


def luminance(image: np.ndarray) -> np.ndarray:
    return image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114


def surface_mean(crop: np.ndarray, region: np.ndarray) -> np.ndarray:
    return crop[region].mean(axis=0) if region.any() else crop.reshape(-1, 3).mean(axis=0)


def tint_away(colour: np.ndarray, surface: np.ndarray, minimum: float = 60.0) -> np.ndarray:
    """Push ``colour`` away from the surface colour until they differ visibly."""
    diff = colour - surface
    dist = float(np.abs(diff).mean())
    if dist >= minimum:
        return colour
    lum = float(luminance(surface[None, :])[0])
    direction = -1.0 if lum > 110 else 1.0
    return np.clip(colour + direction * (minimum - dist), 0, 255)


# --------------------------------------------------------------------------- generators


@dataclass
class Context:
    """What a generator gets: the crop (float32 0..255), its region (bool), a seeded rng, the prompt."""

    crop: np.ndarray
    region: np.ndarray
    rng: np.random.Generator
    prompt: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.region.shape

    def record(self, **values: Any) -> None:
        for key, value in values.items():
            if isinstance(value, (float, np.floating)):
                value = round(float(value), 4)
            elif isinstance(value, (np.integer,)):
                value = int(value)
            elif isinstance(value, np.ndarray):
                value = [round(float(v), 2) for v in value.ravel()]
            self.params[key] = value

    def along(self, frame: Frame) -> np.ndarray:
        """Normalised position along the major axis for every pixel (-1..1 over the region)."""
        yy, xx = np.mgrid[: self.shape[0], : self.shape[1]].astype(np.float32)
        t, _ = frame.to_local(xx, yy)
        return t / max(frame.a * 1.2, 1.0)


def _lines(ctx: Context, dark: bool, depth: float, coverage: np.ndarray) -> np.ndarray:
    coverage = np.clip(coverage, 0.0, 1.0)[..., None]
    crop = ctx.crop
    if dark:
        return crop * (1.0 - depth * coverage)
    return crop + (255.0 - crop) * depth * coverage


def scratch(ctx: Context) -> np.ndarray:
    """One to three thin, nearly straight strokes along the region, dark or specular, tapered."""
    rng, frame = ctx.rng, region_frame(ctx.region)
    points, half = centreline(ctx.region, frame)
    n = int(rng.choice([1, 1, 2, 3]))
    words = set(prompt_words(ctx.prompt))
    if words & {"dark", "black", "deep"}:
        dark = True
    elif words & {"bright", "white", "light", "shiny"}:
        dark = False
    else:
        dark = bool(rng.random() < 0.7)
    depth = float(rng.uniform(0.45, 0.7))
    coverage = np.zeros(ctx.shape, np.float32)
    normal = np.array([-frame.uy, frame.ux], np.float32)
    hw = float(np.median(half))
    along = ctx.along(frame)
    thicknesses = []
    for i in range(n):
        pts = resample(points, 32)
        u = np.linspace(-1.0, 1.0, len(pts))
        keep = float(rng.uniform(0.7, 1.0))
        start = float(rng.uniform(-1.0, 1.0 - 2.0 * keep)) if keep < 1.0 else -1.0
        sel = (u >= start) & (u <= start + 2.0 * keep)
        pts, u = pts[sel], u[sel]
        offset = rng.uniform(-0.5, 0.5) * hw if n > 1 else rng.uniform(-0.2, 0.2) * hw
        bow = rng.uniform(-0.25, 0.25) * min(hw, 6.0)
        wobble = perlin((1, len(pts)), (1, 2), rng)[0] * min(0.1 * hw, 1.0)
        pts = pts + normal[None, :] * (offset + bow * (1 - u**2) + wobble)[:, None]
        thickness = int(rng.choice([1, 1, 2])) if hw > 4 else 1
        thicknesses.append(thickness)
        line = draw_polyline(ctx.shape, pts, thickness)
        # taper: strongest in the middle of the stroke, fading at its ends
        mid = float(u.mean())
        taper = np.clip(1.0 - ((along - mid) / max(keep, 0.1)) ** 4, 0.2, 1.0)
        coverage = np.maximum(coverage, line * taper * rng.uniform(0.85, 1.0))
    coverage *= ctx.region
    out = _lines(ctx, dark, depth, coverage)
    # a faint highlight along one flank reads as a groove edge
    shifted = np.roll(coverage, shift=(int(round(normal[1])), int(round(normal[0]))), axis=(0, 1)) * ctx.region
    out = out + (255.0 - out) * 0.25 * np.clip(shifted - coverage, 0, 1)[..., None]
    ctx.record(strokes=n, dark=dark, depth=depth, thickness=thicknesses)
    return out


def _midpoint(points: np.ndarray, rng: np.random.Generator, rough: float, levels: int) -> np.ndarray:
    for _ in range(levels):
        a, b = points[:-1], points[1:]
        mid = (a + b) / 2
        seg = b - a
        length = np.linalg.norm(seg, axis=1, keepdims=True) + 1e-6
        normal = np.stack([-seg[:, 1], seg[:, 0]], axis=1) / length
        mid = mid + normal * rng.normal(0.0, rough, (len(mid), 1)) * length
        out = np.empty((len(points) + len(mid), 2), np.float64)
        out[0::2], out[1::2] = points, mid
        points = out
    return points


def crack(ctx: Context) -> np.ndarray:
    """A jagged dark fracture along the region with a few tapering branches."""
    rng, frame = ctx.rng, region_frame(ctx.region)
    points, half = centreline(ctx.region, frame)
    base = resample(points, 5)
    main = _midpoint(base, rng, float(rng.uniform(0.1, 0.18)), 5)
    hw = float(np.median(half))
    thickness = int(rng.choice([1, 2, 2])) if hw > 3 else 1
    # the opening narrows towards the crack's tips
    u = np.linspace(-1.0, 1.0, len(main))
    coverage = np.zeros(ctx.shape, np.float32)
    for width, level in ((thickness, 1.0), (thickness + 1, 0.35)):
        inner = np.abs(u) < (0.55 if width > thickness else 1.0)
        if inner.sum() >= 2:
            coverage = np.maximum(coverage, draw_polyline(ctx.shape, main[inner], width) * level)
    branches = int(rng.integers(1, 5))
    for _ in range(branches):
        i = int(rng.integers(len(main) // 5, max(len(main) * 4 // 5, len(main) // 5 + 1)))
        start = main[i]
        direction = main[min(i + 1, len(main) - 1)] - main[max(i - 1, 0)]
        ang = math.atan2(direction[1], direction[0]) + rng.choice([-1, 1]) * rng.uniform(0.35, 1.0)
        length = rng.uniform(0.3, 0.7) * frame.a
        end = start + length * np.array([math.cos(ang), math.sin(ang)])
        branch = _midpoint(np.stack([start, end]), rng, 0.15, 4)
        coverage = np.maximum(coverage, draw_polyline(ctx.shape, branch, 1) * 0.8)
    coverage *= ctx.region
    depth = float(rng.uniform(0.6, 0.85))
    out = _lines(ctx, True, depth, coverage)
    ctx.record(thickness=thickness, branches=branches, depth=depth)
    return out


def _jagged_blob(ctx: Context, scale: float, roughness: float, periods: float) -> np.ndarray:
    """A region-shaped blob, shrunk towards the region's middle, with a noisy edge."""
    depth = inside_distance(ctx.region)
    peak = float(depth.max()) or 1.0
    field_ = depth / peak + roughness * fractal(ctx.shape, periods, ctx.rng, 3)
    blob = (field_ > (1.0 - scale)) & ctx.region
    if blob.sum() < max(4, 0.05 * ctx.region.sum()):
        blob = depth >= min(peak, max(1.0, (1.0 - scale) * peak))
    return blob


def hole(ctx: Context) -> np.ndarray:
    """A dark hole: a lit inner wall on the side away from the light, a shadowed near wall,
    a thin bright lip where the rim faces the light."""
    rng, frame = ctx.rng, region_frame(ctx.region)
    yy, xx = np.mgrid[: ctx.shape[0], : ctx.shape[1]].astype(np.float32)
    t, s = frame.to_local(xx, yy)
    k = float(rng.uniform(0.5, 0.85))
    ct, cs = rng.uniform(-0.12, 0.12) * frame.a, rng.uniform(-0.12, 0.12) * frame.b
    a = max(frame.a * k, 1.5)
    b = max(min(frame.b * k * rng.uniform(0.85, 1.1), a), 1.5)
    theta = np.arctan2((s - cs) / b, (t - ct) / a)
    wobble = 1.0 + 0.1 * rng.uniform(0, 1) * np.sin(3 * theta + rng.uniform(0, 6.3))
    r = np.sqrt(((t - ct) / a) ** 2 + ((s - cs) / b) ** 2) / wobble
    inside = (r <= 1.0) & ctx.region
    if inside.sum() < 4:
        inside = erode(ctx.region, 1) if erode(ctx.region, 1).any() else ctx.region
        r = 1.0 - inside_distance(inside) / max(float(inside_distance(inside).max()), 1.0)
    light = float(rng.uniform(0, 2 * np.pi))
    # direction of each pixel from the hole's centre, in image coordinates
    phi = theta + frame.angle
    towards = np.cos(phi - light)  # +1 on the side of the hole nearer the light
    surface = surface_mean(ctx.crop, ctx.region)
    core = float(rng.uniform(6, 30))
    wall_width = float(rng.uniform(0.25, 0.45))
    wall = np.clip((r - (1.0 - wall_width)) / wall_width, 0.0, 1.0)  # 0 deep inside .. 1 at the rim
    lit = np.clip(-towards, 0.0, 1.0) ** 1.5  # far wall catches the light
    level = core + wall**1.5 * (0.15 + 0.6 * lit) * (float(luminance(surface[None, :])[0]) - core + 20.0)
    colour = level[..., None] * (0.5 * surface / max(float(surface.mean()), 1.0) + 0.5)
    alpha = (blur(inside.astype(np.float32), 0.7) * ctx.region)[..., None]
    out = ctx.crop * (1 - alpha) + colour * alpha
    rim = np.clip(blur(inside.astype(np.float32), 1.2) * 2.0 - 2.0 * inside, 0, 1) * ctx.region
    lip = np.clip(towards, 0, 1) * rim
    out = out + (255.0 - out) * 0.45 * lip[..., None] - out * 0.35 * (rim * np.clip(-towards, 0, 1))[..., None]
    ctx.record(size=k, light_angle=light, core=core, wall=wall_width)
    return out


def stain(ctx: Context) -> np.ndarray:
    """A translucent, mottled blob with a darker drying ring, tinted by a colour word if given."""
    rng = ctx.rng
    blob = _jagged_blob(ctx, float(rng.uniform(0.6, 0.95)), float(rng.uniform(0.2, 0.4)), float(rng.uniform(2, 4)))
    named = prompt_colour(ctx.prompt)
    if named is not None:
        colour_name, colour = named
    else:
        colour_name, colour = "default", DEFAULT_STAIN_COLOURS[int(rng.integers(len(DEFAULT_STAIN_COLOURS)))]
    surface = surface_mean(ctx.crop, ctx.region)
    colour_v = tint_away(np.array(colour, np.float32), surface)
    opacity = float(rng.uniform(0.55, 0.85))
    soft = blur(blob.astype(np.float32), 1.2)
    edge = np.clip(soft * (1.0 - blur(erode(blob, 2).astype(np.float32), 2.0)), 0, 1)
    mottle = 0.8 + 0.2 * fractal(ctx.shape, float(rng.uniform(3, 6)), rng, 2)
    alpha = np.clip(soft * opacity * mottle + 0.25 * edge, 0.0, 1.0) * ctx.region
    # half "multiply" (keeps the surface texture), half paint (the stain's own colour)
    multiplied = ctx.crop * (colour_v / 255.0)
    stained = 0.5 * multiplied + 0.5 * colour_v
    out = ctx.crop * (1 - alpha[..., None]) + stained * alpha[..., None]
    ctx.record(colour=colour_name, rgb=colour_v, opacity=opacity)
    return out


def dent(ctx: Context) -> np.ndarray:
    """A smooth depression: the texture is pulled along the slope, shaded by a raking light and
    darkened a little in its hollow."""
    rng = ctx.rng
    depth = inside_distance(ctx.region)
    peak = float(depth.max()) or 1.0
    reach = float(rng.uniform(0.5, 0.8)) * peak
    # 0 on the region's edge, rising smoothly to 1 on a plateau in the middle
    height = 0.5 - 0.5 * np.cos(np.pi * np.clip(depth / reach, 0.0, 1.0))
    height = blur(height.astype(np.float32), max(0.7, 0.08 * peak)) * ctx.region
    gy, gx = np.gradient(height)
    amount = float(rng.uniform(0.7, 1.0))
    light = float(rng.uniform(0, 2 * np.pi))
    lx, ly = math.cos(light), math.sin(light)
    shading = np.clip((gx * lx + gy * ly) * reach * amount * 0.25, -0.3, 0.3)
    yy, xx = np.mgrid[: ctx.shape[0], : ctx.shape[1]].astype(np.float32)
    push = amount * min(4.0, 0.3 * peak) * reach / 2.0  # texture displacement, px at the steepest slope
    map_x = (xx + gx * push).astype(np.float32)
    map_y = (yy + gy * push).astype(np.float32)
    warped = cv2.remap(ctx.crop, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    hollow = float(rng.uniform(0.08, 0.15))
    out = warped * (1.0 + shading - hollow * height)[..., None]
    out = out + (255.0 - out) * np.clip(shading - 0.15, 0, 1)[..., None] * 0.4  # glint on the lit slope
    ctx.record(amount=amount, light_angle=light, hollow=hollow, reach_px=reach)
    return out


def missing(ctx: Context) -> np.ndarray:
    """A broken-off piece: an angular void (dark) with a pale fracture edge and a drop shadow."""
    rng = ctx.rng
    blob = _jagged_blob(ctx, float(rng.uniform(0.6, 0.95)), float(rng.uniform(0.25, 0.45)), float(rng.uniform(1.5, 3)))
    contours, _ = cv2.findContours(blob.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    shard = np.zeros(ctx.shape, np.uint8)
    for contour in contours:
        eps = max(1.0, 0.04 * cv2.arcLength(contour, True)) * rng.uniform(0.5, 1.0)
        poly = cv2.approxPolyDP(contour, eps, True)
        cv2.fillPoly(shard, [poly], 1)
    shard = shard.astype(bool) & ctx.region
    if shard.sum() < 4:
        shard = blob if blob.any() else ctx.region
    void_level = float(rng.uniform(10, 40))
    yy = np.linspace(0.0, 1.0, ctx.shape[0], dtype=np.float32)[:, None]
    void = void_level + 15.0 * yy + 4.0 * fractal(ctx.shape, 4.0, rng, 2)
    edge = shard & ~erode(shard, int(rng.integers(1, 3)))
    surface = surface_mean(ctx.crop, ctx.region)
    pale = np.clip(surface * 0.6 + 110.0, 0, 255)
    out = ctx.crop.copy()
    out[shard] = void[shard][:, None] * np.array([1.0, 0.97, 0.93], np.float32)
    out[edge] = pale * rng.uniform(0.85, 1.0)
    shadow = (np.clip(blur(shard.astype(np.float32), 1.2) - shard, 0, 1) * ctx.region)[..., None]
    out = out * (1.0 - 0.45 * shadow)
    ctx.record(void=void_level, vertices=int(sum(len(c) for c in contours)))
    return out


def discoloration(ctx: Context) -> np.ndarray:
    """A soft-edged shift of colour and brightness (yellowing, bleaching, heat tint, darkening)."""
    rng = ctx.rng
    blob = _jagged_blob(ctx, float(rng.uniform(0.75, 1.0)), float(rng.uniform(0.15, 0.3)), float(rng.uniform(1.5, 3)))
    peak = float(inside_distance(ctx.region).max()) or 1.0
    weight = blur(blob.astype(np.float32), max(1.0, 0.2 * peak))
    weight = np.clip(weight * (0.75 + 0.25 * fractal(ctx.shape, 2.5, rng, 2)), 0, 1) * ctx.region
    named = prompt_colour(ctx.prompt)
    kinds = ("yellowing", "bleaching", "heat tint", "darkening")
    kind = kinds[int(rng.integers(len(kinds)))]
    if named is not None:
        kind = named[0]
        target = np.array(named[1], np.float32)
    elif kind == "yellowing":
        target = np.array([200, 165, 60], np.float32)
    elif kind == "bleaching":
        target = np.array([235, 232, 225], np.float32)
    elif kind == "heat tint":
        target = np.array([95, 70, 140], np.float32)
    else:
        target = np.array([45, 40, 35], np.float32)
    surface = surface_mean(ctx.crop, ctx.region)
    target = tint_away(target, surface, 55.0)
    strength = float(rng.uniform(0.55, 0.8))
    shifted = ctx.crop + (target - surface) * strength
    w = weight[..., None]
    out = ctx.crop * (1 - w) + shifted * w
    ctx.record(kind=kind, strength=strength, rgb=target)
    return out


def perlin_texture(ctx: Context) -> np.ndarray:
    """DRAEM-style anomaly: a thresholded Perlin mask filled with a foreign texture (augmented
    surface or coloured noise), blended with a random opacity."""
    rng = ctx.rng
    h, w = ctx.shape
    area = int(ctx.region.sum())
    scale = int(rng.integers(1, 4))
    periods = max(1.0, min(h, w) / max(8.0, 48.0 / scale))
    noise = fractal(ctx.shape, periods, rng, 2)
    angle = float(rng.uniform(-90, 90))
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    noise = cv2.warpAffine(noise, rot, (w, h), borderMode=cv2.BORDER_REFLECT)
    values = noise[ctx.region]
    threshold = 0.2
    if (values > threshold).sum() < 0.15 * area:  # keep the anomaly a visible part of the region
        threshold = float(np.quantile(values, 0.6))
    anomaly = (noise > threshold) & ctx.region
    choice = int(rng.integers(3))
    if choice == 0:  # the surface itself, flipped and colour-inverted/posterised
        src = ctx.crop[::-1, ::-1]
        src = 255.0 - src if rng.random() < 0.5 else np.floor(src / 64.0) * 64.0 + 32.0
        texture_kind = "augmented surface"
    else:  # a two-colour noise texture
        c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        t = (fractal(ctx.shape, float(rng.uniform(4, 16)), rng, 3)[..., None] + 1) / 2
        src = c1 * (1 - t) + c2 * t
        texture_kind = "noise texture"
    src = np.asarray(src, np.float32)
    surface = surface_mean(ctx.crop, ctx.region)
    if abs(float(src[anomaly].mean() - surface.mean())) < 40 if anomaly.any() else False:
        src = np.clip(src + (60.0 if surface.mean() < 128 else -60.0), 0, 255)
    opacity = float(rng.uniform(0.6, 1.0))
    alpha = blur(anomaly.astype(np.float32), 0.6) * opacity * ctx.region
    out = ctx.crop * (1 - alpha[..., None]) + src * alpha[..., None]
    ctx.record(threshold=threshold, rotation=angle, texture=texture_kind, opacity=opacity, scale=scale)
    return out


REGISTRY: dict[str, Callable[[Context], np.ndarray]] = {
    "scratch": scratch,
    "crack": crack,
    "hole": hole,
    "stain": stain,
    "dent": dent,
    "missing": missing,
    "discoloration": discoloration,
    "perlin": perlin_texture,
}
