"""Which defect family a prompt asks for, and which colour it names."""
from __future__ import annotations

from functools import lru_cache

import re


#: Generator name -> word stems that select it (a prompt word selects it when it starts with a stem).
KEYWORDS: dict[str, tuple[str, ...]] = {
    "scratch": ("scratch", "scrape", "scuff", "abrasion", "abraded", "graze", "score", "cut"),
    "crack": ("crack", "fractur", "fissure", "split", "craz"),
    "hole": ("hole", "puncture", "perforat", "pinhole", "pore"),
    "oil": ("oil", "grease", "lubric", "greasy", "fingerprint"),
    "rust": ("rust", "corros", "pitting", "pitted"),
    "contamination": ("contamina", "dirt", "dust", "particle", "debris", "speck", "residue", "soot", "grime"),
    "stain": ("stain", "spot", "smudge", "splash", "splatter", "blot", "glue", "drop", "smear", "paint",
              "ink", "liquid", "coffee", "water", "spill"),
    "dent": ("dent", "deform", "bump", "bent", "bend", "dint", "ding", "warp", "crush", "squash",
             "indent", "dimple", "bulge"),
    "missing": ("missing", "broken", "break", "broke", "chip", "torn", "tear", "fragment", "absent", "gap"),
    "discoloration": ("discolo", "fade", "faded", "bleach", "yellowing", "oxid",
                      "tarnish", "tint", "colour", "color"),
    "burn": ("burn", "scorch", "char", "singe", "sear", "heat"),
    "perlin": ("perlin", "draem", "textur"),
}
#: Words that name a defect in other terms -> the nearest family (recorded in the metadata).
SYNONYMS: dict[str, str] = {
    "misprint": "stain", "smudged": "stain", "watermark": "stain", "mark": "stain", "blemish": "stain",
    "efflorescence": "contamination", "mould": "contamination", "mold": "contamination",
    "mildew": "contamination", "limescale": "contamination", "scale": "contamination",
    "deposit": "contamination", "chalk": "contamination", "lint": "contamination", "fluff": "contamination",
    "patina": "discoloration", "yellowed": "discoloration",
    "blister": "dent", "bubble": "dent", "crease": "dent", "wrinkle": "dent", "fold": "dent",
    "gouge": "scratch", "snag": "scratch", "streak": "scratch", "line": "scratch", "burr": "scratch",
    "nick": "missing", "notch": "missing", "spall": "missing", "flake": "missing", "peel": "missing",
    "peeling": "missing", "delamination": "missing",
    "void": "hole", "pock": "hole", "fray": "hole", "frayed": "hole",
}
#: The family drawn when no prompt word names one (the metadata says so and lists the families).
DEFAULT_FAMILY = "stain"
#: One example prompt per family, as a user would type it (benchmarks, contact sheet, help).
EXAMPLE_PROMPTS: dict[str, str] = {
    "scratch": "a long scratch", "crack": "a crack", "hole": "a hole", "oil": "an oil stain",
    "rust": "a rust spot", "contamination": "dirt contamination", "stain": "a coffee stain",
    "dent": "a dent", "missing": "a broken piece missing", "discoloration": "discoloration",
    "burn": "a burn mark", "perlin": "a perlin texture anomaly",
}
#: Word stems saying the surface is a textile (a hole then shows what lies behind, with frayed threads).
FABRIC_WORDS = ("fabric", "cloth", "textile", "woven", "weave", "knit", "thread", "garment", "denim", "cotton")
#: Word stems of a slender part, and of its bending: a bent pin swings sideways (``bend``), it is not dented.
PIN_WORDS = ("pin", "lead", "leg", "prong", "wire", "terminal", "needle", "rod", "spoke")
BEND_WORDS = ("bent", "bend", "twist", "crooked", "deform", "kink")
#: Word stems of a cut or tear: in a textile it is an opening with frayed edges (a hole), not a groove.
CUT_WORDS = ("cut", "slit", "slash", "tear", "torn", "rip", "gash")
#: Word stems naming a smooth, non-porous surface, and a matte, porous one (a liquid
#: soaks into the latter: no thin film, no mineral ring).
SMOOTH_WORDS = ("metal", "steel", "chrome", "alumin", "glass", "plastic", "tile", "ceramic", "porcelain",
                "glossy", "polish", "lacquer", "enamel", "mirror", "sink", "glazed")
MATTE_WORDS = ("fabric", "cloth", "textile", "wood", "paper", "cardboard", "concrete", "stone", "brick",
               "plaster", "matte", "leather", "carpet", "felt")
#: Word stems asking for water (a mineral ring or a damp patch, not a coloured stain).
WATER_WORDS = ("water", "limescale", "mineral", "watermark", "rain", "moist", "damp", "wet")
GENERATORS = tuple(KEYWORDS)

#: Colour words a prompt may use to tint stains and discolorations (RGB).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (175, 28, 30), "brown": (105, 66, 32), "rust": (160, 78, 30), "orange": (210, 110, 30),
    "yellow": (205, 175, 40), "green": (45, 125, 50), "blue": (40, 70, 170), "purple": (110, 45, 130),
    "black": (22, 22, 24), "dark": (35, 33, 30), "oil": (30, 28, 24), "grey": (120, 120, 120),
    "gray": (120, 120, 120), "white": (240, 238, 232), "bright": (235, 235, 230),
}


def prompt_words(prompt: str) -> list[str]:
    return re.findall(r"[a-z]+", prompt.lower())


@lru_cache(maxsize=1024)
def pick_generator(prompt: str) -> tuple[str, str | None]:
    """(generator, the word that chose it): a bent pin (lead, wire) is ``bend``, a cut or tear in a
    textile a hole (a frayed opening);
    else the earliest prompt word matching a keyword, else the
    earliest one in :data:`SYNONYMS`, else :data:`DEFAULT_FAMILY` with no word (the DRAEM-style
    texture is drawn only when asked for by name)."""
    words = prompt_words(prompt)
    if mentions(prompt, PIN_WORDS):  # a bent pin swings sideways
        bent = next((word for word in words if any(word.startswith(stem) for stem in BEND_WORDS)), None)
        if bent is not None:
            return "bend", bent
    if mentions(prompt, FABRIC_WORDS):  # a cut or tear in a textile opens it
        cut = next((word for word in words if any(word.startswith(stem) for stem in CUT_WORDS)), None)
        if cut is not None:
            return "hole", cut
    for word in words:
        for name, stems in KEYWORDS.items():
            if any(word.startswith(stem) for stem in stems):
                return name, word
    for word in words:
        if word in SYNONYMS:
            return SYNONYMS[word], word
    return DEFAULT_FAMILY, None


def family_note(word: str | None) -> str | None:
    """What to tell the user when no defect word was recognised (``word`` is None): the families."""
    if word is not None:
        return None
    return (f"No defect word recognised in the prompt; drew a {DEFAULT_FAMILY}. Name one of: "
            + ", ".join(name for name in KEYWORDS if name != "perlin") + " (or 'perlin texture').")


#: Words after which a prompt describes where the defect is, not the defect ("a stain on a blue fabric").
PLACE_WORDS = frozenset({"on", "in", "across", "along", "over", "at", "near", "under"})


def prompt_colour(prompt: str) -> tuple[str, tuple[int, int, int]] | None:
    """The first colour word describing the defect (before any word like "on" or "in" that goes on
    to describe the surface) and its RGB, if any."""
    for word in prompt_words(prompt):
        if word in PLACE_WORDS:
            return None
        if word in COLOURS:
            return word, COLOURS[word]
    return None


def mentions(prompt: str, stems: tuple[str, ...]) -> bool:
    """Whether any prompt word starts with one of ``stems``."""
    return any(word.startswith(stem) for word in prompt_words(prompt) for stem in stems)
