"""Surface (albedo) defects: rust, contamination and discoloration; the texture always shows through."""
from __future__ import annotations

import cv2
import numpy as np

from studio.engines.classic.defects.base import Context, organic_patch, wide_blur
from studio.engines.classic.keywords import prompt_colour
from studio.engines.classic.photometry import luminance
from studio.engines.classic.shading import Maps
from studio.imaging import blur

#: Rust palette from fresh orange to dark brown (RGB).
RUST_LIGHT = np.array([196, 104, 44], np.float32)
RUST_DARK = np.array([82, 42, 22], np.float32)
#: Discoloration kinds -> albedo factor (RGB multipliers; > 1 brightens).
TINTS = {
    "yellowing": (1.02, 0.9, 0.55), "bleaching": (1.18, 1.18, 1.15), "heat tint": (0.78, 0.62, 0.95),
    "darkening": (0.62, 0.6, 0.58), "browning": (0.8, 0.62, 0.42),
}


def rust(ctx: Context) -> Maps:
    """Corrosion: a granular crust (orange to dark brown) with pitting, fading into an orange bloom;
    the crust is opaque-ish rust coloured by the palette and carries the surface's own relief."""
    rng = ctx.rng
    size = float(np.sqrt(ctx.region.sum()))
    blob, lift = organic_patch(ctx, (0.3, 0.7), float(rng.uniform(0.35, 0.55)))
    nuclei = int(rng.integers(0, 3))
    for _ in range(nuclei):  # satellite corrosion spots
        more, more_lift = organic_patch(ctx, (0.1, 0.3), float(rng.uniform(0.35, 0.55)))
        blob, lift = blob | more, np.maximum(lift, more_lift)
    grain = np.clip(0.5 + 0.5 * (0.5 * ctx.noise(max(4.0, size / 8)) + 0.2 * ctx.noise(3.0) + 0.3 * ctx.noise(1.5)) * 1.6, 0.0, 1.0)
    crust = blur(np.clip(lift * 2.5, 0.0, 1.0), 1.2)
    bloom = np.clip(wide_blur(blob.astype(np.float32), max(1.5, 0.05 * size)) - crust, 0.0, 1.0) * ctx.region
    strength = float(rng.uniform(0.5, 0.72))
    cover = np.clip(strength * crust + 0.3 * bloom, 0.0, 1.0)
    tint = 1.0 - (0.35 * crust + 0.25 * bloom)[..., None] * (1.0 - RUST_LIGHT / 255.0)
    pits = (ctx.noise(3.0) > float(rng.uniform(0.5, 0.65))) & blob & (lift > 0.3)
    pitted = blur(pits.astype(np.float32), 1.0)
    shade = 1.0 - 0.4 * pitted  # pits are dark, corroded deeper
    palette = RUST_LIGHT * shade[..., None] + (RUST_DARK - RUST_LIGHT) * (grain * shade)[..., None]
    height = -pitted * float(rng.uniform(0.6, 1.2))
    ctx.record(strength=strength, pits=int(pits.sum()), nuclei=1 + nuclei)
    return Maps(albedo=tint, height=height, cover=cover, paint=palette, carry_detail=True)


def contamination(ctx: Context) -> Maps:
    """Dirt: a faint grimy film with clustered specks of foreign particles of varied size and tone."""
    rng = ctx.rng
    size = float(np.sqrt(ctx.region.sum()))
    blob, lift = organic_patch(ctx, (0.3, 0.75), float(rng.uniform(0.3, 0.5)))
    film = blur(blob.astype(np.float32), 1.0) * (0.6 + 0.4 * np.sqrt(lift))
    score = ctx.noise(float(rng.uniform(1.2, 2.2))) + 0.8 * ctx.noise(max(3.0, size / 6))
    values = score[blob]
    share = float(rng.uniform(0.05, 0.14))
    specks = (score > float(np.quantile(values, 1.0 - share))) & blob if values.size else blob
    count, labels = cv2.connectedComponents(specks.astype(np.uint8), connectivity=8)
    shades = rng.uniform(0.2, 0.6, count).astype(np.float32)
    shades[0] = 1.0
    speck_albedo = blur(shades[labels], 0.5)
    haze = float(rng.uniform(0.06, 0.16))
    tone = np.array([0.95, 0.9, 0.82], np.float32)
    albedo = (1.0 - film[..., None] * haze * (2.0 - tone)) * speck_albedo[..., None]
    ctx.record(haze=haze, specks=int(count - 1))
    return Maps(albedo=albedo)


def discoloration(ctx: Context) -> Maps:
    """A soft-edged change of colour or brightness (yellowing, bleaching, heat tint, darkening, or the
    prompt's colour), uneven inside."""
    rng = ctx.rng
    size = float(np.sqrt(ctx.region.sum()))
    blob, lift = organic_patch(ctx, (0.4, 0.85), float(rng.uniform(0.2, 0.4)), (0.5, 1.0))
    weight = wide_blur(np.sqrt(lift), max(1.5, 0.08 * size)) * (0.65 + 0.35 * ctx.noise(max(4.0, size / 4)))
    weight = np.clip(weight * float(rng.uniform(1.1, 1.6)), 0.0, 1.0) * ctx.region
    named = prompt_colour(ctx.prompt)
    if named is not None:
        kind, factor = named[0], np.clip(np.array(named[1], np.float32) / 160.0, 0.25, 1.5)
    else:
        kind = list(TINTS)[int(rng.integers(len(TINTS)))]
        factor = np.array(TINTS[kind], np.float32)
    ctx.record(kind=kind, factor=factor)
    if kind == "bleaching":  # light and chemicals take the colour out, not only the darkness
        grey = luminance(ctx.base)[..., None]
        factor = (0.35 * ctx.base + 0.65 * grey) * factor / np.maximum(ctx.base, 1.0)
    albedo = 1.0 + weight[..., None] * (factor - 1.0)
    return Maps(albedo=albedo.astype(np.float32))
