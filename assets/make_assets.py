"""Render the shipped sample assets: normal product images, sample defect regions, and
reference anomalies with their masks and texts. Deterministic: the same files every run.

    .venv/bin/python assets/make_assets.py          # rewrites assets/normal, masks, references, manifest.json
    .venv/bin/python assets/make_assets.py --photos DIR/skimage/data   # also re-imports the photographs

The rendered assets are drawn procedurally with numpy and OpenCV and dedicated to the public domain
(CC0-1.0); the photographs (brick, grass, gravel) are CC0 photos shipped in scikit-image's data
folder, committed here downscaled (no download at build time); see assets/LICENSES.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from studio.engines.classic.noise import fractal  # noqa: E402  (Perlin noise, seeded)

SIZE = 512
REF_SIZE = 256


def rng(name: str) -> np.random.Generator:
    """A generator seeded by the asset's name, so assets do not depend on rendering order."""
    return np.random.default_rng(int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "little"))


def grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:n, :n].astype(np.float32)
    return yy, xx


def finish(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def camera_noise(image: np.ndarray, r: np.random.Generator, sigma: float = 2.0) -> np.ndarray:
    return image + r.normal(0.0, sigma, image.shape).astype(np.float32)


def directional_noise(shape: tuple[int, int], r: np.random.Generator, length: int, angle_deg: float) -> np.ndarray:
    """White noise smeared along one direction: brushing marks, wood fibres."""
    noise = r.normal(0.0, 1.0, shape).astype(np.float32)
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle_deg, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    kernel /= max(float(kernel.sum()), 1e-6)
    out = cv2.filter2D(noise, -1, kernel, borderType=cv2.BORDER_REFLECT)
    return out / (float(out.std()) or 1.0)


# --------------------------------------------------------------------------- normal images


def metal_disc() -> np.ndarray:
    r = rng("metal_disc")
    yy, xx = grid(SIZE)
    c = SIZE / 2 - 0.5
    dist = np.hypot(xx - c, yy - c)
    theta = np.arctan2(yy - c, xx - c)
    background = 38 + 6 * fractal((SIZE, SIZE), 3, r, 3)
    shadow = np.clip((dist - 205) / 30, 0, 1) * 0.6 + 0.4
    image = np.repeat((background * shadow)[..., None], 3, axis=2)
    # turning marks: a 1-D noise profile indexed by radius; a bow-tie highlight
    profile = np.cumsum(r.normal(0, 1, 4 * SIZE)).astype(np.float32)
    profile = (profile - np.convolve(profile, np.ones(25) / 25, "same")) * 2.2
    rings = profile[np.clip((dist * 4).astype(int), 0, 4 * SIZE - 1)]
    highlight = 38 * np.abs(np.cos(theta - 0.6)) ** 6
    metal = 150 + rings + highlight - 0.05 * dist + 3 * fractal((SIZE, SIZE), 6, r, 2)
    chamfer = (dist > 208) & (dist <= 220)
    metal = np.where(chamfer, 120 + 60 * np.cos(theta + 2.2) * 0.5 + rings * 0.5, metal)
    bore = dist <= 42
    inner = (dist > 42) & (dist <= 50)
    metal = np.where(inner, 115 + 40 * np.cos(theta - 2.4), metal)
    metal = np.where(bore, 22 + 8 * (dist / 42), metal)
    disc = (dist <= 220)[..., None]
    tint = np.array([1.0, 1.01, 1.04], np.float32)
    image = np.where(disc, metal[..., None] * tint, image)
    soft = cv2.GaussianBlur(disc.astype(np.float32)[..., 0], (3, 3), 0.7)[..., None]
    image = image * soft + np.repeat((background * shadow)[..., None], 3, axis=2) * (1 - soft)
    return finish(camera_noise(image, r, 1.5))


def fabric_weave() -> np.ndarray:
    r = rng("fabric_weave")
    yy, xx = grid(SIZE)
    period = 8.0
    warp_col, weft_col = np.array([52, 74, 120], np.float32), np.array([72, 92, 138], np.float32)
    ix, iy = (xx // period).astype(int), (yy // period).astype(int)
    fx, fy = (xx % period) / period, (yy % period) / period
    warp_on_top = (ix + iy) % 2 == 0
    warp_shade = np.sin(np.pi * fx) ** 0.6
    weft_shade = np.sin(np.pi * fy) ** 0.6
    jitter_x = r.normal(1.0, 0.06, SIZE // 8 + 1).astype(np.float32)[ix]
    jitter_y = r.normal(1.0, 0.06, SIZE // 8 + 1).astype(np.float32)[iy]
    # the thread on top is lit across its width; the one below shows at its ends only
    along_warp = 0.75 + 0.25 * np.sin(np.pi * fy)
    along_weft = 0.75 + 0.25 * np.sin(np.pi * fx)
    top = np.where(warp_on_top[..., None],
                   (warp_col * jitter_x[..., None]) * (0.55 + 0.45 * warp_shade * along_warp)[..., None],
                   (weft_col * jitter_y[..., None]) * (0.55 + 0.45 * weft_shade * along_weft)[..., None])
    fibres = 7 * directional_noise((SIZE, SIZE), r, 7, 0) * (~warp_on_top) + 7 * directional_noise((SIZE, SIZE), r, 7, 90) * warp_on_top
    image = top * (1 + 0.05 * fractal((SIZE, SIZE), 3, r, 2))[..., None] + fibres[..., None]
    return finish(camera_noise(image, r, 1.5))


def pcb_board() -> np.ndarray:
    r = rng("pcb_board")
    mask_col = np.array([30, 105, 62], np.float32)
    image = np.ones((SIZE, SIZE, 3), np.float32) * mask_col
    image *= (1 + 0.06 * fractal((SIZE, SIZE), 2, r, 3))[..., None]
    copper = np.zeros((SIZE, SIZE), np.uint8)
    for _ in range(26):  # traces: horizontal/vertical runs joined by 45-degree corners
        x, y = int(r.integers(20, SIZE - 20)), int(r.integers(20, SIZE - 20))
        pts = [(x, y)]
        for _ in range(int(r.integers(2, 5))):
            d = int(r.integers(20, 120))
            if r.random() < 0.5:
                x = int(np.clip(x + r.choice([-1, 1]) * d, 10, SIZE - 10))
            else:
                y = int(np.clip(y + r.choice([-1, 1]) * d, 10, SIZE - 10))
            diag = int(r.integers(5, 15))
            pts.append((x, y))
            x, y = int(np.clip(x + diag, 10, SIZE - 10)), int(np.clip(y + diag, 10, SIZE - 10))
            pts.append((x, y))
        cv2.polylines(copper, [np.array(pts, np.int32)], False, 255, int(r.choice([3, 4, 6])), cv2.LINE_AA)
    trace = cv2.GaussianBlur(copper.astype(np.float32) / 255, (3, 3), 0.8)[..., None]
    image = image * (1 - trace) + np.array([70, 160, 85], np.float32) * trace
    pads = np.zeros((SIZE, SIZE), np.uint8)
    for _ in range(7):  # chip footprints: rows of rectangular pads
        x0, y0 = int(r.integers(30, SIZE - 150)), int(r.integers(30, SIZE - 80))
        n, vertical = int(r.integers(4, 9)), bool(r.random() < 0.5)
        for k in range(n):
            px, py = (x0, y0 + 14 * k) if vertical else (x0 + 14 * k, y0)
            cv2.rectangle(pads, (px, py), (px + 8, py + 18) if not vertical else (px + 18, py + 8), 255, -1)
    vias = np.zeros((SIZE, SIZE), np.uint8)
    holes = np.zeros((SIZE, SIZE), np.uint8)
    for _ in range(30):
        x, y = int(r.integers(10, SIZE - 10)), int(r.integers(10, SIZE - 10))
        cv2.circle(vias, (x, y), 6, 255, -1, cv2.LINE_AA)
        cv2.circle(holes, (x, y), 3, 255, -1, cv2.LINE_AA)
    metal = np.maximum(pads, vias).astype(np.float32)[..., None] / 255
    tin = np.array([205, 185, 120], np.float32) * (1 + 0.05 * fractal((SIZE, SIZE), 8, r, 2))[..., None]
    image = image * (1 - metal) + tin * metal
    hole = holes.astype(np.float32)[..., None] / 255
    image = image * (1 - hole) + np.array([25, 25, 22], np.float32) * hole
    silk = np.zeros((SIZE, SIZE), np.uint8)
    for i in range(6):
        x, y = int(r.integers(20, SIZE - 120)), int(r.integers(30, SIZE - 20))
        cv2.putText(silk, f"{'RCUDQ'[i % 5]}{int(r.integers(1, 99))}", (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 255, 1, cv2.LINE_AA)
        cv2.rectangle(silk, (x - 4, y + 6), (x + int(r.integers(40, 90)), y + int(r.integers(20, 50))), 255, 1)
    s = silk.astype(np.float32)[..., None] / 255 * 0.85
    image = image * (1 - s) + np.array([232, 232, 222], np.float32) * s
    return finish(camera_noise(image, r, 1.8))


def wood_plank() -> np.ndarray:
    r = rng("wood_plank")
    yy, xx = grid(SIZE)
    # growth rings cut lengthwise: distance to a pith far below the plank, gently warped
    warp = 16 * fractal((SIZE, SIZE), 1.5, r, 3) + 2 * fractal((SIZE, SIZE), 6, r, 2)
    distance = np.hypot((yy - 760) * 1.0, (xx - 300) * 0.55) + warp
    phase = (distance / 17.0) % 1.0
    late = np.clip((phase - 0.62) / 0.3, 0, 1) ** 0.7 * np.clip((1.0 - phase) / 0.08, 0, 1)  # latewood bands
    light, dark = np.array([214, 172, 122], np.float32), np.array([150, 98, 58], np.float32)
    image = light * (1 - late[..., None]) + dark * late[..., None]
    fibres = directional_noise((SIZE, SIZE), r, 41, 0)
    pores = directional_noise((SIZE, SIZE), r, 15, 0)
    image = image * (1 + 0.035 * fibres + 0.03 * fractal((SIZE, SIZE), 3, r, 2) - 0.04 * np.clip(pores - 1.5, 0, None))[..., None]
    return finish(camera_noise(image, r, 1.5))


def ceramic_tile() -> np.ndarray:
    r = rng("ceramic_tile")
    yy, xx = grid(SIZE)
    tile = 252
    gx, gy = xx % tile, yy % tile
    edge = np.minimum(np.minimum(gx, tile - 1 - gx), np.minimum(gy, tile - 1 - gy))
    grout = edge < 4
    base = np.array([224, 220, 210], np.float32)
    speck = (r.random((SIZE, SIZE)) < 0.004).astype(np.float32)
    speck = cv2.GaussianBlur(speck, (3, 3), 0.8) * 90
    gloss = 18 * np.exp(-(((xx - 170) / 120) ** 2 + ((yy - 150) / 90) ** 2))
    bevel = np.clip(1 - (edge - 4) / 6, 0, 1) * 25
    surface = base * (1 + 0.015 * fractal((SIZE, SIZE), 5, r, 3))[..., None] + gloss[..., None] - speck[..., None] - bevel[..., None]
    grout_col = np.array([150, 146, 140], np.float32) * (1 + 0.08 * fractal((SIZE, SIZE), 20, r, 2))[..., None]
    image = np.where(grout[..., None], grout_col, surface)
    return finish(camera_noise(image, r, 1.5))


NORMALS = {
    "metal_disc": (metal_disc, "a machined aluminium disc (turned surface, central bore)", "a dark scratch"),
    "fabric_weave": (fabric_weave, "a plain-woven blue fabric", "a hole in the fabric"),
    "pcb_board": (pcb_board, "a printed circuit board (solder mask, traces, pads, vias)", "a brown contamination stain"),
    "wood_plank": (wood_plank, "a planed wooden plank", "a crack"),
    "ceramic_tile": (ceramic_tile, "glazed ceramic floor tiles with grout", "a broken corner piece missing"),
}


def ellipse_mask(centre: tuple[int, int], axes: tuple[int, int], angle: float, size: int = SIZE) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cv2.ellipse(mask, centre, axes, angle, 0, 360, 255, -1)
    return mask


#: A sample sketched defect region for each normal image.
SAMPLE_MASKS = {
    "metal_disc": ellipse_mask((330, 250), (70, 14), -60),
    "fabric_weave": ellipse_mask((250, 270), (40, 32), 20),
    "pcb_board": ellipse_mask((300, 200), (48, 34), 0),
    "wood_plank": ellipse_mask((256, 300), (110, 12), 0),
    "ceramic_tile": ellipse_mask((200, 330), (50, 38), 30),
    "brick_wall": ellipse_mask((250, 260), (85, 20), -75),
    "grass_lawn": ellipse_mask((256, 256), (62, 48), 10),
    "gravel_bed": ellipse_mask((260, 250), (64, 44), -20),
}

#: Category of every normal image (the dataset category an export files it under).
CATEGORIES = {"metal_disc": "metal", "fabric_weave": "textile", "pcb_board": "electronics", "wood_plank": "wood",
              "ceramic_tile": "ceramic", "brick_wall": "masonry", "grass_lawn": "vegetation", "gravel_bed": "aggregate"}

#: Real photographs shipped as normal images: name -> (file in scikit-image's ``skimage/data``, title,
#: suggested prompt, licence, source). They are committed; ``--photos DIR`` re-imports them.
PHOTOS = {
    "brick_wall": ("brick.png", "a brick wall (real photograph, greyscale)", "a crack", "CC0-1.0",
                   "scikit-image `skimage/data/brick.png`, from CC0Textures Bricks25"),
    "grass_lawn": ("grass.png", "grass (real photograph, greyscale)", "discoloration", "CC0-1.0",
                   "scikit-image `skimage/data/grass.png`, from DeviantArt linolafett Grass-01"),
    "gravel_bed": ("gravel.png", "gravel (real photograph, greyscale)", "an oil stain", "CC0-1.0",
                   "scikit-image `skimage/data/gravel.png`, from CC0Textures Gravel04"),
}


# --------------------------------------------------------------------------- reference anomalies


def blob(r: np.random.Generator, centre: tuple[float, float], radius: float, rough: float, size: int = REF_SIZE) -> np.ndarray:
    """An organic blob: a disc whose boundary is displaced by fractal noise at two scales (domain-warped)."""
    yy, xx = grid(size)
    wx, wy = fractal((size, size), 3, r, 2), fractal((size, size), 3, r, 2)
    dist = np.hypot(xx - centre[0] + rough * radius * wx, yy - centre[1] + rough * radius * wy) / radius
    return dist + 0.6 * rough * fractal((size, size), 8, r, 3) < 1.0


def lit(height: np.ndarray, light: tuple[float, float] = (-0.6, -0.6), gain: float = 1.0) -> np.ndarray:
    """Lambert shading of a height field (px) lit from ``light`` (image-plane direction towards it), relative
    to the flat surface (1 where flat)."""
    gy, gx = np.gradient(height.astype(np.float32) * gain)
    lz = 0.7
    dot = (-gx * light[0] - gy * light[1] + lz) / np.sqrt(gx * gx + gy * gy + 1.0)
    return np.clip(dot / lz, 0.0, 2.0)[..., None]


def inside(mask: np.ndarray) -> np.ndarray:
    return cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1]


def distance_to(canvas: np.ndarray) -> np.ndarray:
    """Distance (px) of every pixel from the drawn (non-zero) pixels of ``canvas``."""
    return cv2.distanceTransform((canvas == 0).astype(np.uint8), cv2.DIST_L2, 3)


def fractal_path(r: np.random.Generator, p0: np.ndarray, p1: np.ndarray, levels: int, rough: float = 0.15) -> np.ndarray:
    pts = np.stack([p0, p1]).astype(np.float64)
    for _ in range(levels):
        mid = (pts[:-1] + pts[1:]) / 2
        seg = pts[1:] - pts[:-1]
        mid += np.stack([-seg[:, 1], seg[:, 0]], axis=1) * r.normal(0, rough, (len(mid), 1))
        out = np.empty((len(pts) + len(mid), 2))
        out[0::2], out[1::2] = pts, mid
        pts = out
    return pts


def red_stain() -> tuple[np.ndarray, np.ndarray]:
    """A dried red liquid stain on a light painted panel: uneven density, a darker drying ring, a tide
    line inside, satellite droplets; absorbed colour, so the panel's texture shows through."""
    r = rng("red_stain")
    n = (REF_SIZE, REF_SIZE)
    surface = np.array([196, 198, 202], np.float32) * (1 + 0.03 * fractal(n, 6, r, 3) + 0.02 * fractal(n, 40, r, 2))[..., None]
    stain = blob(r, (128, 124), 56, 0.35)
    yy, xx = grid(REF_SIZE)
    for _ in range(7):  # satellite droplets
        angle, reach = r.uniform(0, 2 * np.pi), r.uniform(64, 92)
        cx, cy = 128 + reach * np.cos(angle), 124 + reach * np.sin(angle)
        stain |= np.hypot(xx - cx, yy - cy) < r.uniform(2.0, 6.0)
    edge = inside(stain)
    density = np.clip(0.55 + 0.5 * fractal(n, 10, r, 3), 0.15, 1.0)
    ring = np.exp(-edge / 2.2)
    tide = np.exp(-np.abs(edge - 14.0) / 1.5) * 0.35
    alpha = np.clip(0.45 * density + 0.5 * ring + tide, 0, 1) * stain
    alpha = cv2.GaussianBlur(alpha.astype(np.float32), (0, 0), 0.8)[..., None]
    transmit = np.array([0.74, 0.16, 0.18], np.float32)
    image = surface * (1 - alpha * (1 - transmit))
    return finish(camera_noise(image, r, 1.5)), alpha[..., 0] > 0.08


def dark_scratch() -> tuple[np.ndarray, np.ndarray]:
    """A scratch across brushed steel: a groove of varying width and depth with a thin highlight on
    its lit lip, interrupted where the tool skipped, and a fainter companion scratch."""
    r = rng("dark_scratch")
    n = (REF_SIZE, REF_SIZE)
    brushing = directional_noise(n, r, 41, 0)
    surface = (158 + 7 * brushing + 4 * fractal(n, 3, r, 2))[..., None] * np.array([1.0, 1.01, 1.04], np.float32)
    height = np.zeros(n, np.float32)
    marks = np.zeros(n, bool)
    for offset, strength in ((0.0, 1.0), (9.0, 0.45)):
        t = np.linspace(0, 1, 200)
        pts = np.stack([40 + 180 * t, 190 - 130 * t + 14 * np.sin(np.pi * t) + offset], axis=1)
        keep = (np.sin(t * 23.0 + r.uniform(0, 6)) > -0.85) & (t > (0.25 if offset else 0.0))  # skips
        canvas = np.zeros(n, np.uint8)
        for a, b, k in zip(pts[:-1], pts[1:], keep[:-1]):
            if k:
                cv2.line(canvas, tuple(np.rint(a).astype(int)), tuple(np.rint(b).astype(int)), 255, 1)
        dist = distance_to(canvas)
        width = (0.6 + 1.6 * np.sin(np.pi * np.clip((grid(REF_SIZE)[1] - 40) / 180, 0, 1))) * strength
        height -= strength * 2.5 * np.exp(-(dist / np.maximum(width, 0.4)) ** 2)
        marks |= dist < width + 2
    image = surface * lit(height, gain=0.6) * (1 - 0.3 * np.clip(-height / 2.5, 0, 1))[..., None]
    return finish(camera_noise(image, r, 1.5)), marks


def crack_concrete() -> tuple[np.ndarray, np.ndarray]:
    """A crack in concrete: a jagged fracture tapering to its tips with thinner branches, a dark
    interior deepening towards its middle, lips lit on one side and shadowed on the other, small
    spalls along the edge; the concrete has pores and aggregate."""
    r = rng("crack_concrete")
    n = (REF_SIZE, REF_SIZE)
    surface = 140 + 14 * fractal(n, 12, r, 3) + 8 * fractal(n, 3, r, 2)
    pores = (fractal(n, 60, r, 1) > 0.55).astype(np.float32)
    surface = (surface * (1 - 0.35 * cv2.GaussianBlur(pores, (0, 0), 0.7)))[..., None] * np.array([1.0, 0.98, 0.94], np.float32)
    main = fractal_path(r, np.array([30.0, 70.0]), np.array([226.0, 180.0]), 7)
    paths = [(main, 3.2)] + [(fractal_path(r, main[i], main[i] + np.array([r.uniform(-40, 40), r.uniform(25, 55)]), 5), 1.4)
                             for i in (40, 70, 95)]
    depth = np.zeros(n, np.float32)
    marks = np.zeros(n, bool)
    for pts, w0 in paths:
        canvas = np.zeros(n, np.uint8)
        for k, (a, b) in enumerate(zip(pts[:-1], pts[1:])):
            u = k / (len(pts) - 1)
            taper = np.sin(np.pi * u) if w0 > 2 else 1 - u
            cv2.line(canvas, tuple(np.rint(a).astype(int)), tuple(np.rint(b).astype(int)), int(1 + 200 * taper), 1)
        dist, labels = cv2.distanceTransformWithLabels((canvas == 0).astype(np.uint8), cv2.DIST_L2, 3,
                                                       labelType=cv2.DIST_LABEL_PIXEL)
        ys, xs = np.nonzero(canvas)
        taper = np.zeros(len(ys) + 1, np.float32)
        taper[1:] = canvas[ys, xs] / 200.0
        width = np.maximum(w0 * taper[labels], 0.4)
        depth = np.maximum(depth, np.clip(1.3 - dist / width, 0, 1))
        marks |= dist < width + 2.5
    spalls = (fractal(n, 30, r, 2) > 0.35) & (cv2.GaussianBlur(depth, (0, 0), 2.0) > 0.12) & (depth < 0.2)
    height = -cv2.GaussianBlur(depth * 4.0 + spalls * 1.2, (0, 0), 0.8)
    interior = 1 - 0.82 * depth[..., None]
    image = surface * lit(height, gain=1.2) * interior * (1 - 0.15 * spalls[..., None])
    return finish(camera_noise(image, r, 2.0)), marks | spalls


def rust_spot() -> tuple[np.ndarray, np.ndarray]:
    """Corrosion through blue-grey paint: a granular crust (orange to dark brown palette) with pits,
    blistered paint around it, an orange bloom and a short run-off streak below."""
    r = rng("rust_spot")
    n = (REF_SIZE, REF_SIZE)
    paint = np.array([92, 112, 135], np.float32) * (1 + 0.03 * fractal(n, 4, r, 3))[..., None]
    spot = blob(r, (120, 120), 44, 0.35)
    grain = np.clip(0.5 + 0.8 * (0.6 * fractal(n, 24, r, 3) + 0.4 * fractal(n, 64, r, 1)), 0, 1)[..., None]
    palette = np.array([200, 108, 44], np.float32) * (1 - grain) + np.array([70, 36, 18], np.float32) * grain
    edge = inside(spot)
    pits = (fractal(n, 40, r, 1) > 0.5) & (edge > 4)
    blister = np.exp(-distance_to(spot.astype(np.uint8)) / 3.0) * (~spot) * (fractal(n, 16, r, 2) > -0.1)
    height = -cv2.GaussianBlur(pits.astype(np.float32), (0, 0), 0.9) * 2.0 + 1.5 * cv2.GaussianBlur(
        blister.astype(np.float32), (0, 0), 1.2) + 0.8 * fractal(n, 48, r, 1) * spot
    alpha = cv2.GaussianBlur(spot.astype(np.float32), (0, 0), 1.0)[..., None]
    yy, xx = grid(REF_SIZE)
    run = np.exp(-((xx - 122 - 6 * fractal(n, 3, r, 1)) / 7.0) ** 2) * np.clip((yy - 130) / 40.0, 0, 1) * np.clip((210 - yy) / 50.0, 0, 1)
    halo = np.clip(cv2.GaussianBlur(spot.astype(np.float32), (0, 0), 6.0)[..., None] - alpha + 0.6 * run[..., None], 0, 1) * 0.55
    bloom = paint * (1 - halo) + paint * np.array([1.35, 0.85, 0.5], np.float32) * halo
    image = (bloom * (1 - alpha) + palette * alpha) * lit(height)
    return finish(camera_noise(image, r, 1.5)), (alpha[..., 0] > 0.3) | (halo[..., 0] > 0.2) | (blister > 0.3)


def fabric_hole() -> tuple[np.ndarray, np.ndarray]:
    """A hole torn in a plain weave: an irregular opening showing a dark surface beneath, broken
    threads of both directions reaching into it, a frayed, slightly raised edge."""
    r = rng("fabric_hole")
    yy, xx = grid(REF_SIZE)
    n = (REF_SIZE, REF_SIZE)
    period = 6.0
    ix, iy = (xx // period).astype(int), (yy // period).astype(int)
    fx, fy = (xx % period) / period, (yy % period) / period
    over = (ix + iy) % 2 == 0
    shade = np.where(over, np.sin(np.pi * fx), np.sin(np.pi * fy)) ** 0.6
    colour = np.array([196, 178, 146], np.float32)
    cloth = colour * (0.6 + 0.4 * shade)[..., None] * (1 + 0.04 * fractal(n, 8, r, 2))[..., None]
    hole_mask = blob(r, (130, 122), 30, 0.3)
    beneath = np.array([52, 40, 34], np.float32) * (1 + 0.25 * fractal(n, 10, r, 2))[..., None]
    edge = distance_to(hole_mask.astype(np.uint8))
    image = cloth * (1 - 0.25 * np.exp(-edge / 3.0) * (~hole_mask))[..., None]  # the torn edge is dirtier
    shadow = cv2.GaussianBlur(hole_mask.astype(np.float32), (0, 0), 3.0)
    image = np.where(hole_mask[..., None], beneath * (0.6 + 0.4 * shadow[..., None]), image)
    threads = np.zeros(n, np.uint8)
    ys, xs = np.nonzero(hole_mask & (inside(hole_mask) <= 1))
    for i in r.choice(len(ys), 26, replace=False):
        y, x = ys[i], xs[i]
        inward = np.array([130.0 - x, 122.0 - y])
        horizontal = abs(inward[0]) > abs(inward[1]) if r.random() < 0.8 else abs(inward[0]) <= abs(inward[1])
        step = np.array([np.sign(inward[0]), 0.0]) if horizontal else np.array([0.0, np.sign(inward[1])])
        length = r.uniform(5, 18)
        bend = r.normal(0, 0.15) * length
        end = np.array([x, y]) + step * length + step[::-1] * bend
        mid = (np.array([x, y]) + end) / 2 + r.normal(0, 1.0, 2)
        pts = np.rint(np.stack([[x, y], mid, end])).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(threads, [pts], False, 1, 1, cv2.LINE_8)
    strand = threads.astype(bool)
    image[strand] = colour * r.uniform(0.75, 1.05, (int(strand.sum()), 1))
    return finish(camera_noise(image, r, 1.5)), hole_mask | strand | (edge < 3) & ~hole_mask


REFERENCES = {
    "red_stain": (red_stain, "a red contamination stain", "stain"),
    "dark_scratch": (dark_scratch, "a dark scratch", "scratch"),
    "crack": (crack_concrete, "a crack", "crack"),
    "rust_spot": (rust_spot, "a rust spot", "stain"),
    "fabric_hole": (fabric_hole, "a hole in the fabric", "hole"),
}


def save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG", optimize=True)


def import_photo(source: Path, target: Path) -> None:
    """Copy a photograph as an 8-bit PNG of at most SIZE px on its longer side (area-downscaled)."""
    image = Image.open(source)
    image = image.convert("L" if image.mode in ("L", "I;16", "I") else "RGB")
    scale = SIZE / max(image.size)
    if scale < 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BOX)
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, format="PNG", optimize=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Render the sample assets (and import the photographs).")
    parser.add_argument("--photos", type=Path, default=None,
                        help="scikit-image's skimage/data folder to (re)import the photographs from")
    args = parser.parse_args(argv)
    manifest: dict = {"licence": "CC0-1.0", "generator": "assets/make_assets.py", "normal": [], "references": []}
    for name, (render, title, prompt) in NORMALS.items():
        save_png(ROOT / "normal" / f"{name}.png", render())
        save_png(ROOT / "masks" / f"{name}_mask.png", SAMPLE_MASKS[name])
        manifest["normal"].append({"name": name, "image": f"normal/{name}.png", "mask": f"masks/{name}_mask.png",
                                   "title": title, "prompt": prompt, "category": CATEGORIES[name],
                                   "kind": "rendered", "licence": "CC0-1.0"})
    for name, (filename, title, prompt, licence, source) in PHOTOS.items():
        target = ROOT / "normal" / f"{name}.png"
        if args.photos is not None:
            import_photo(args.photos / filename, target)
        if not target.is_file():
            print(f"skipping {name}: {target} is missing (pass --photos DIR to import it)", file=sys.stderr)
            continue
        save_png(ROOT / "masks" / f"{name}_mask.png", SAMPLE_MASKS[name])
        manifest["normal"].append({"name": name, "image": f"normal/{name}.png", "mask": f"masks/{name}_mask.png",
                                   "title": title, "prompt": prompt, "category": CATEGORIES[name],
                                   "kind": "photograph", "licence": licence, "source": source})
    for name, (render, text, defect) in REFERENCES.items():
        image, mask = render()
        save_png(ROOT / "references" / f"{name}.png", image)
        save_png(ROOT / "references" / f"{name}_mask.png", mask.astype(np.uint8) * 255)
        manifest["references"].append({"name": name, "image": f"references/{name}.png",
                                       "mask": f"references/{name}_mask.png", "text": text,
                                       "defect": defect, "licence": "CC0-1.0"})
    (ROOT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
