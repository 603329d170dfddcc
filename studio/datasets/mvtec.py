"""The MVTec (anomalib) layout: the reader (evaluation, training) and the writer (exports).

A category folder holds::

    train/good/*.png                     normal images
    test/good/*.png                      normal test images
    test/<defect>/*.png                  anomalous images
    ground_truth/<defect>/<stem>_mask.png   their masks (``<stem>.png`` is accepted too)

A *root* holds one such folder per category. Either may be given wherever a folder is asked for.
Every file is decoded through the studio's validating loader and resized to a square side.
The writer names folders from user text through :mod:`studio.naming` and numbers files ``NNN``.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import cv2
import numpy as np

from studio.errors import InputError
from studio.imaging import IMAGE_SUFFIXES, load_image, load_mask
from studio.naming import NameAllocator
from studio.store import DEFAULT_CATEGORY, DEFAULT_DEFECT_TYPE, SampleRecord

if TYPE_CHECKING:
    from studio.datasets.sink import Progress, Sink

GOOD = "good"


@dataclass(frozen=True)
class Sample:
    """One image file, its mask file (None for normal images) and where it came from."""

    image: Path
    mask: Path | None
    defect: str  # "good" for normal images

    @property
    def anomalous(self) -> bool:
        return self.defect != GOOD


@dataclass(frozen=True)
class Category:
    """One MVTec-layout category folder, listed (not yet decoded)."""

    name: str
    root: Path
    train_good: tuple[Sample, ...]
    test: tuple[Sample, ...]

    @property
    def test_anomalous(self) -> tuple[Sample, ...]:
        return tuple(s for s in self.test if s.anomalous)

    @property
    def test_good(self) -> tuple[Sample, ...]:
        return tuple(s for s in self.test if not s.anomalous)

    def counts(self) -> dict[str, int]:
        return {
            "train_good": len(self.train_good),
            "test_good": len(self.test_good),
            "test_anomalous": len(self.test_anomalous),
        }


def is_category(folder: Path) -> bool:
    """A category folder has a ``train`` or a ``test`` sub-folder."""
    return (folder / "train").is_dir() or (folder / "test").is_dir()


def find_categories(root: str | Path, what: str = "dataset folder") -> list[Category]:
    """The categories under ``root`` (or ``root`` itself when it is a category folder), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"The {what} {str(root)!r} does not exist or is not a folder.")
    if is_category(root):
        folders = [root]
    else:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and is_category(p))
    if not folders:
        raise InputError(
            f"The {what} {str(root)!r} is not in the MVTec layout: expected <category>/train/good, "
            f"<category>/test/<defect> and <category>/ground_truth/<defect> (or those folders directly)."
        )
    return [read_category(folder) for folder in folders]


def read_category(folder: Path) -> Category:
    """List one category folder; every anomalous test image must have its mask."""
    train_good = tuple(Sample(p, None, GOOD) for p in _images(folder / "train" / GOOD))
    test: list[Sample] = []
    test_dir = folder / "test"
    if test_dir.is_dir():
        for defect_dir in sorted(p for p in test_dir.iterdir() if p.is_dir()):
            defect = defect_dir.name
            for image in _images(defect_dir):
                mask = None if defect == GOOD else _mask_for(folder, defect, image)
                test.append(Sample(image, mask, defect))
    return Category(folder.name, folder, train_good, tuple(test))


def pair_categories(train: Sequence[Category], test: Sequence[Category]) -> list[tuple[Category, Category]]:
    """Match train and test categories by name; a single category on each side pairs whatever the names."""
    if len(train) == 1 and len(test) == 1:
        return [(train[0], test[0])]
    by_name = {c.name: c for c in test}
    pairs = [(c, by_name[c.name]) for c in train if c.name in by_name]
    if not pairs:
        raise InputError(
            "The training and test folders share no category name "
            f"(train: {', '.join(c.name for c in train)}; test: {', '.join(c.name for c in test)})."
        )
    return pairs


def training_samples(category: Category) -> list[Sample]:
    """Everything in a training folder: normal images (train/good, test/good) and labelled anomalies."""
    return list(category.train_good) + list(category.test)


def load_sample(sample: Sample, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode an image (RGB uint8, size x size) and its boolean mask (all False for normal images)."""
    image = load_image(sample.image, what=f"image {sample.image}")
    if image.shape[:2] != (size, size):
        interpolation = cv2.INTER_AREA if min(image.shape[:2]) > size else cv2.INTER_LINEAR
        image = cv2.resize(image, (size, size), interpolation=interpolation)
    if sample.mask is None:
        return image, np.zeros((size, size), bool)
    return image, load_mask(sample.mask, (size, size), what=f"mask {sample.mask}")


def load_samples(samples: Iterable[Sample], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack decoded samples: images (N, size, size, 3) uint8 and masks (N, size, size) bool."""
    images, masks = [], []
    for sample in samples:
        image, mask = load_sample(sample, size)
        images.append(image)
        masks.append(mask)
    if not images:
        return np.zeros((0, size, size, 3), np.uint8), np.zeros((0, size, size), bool)
    return np.stack(images), np.stack(masks)


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def _mask_for(category: Path, defect: str, image: Path) -> Path:
    folder = category / "ground_truth" / defect
    for suffix in (image.suffix, ".png", *sorted(IMAGE_SUFFIXES)):
        for stem in (f"{image.stem}_mask", image.stem):
            candidate = folder / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    raise InputError(
        f"The anomalous image {str(image)!r} has no mask: expected "
        f"{str(folder / (image.stem + '_mask.png'))!r}."
    )


def write_mvtec(records: list[SampleRecord], sink: "Sink", progress: "Progress", *,
                reserved: Sequence[str] = ()) -> dict[str, Any]:
    """Write ``records`` per category as train/good (their normals), test/<defect>, ground_truth/<defect>.

    ``reserved`` are top-level names the category folders must not take (the export's manifest).
    """
    categories = NameAllocator(DEFAULT_CATEGORY, reserved=tuple(reserved))
    by_category: dict[str, list[SampleRecord]] = defaultdict(list)
    for rec in records:
        by_category[rec.category].append(rec)
    files: list[dict[str, Any]] = []
    for category, recs in by_category.items():
        cdir = categories(category)
        defects = NameAllocator(DEFAULT_DEFECT_TYPE, reserved=(GOOD,))  # test/good means "normal"
        train = f"{cdir}/train/{GOOD}"
        normals: dict[Path, str] = {}
        counters: dict[str, int] = defaultdict(int)
        for rec in recs:
            if rec.normal_path not in normals:
                normals[rec.normal_path] = f"{train}/{len(normals):03d}.png"
                sink.copy(rec.normal_path, normals[rec.normal_path])
            folder = defects(rec.defect_type)
            n = counters[folder]
            counters[folder] += 1
            image, mask = f"{cdir}/test/{folder}/{n:03d}.png", f"{cdir}/ground_truth/{folder}/{n:03d}_mask.png"
            sink.copy(rec.image_path, image)
            sink.copy(rec.mask_path, mask)
            files.append({"id": rec.id, "category": rec.category, "defect_type": rec.defect_type,
                          "image": image, "mask": mask, "normal": normals[rec.normal_path]})
            progress.step(rec.id)
    return {"samples": files}
