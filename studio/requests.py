"""The one place where inputs become a :class:`~studio.types.SynthesisRequest` (CLI, batch, UI, API).

Each input may be anything :func:`studio.imaging.load_image` / :func:`~studio.imaging.load_mask`
accept: a path, bytes, a file object, a PIL image or an array. Masks are resized to their image
and checked (not empty, not almost everything); ``where`` (e.g. ``" of job 3"``) is appended to
every input's name so an error says which input of which job is wrong. The defect mask may
also be a function of the image's (width, height) that draws it (a batch mask generator).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Union

import numpy as np

from studio.errors import InputError
from studio.imaging import ImageSource, check_mask, load_image, load_mask
from studio.types import SynthesisRequest

if TYPE_CHECKING:
    from studio.engines import Engine


MaskSource = Union[ImageSource, Callable[[tuple[int, int]], np.ndarray]]


class RequestInputs(NamedTuple):
    """Decoded inputs: normal image (RGB uint8), its defect mask (bool) and the optional reference pair."""

    image: np.ndarray
    mask: np.ndarray
    reference: np.ndarray | None
    reference_mask: np.ndarray | None


def load_request_inputs(image: ImageSource, mask: MaskSource, reference: ImageSource | None = None,
                        reference_mask: ImageSource | None = None, *, where: str = "",
                        empty_reference_mask_is_none: bool = False) -> RequestInputs:
    """Decode and check image, mask, reference and reference mask.

    ``empty_reference_mask_is_none``: a reference mask with nothing marked counts as no mask
    (what an untouched editor sends) instead of being an error.
    """
    if image is None:
        raise InputError(f"The normal image{where} is missing.")
    if mask is None:
        raise InputError(f"The defect mask{where} is missing: mark the region where the defect goes.")
    normal = load_image(image, what=f"normal image{where}")
    raw = mask(_size(normal)) if callable(mask) else load_mask(mask, _size(normal), what=f"defect mask{where}")
    region = check_mask(np.asarray(raw, bool), f"defect region{where}")
    ref = load_image(reference, what=f"reference image{where}") if reference is not None else None
    ref_mask = None
    if reference_mask is not None:
        if ref is None:
            raise InputError(f"A reference mask{where} was given without a reference image.")
        ref_mask = load_mask(reference_mask, _size(ref), what=f"reference mask{where}")
        if empty_reference_mask_is_none and not ref_mask.any():
            ref_mask = None
        else:
            ref_mask = check_mask(ref_mask, f"reference mask{where}")
    return RequestInputs(normal, region, ref, ref_mask)


def build_request(image: ImageSource, mask: MaskSource, *, reference: ImageSource | None = None,
                  reference_mask: ImageSource | None = None, prompt: str | None, reference_text: str | None = "",
                  num: Any = 1, seed: Any = 0, params: dict[str, Any] | None = None, where: str = "",
                  empty_reference_mask_is_none: bool = False, engine: Engine | None = None) -> SynthesisRequest:
    """Load every input (:func:`load_request_inputs`) and validate the whole request; with ``engine``
    the parameters are exactly the ones it declares (a name it does not use is refused)."""
    inputs = load_request_inputs(image, mask, reference, reference_mask, where=where,
                                 empty_reference_mask_is_none=empty_reference_mask_is_none)
    return SynthesisRequest.create(
        inputs.image, inputs.mask, prompt, reference=inputs.reference, reference_mask=inputs.reference_mask,
        reference_text=reference_text, num=num, seed=seed, params=params,
        parameters=None if engine is None else engine.parameters(),
        owner="" if engine is None else f"The {engine.label} engine",
    )


def _size(image: np.ndarray) -> tuple[int, int]:
    return image.shape[1], image.shape[0]
