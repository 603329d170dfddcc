"""A translucent, mottled blob with a darker drying ring, tinted by a colour word if given."""
from __future__ import annotations


import numpy as np

from studio.engines.classic.defects.base import Context, jagged_blob
from studio.engines.classic.keywords import prompt_colour
from studio.engines.classic.noise import fractal
from studio.engines.classic.photometry import surface_mean, tint_away
from studio.imaging import blur, erode


DEFAULT_STAIN_COLOURS = ((105, 66, 32), (160, 78, 30), (35, 33, 30), (150, 130, 60))


def stain(ctx: Context) -> np.ndarray:
    """A translucent, mottled blob with a darker drying ring, tinted by a colour word if given."""
    rng = ctx.rng
    blob = jagged_blob(ctx, float(rng.uniform(0.6, 0.95)), float(rng.uniform(0.2, 0.4)), float(rng.uniform(2, 4)))
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
