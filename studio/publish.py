"""The Hugging Face Hub: reachability, one wording for its errors, and pushing an exported dataset.

Everything goes through huggingface_hub (and ``datasets.push_to_hub`` for datasets); this module
only decides what the user is told. The endpoint is read at call time (``HF_ENDPOINT``), tokens come
from huggingface_hub's own sources (``HF_TOKEN`` or ``hf auth login``) and are never logged, printed
or written into a card: :func:`scrub` removes anything token-shaped from text that goes out.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
from collections import Counter
from pathlib import Path
from typing import Iterator

from studio import __version__
from studio.atomic import is_disk_full
from studio.errors import InputError, StudioError

_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{8,}\b")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class HubError(StudioError):
    """The hub could not be used (offline, unreachable, not found, not allowed); the message says what to do."""


def endpoint() -> str:
    """The hub endpoint in force: ``HF_ENDPOINT`` at call time, else huggingface_hub's default."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set to a true value."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in ("1", "ON", "YES", "TRUE") or constants.HF_HUB_OFFLINE


def offline_message(action: str) -> str:
    """The one message for offline mode (``action`` e.g. "fetched", "uploaded")."""
    return (f"HF_HUB_OFFLINE is set, so nothing was {action}: run this on a connected machine without "
            "HF_HUB_OFFLINE, or copy the files in by hand (see weights/README.md).")


def require_online(action: str) -> None:
    """Raise the offline :class:`HubError` when offline mode is on."""
    if offline():
        raise HubError(offline_message(action))


def check_repo_id(repo: str, what: str = "repository") -> str:
    """``repo`` if it is a ``user/name`` hub id, else an :class:`InputError`."""
    repo = (repo or "").strip()
    if not _REPO_ID.match(repo):
        raise InputError(f"{repo!r} is not a hub {what} id: use the form user/name.")
    return repo


def scrub(text: str) -> str:
    """``text`` with anything shaped like a hub token replaced by ``hf_***``."""
    return _TOKEN.sub("hf_***", text)


def command_line(argv: list[str]) -> str:
    """``argv`` as a shell command, with tokens scrubbed (for a card's "how it was made")."""
    return scrub(shlex.join(argv))


@contextlib.contextmanager
def hub_errors(action: str, repo: str) -> Iterator[None]:
    """Turn huggingface_hub's and the network's errors while ``action`` (e.g. "fetched") into one HubError."""
    import httpx
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = endpoint()
    try:
        yield
    except OfflineModeIsEnabled:
        raise HubError(offline_message(action)) from None
    except GatedRepoError:
        raise HubError(f"{repo} is gated on {where}: accept its terms on the hub page, then log in with "
                       "`hf auth login` (or set HF_TOKEN) and run the command again.") from None
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise HubError(f"The repository {repo} was not found on {where} (a private one needs "
                       "`hf auth login` or HF_TOKEN): nothing was " + action + ".") from None
    except (httpx.ConnectError, httpx.TimeoutException, LocalEntryNotFoundError) as exc:
        reason = _reason(exc.__cause__ or exc)
        raise HubError(f"The hub at {where} cannot be reached ({reason}), so nothing was {action}: check the "
                       "network, or copy the files in by hand (see weights/README.md).") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        if status in (401, 403):
            raise HubError(f"The hub at {where} refused access to {repo} (HTTP {status}): log in with "
                           "`hf auth login` or set HF_TOKEN to a token with the right access.") from None
        raise HubError(f"The hub at {where} answered HTTP {status} for {repo}, so not everything was {action}: "
                       "run the same command again (finished files are kept).") from None
    except httpx.HTTPError as exc:
        raise HubError(f"The transfer with {where} broke off ({_reason(exc)}), so not everything was {action}: "
                       "run the same command again (finished files are kept).") from None
    except OSError as exc:
        if is_disk_full(exc):
            free = shutil.disk_usage(Path(exc.filename).parent if exc.filename else ".").free
            raise HubError(f"The disk is full ({free / 1e9:.1f} GB free), so not everything was {action}: free "
                           "some space and run the same command again (finished files are kept).") from None
        if "Consistency check failed" in str(exc):  # a download that ended short
            raise HubError(f"A download from {where} ended early, so not everything was {action}: run the same "
                           "command again (finished files are kept).") from None
        raise


def _reason(exc: BaseException) -> str:
    text = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    return text[:160]


# --------------------------------------------------------------------------- datasets


def dataset_summary(folder: Path) -> dict:
    """Counts per category, per (category, defect type) and per engine, from an imagefolder ``metadata.jsonl``."""
    meta = folder / "metadata.jsonl"
    if not meta.is_file():
        raise InputError(f"{folder} is not an imagefolder export (no metadata.jsonl): export with "
                         "--format imagefolder to push a dataset.")
    rows = [json.loads(line) for line in meta.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {
        "samples": len(rows),
        "categories": dict(sorted(Counter(r.get("category") or "unknown" for r in rows).items())),
        "defects": dict(sorted(Counter(f"{r.get('category') or 'unknown'} / {r.get('defect_type') or 'unknown'}"
                                       for r in rows).items())),
        "engines": dict(sorted(Counter(
            f"{r.get('engine') or 'unknown'} ({r.get('weights') or 'none'}"
            + (f", guidance {r['guidance_mode']}" if r.get("guidance_mode") else "") + ")" for r in rows).items())),
    }


def dataset_card(summary: dict, *, license: str, repo: str, command: str):
    """The dataset card (``datasets.push_to_hub`` later adds its ``dataset_info`` to the same file)."""
    from huggingface_hub import DatasetCard, DatasetCardData

    n = summary["samples"]
    data = DatasetCardData(
        license=license, task_categories=["image-segmentation"], size_categories=[_size_category(n)],
        tags=["anomaly-detection", "synthetic", "defect-synthesis", "anomaly-studio"], pretty_name=repo.split("/")[1],
    )
    table = "\n".join(f"| {k} | {v} |" for k, v in summary["defects"].items())
    engines = "\n".join(f"- {k}: {v} sample(s)" for k, v in summary["engines"].items())
    body = f"""
# {repo.split('/')[1]}

Pixel-labelled defect images made with AnomalyControl Studio {__version__}: each sample is a normal
product photo with a synthesised defect inside a region sketched by a person, the label mask of that
region, and the normal image it started from. Every sample was accepted by hand in the studio.

- Samples: {n}
- Licence: {license}

## Samples per category and defect type

| category / defect type | samples |
|---|---|
{table}

## Engines

{engines}

Guidance of the `anomalycontrol` samples: `sga` is the paper's method (a trained Semantic Guided
Adapter), `ip-adapter` is reference guidance through IP-Adapter's public SD-1.5 weights (not the
paper's method; not trained on anomalies), `text` is plain inpainting with the prompt (the reference
did not steer the pixels).

## How it was made

Synthesised in AnomalyControl Studio (engines: `anomalycontrol`, the method of He et al., arXiv
2412.06510, or the weight-free `classic` engine), curated by hand, exported as a Hugging Face
imagefolder (columns `image`, `mask`, `normal`, the prompts, seeds, engine parameters and the full
metadata of each sample as JSON) and pushed with:

```bash
{command}
```
"""
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n{scrub(body)}")


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return name
    return "100K<n<1M"


def check_push(repo: str, fmt: str, make_zip: bool) -> None:
    """Refuse a dataset push that cannot work, before anything is exported (imagefolder folders only)."""
    check_repo_id(repo, "dataset")
    if fmt != "imagefolder" or make_zip:
        raise InputError("--push-to-hub pushes an imagefolder export: use --format imagefolder without --zip.")
    require_online("uploaded")


def push_dataset(folder: str | os.PathLike, repo: str, *, command: list[str], license: str = "unknown",
                 private: bool = False) -> str:
    """Push an imagefolder export to the dataset repo ``repo`` with its card; returns the dataset's URL.

    The card goes first, then ``datasets.push_to_hub`` writes the parquet shards and merges its
    ``dataset_info`` into that card.
    """
    from huggingface_hub import HfApi

    repo = check_repo_id(repo, "dataset")
    folder = Path(folder)
    summary = dataset_summary(folder)
    require_online("uploaded")
    card = dataset_card(summary, license=license, repo=repo, command=command_line(command))
    try:
        import datasets
    except ImportError:
        raise InputError("Pushing a dataset needs the `datasets` package: pip install datasets") from None
    with hub_errors("uploaded", repo):
        api = HfApi(endpoint=endpoint())
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        api.upload_file(path_or_fileobj=str(card).encode("utf-8"), path_in_repo="README.md", repo_id=repo,
                        repo_type="dataset", commit_message="Dataset card (AnomalyControl Studio)")
        loaded = datasets.load_dataset("imagefolder", data_dir=str(folder))
        loaded.push_to_hub(repo, private=private, commit_message=f"{summary['samples']} samples from AnomalyControl Studio")
    return f"{endpoint()}/datasets/{repo}"
