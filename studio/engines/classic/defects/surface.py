"""Surface (albedo) defects: rust, contamination and discoloration; the texture always shows through."""
from __future__ import annotations

import cv2
import numpy as np

from studio.engines.classic.defects.base import (
    Context, droplets, organic_patch, paint_window, support_box, wide_blur, window,
)
from studio.engines.classic.keywords import prompt_colour
from studio.engines.classic.photometry import fine_pass, from_lab, luminance, robust_sigma, to_lab
from studio.engines.classic.shading import Maps
from studio.imaging import blur, pixels

#: Rust palette from fresh orange through brown to dark brown (RGB).
RUST_PALETTE = np.array([[200, 108, 42], [150, 74, 32], [74, 38, 20]], np.float32)
#: On a greyscale photo the crust's brightness relative to the surface (rust is darker than stone).
GREY_RUST = (0.45, 0.75)
#: On a greyscale photo, how much rougher than the surround's fine detail the crust's grains are
#: (without its colour a crust reads by its grain; as smooth as the surface it is a smudge).
GREY_GRIT = (1.2, 1.6)
#: On a greyscale photo, the share of the bloom kept.
GREY_BLOOM = 0.25
#: How much a pixel-fine grit breaks up the crust's edge, and how steeply the crust's field is cut
#: (a crisp, granular boundary: loose grains of rust, not an airbrushed fade).
EDGE_GRIT, EDGE_SLOPE = 0.35, 14.0
#: Colour mottling of the crust (share of the palette), fresh orange grains' lift, and its fine grit.
MOTTLE, FRESH, GRIT = 0.45, 0.25, 0.2
#: Discoloration kinds -> albedo factor (RGB multipliers; > 1 brightens).
TINTS = {
    "yellowing": (1.02, 0.9, 0.55), "bleaching": (1.18, 1.18, 1.15), "heat tint": (0.78, 0.62, 0.95),
    "darkening": (0.62, 0.6, 0.58), "browning": (0.8, 0.62, 0.42),
}


def _palette_table() -> np.ndarray:
    """:data:`RUST_PALETTE` as a 256-entry colour table (orange -> brown at 0.5 -> dark brown)."""
    s = np.linspace(0.0, 2.0, 256, dtype=np.float32)[:, None]
    low = np.minimum(s, 1.0) * (RUST_PALETTE[1] - RUST_PALETTE[0]) + np.clip(s - 1.0, 0.0, 1.0) * (RUST_PALETTE[2] - RUST_PALETTE[1])
    return np.clip(np.rint(RUST_PALETTE[0] + low), 0, 255).astype(np.uint8)[None]


#: ``cv2.LUT`` table of the rust palette (1, 256, 3).
PALETTE_TABLE = _palette_table()


def palette(t: np.ndarray) -> np.ndarray:
    """Rust colour (RGB, float32) at ``t`` in 0..1 along :data:`RUST_PALETTE`, read from a table."""
    index = np.clip(t * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)
    return cv2.LUT(cv2.merge([index, index, index]), PALETTE_TABLE).astype(np.float32)


def rust(ctx: Context) -> Maps:
    """Corrosion: an opaque, slightly raised granular crust with a crisp grainy boundary that hides
    the surface's texture, its colour varying from orange to dark brown in grains with a fine grit
    of its own, darker corroded pits, flakes and satellite spots
    around it, and a thin orange bloom where the corrosion spreads into the surface."""
    rng = ctx.rng
    size = float(np.sqrt(ctx.region.sum()))
    blob, lift = organic_patch(ctx, (0.25, 0.55), float(rng.uniform(0.35, 0.55)))
    nuclei = int(rng.integers(0, 3))
    for _ in range(nuclei):  # satellite corrosion spots
        more, more_lift = organic_patch(ctx, (0.1, 0.3), float(rng.uniform(0.35, 0.55)))
        blob, lift = blob | more, np.maximum(lift, more_lift)
    flakes = droplets(ctx, blob, int(rng.integers(3, 10)), max(1.0, 0.03 * size))
    # grains coarser than the texture measure's high-pass: the noise's fine octaves are smoothed away
    coarse, grains = wide_blur(ctx.noise(max(8.0, size / 5)), 4.0), ctx.noise(6.0)
    smooth = wide_blur(lift, 3.5)  # the patch's lift without its peaked crest
    # worked on the crust's box: beyond it and the blurs' reach (16 px) every map is at rest
    box = window(blob | flakes, 16)
    part, crest = blob[box], smooth[box]
    # the crust: the patch's lift roughened by mid-scale grains and a pixel-fine grit, thresholded
    # steeply: its edge breaks up into loose grains (not a feathered fade)
    grit_edge = ctx.noise(1.5, box)
    crust = np.clip((crest * 2.2 + 0.6 * blur(grains[box], 1.5) + EDGE_GRIT * grit_edge - 0.35) * EDGE_SLOPE,
                    0.0, 1.0) * part
    crust = np.maximum(blur(crust, 0.5), flakes[box].astype(np.float32))
    # the orange bloom: a thin stain around the crust itself (none where no crust formed)
    bloom = np.clip(1.5 * wide_blur((crust > 0.5).astype(np.float32), 1.5) - crust, 0.0, 1.0) * ctx.region[box]
    if ctx.photo.monochrome:  # without its orange, the bloom would only be a dark ring
        bloom *= GREY_BLOOM
    strength = float(rng.uniform(0.92, 1.0))
    covered = np.clip(strength * crust + 0.1 * bloom, 0.0, 1.0)
    # colour: older (darker) towards the middle, varying in grains across the whole crust
    age = float(rng.uniform(0.2, 0.5))
    # mottled: dark old scale and fresh orange grains side by side, at a few px
    mottle = ctx.noise(3.0, box)
    shade_t = np.clip(0.35 + age * crest + 0.55 * coarse[box] + MOTTLE * mottle - FRESH * (grit_edge > 0.5), 0.0, 1.0)
    pits = (ctx.noise(3.0, box) > float(rng.uniform(0.55, 0.7))) & part & (lift[box] > 0.3)
    pitted = blur(pits.astype(np.float32), 0.8)
    c0, c1, r0, r1 = support_box(Maps(cover=covered), covered.shape, 0)  # the colour matters only where it covers
    local = (slice(c0, c1), slice(r0, r1))
    win = (slice(box[0].start + c0, box[0].start + c1), slice(box[1].start + r0, box[1].start + r1))
    paint = np.zeros(ctx.shape + (3,), np.float32)
    # crisp grains of its own (the crust hides the surface's texture)
    grit = 1.0 + GRIT * ctx.noise(1.2, win)
    paint[win] = palette(np.clip(shade_t[local] + 0.5 * pitted[local], 0.0, 1.0)) * ((1.0 - 0.35 * pitted[local]) * grit)[..., None]
    if ctx.photo.monochrome:  # grey stone: the crust reads by being darker and grainy
        surface = float(luminance(ctx.base[box])[part].mean()) if part.any() else 128.0
        scale = surface * float(rng.uniform(*GREY_RUST)) / float(luminance(RUST_PALETTE[1]))
        paint[win] *= scale
        paint[win] += grey_grit(ctx, blob[win], win)[..., None]
    # the crust coats the part: lit like the shape beneath it (its broad shading), not showing its fine texture
    lum = luminance(ctx.base[win])
    paint[win] *= np.clip((lum / max(float(lum[blob[win]].mean()) if blob[win].any() else 1.0, 1.0)) ** 0.6,
                          0.5, 1.5)[..., None]
    tint = np.ones(ctx.shape + (3,), np.float32)  # the bloom lies inside the cover's box
    tint[win] = 1.0 - 0.35 * bloom[local][..., None] * (1.0 - RUST_PALETTE[0] / 255.0)
    # relief: the crust stands a little proud and is rough; pits sink into it
    rise = float(rng.uniform(0.3, 0.6))
    height, cover = np.zeros(ctx.shape, np.float32), np.zeros(ctx.shape, np.float32)
    height[box] = wide_blur(crust * (1.0 + 0.5 * coarse[box]), 2.0) * rise - 0.3 * pitted
    cover[box] = covered
    ctx.record(strength=strength, pits=int(pits.sum()), nuclei=1 + nuclei, flakes=int(flakes.sum()), rise=rise)
    return Maps(albedo=tint, height=height, cover=cover, paint=paint)


def grey_grit(ctx: Context, where: np.ndarray, win: tuple[slice, slice]) -> np.ndarray:
    """Grains (grey levels, over ``win``) for a crust on a greyscale photo: ``GREY_GRIT`` times the
    surround's fine detail as the camera sees it (after its blur) over ``where``, at least 3 levels."""
    grains = 0.7 * ctx.noise(1.5, win) + 0.3 * ctx.noise(3.0, win)
    seen = fine_pass(blur(grains, ctx.photo.blur))
    level = robust_sigma(seen[where]) if where.sum() >= 16 else 0.3
    target = max(ctx.photo.fine, 3.0) * float(ctx.rng.uniform(*GREY_GRIT))
    return grains * np.float32(target / max(level, 1e-3))


def contamination(ctx: Context) -> Maps:
    """Dirt: a faint grimy film with clustered specks of foreign particles of varied size and tone."""
    rng = ctx.rng
    size = float(np.sqrt(ctx.region.sum()))
    blob, lift = organic_patch(ctx, (0.3, 0.75), float(rng.uniform(0.3, 0.5)))
    film = blur(blob.astype(np.float32), 1.0) * (0.6 + 0.4 * np.sqrt(lift))
    score = ctx.noise(float(rng.uniform(1.2, 2.2))) + 0.8 * ctx.noise(max(3.0, size / 6))
    values = score[blob]
    share = float(rng.uniform(0.03, 0.08))
    specks = (score > float(np.quantile(values, 1.0 - share))) & blob if values.size else blob
    count, labels = cv2.connectedComponents(specks.astype(np.uint8), connectivity=8)
    shades = rng.uniform(0.4, 0.8, count).astype(np.float32)
    shades[0] = 1.0
    haze = float(rng.uniform(0.08, 0.16))
    tone = np.array([0.95, 0.9, 0.82], np.float32)
    # worked on the film's box (its blur reaches 3 px beyond the blob, the specks' 1 px): beyond, no change
    box = window(blob, 3)
    speck_albedo = blur(shades[labels[box]], 0.5)
    albedo = np.ones(ctx.shape + (3,), np.float32)
    albedo[box] = (1.0 - film[box][..., None] * haze * (2.0 - tone)) * speck_albedo[..., None]
    ctx.record(haze=haze, specks=int(count - 1))
    return Maps(albedo=albedo)


def discoloration(ctx: Context) -> Maps:
    """A soft-edged change of colour or brightness (yellowing, bleaching, darkening, browning, a heat tint on
    a neutral, metal-like surface only, or the prompt's colour), uneven inside."""
    rng = ctx.rng
    size = float(np.sqrt(ctx.region.sum()))
    blob, lift = organic_patch(ctx, (0.35, 0.75), float(rng.uniform(0.2, 0.4)), (0.5, 1.0))
    # the tint spreads through the surface's pores and fibres: its edge is where the spreading front,
    # pushed on by the darker texture, stopped (neither an airbrushed fade nor a painted outline)
    # (worked on the patch's box: beyond it the weight is nothing)
    box = window(blob, 0)
    part, rise = blob[box], lift[box]
    front = rise - FRONT_TEXTURE * np.clip(ctx.shared.texture[box], -2.5, 2.5)
    edge = np.clip((front - 0.04) / FRONT_WIDTH, 0.0, 1.0) * part
    weight = np.zeros(ctx.shape, np.float32)
    weight[box] = edge * (0.5 + 0.5 * np.sqrt(rise)) * (0.6 + 0.4 * ctx.noise(max(4.0, size / 4), box))
    weight[box] = np.clip(weight[box] * float(rng.uniform(1.1, 1.5)), 0.0, 1.0) * ctx.region[box]
    named = prompt_colour(ctx.prompt)
    if named is not None:
        kind, factor = named[0], np.clip(np.array(named[1], np.float32) / 160.0, 0.25, 1.5)
    else:
        kind = list(TINTS)[int(rng.integers(len(TINTS)))]
        if kind == "heat tint" and neutral_chroma(ctx) > TEMPER_CHROMA:  # temper colours are bare metal's
            others = [k for k in TINTS if k != kind]
            kind = others[int(rng.integers(len(others)))]
        factor = np.array(TINTS[kind], np.float32)
    if ctx.photo.monochrome:  # no colour to show: the tint reads by its lightness alone
        factor = np.full(3, grey_tint(float(luminance(factor))), np.float32)
    ctx.record(kind=kind, factor=factor)
    albedo = np.ones(ctx.shape + (3,), np.float32)
    y0, y1, x0, x1 = support_box(Maps(cover=weight), ctx.shape, 0)
    win = (slice(y0, y1), slice(x0, x1))
    albedo[win] = lab_tint(ctx.base[win], ctx.shared.lab[win], weight[win], factor, bleach=kind == "bleaching")
    return Maps(albedo=albedo)


#: Median Lab chroma of the region up to which a surface may be bare metal, the only one a heat tint (blue
#: and violet temper colours) is drawn on unasked: a brushed disc is 2.7, wood, a printed board, a weave or a
#: glazed cup 20-37.
TEMPER_CHROMA = 8.0


def neutral_chroma(ctx: Context) -> float:
    """The median Lab chroma of the surface over the region (0 on a greyscale photo)."""
    ab = pixels(ctx.shared.lab, ctx.region)[:, 1:]
    return float(np.median(np.hypot(ab[:, 0], ab[:, 1]))) if ab.size else 0.0


#: On a greyscale photo the least lightness change of a tint (a yellowing that barely moves a grey's
#: lightness would be invisible there): one not clearly brightening darkens at least this much.
GREY_TINT = 0.2


def grey_tint(level: float) -> float:
    """The lightness factor a tint of lightness factor ``level`` (its colour's on a neutral grey) has on a
    greyscale photo: as it is, unless it lies within ``GREY_TINT`` of no change, then a darkening by that."""
    return level if level >= 1.0 + GREY_TINT else min(level, 1.0 - GREY_TINT)


#: How far (in the field from a patch's rim, 0, to its middle, 1) the surface's texture pushes a
#: discoloration's spreading front, per standard deviation of its detail, and the front's width.
FRONT_TEXTURE, FRONT_WIDTH = 0.06, 0.12
#: Largest chroma (Lab) a tint may give a pixel beyond the surface's own: a yellowing of a blue print
#: greys it, it does not turn it neon green.
TINT_CHROMA = 12.0


def lab_tint(base: np.ndarray, lab: np.ndarray, weight: np.ndarray, factor: np.ndarray,
             bleach: bool = False) -> np.ndarray:
    """The albedo (RGB multipliers) that tints ``base`` (float RGB; ``lab``: it in Lab) by ``weight`` (0..1) towards the
    tint that ``factor`` (RGB multipliers) gives a neutral grey, worked in Lab: lightness scales by the
    tint's own, the tint's (a, b) shift is added, and the chroma is kept within the surface's own plus
    :data:`TINT_CHROMA` (and within the tint's own when that is larger); ``bleach`` also takes out
    65% of the surface's own chroma."""
    grey = np.full((1, 1, 3), 160.0, np.float32)
    neutral, tinted = to_lab(grey)[0, 0], to_lab(grey * factor)[0, 0]
    w = weight[..., None]
    out = lab.copy()
    out[..., 0] = lab[..., 0] * (1.0 + weight * (tinted[0] / neutral[0] - 1.0))
    ab = lab[..., 1:] * (1.0 - (0.65 * w if bleach else 0.0)) + w * (tinted[1:] - neutral[1:])
    chroma = np.sqrt(ab[..., 0] * ab[..., 0] + ab[..., 1] * ab[..., 1])[..., None]  # (not a sum over the short axis: slow)
    own = np.sqrt(lab[..., 1] * lab[..., 1] + lab[..., 2] * lab[..., 2])[..., None]
    cap = np.maximum(own + TINT_CHROMA * w, float(np.hypot(*(tinted[1:] - neutral[1:]))) * w)
    out[..., 1:] = ab * np.minimum(1.0, cap / np.maximum(chroma, 1e-3))
    return (from_lab(out) / np.maximum(base, 1.0)).astype(np.float32)


#: Char (RGB): the black core of a burn.
CHAR = np.array([30, 26, 24], np.float32)
#: Scorch (RGB multipliers): the brown ring around the char, and the faint heat tint beyond it.
SCORCH = np.array([0.6, 0.44, 0.3], np.float32)
HEAT_TINT = np.array([1.0, 0.9, 0.72], np.float32)


def burn(ctx: Context) -> Maps:
    """A burn or scorch mark: a char-black, grainy core that hides the surface, a brown scorched
    zone through which the texture shows, and a faint yellow-brown heat tint fading beyond it."""
    rng = ctx.rng
    size = float(np.sqrt(ctx.region.sum()))
    blob, lift = organic_patch(ctx, (0.25, 0.55), float(rng.uniform(0.3, 0.5)), (0.5, 1.0))
    heat = wide_blur(lift, max(1.0, 0.025 * size))
    grain = ctx.noise(1.5)
    core = float(rng.uniform(0.45, 0.7))
    char = np.clip((heat + 0.2 * grain - core) / 0.05, 0.0, 1.0) * blob
    spread = wide_blur(blob.astype(np.float32), max(1.0, 0.03 * size))  # how far the heat reached
    win = window(spread, 0)
    reach = spread[win]
    # the scorched zone ends in a ragged, grainy edge (not an airbrushed falloff), within that reach
    scorch = np.clip((heat[win] * float(rng.uniform(1.4, 2.0)) + 0.35 * grain[win] - 0.15) * 2.5, 0.0, 1.0) * (reach > 0)
    halo = np.clip(reach * 1.5 - scorch, 0.0, 1.0) * ctx.region[win]
    albedo = np.ones(ctx.shape + (3,), np.float32)
    albedo[win] = (1.0 + scorch[..., None] * (SCORCH - 1.0)) * (1.0 + 0.35 * halo[..., None] * (HEAT_TINT - 1.0))
    paint = np.zeros(ctx.shape + (3,), np.float32)
    box = paint_window(ctx, char)
    paint[box] = CHAR * (1.0 + 0.35 * ctx.noise(2.0, box))[..., None]
    cover = np.clip(char * float(rng.uniform(0.85, 1.0)), 0.0, 1.0)
    ctx.record(core=core)
    return Maps(albedo=albedo, cover=cover.astype(np.float32, copy=False), paint=paint,
                height=(-0.4 * char).astype(np.float32, copy=False), hollow=0.0)
