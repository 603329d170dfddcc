"""What the store holds: sample ids, labels, the records it returns and the samples it is given."""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from studio.errors import InputError
from studio.imaging import label_mask, png_header, to_png_bytes
from studio.jsonfile import json_safe
from studio.types import Candidate, array_sha256, clean_text

DEFAULT_CATEGORY = "product"
DEFAULT_DEFECT_TYPE = "defect"
IMAGE_FILE = "image.png"
MASK_FILE = "mask.png"
METADATA_FILE = "metadata.json"

#: What a sample id may look like: generated ids and batch ids both match; nothing else is accepted.
SAMPLE_ID_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,63}$")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

#: A blob to store: (sha256, then the array to encode, PNG bytes, or a file to copy).
Blob = tuple[str, "np.ndarray | bytes | Path"]


def new_sample_id() -> str:
    """A ULID: 48-bit millisecond timestamp + 80 random bits, 26 Crockford base-32 characters, time-sortable."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def now_iso() -> str:
    """UTC timestamp with milliseconds, ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def clean_label(text: str | None, what: str, default: str) -> str:
    """User text for a category / defect type: cleaned (studio.types.clean_text), ``default`` when empty."""
    return clean_text(text, what) or default


def check_sample_id(sample_id: Any) -> str:
    """``sample_id`` if it is a well-formed id, else InputError."""
    if not isinstance(sample_id, str) or not SAMPLE_ID_RE.match(sample_id):
        raise InputError(f"{sample_id!r} is not a sample id.")
    return sample_id


@dataclass
class SampleRecord:
    """One accepted sample as stored: labels, file paths (absolute) and the full metadata."""

    id: str
    category: str
    defect_type: str
    note: str
    accepted_at: str
    image_path: Path
    mask_path: Path
    normal_path: Path
    reference_path: Path | None
    reference_mask_path: Path | None
    metadata: dict
    width: int = 0
    height: int = 0
    job_id: str | None = None


@dataclass
class NewSample:
    """One sample to add with :meth:`Store.add_many` (what :meth:`Store.add` takes, as a record)."""

    candidate: Candidate
    normal_image: np.ndarray
    reference: np.ndarray | None = None
    reference_mask: np.ndarray | None = None
    category: str = ""
    defect_type: str = ""
    note: str = ""
    #: Only for deterministic batch ids (must match SAMPLE_ID_RE); generated when None.
    sample_id: str | None = None
    #: The candidate's image and 0/255 mask already encoded as PNG (a review folder's files): kept as they
    #: are instead of encoded again when their headers match (8-bit RGB and greyscale of the image's size).
    encoded: tuple[bytes, bytes] | None = None


@dataclass
class RecoveryReport:
    """What :meth:`Store.recover` found and removed."""

    temp_entries: int = 0
    orphan_samples: int = 0
    orphan_blobs: int = 0
    damaged_rows: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def cleaned(self) -> int:
        return self.temp_entries + self.orphan_samples + self.orphan_blobs


@dataclass
class PreparedSample:
    """A sample ready to be written: encoded files, labels and the metadata row."""

    id: str
    category: str
    defect_type: str
    note: str
    accepted_at: str
    image_png: bytes
    mask_png: bytes
    width: int
    height: int
    blobs: dict[str, Blob]  # role ("normal", "reference", "reference_mask") -> blob
    metadata: dict[str, Any]
    job_id: str | None = None
    folder: str = ""

    @classmethod
    def from_record(cls, rec: SampleRecord) -> "PreparedSample":
        """Another store's record, to copy as it is (same id, labels, metadata and files)."""
        blobs: dict[str, Blob] = {"normal": (rec.normal_path.stem, rec.normal_path)}
        if rec.reference_path is not None:
            blobs["reference"] = (rec.reference_path.stem, rec.reference_path)
        if rec.reference_mask_path is not None:
            blobs["reference_mask"] = (rec.reference_mask_path.stem, rec.reference_mask_path)
        return cls(rec.id, rec.category, rec.defect_type, rec.note, rec.accepted_at, rec.image_path.read_bytes(),
                   rec.mask_path.read_bytes(), rec.width, rec.height, blobs, rec.metadata, rec.job_id)


def prepare(sample: NewSample, job_id: str | None) -> PreparedSample:
    """Validate a new sample and encode its files; the id is the given one or a new ULID."""
    cand = sample.candidate
    image = np.asarray(cand.image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InputError("The candidate image must be an RGB uint8 array.")
    h, w = image.shape[:2]
    mask = _label(cand.mask, (h, w), "candidate mask")
    normal = np.asarray(sample.normal_image)
    if normal.dtype != np.uint8 or normal.shape != image.shape:
        raise InputError(f"The normal image must be an RGB uint8 array of the candidate's size ({w}x{h}).")
    blobs: dict[str, Blob] = {"normal": _blob(normal)}
    if sample.reference_mask is not None and sample.reference is None:
        raise InputError("A reference mask was given without a reference image.")
    if sample.reference is not None:
        ref = np.asarray(sample.reference)
        if ref.dtype != np.uint8 or ref.ndim != 3 or ref.shape[2] != 3:
            raise InputError("The reference image must be an RGB uint8 array.")
        blobs["reference"] = _blob(ref)
        if sample.reference_mask is not None:
            blobs["reference_mask"] = _blob(_label(sample.reference_mask, ref.shape[:2], "reference mask"))
    sample_id = new_sample_id() if sample.sample_id is None else check_sample_id(sample.sample_id)
    category = clean_label(sample.category, "category", DEFAULT_CATEGORY)
    defect_type = clean_label(sample.defect_type, "defect type", DEFAULT_DEFECT_TYPE)
    note = clean_text(sample.note, "note")
    accepted_at = now_iso()
    metadata = json_safe(dict(cand.metadata or {}))
    metadata.setdefault("seed", int(cand.seed))
    metadata.update({
        "id": sample_id, "category": category, "defect_type": defect_type, "note": note,
        "accepted_at": accepted_at, "image_size": [w, h],
        "normal_sha256": blobs["normal"][0],
        "reference_sha256": blobs["reference"][0] if "reference" in blobs else None,
        "reference_mask_sha256": blobs["reference_mask"][0] if "reference_mask" in blobs else None,
    })
    if job_id is not None:
        metadata["batch_job"] = job_id
    image_png, mask_png = _reused(sample.encoded, (w, h)) or (to_png_bytes(image), to_png_bytes(mask))
    return PreparedSample(sample_id, category, defect_type, note, accepted_at, image_png, mask_png, w, h, blobs,
                          metadata, job_id)


def _reused(encoded: tuple[bytes, bytes] | None, size: tuple[int, int]) -> tuple[bytes, bytes] | None:
    """``encoded`` (image, mask PNG bytes) when their headers say 8-bit RGB and greyscale of ``size``, else
    None (encode the arrays): reading a header costs nothing, encoding costs most of an accept."""
    if encoded is None:
        return None
    image, mask = encoded
    return encoded if png_header(image) == (*size, "RGB") and png_header(mask) == (*size, "L") else None


def _label(mask: Any, shape: tuple[int, int], what: str) -> np.ndarray:
    """The 0/255 label of a mask that must have the given (height, width)."""
    mask = np.asarray(mask)
    if mask.shape[:2] != tuple(shape):
        raise InputError(f"The {what} is {mask.shape[1]}x{mask.shape[0]} but its image is {shape[1]}x{shape[0]}.")
    return label_mask(mask)


def _blob(array: np.ndarray) -> Blob:
    array = np.ascontiguousarray(array)
    return array_sha256(array) or "", array
