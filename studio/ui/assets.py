"""The shipped examples the studio offers one click away: normal images and reference anomalies.

Read from ``assets/manifest.json``; entries whose files are missing are skipped, and without a
manifest every image directly in ``assets/`` counts as a normal sample.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from studio import config
from studio.imaging import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

#: Defect types offered before any are in use (and read from a sample's suggested description).
COMMON_DEFECTS = ("scratch", "crack", "hole", "stain", "contamination", "dent", "broken")


@dataclass(frozen=True)
class NormalSample:
    """A defect-free product photo."""

    name: str
    path: Path
    category: str = ""
    #: A suggested defect region and description for this sample (optional).
    mask_path: Path | None = None
    prompt: str = ""


@dataclass(frozen=True)
class ReferenceExample:
    """An anomaly picture, the mask of its anomalous region and a sentence about it."""

    name: str
    path: Path
    mask_path: Path | None
    text: str
    defect_type: str = ""
    category: str = ""


@dataclass(frozen=True)
class Example:
    """One row of the examples: a sample with its suggested region and description, the reference
    anomaly that fits it (if any) and the defect type that a decision would store."""

    normal: NormalSample
    reference: ReferenceExample | None
    defect_type: str


@dataclass(frozen=True)
class Assets:
    normals: tuple[NormalSample, ...]
    references: tuple[ReferenceExample, ...]

    def examples(self) -> tuple[Example, ...]:
        """Every normal sample paired with the first reference whose defect type its description
        names; the defect type is that reference's, else the first common one the description names."""
        rows = []
        for sample in self.normals:
            words = sample.prompt.lower()
            reference = next((r for r in self.references if r.defect_type and r.defect_type in words), None)
            defect = reference.defect_type if reference else next((d for d in COMMON_DEFECTS if d in words), "")
            rows.append(Example(sample, reference, defect))
        return tuple(rows)


def _first(entry: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if entry.get(key) not in (None, ""):
            return entry[key]
    return default


def _resolve(root: Path, value: Any) -> Path | None:
    if not isinstance(value, str) or not value:
        return None
    path = (root / value).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        return None
    return path


def _entries(manifest: dict[str, Any], *keys: str) -> list[Any]:
    for key in keys:
        value = manifest.get(key)
        if isinstance(value, list):
            return value
        if isinstance(value, dict):  # {"name": {...}} form
            return [dict(v, name=k) if isinstance(v, dict) else {"name": k, "image": v} for k, v in value.items()]
    return []


def parse_manifest(manifest: dict[str, Any], root: Path) -> Assets:
    """Normal samples and reference examples from a manifest dict; tolerant of key spellings."""
    normals: list[NormalSample] = []
    for entry in _entries(manifest, "normals", "normal", "normal_images", "samples"):
        if isinstance(entry, str):
            entry = {"image": entry}
        if not isinstance(entry, dict):
            continue
        path = _resolve(root, _first(entry, "image", "path", "file"))
        if path is None:
            continue
        name = str(_first(entry, "name", "id", "title", default=path.stem))
        normals.append(NormalSample(
            name=name, path=path, category=str(_first(entry, "category", "name", "id", default="")),
            mask_path=_resolve(root, _first(entry, "mask", "mask_path")),
            prompt=str(_first(entry, "prompt", "description_prompt", default="")),
        ))
    references: list[ReferenceExample] = []
    for entry in _entries(manifest, "references", "reference", "reference_anomalies", "anomalies"):
        if not isinstance(entry, dict):
            continue
        path = _resolve(root, _first(entry, "image", "path", "file"))
        if path is None:
            continue
        references.append(
            ReferenceExample(
                name=str(_first(entry, "name", "id", "title", default=path.stem)),
                path=path,
                mask_path=_resolve(root, _first(entry, "mask", "mask_path")),
                text=str(_first(entry, "text", "reference_text", "description", "caption", default="")),
                defect_type=str(_first(entry, "defect_type", "defect", "type", default="")),
                category=str(_first(entry, "category", default="")),
            )
        )
    return Assets(tuple(normals), tuple(references))


@lru_cache(maxsize=4)
def load_assets(root: Path | None = None) -> Assets:
    """The shipped examples under ``root`` (default: the repository's ``assets/``)."""
    root = Path(root or config.ASSETS_DIR)
    manifest_path = root / "manifest.json"
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if isinstance(manifest, dict):
                return parse_manifest(manifest, root)
        except (OSError, ValueError):
            log.warning("assets/manifest.json is unreadable; falling back to the images in assets/")
    if not root.is_dir():
        return Assets((), ())
    images = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return Assets(tuple(NormalSample(name=p.stem, path=p) for p in images), ())
