"""The data that flows through the studio: requests in, candidates and attention traces out.

Images are ``numpy`` arrays: RGB ``uint8`` of shape (H, W, 3); masks are ``bool`` of
shape (H, W) on the way in and ``uint8`` 0/255 on the way out (label masks).
"""
from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
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
    """One tunable request parameter: what an engine's ``parameters()`` lists and the UI/CLI show."""

    name: str
    label: str
    default: float
    minimum: float
    maximum: float
    step: float
    integer: bool = False
    help: str = ""


#: Every request parameter (engines ignore the ones they do not use, but record all of them
#: in metadata); an engine's ``parameters()`` names the ones it uses.
PARAMETERS: dict[str, EngineParameter] = {p.name: p for p in (
    EngineParameter("steps", "denoising steps", 50, 1, 200, 1, True, "Scheduler steps (the model runs strength x steps)."),
    EngineParameter("strength", "strength", 0.7, 0.05, 1.0, 0.05, help="How far the region is noised before denoising."),
    EngineParameter("guidance", "guidance scale", 7.0, 0.0, 30.0, 0.5, help="Classifier-free guidance of the prompt."),
    EngineParameter("sga_scale", "SGA scale (λ)", 1.0, 0.0, 5.0, 0.1, help="Weight of the reference's semantic tokens; 0 = plain inpainting."),
    EngineParameter("ip_adapter_scale", "IP-Adapter scale", 0.6, 0.0, 2.0, 0.05, help="Weight of the reference cut's IP-Adapter tokens (guidance mode ip-adapter); 0 = plain inpainting."),
    EngineParameter("asea_steps", "ASEA steps", 5, 0, 50, 1, True, "Guidance optimisation steps on the reference's attention."),
    EngineParameter("asea_lr", "ASEA learning rate", 0.1, 1e-4, 10.0, 0.01, help="Adam step size of the ASEA guidance variable."),
    EngineParameter("blur_sigma", "composite blur σ (px)", 5.0, 0.0, 50.0, 0.5, help="Feather of the mask the result is composited through."),
    EngineParameter("label_threshold", "label: changed-pixel threshold", 0, 0, 255, 1, True, "0 = the label is the sketched mask (as in the paper); above 0 = the sketched pixels that changed by more than this many grey levels, cleaned."),
)}
#: (default, min, max) of every parameter, for validation.
PARAM_SPECS: dict[str, tuple[float, float, float]] = {
    name: (p.default, p.minimum, p.maximum) for name, p in PARAMETERS.items()
}
INT_PARAMS = frozenset(name for name, p in PARAMETERS.items() if p.integer)


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


def resolve_params(params: dict[str, Any] | None) -> dict[str, float | int]:
    """Fill defaults and check ranges of engine parameters; unknown names are an error."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(PARAM_SPECS))
    if unknown:
        raise InputError(f"Unknown engine parameter(s): {', '.join(unknown)}.")
    resolved: dict[str, float | int] = {}
    for name, (default, lo, hi) in PARAM_SPECS.items():
        value = params.get(name, default)
        if value is None:
            value = default
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InputError(f"The parameter {name} must be a number, got {value!r}.") from None
        if not np.isfinite(number) or not lo <= number <= hi:
            raise InputError(f"The parameter {name} must lie between {lo:g} and {hi:g}, got {value!r}.")
        resolved[name] = int(round(number)) if name in INT_PARAMS else number
    return resolved


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
    params: dict[str, float | int] = field(default_factory=resolve_params)
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
    ) -> "SynthesisRequest":
        """Validate and normalise all fields; raises :class:`InputError` with one clear sentence."""
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
            params=resolve_params(params),
        )

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


def _check_int(value: Any, what: str, lo: int, hi: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"The {what} must be a whole number, got {value!r}.") from None
    if not np.isfinite(number) or number != int(number) or not lo <= number <= hi:
        raise InputError(f"The {what} must be a whole number from {lo} to {hi}, got {value!r}.")
    return int(number)
