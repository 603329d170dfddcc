"""The data that flows through the studio: requests in, candidates and attention traces out.

Images are ``numpy`` arrays: RGB ``uint8`` of shape (H, W, 3); masks are ``bool`` of
shape (H, W) on the way in and ``uint8`` 0/255 on the way out (label masks).
"""
from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np

from studio import __version__, config
from studio.errors import InputError

#: Called with (completed, total, description) as a long job advances.
ProgressFn = Callable[[int, int, str], None]

SEED_MAX = 2**32 - 1

@dataclass(frozen=True)
class EngineParameter:
    """One tunable request parameter, declared by the engine that uses it (its ``parameters()``).

    The page's Advanced panel, the API's ``generate`` inputs, the CLI flags, the batch keys and the
    candidates' metadata all come from these declarations; ``shown`` = offered in the page's panel."""

    name: str
    label: str
    default: float
    minimum: float
    maximum: float
    step: float
    integer: bool = False
    help: str = ""
    shown: bool = True
    #: Whether the attention preview (``explain``) uses it too.
    explains: bool = False

    @property
    def flag(self) -> str:
        """The command-line flag, e.g. ``--sga-scale``."""
        return "--" + self.name.replace("_", "-")

    def resolve(self, value: Any) -> float | int:
        """``value`` checked against the range (None or "" = the default)."""
        if value is None or (isinstance(value, str) and not value.strip()):
            value = self.default
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InputError(f"The parameter {self.name} must be a number, got {value!r}.") from None
        if not np.isfinite(number) or not self.minimum <= number <= self.maximum:
            raise InputError(f"The parameter {self.name} must lie between {self.minimum:g} and {self.maximum:g}, "
                             f"got {value!r}.")
        return int(round(number)) if self.integer else number


def resolve_params(params: dict[str, Any] | None, parameters: tuple[EngineParameter, ...],
                   owner: str = "this engine", *, strict: bool = True) -> dict[str, float | int]:
    """Exactly the declared ``parameters``: given values range-checked, the rest their defaults.

    A name not declared is an error naming ``owner`` (with ``strict``) or dropped (without)."""
    given = dict(params or {})
    declared = {p.name: p for p in parameters}
    unknown = sorted(set(given) - set(declared))
    if unknown and strict:
        takes = ", ".join(declared) or "no parameters"
        raise InputError(f"{owner} does not use the parameter(s) {', '.join(unknown)}; it takes: {takes}.")
    return {name: p.resolve(given.get(name)) for name, p in declared.items()}


def clean_text(text: str | None, what: str) -> str:
    """Normalise user text: NFC, control characters (NUL included) removed, length limited."""
    if text is None:
        return ""
    if not isinstance(text, str):
        raise InputError(f"The {what} must be text.")
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if ch in "\t\n" or unicodedata.category(ch)[0] != "C")
    text = " ".join(text.split())
    if len(text) > config.MAX_TEXT_CHARS:
        raise InputError(
            f"The {what} is {len(text)} characters long; keep it under {config.MAX_TEXT_CHARS}."
        )
    return text


def array_sha256(array: np.ndarray | None) -> str | None:
    """Content hash of an array (shape and dtype included), or None."""
    if array is None:
        return None
    digest = hashlib.sha256()
    digest.update(f"{array.shape}{array.dtype}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@dataclass
class SynthesisRequest:
    """Everything an engine needs to synthesise candidates. Build with :meth:`create` to validate."""

    image: np.ndarray
    mask: np.ndarray
    prompt: str
    reference: np.ndarray | None = None
    reference_mask: np.ndarray | None = None
    reference_text: str = ""
    num: int = 1
    seed: int = 0
    params: dict[str, float | int] = field(default_factory=dict)
    _hashes: dict[str, str | None] | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def create(
        cls,
        image: np.ndarray,
        mask: np.ndarray,
        prompt: str | None,
        *,
        reference: np.ndarray | None = None,
        reference_mask: np.ndarray | None = None,
        reference_text: str | None = "",
        num: int = 1,
        seed: int = 0,
        params: dict[str, Any] | None = None,
        parameters: tuple[EngineParameter, ...] | None = None,
        owner: str = "this engine",
    ) -> "SynthesisRequest":
        """Validate and normalise all fields; raises :class:`InputError` with one clear sentence.

        With ``parameters`` (the engine's declaration) ``params`` become exactly those, a name the engine
        does not use refused (naming ``owner``); without, they are kept as given for :meth:`using`."""
        _check_image(image, "normal image")
        if mask.shape != image.shape[:2]:
            raise InputError(
                f"The defect mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                f"{image.shape[1]}x{image.shape[0]}; load masks with studio.imaging.load_mask."
            )
        if reference is None and reference_mask is not None:
            raise InputError("A reference mask was given without a reference image.")
        if reference is not None:
            _check_image(reference, "reference image")
            if reference_mask is not None and reference_mask.shape != reference.shape[:2]:
                raise InputError("The reference mask does not match the reference image's size.")
        num_i = _check_int(num, "number of candidates", 1, config.MAX_CANDIDATES)
        seed_i = _check_int(seed, "seed", 0, SEED_MAX)
        return cls(
            image=image,
            mask=mask.astype(bool),
            prompt=clean_text(prompt, "target description"),
            reference=reference,
            reference_mask=None if reference_mask is None else reference_mask.astype(bool),
            reference_text=clean_text(reference_text, "reference text"),
            num=num_i,
            seed=seed_i,
            params=dict(params or {}) if parameters is None else resolve_params(params, parameters, owner),
        )

    def using(self, parameters: tuple[EngineParameter, ...]) -> "SynthesisRequest":
        """This request with exactly the engine's declared ``parameters`` (defaults filled, others dropped):
        what an engine's ``generate`` works on and records in its candidates' metadata."""
        resolved = replace(self, params=resolve_params(self.params, parameters, strict=False))
        resolved._hashes = self._hashes
        return resolved

    def candidate_seeds(self) -> list[int]:
        """One seed per candidate: seed, seed+1, ... (wrapping), so candidate i is reproducible alone."""
        return [(self.seed + i) % (SEED_MAX + 1) for i in range(self.num)]

    def input_hashes(self) -> dict[str, str | None]:
        """sha256 of every array input, computed once per request."""
        if self._hashes is None:
            self._hashes = {
                "image": array_sha256(self.image),
                "mask": array_sha256(self.mask),
                "reference": array_sha256(self.reference),
                "reference_mask": array_sha256(self.reference_mask),
            }
        return dict(self._hashes)

    def metadata(self, engine: str, profile: str, seed: int, **extra: Any) -> dict[str, Any]:
        """The metadata every candidate carries; engines add their own keys through ``extra``."""
        return {
            "engine": engine,
            "weights": profile,
            "prompt": self.prompt,
            "reference_text": self.reference_text,
            "has_reference": self.reference is not None,
            "seed": seed,
            "request_seed": self.seed,
            "num": self.num,
            "params": dict(self.params),
            "image_size": [int(self.image.shape[1]), int(self.image.shape[0])],
            "sha256": self.input_hashes(),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "version": __version__,
            **extra,
        }


@dataclass
class Candidate:
    """One synthesised sample: composited image, 0/255 label mask, its seed and metadata."""

    image: np.ndarray
    mask: np.ndarray
    seed: int
    metadata: dict[str, Any]

    @property
    def score(self) -> float | None:
        """The engine's quality score (higher is better), from ``metadata["score"]["value"]``."""
        value = (self.metadata.get("score") or {}).get("value")
        return None if value is None else float(value)


@dataclass
class AttentionStep:
    """One ASEA optimisation step: attention heat map over the reference (H, W, float 0..1)."""

    heatmap: np.ndarray
    inmask_fraction: float
    loss: float | None = None


@dataclass
class AttentionTrace:
    """The ASEA attention maps per step, or why there are none (``skipped``)."""

    steps: list[AttentionStep] = field(default_factory=list)
    skipped: str | None = None
    note: str = ""

    @property
    def inmask_fractions(self) -> list[float]:
        return [s.inmask_fraction for s in self.steps]


def _check_image(image: np.ndarray, what: str) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"The {what} must be an RGB uint8 array; load it with studio.imaging.load_image.")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"The {what} is empty.")


def whole_number(value: Any, lo: float, hi: float) -> int | None:
    """``value`` (a number or its text) as an int when it is a whole number from ``lo`` to ``hi``, else None:
    the one whole-number reading of the studio (UI, API, batch spec, requests)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(number) or number != int(number) or not lo <= number <= hi:
        return None
    return int(number)


def _check_int(value: Any, what: str, lo: int, hi: int) -> int:
    number = whole_number(value, lo, hi)
    if number is None:
        raise InputError(f"The {what} must be a whole number from {lo} to {hi}, got {value!r}.")
    return number
