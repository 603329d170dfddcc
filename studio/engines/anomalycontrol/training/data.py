"""Training data for the Semantic Guided Adapter: anomalies in the MVTec layout, captions, non-matching references.

Reads every ``<category>/test/<defect>/*.png`` with its ``ground_truth/<defect>/*_mask.png`` under a
root (or one category folder) — the layout ``anomaly-studio export --format mvtec`` writes, so
curated samples can train the adapter. Each anomaly's caption comes from a JSON file (image path
-> text; paths absolute or relative to the data root or to the JSON file) or from a template
built from category and defect type.

Each anomaly is paired with a reference (:data:`PAIRINGS`). The default, ``self``, is the authors':
their dataset computes the BLIP-2 feature from the training image itself with its own caption and
mask; the *non-matching* pair (reference prompt vs target prompt) is how the adapter is used at
inference. Two options are ours, not the authors': ``same-category`` (another image of the same
defect type within the same category, else another anomaly of that category, else any other) and
``same-defect`` (a defect name pooled across categories).

Which anomalies train (:data:`SPLITS`): by default the authors' split, the first third (at least
one) of each category's defect type, sorted by file name, leaving two thirds for testing; ``all``
(ours) trains on every image, so evaluating on the same folder would measure images the adapter saw.
The adapter records the sha256 of every training image (:meth:`TrainingSet.image_sha256`) and
``evaluate --adapter`` refuses test images among them.

Every sample is cut with the engine's own :func:`~studio.engines.anomalycontrol.inpainting.work_region`
(a square around the mask at the model's resolution), so training sees each anomaly at the scale
and aspect inference will. The sample order and the reference drawn at every position of the sample
stream depend only on the seed, so a resumed run sees exactly the batches an uninterrupted one would.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from studio.datasets.mvtec import Sample, find_categories
from studio.engines.anomalycontrol.inpainting import work_region
from studio.errors import InputError, StudioError
from studio.imaging import load_image, load_mask

log = logging.getLogger(__name__)

#: How each anomaly's reference is chosen (``--pairing``); the first (the authors') is the default.
PAIRINGS = ("self", "same-category", "same-defect")
#: Which anomalies train (``--split``): the authors' first third per defect type (default), or all of them.
SPLITS = ("authors", "all")


@dataclass(frozen=True)
class Anomaly:
    """One anomalous training image, its mask, where it came from and its caption."""

    image: Path
    mask: Path
    category: str
    defect: str
    caption: str


@dataclass(frozen=True)
class TrainingSet:
    """Every anomaly of a data folder and, for each, the anomalies it may take as its reference."""

    root: Path
    anomalies: tuple[Anomaly, ...]
    references: tuple[tuple[int, ...], ...]
    pairing: str = PAIRINGS[0]
    split: str = SPLITS[0]

    def __len__(self) -> int:
        return len(self.anomalies)

    def fingerprint(self) -> str:
        """A short hash of the file list and captions (to notice a changed folder on resume)."""
        digest = hashlib.sha256()
        for a in self.anomalies:
            digest.update(f"{a.image.relative_to(self.root)}\0{a.caption}\n".encode("utf-8", "surrogateescape"))
        return digest.hexdigest()[:16]

    def image_sha256(self) -> list[str]:
        """The sha256 of every training image's file, sorted (recorded in the adapter)."""
        return sorted({hashlib.sha256(a.image.read_bytes()).hexdigest() for a in self.anomalies})

    def summary(self) -> str:
        counts: dict[str, int] = defaultdict(int)
        for a in self.anomalies:
            counts[a.defect] += 1
        types = ", ".join(f"{d} ({n})" for d, n in sorted(counts.items()))
        split = "the authors' split: first third of each defect type" if self.split == "authors" else "all images"
        return f"{len(self)} anomaly images of {len(counts)} defect type(s) ({split}): {types}"


def template_caption(category: str, defect: str) -> str:
    """The caption used when the captions file has none: ``a bottle with a broken large defect``."""
    def words(name: str) -> str:
        return " ".join(name.replace("_", " ").replace("-", " ").split())

    return f"a {words(category)} with a {words(defect)} defect"


def authors_split(samples: list[Sample]) -> list[Sample]:
    """The first third (at least one) of each defect type's images, sorted by file name (the authors' training part)."""
    by_defect: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_defect[sample.defect].append(sample)
    kept = []
    for defect in sorted(by_defect):
        ordered = sorted(by_defect[defect], key=lambda s: s.image.name)
        kept.extend(ordered[:max(1, len(ordered) // 3)])
    return kept


def read_training_set(root: str | Path, captions: str | Path | None = None, pairing: str = PAIRINGS[0],
                      split: str = SPLITS[0]) -> TrainingSet:
    """List the training anomalies under ``root`` with captions and reference pools; raises InputError on bad data."""
    if pairing not in PAIRINGS:
        raise InputError(f"--pairing must be one of {', '.join(PAIRINGS)} (got {pairing!r}).")
    if split not in SPLITS:
        raise InputError(f"--split must be one of {', '.join(SPLITS)} (got {split!r}).")
    categories = find_categories(root, what="training data folder")
    pick = authors_split if split == "authors" else list
    found: list[tuple[str, Sample]] = [(c.name, s) for c in categories for s in pick(list(c.test_anomalous))]
    if not found:
        raise InputError(
            f"The training data folder {str(root)!r} has no anomaly images: expected "
            "<category>/test/<defect>/*.png with masks in <category>/ground_truth/<defect>/*_mask.png."
        )
    if len(found) < 2 and pairing != "self":
        raise InputError(
            f"The training data folder {str(root)!r} has a single anomaly image; each anomaly needs another "
            "one as its (non-matching) reference: add at least one more."
        )
    root = Path(root)
    texts = load_captions(captions, root) if captions else {}
    anomalies = []
    for category, sample in found:
        assert sample.mask is not None  # read_category guarantees a mask for every anomalous image
        caption = texts.pop(sample.image.resolve(), None) or template_caption(category, sample.defect)
        anomalies.append(Anomaly(sample.image, sample.mask, category, sample.defect, caption))
    if texts:
        log.warning("%d caption(s) in %s name no anomaly image of the data folder (e.g. %s); they are ignored.",
                    len(texts), captions, next(iter(texts)))
    return TrainingSet(root, tuple(anomalies), reference_pools(anomalies, pairing), pairing, split)


def load_captions(path: str | Path, root: Path) -> dict[Path, str]:
    """Resolved image path -> caption from a JSON object; keys absolute or relative to ``root`` or the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"The captions file {str(path)!r} could not be read ({exc.strerror or exc}).") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"The captions file {str(path)!r} is not valid JSON ({str(exc)[:120]}).") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise InputError(f"The captions file {str(path)!r} must be one JSON object mapping image paths to texts.")
    captions: dict[Path, str] = {}
    for key, text in data.items():
        if not text.strip():
            continue
        candidates = [Path(key)] if Path(key).is_absolute() else [root / key, path.parent / key]
        target = next((c for c in candidates if c.is_file()), candidates[0])
        captions[target.resolve()] = " ".join(text.split())
    return captions


def reference_pools(anomalies: list[Anomaly], pairing: str = PAIRINGS[0]) -> tuple[tuple[int, ...], ...]:
    """For each anomaly, the anomalies it may take as its reference under ``pairing`` (see :data:`PAIRINGS`)."""
    if pairing == "self":
        return tuple((i,) for i in range(len(anomalies)))
    keys = [(lambda a: a.defect)] if pairing == "same-defect" else [(lambda a: (a.category, a.defect)),
                                                                     (lambda a: a.category)]
    groups = [_group(anomalies, key) for key in keys]
    pools, widened = [], set()
    for i, a in enumerate(anomalies):
        candidates = [tuple(j for j in group[key(a)] if j != i) for key, group in zip(keys, groups)]
        pool = next((c for c in candidates if c), tuple(j for j in range(len(anomalies)) if j != i))
        if not candidates[0]:
            widened.add(f"{a.category}/{a.defect}" if pairing == "same-category" else a.defect)
        pools.append(pool)
    if widened:
        log.warning("Defect type(s) with a single image take their references more widely (same category, else any): %s.", ", ".join(sorted(widened)))
    return tuple(pools)


def _group(anomalies: list[Anomaly], key) -> dict:
    groups: dict = defaultdict(list)
    for i, a in enumerate(anomalies):
        groups[key(a)].append(i)
    return groups


def sample_position(position: int, size: int, seed: int) -> int:
    """The anomaly at ``position`` of the endless sample stream: one seeded permutation per epoch."""
    epoch, offset = divmod(position, size)
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return int(order[offset])


def reference_choice(pool: tuple[int, ...], position: int, seed: int) -> int:
    """The reference drawn for the sample at ``position`` (depends only on seed and position)."""
    return pool[int(np.random.default_rng([seed, position]).integers(len(pool)))]


class AnomalyPairs(torch.utils.data.Dataset):
    """Position in the sample stream -> the anomaly's work region (image in [-1, 1], mask in {0, 1}), caption, reference.

    Decoding errors come back as an ``error`` entry (a DataLoader worker would bury the one-sentence
    message under a traceback); :func:`check_batch` raises them in the main process.
    """

    def __init__(self, data: TrainingSet, resolution: int, seed: int):
        self.data = data
        self.resolution = resolution
        self.seed = seed

    def __len__(self) -> int:  # positions are unbounded; this is one epoch
        return len(self.data)

    def __getitem__(self, position: int) -> dict:
        index = sample_position(position, len(self.data), self.seed)
        anomaly = self.data.anomalies[index]
        try:
            image, mask = load_anomaly(anomaly)
            if not mask.any():
                raise InputError(f"The mask {str(anomaly.mask)!r} is empty: mark the defect or remove the image.")
            region = work_region(mask, self.resolution)
            image, mask = region.crop(image), region.crop_mask(mask)
        except StudioError as exc:
            return {"error": str(exc)}
        return {
            "image": torch.tensor(image).permute(2, 0, 1).float() / 127.5 - 1.0,
            "mask": torch.from_numpy(mask)[None].float(),
            "caption": anomaly.caption,
            "reference": reference_choice(self.data.references[index], position, self.seed),
        }


def check_batch(batch: list[dict]) -> dict:
    """Collate a list of samples; the first decoding error becomes an InputError."""
    for item in batch:
        if "error" in item:
            raise InputError(item["error"])
    return {
        "image": torch.stack([b["image"] for b in batch]),
        "mask": torch.stack([b["mask"] for b in batch]),
        "caption": [b["caption"] for b in batch],
        "reference": [b["reference"] for b in batch],
    }


class StreamBatches(torch.utils.data.Sampler):
    """This process's share of every micro-batch, from micro-batch ``start`` on, for ``count`` micro-batches.

    Micro-batch ``m`` covers stream positions ``[m * B * P, (m + 1) * B * P)`` for batch size B per
    process and P processes; process ``p`` takes the ``p``-th slice of B.
    """

    def __init__(self, batch_size: int, start: int, count: int, process: int = 0, processes: int = 1):
        self.batch_size, self.start, self.count = batch_size, start, count
        self.process, self.processes = process, processes

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[list[int]]:
        per_micro = self.batch_size * self.processes
        for micro in range(self.start, self.start + self.count):
            first = micro * per_micro + self.process * self.batch_size
            yield list(range(first, first + self.batch_size))


def load_anomaly(anomaly: Anomaly) -> tuple[np.ndarray, np.ndarray]:
    """An anomaly at its own size: RGB uint8 image and bool mask (for CSM / ASEA, and cropped for training)."""
    image = load_image(anomaly.image, what=f"reference image {anomaly.image}")
    mask = load_mask(anomaly.mask, (image.shape[1], image.shape[0]), what=f"mask {anomaly.mask}")
    return image, mask
