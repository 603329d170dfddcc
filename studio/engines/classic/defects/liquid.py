"""Liquid defects: dried stains (density variation, a darker drying ring, tide lines, satellite
droplets; water leaves a whitish mineral ring on a non-porous surface and a damp darkening on a porous
one) and oil films (a dark translucent film with gloss, and a thin-film iridescent sheen only on a
smooth surface: on a matte, porous one the oil soaks in)."""
from __future__ import annotations

import numpy as np

from studio.engines.classic.defects.base import Context, droplets, organic_patch, support_box, wide_blur, window
from studio.engines.classic.geometry import inside_distance
from studio.engines.classic.keywords import MATTE_WORDS, SMOOTH_WORDS, WATER_WORDS, mentions, prompt_colour
from studio.engines.classic.photometry import from_lab
from studio.engines.classic.shading import Maps
from studio.imaging import blur, mask_coords

#: Stain colours (RGB) when the prompt names none: tea/coffee brown, rust brown, grime, dried yellow.
STAIN_COLOURS = ((120, 78, 40), (150, 85, 45), (70, 66, 60), (160, 140, 70))
#: On a greyscale photo a stain's transmittance range (it shows by darkening alone).
GREY_STAIN = (0.05, 0.2)
#: ... and how much more of the liquid it soaks up (damp, not dried to a faint tint).
GREY_SOAK = 1.3
#: Surround texture (mean |high-pass|, grey levels) from which an unnamed surface counts as matte.
MATTE_TEXTURE = 5.0
#: How much a soaking liquid deepens the surface's own colour (chroma gain per unit of soaking).
WET_CHROMA = 0.8
#: The whitish colour (RGB) of dried minerals.
MINERAL = np.array([228, 226, 218], np.float32)


def matte(ctx: Context) -> bool:
    """Whether the surface is matte and porous (a liquid soaks in; no thin film, no mineral ring): by
    the prompt's words, else by how busy the surround's fine relief is."""
    if mentions(ctx.prompt, SMOOTH_WORDS):
        return False
    return mentions(ctx.prompt, MATTE_WORDS) or ctx.photo.texture >= MATTE_TEXTURE


def sheen(ctx: Context, blob: np.ndarray, film: np.ndarray, size: float, shine: float) -> np.ndarray:
    """A wet film's gloss: a soft highlight band across it facing the light, broken up by noise
    (worked where the film is)."""
    lx, ly = ctx.photo.light
    own = window(blob, 0)
    ys, xs = mask_coords(blob[own])
    ys, xs = ys + own[0].start, xs + own[1].start
    win = window(film, 0)
    along = (np.arange(win[1].start, win[1].stop, dtype=np.float32)[None, :] * lx
             + np.arange(win[0].start, win[0].stop, dtype=np.float32)[:, None] * ly)
    at_blob = xs.astype(np.float32) * lx + ys.astype(np.float32) * ly
    centre = float(np.quantile(at_blob, ctx.rng.uniform(0.55, 0.85))) if ys.size else 0.0
    band = np.exp(-((along - centre) / max(2.0, 0.15 * size)) ** 2)
    broken = np.clip(ctx.noise(max(6.0, size / 2), win) * 1.5, 0.0, 1.0)
    out = np.zeros(ctx.shape, np.float32)
    out[win] = np.clip(0.6 * band + 0.4 * broken, 0.0, 1.0) * film[win] * shine
    return out


def stain_colour(ctx: Context) -> tuple[str, np.ndarray]:
    named = prompt_colour(ctx.prompt)
    if named is not None:
        return named[0], np.array(named[1], np.float32)
    return "default", np.array(STAIN_COLOURS[int(ctx.rng.integers(len(STAIN_COLOURS)))], np.float32)


def stain(ctx: Context) -> Maps:
    """A dried liquid stain: absorbed colour (multiplicative, so the texture shows through) with
    uneven density, a darker ring where the liquid dried (the coffee-ring effect), sometimes a fainter
    tide line inside, and a few satellite droplets with rings of their own; water leaves a mineral ring
    on a non-porous surface and a damp patch (:func:`wet`) on a porous one."""
    rng = ctx.rng
    blob, lift = organic_patch(ctx, (0.25, 0.6), float(rng.uniform(0.25, 0.45)))
    size = float(np.sqrt(blob.sum()))
    satellites = int(rng.integers(0, 7))
    drops = droplets(ctx, blob, satellites, max(1.0, 0.07 * size))
    shape = blob | drops
    # worked on the stain's box and the blur's reach: beyond it every field is nothing
    box = window(shape, 3)
    part = shape[box]
    edge = inside_distance(part)
    ring_width = float(rng.uniform(1.0, 2.5))
    rim = np.exp(-edge / ring_width) * part
    tide = np.exp(-np.abs(lift[box] - float(rng.uniform(0.3, 0.6))) / 0.04) * float(rng.uniform(0.0, 0.5))
    density = np.clip(0.55 + 0.7 * ctx.noise(max(3.0, size / 4), box), 0.15, 1.0)
    strength = float(rng.uniform(0.45, 0.8))
    soak = 1.0
    if ctx.photo.monochrome:  # no colour to show: a damp stain soaks in deeper and reads by darkening
        strength, soak = 0.3 + 0.7 * strength, GREY_SOAK
    body = density * (0.2 + 0.25 * np.sqrt(lift[box])) * soak
    part_alpha = np.clip(strength * (body + float(rng.uniform(0.8, 1.3)) * rim + tide), 0.0, 1.0)
    alpha = np.zeros(ctx.shape, np.float32)
    alpha[box] = blur((part_alpha * part).astype(np.float32), 0.6)
    water = mentions(ctx.prompt, WATER_WORDS) and prompt_colour(ctx.prompt) is None
    if water and not matte(ctx):
        whole_rim = np.zeros(ctx.shape, rim.dtype)
        whole_rim[box] = rim
        return mineral_ring(ctx, shape, alpha, whole_rim, size)
    if water and not ctx.photo.monochrome:  # a porous surface soaks it up, through, not as a film: damp
        darkness = float(rng.uniform(0.25, 0.45))
        ctx.record(colour="damp", darkness=darkness, strength=strength, satellites=satellites, ring_px=ring_width)
        return Maps(albedo=wet(ctx, np.clip(2.0 * alpha, 0.0, 1.0) * darkness))
    name, colour = stain_colour(ctx)
    if water:  # damp on a greyscale photo: it reads by darkening alone (below)
        name, colour = "damp", np.full(3, 255.0 * float(rng.uniform(0.55, 0.75)), np.float32)
    transmit = np.clip(colour / 255.0, 0.08, 1.0)
    gloss = None
    if ctx.photo.monochrome:  # ... darker, with its rim and a wet sheen
        transmit = np.full(3, float(rng.uniform(*GREY_STAIN)), np.float32)
        gloss = sheen(ctx, shape, alpha, size, float(rng.uniform(0.04, 0.1)))
    tinted = 1.0 - alpha[box][..., None] * (1.0 - transmit)
    albedo = np.ones(ctx.shape + (3,), tinted.dtype)
    albedo[box] = tinted
    ctx.record(colour=name, rgb=colour, strength=strength, satellites=satellites, ring_px=ring_width)
    return Maps(albedo=albedo, gloss=gloss)


def mineral_ring(ctx: Context, shape: np.ndarray, alpha: np.ndarray, rim: np.ndarray, size: float) -> Maps:
    """Dried water on a non-porous surface: a whitish, semi-opaque mineral deposit, densest in the
    drying ring, a faint veil inside, grainy (crystals), with no colour of its own."""
    rng = ctx.rng
    crystals = np.clip(0.75 + 0.5 * ctx.noise(1.5), 0.3, 1.2)
    ring = blur((rim * shape).astype(np.float32), 0.6)
    opacity = float(rng.uniform(0.35, 0.6))
    cover = np.clip(opacity * (ring * crystals + 0.25 * alpha), 0.0, 0.85) * ctx.region
    ctx.record(colour="mineral", opacity=opacity)
    return Maps(cover=cover.astype(np.float32), paint=np.broadcast_to(MINERAL, ctx.crop.shape), carry_detail=True)


def oil(ctx: Context) -> Maps:
    """An oil film: a dark, slightly warm translucent patch whose thickness varies, with thin-film
    interference colours (a faint rainbow sheen following the thickness) and a glossy highlight."""
    rng = ctx.rng
    blob, lift = organic_patch(ctx, (0.3, 0.75), float(rng.uniform(0.2, 0.4)))
    size = float(np.sqrt(blob.sum()))
    drops = droplets(ctx, blob, int(rng.integers(0, 4)), max(1.0, 0.06 * size))
    film = blur((blob | drops).astype(np.float32), float(rng.uniform(0.6, 1.2))) * ctx.region
    thickness = np.clip(0.5 + 0.5 * np.sqrt(lift) + 0.2 * ctx.noise(max(4.0, size / 3)), 0.2, 1.0)
    darkness = float(rng.uniform(0.25, 0.5)) * (1.4 if ctx.photo.monochrome else 1.0)  # no sheen colour to show
    soaked = matte(ctx)
    box = window(film, 0)  # where the film lies (beyond, the albedo stays 1)
    if soaked:  # soaked into a matte surface, it looks wet: darker and deeper in the surface's own colour
        albedo = wet(ctx, film * thickness * darkness)
    else:
        tone = np.array([0.92, 0.88, 0.80], np.float32)
        albedo = np.ones(ctx.shape + (3,), np.float32)
        albedo[box] = 1.0 - (film[box] * thickness[box])[..., None] * darkness * (2.0 - tone)
    # interference: the colour cycles with the optical thickness (phase-shifted per channel)
    cycles = float(rng.uniform(1.0, 2.5))
    iridescence = 0.0 if soaked else float(rng.uniform(0.03, 0.07))  # a matte surface soaks the film up
    if iridescence:
        phase = wide_blur(thickness, max(1.5, 0.04 * size))[box] * cycles
        rainbow = np.cos(2.0 * np.pi * (phase[..., None] + np.array([0.0, 1 / 3, 2 / 3], np.float32)))
        albedo[box] *= 1.0 + iridescence * film[box][..., None] * rainbow
    # the film's meniscus: a slightly darker, crisper edge (on the blob's box and a pixel around it)
    win = window(blob, 1)
    inner = blob[win]
    albedo[win] *= (1.0 - 0.08 * (np.exp(-inside_distance(inner) / 1.5) * inner))[..., None]
    shine = float(rng.uniform(0.06, 0.16))
    gloss = sheen(ctx, blob, film, size, shine)
    ctx.record(darkness=darkness, iridescence=iridescence, sheen=shine)
    return Maps(albedo=albedo.astype(np.float32), gloss=gloss)


def wet(ctx: Context, amount: np.ndarray) -> np.ndarray:
    """The albedo (RGB multipliers) of a surface soaked by ``amount`` (0..1) of a liquid: it scatters
    less light at its surface, so it darkens (L by ``amount``) and its own colour deepens (chroma up by
    ``WET_CHROMA`` x ``amount``), worked in Lab on the smooth base (a grey surface only darkens)."""
    albedo = np.ones(ctx.shape + (3,), np.float32)
    y0, y1, x0, x1 = support_box(Maps(cover=amount), ctx.shape, 0)
    win = (slice(y0, y1), slice(x0, x1))
    lab = ctx.shared.lab[win].copy()
    part = amount[win]
    lab[..., 0] *= 1.0 - part
    lab[..., 1:] *= (1.0 + WET_CHROMA * part)[..., None]
    albedo[win] = from_lab(lab) / np.maximum(ctx.base[win], 1.0)
    return albedo
