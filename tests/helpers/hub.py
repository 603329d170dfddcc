"""The hub double as fixtures: the public repos' exact file lists with tiny models under the real names,
and the process pointed at a double serving them on 127.0.0.1."""
from __future__ import annotations

import pytest

from studio.engines.anomalycontrol.models import load_bundle
from tests.helpers.hub_double import HubDouble, serve, tiny_real_repos

TOKEN = "hf_TestTokenThatMustNeverLeak0123"
UNET_FILE = "unet/diffusion_pytorch_model.fp16.safetensors"
VAE_FILE = "vae/diffusion_pytorch_model.fp16.safetensors"


@pytest.fixture(scope="module")
def real_repos(tmp_path_factory):
    """The public repos' exact file lists, tiny models saved through the real save code under the real names."""
    return tiny_real_repos(load_bundle("tiny", device="cpu"), tmp_path_factory.mktemp("tiny-repos"))


@pytest.fixture
def hub(real_repos, tmp_path, monkeypatch):
    """The double serving the real file lists (pickles, .ckpt, variants and all) under the real repo ids."""
    import datasets.config
    from huggingface_hub import constants, file_download

    with HubDouble() as double:
        serve(double, real_repos[0])
        for name, value in {"HF_ENDPOINT": double.url, "HF_HUB_CACHE": str(tmp_path / "cache"),
                            "HF_DATASETS_CACHE": str(tmp_path / "datasets-cache"), "HF_TOKEN": TOKEN,
                            "HF_HUB_DISABLE_XET": "1"}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        monkeypatch.delenv("SPACE_ID", raising=False)
        monkeypatch.delenv("ANOMALY_STUDIO_SGA", raising=False)
        # A process started with HF_ENDPOINT set reads it at import: patch what was read then.
        monkeypatch.setattr(constants, "ENDPOINT", double.url)
        template = double.url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        monkeypatch.setattr(file_download, "HUGGINGFACE_CO_URL_TEMPLATE", template, raising=False)  # hub < 1.0 copies it
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
        monkeypatch.setattr(datasets.config, "HF_ENDPOINT", double.url)
        yield double


def error_lines(captured) -> list[str]:
    """The ``error:`` lines among stderr (huggingface_hub's tqdm bars share it); no traceback anywhere."""
    assert "Traceback" not in captured.err
    return [line for line in captured.err.splitlines() if line.startswith("error:")]
