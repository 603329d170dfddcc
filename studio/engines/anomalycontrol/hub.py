"""The engine's weights on the Hugging Face Hub: fetch SD-1.5 inpainting, BLIP-2 ITM, IP-Adapter; SGA adapters by id.

- :func:`fetch_weights` downloads the files the engine reads, by name (:data:`weights.SD_FILES`,
  :data:`weights.BLIP_FILES`, :data:`weights.IP_ADAPTER_FILES`: the public SD inpainting repo's fp16
  safetensors, never its pickles, ``.ckpt`` or safety checker), through ``snapshot_download`` (finished
  files are never downloaded twice, a broken transfer resumes), into the hub cache or a
  ``weights/``-style folder, plus an optional adapter, and checks that the engine's file check passes.
- :func:`resolve_adapter` turns an ``--sga`` value (a file, a folder, or a hub id
  ``user/repo[/file.safetensors]``) into a local safetensors file.
- :func:`push_adapter` uploads a trained adapter with a model card.

Nothing here runs at import; huggingface_hub's own progress bars (tqdm) show in a terminal, and a
callback receives the same progress for the studio's status line.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from studio.engines.anomalycontrol.weights import (
    BLIP_DIR, BLIP_FILES, BLIP_REPO, IP_ADAPTER_DIR, IP_ADAPTER_FILE, IP_ADAPTER_FILES, IP_ADAPTER_REPO, SD_DIR,
    SD_FILES, SD_REPO, SGA_FILE, hub_cache_dir, locate, missing_message,
)
from studio.errors import WeightsError
from studio.publish import check_repo_id, command_line, endpoint, hub_errors, require_online, scrub

log = logging.getLogger(__name__)

#: The SGA adapter's file name in a hub repo (what :func:`push_adapter` uploads).
ADAPTER_FILE = "adapter.safetensors"

#: progress(what, done, total, unit): ``unit`` is "files" or "bytes".
FetchProgress = Callable[[str, int, int, str], None]


@dataclass(frozen=True)
class Fetched:
    """Where the fetched pieces are: the weights root the engine loads (None = the hub cache) and the adapter."""

    root: Path | None
    sd: Path
    blip: Path
    adapter: Path | None
    ip_adapter: Path | None = None

    @property
    def weights(self) -> str:
        """The ``--weights`` value that loads them: the folder, or ``sd15`` for the cache."""
        return str(self.root) if self.root is not None else "sd15"


def fetch_weights(local_dir: str | os.PathLike | None = None, *, sga: str | None = None,
                  ip_adapter: bool | None = None, progress: FetchProgress | None = None) -> Fetched:
    """Download SD-1.5 inpainting, BLIP-2 ITM (the adapter ``sga``, IP-Adapter) and verify the engine finds them.

    With ``local_dir`` the files land in ``<local_dir>/stable-diffusion-inpainting/``,
    ``<local_dir>/blip2-itm-vit-g/``, ``<local_dir>/sga/adapter.safetensors`` and
    ``<local_dir>/ip-adapter/models/...`` (the layout of ``weights/``); without it, in the hub
    cache, where the ``sd15`` profile finds them. ``ip_adapter=None`` fetches IP-Adapter on a
    Space (``SPACE_ID`` set: the studio only fetches there when a GPU can use it) and not elsewhere.
    """
    require_online("fetched")
    if ip_adapter is None:
        ip_adapter = bool(os.environ.get("SPACE_ID", "").strip())
    root = Path(local_dir).expanduser().absolute() if local_dir else None
    pieces = [(SD_REPO, SD_FILES, SD_DIR, "Stable Diffusion inpainting"), (BLIP_REPO, BLIP_FILES, BLIP_DIR, "BLIP-2 ITM")]
    if ip_adapter:
        pieces.append((IP_ADAPTER_REPO, IP_ADAPTER_FILES, IP_ADAPTER_DIR, "IP-Adapter SD-1.5"))
    folders = [_snapshot(repo, files, root / sub if root else None, title, progress)
               for repo, files, sub, title in pieces]
    adapter = None
    if sga:
        adapter = resolve_adapter(sga)
        if root is not None:
            target = root / SGA_FILE
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(adapter, target)
            adapter = target
    check_root = root if root is not None else Path(hub_cache_dir()) / ".no-weights-folder"
    found = locate(check_root, use_hub_cache=root is None)
    if found.missing:
        raise WeightsError("The fetch finished but the engine's file check still fails. "
                           + missing_message(found.missing, check_root, hub_cache=root is None))
    return Fetched(root, folders[0], folders[1], adapter, folders[2] / IP_ADAPTER_FILE if ip_adapter else None)


def _snapshot(repo: str, files: tuple[str, ...], local_dir: Path | None, title: str,
              progress: FetchProgress | None) -> Path:
    from huggingface_hub import snapshot_download

    kwargs = {}
    if progress is not None:
        kwargs["tqdm_class"] = _reporting_tqdm(title, progress)
    with hub_errors("fetched", repo):
        path = snapshot_download(repo, allow_patterns=list(files), local_dir=local_dir, cache_dir=hub_cache_dir(),
                                 endpoint=endpoint(), **kwargs)
    return Path(path)


def _reporting_tqdm(title: str, progress: FetchProgress):
    """A tqdm class that forwards huggingface_hub's file and byte counts to ``progress`` (and draws nothing)."""
    from tqdm import tqdm

    class Reporting(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = False
            kwargs["file"] = open(os.devnull, "w")  # noqa: SIM115 - closed in close()
            super().__init__(*args, **kwargs)
            self._report()

        def update(self, n=1):
            shown = super().update(n)
            self._report()
            return shown

        def refresh(self, *args, **kwargs):
            self._report()
            return super().refresh(*args, **kwargs)

        def _report(self) -> None:
            unit = "bytes" if self.unit == "B" else "files"
            if self.total or unit == "files":
                try:
                    progress(title, int(self.n), int(self.total or 0), unit)
                except Exception:  # a status line must never break a download
                    log.exception("fetch progress callback failed")

        def close(self):
            handle = self.fp
            super().close()
            with contextlib.suppress(Exception):
                handle.close()

    return Reporting


# --------------------------------------------------------------------------- adapters


def resolve_adapter(spec: str) -> Path:
    """A local SGA safetensors file for ``spec``: a file, a folder holding one, or ``user/repo[/file]`` on the hub.

    A local path wins over a hub id of the same spelling. Hub files come through the cache, so
    an adapter fetched once loads offline afterwards.
    """
    spec = (spec or "").strip()
    path = Path(spec).expanduser()
    if path.is_file():
        return _safetensors_only(path, spec)
    if path.is_dir():
        for candidate in (path / ADAPTER_FILE, path / SGA_FILE):
            if candidate.is_file():
                return candidate
        raise WeightsError(f"The folder {spec!r} holds no SGA adapter ({ADAPTER_FILE} or {SGA_FILE}).")
    parts = spec.split("/")
    if len(parts) < 2 or spec.startswith((".", "/", "~")) or not all(parts):
        raise WeightsError(f"The SGA adapter {spec!r} is neither a file nor a hub id (user/repo[/file.safetensors]).")
    repo = check_repo_id("/".join(parts[:2]), "model")
    filename = "/".join(parts[2:]) or ADAPTER_FILE
    _safetensors_only(Path(filename), spec)
    return _hub_file(repo, filename)


def _safetensors_only(path: Path, spec: str) -> Path:
    if path.suffix != ".safetensors":
        raise WeightsError(f"The SGA adapter {spec!r} is not a .safetensors file; only safetensors are read "
                           "(pickles can run code).")
    return path


def _hub_file(repo: str, filename: str) -> Path:
    """One file of a hub repo: from the cache when it is there (offline too), else downloaded."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo, filename, cache_dir=hub_cache_dir())
    if isinstance(cached, str):
        return Path(cached)
    require_online("fetched")
    with hub_errors("fetched", f"{repo}/{filename}"):
        return Path(hf_hub_download(repo, filename, cache_dir=hub_cache_dir(), endpoint=endpoint()))


def adapter_card(*, repo: str, base: str, data_summary: str, steps: int, final_loss: float | None,
                 command: list[str], license: str = "creativeml-openrail-m"):
    """The model card of a trained SGA adapter: base models, training data, steps, final loss, the command."""
    from huggingface_hub import ModelCard, ModelCardData

    on_hub = base in ("sd15", "auto", "")
    bases = [SD_REPO, BLIP_REPO] if on_hub else [base]
    data = ModelCardData(
        license=license, library_name="anomaly-studio", base_model=bases if on_hub else None,
        tags=["anomaly-detection", "anomalycontrol", "ip-adapter", "stable-diffusion-inpainting", "anomaly-studio"],
    )
    loss = f"{final_loss:.4f}" if final_loss is not None else "n/a"
    body = f"""
# {repo.split('/')[1]}: an AnomalyControl Semantic Guided Adapter

The Semantic Guided Adapter (SGA) of AnomalyControl (He et al., arXiv 2412.06510), trained with
AnomalyControl Studio: the projection of the BLIP-2 cross-modal feature to SGA tokens and every UNet
cross-attention layer's `to_k_sg` / `to_v_sg`. The base models stay frozen and are not included.

- Base models: {", ".join(f"`{b}`" for b in bases)}
- Training data: {data_summary}
- Steps: {steps}
- Final loss: {loss}

## Use

```bash
anomaly-studio fetch --sga {repo}                                   # base models + this adapter
anomaly-studio generate --engine anomalycontrol --sga {repo} ...    # the command line
ANOMALY_STUDIO_SGA={repo} python app.py                             # the studio (or a Space variable)
```

## Training command

```bash
{command_line(command)}
```
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{scrub(body)}")


def check_adapter_push(repo: str) -> None:
    """Refuse a push that cannot work (bad repo id, offline) before anything is trained."""
    check_repo_id(repo, "model")
    require_online("uploaded")


def push_trained_adapter(adapter: str | os.PathLike, repo: str, *, weights: str | None, data_summary: str,
                         steps: int, final_loss: float | None, command: list[str]) -> str:
    """``anomaly-studio train --push-to-hub``: the adapter and its card (with the training command)."""
    card = adapter_card(repo=repo, base=weights or "sd15", data_summary=data_summary, steps=steps,
                        final_loss=final_loss, command=command)
    return push_adapter(adapter, repo, card=card)


def push_adapter(adapter: str | os.PathLike, repo: str, *, card, private: bool = False) -> str:
    """Upload ``adapter`` as ``adapter.safetensors`` with ``card`` as README.md in one commit; returns the repo URL."""
    from huggingface_hub import CommitOperationAdd, HfApi

    repo = check_repo_id(repo, "model")
    path = _safetensors_only(Path(adapter), str(adapter))
    require_online("uploaded")
    with hub_errors("uploaded", repo):
        api = HfApi(endpoint=endpoint())
        api.create_repo(repo, private=private, exist_ok=True)
        api.create_commit(repo, operations=[
            CommitOperationAdd(ADAPTER_FILE, str(path)),
            CommitOperationAdd("README.md", str(card).encode("utf-8")),
        ], commit_message="SGA adapter (AnomalyControl Studio)")
    return f"{endpoint()}/{repo}"
