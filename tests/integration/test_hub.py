"""The hub paths against a local hub double on 127.0.0.1: fetch, resume, adapters by id, pushes, offline, tokens."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from studio.cli import main
from studio.engines.anomalycontrol.hub import ADAPTER_FILE, BLIP_PATTERNS, SD_PATTERNS, adapter_card, push_adapter
from studio.engines.anomalycontrol.sga import save_adapter
from studio.engines.anomalycontrol.weights import (
    BLIP_DIR, BLIP_REPO, SD_DIR, SD_REPO, SGA_FILE, load_bundle, save_bundle, sd15_available,
)
from studio.errors import WeightsError
from studio.publish import scrub
from tests.helpers.hub_double import HubDouble

TOKEN = "hf_TestTokenThatMustNeverLeak0123"
UNET_FILE = "unet/diffusion_pytorch_model.safetensors"
VAE_FILE = "vae/diffusion_pytorch_model.safetensors"
#: Files a real repo has that the fetch must leave alone (pickles, fp16 duplicates, the safety checker).
DECOYS = ("unet/diffusion_pytorch_model.bin", "unet/diffusion_pytorch_model.fp16.safetensors",
          "safety_checker/model.safetensors", "pytorch_model.bin")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    """The tiny models saved through the real save code, in the layout of weights/."""
    return save_bundle(load_bundle("tiny", device="cpu"), tmp_path_factory.mktemp("tiny") / "weights")


@pytest.fixture
def hub(tiny_folder, tmp_path, monkeypatch):
    """The double serving the tiny models under the real repo ids; the process pointed at it."""
    import datasets.config
    from huggingface_hub import constants

    with HubDouble() as double:
        double.add_folder(SD_REPO, tiny_folder / SD_DIR)
        double.add_folder(BLIP_REPO, tiny_folder / BLIP_DIR)
        for decoy in DECOYS:
            double.add_file(SD_REPO if "/" in decoy else BLIP_REPO, decoy, b"not for the engine")
        for name, value in {"HF_ENDPOINT": double.url, "HF_HUB_CACHE": str(tmp_path / "cache"),
                            "HF_DATASETS_CACHE": str(tmp_path / "datasets-cache"), "HF_TOKEN": TOKEN,
                            "HF_HUB_DISABLE_XET": "1"}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        monkeypatch.setenv("ANOMALY_STUDIO_SGA", "")  # restored (removed) afterwards, even if the CLI sets it
        # A process started with HF_ENDPOINT set reads it at import: patch what was read then.
        monkeypatch.setattr(constants, "ENDPOINT", double.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", double.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
        monkeypatch.setattr(datasets.config, "HF_ENDPOINT", double.url)
        yield double


def _error_lines(captured) -> list[str]:
    """The ``error:`` lines among stderr (huggingface_hub's tqdm bars share it); no traceback anywhere."""
    assert "Traceback" not in captured.err
    return [line for line in captured.err.splitlines() if line.startswith("error:")]


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts}


def test_fetch_downloads_safetensors_only_and_the_engine_loads_them(hub, tiny_folder, tmp_path, capsys):
    out = tmp_path / "weights"
    assert main(["fetch", "--local-dir", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    sd, blip = _files(out / SD_DIR), _files(out / BLIP_DIR)
    assert UNET_FILE in sd and "model.safetensors" in blip
    assert not any(name.endswith(".bin") or "fp16" in name or name.startswith("safety_checker") for name in sd | blip)
    assert sd == _files(tiny_folder / SD_DIR) and blip == _files(tiny_folder / BLIP_DIR)
    bundle = load_bundle(str(out), device="cpu")
    assert bundle.unet.config.in_channels == 9
    source = load_file(tiny_folder / SD_DIR / UNET_FILE)
    name = next(iter(source))
    assert torch.equal(bundle.unet.state_dict()[name], source[name])


def test_fetch_into_the_cache_is_what_the_sd15_profile_finds(hub, tmp_path, capsys):
    assert not sd15_available(tmp_path / "empty")
    assert main(["fetch"]) == 0
    assert capsys.readouterr().out.strip() == "sd15"
    assert sd15_available(tmp_path / "empty")
    assert load_bundle("sd15", device="cpu").unet.config.in_channels == 9


def test_an_interrupted_fetch_resumes_without_downloading_finished_files_again(hub, tmp_path, capsys):
    out = tmp_path / "weights"
    hub.fail[("model", SD_REPO, VAE_FILE)] = 500          # the server breaks off in the middle of the fetch
    assert main(["fetch", "--local-dir", str(out)]) == 2
    err = _error_lines(capsys.readouterr())
    assert len(err) == 1 and "run the same command again" in err[0]
    finished = {r.path.split("/resolve/")[1].split("/", 1)[1] for r in hub.gets() if VAE_FILE not in r.path}
    assert UNET_FILE in finished

    del hub.fail[("model", SD_REPO, VAE_FILE)]
    size = len(hub.repo(SD_REPO).files[UNET_FILE])
    assert main(["fetch", "--local-dir", str(out)]) == 0
    for name in finished:                                  # each finished file was downloaded exactly once
        assert len([r for r in hub.gets("/" + name) if r.path.startswith(f"/{SD_REPO}/")]) == 1, name
    assert len(hub.gets(VAE_FILE)) == 2
    assert (out / SD_DIR / UNET_FILE).stat().st_size == size
    load_bundle(str(out), device="cpu")


def test_a_transfer_that_breaks_mid_file_continues_with_a_range_request(hub, tmp_path):
    from huggingface_hub import constants

    from studio.engines.anomalycontrol.hub import resolve_adapter

    chunk = constants.DOWNLOAD_CHUNK_SIZE  # what huggingface_hub has written when the connection drops
    data = torch.randint(0, 256, (chunk + chunk // 2,), dtype=torch.uint8).numpy().tobytes()
    hub.add_file("someone/big", ADAPTER_FILE, data)
    hub.drop_after[("model", "someone/big", ADAPTER_FILE)] = chunk + 1000
    path = resolve_adapter("someone/big")
    assert [r.range for r in hub.gets(ADAPTER_FILE)] == [None, f"bytes={chunk}-"]
    assert path.read_bytes() == data


def _tiny_adapter(path: Path, fill: float) -> Path:
    bundle = load_bundle("tiny", device="cpu")
    with torch.no_grad():
        for p in bundle.adapter.parameters():
            p.fill_(fill)
    return save_adapter(bundle.adapter, path)


def test_an_adapter_loads_by_repo_id_and_by_repo_and_file(hub, tmp_path, monkeypatch):
    hub.add_file("someone/sga-tiny", ADAPTER_FILE, _tiny_adapter(tmp_path / "a.safetensors", 0.25).read_bytes())
    hub.add_file("someone/sga-tiny", "v2/other.safetensors", _tiny_adapter(tmp_path / "b.safetensors", -0.5).read_bytes())
    for spec, fill in (("someone/sga-tiny", 0.25), ("someone/sga-tiny/v2/other.safetensors", -0.5)):
        monkeypatch.setenv("ANOMALY_STUDIO_SGA", spec)
        bundle = load_bundle("tiny", device="cpu")
        assert bundle.sga_trained and str(tmp_path / "cache") in bundle.sga_source
        assert all(torch.all(p == fill) for p in bundle.adapter.parameters())
    # Fetched once, it loads offline from the cache.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ANOMALY_STUDIO_SGA", "someone/sga-tiny")
    asked = len(hub.requests)
    assert load_bundle("tiny", device="cpu").sga_trained
    assert len(hub.requests) == asked


def test_adapter_specs_that_are_not_safetensors_or_not_found_give_one_clear_error(hub, monkeypatch):
    for spec, words in (("someone/sga-tiny/adapter.bin", "not a .safetensors"),
                        ("nobody/missing", "was not found"), ("./no/such/file.safetensors", "neither a file")):
        monkeypatch.setenv("ANOMALY_STUDIO_SGA", spec)
        with pytest.raises(WeightsError if "safetensors" in words or "neither" in words else Exception,
                           match=words):
            load_bundle("tiny", device="cpu")


def test_fetch_with_an_adapter_puts_it_where_the_folder_profile_loads_it(hub, tmp_path):
    hub.add_file("someone/sga-tiny", ADAPTER_FILE, _tiny_adapter(tmp_path / "a.safetensors", 0.125).read_bytes())
    assert main(["fetch", "--local-dir", str(tmp_path / "w"), "--sga", "someone/sga-tiny"]) == 0
    bundle = load_bundle(str(tmp_path / "w"), device="cpu")
    assert bundle.sga_source == str(tmp_path / "w" / SGA_FILE)
    assert all(torch.all(p == 0.125) for p in bundle.adapter.parameters())


def test_fetch_brings_ip_adapters_sd15_file_for_training(hub, tmp_path, capsys):
    from studio.engines.anomalycontrol.hub import IP_ADAPTER_DIR, IP_ADAPTER_FILE, IP_ADAPTER_REPO

    hub.add_file(IP_ADAPTER_REPO, IP_ADAPTER_FILE, b"ip-adapter weights")
    hub.add_file(IP_ADAPTER_REPO, "models/ip-adapter_sd15.bin", b"a pickle")
    hub.add_file(IP_ADAPTER_REPO, "sdxl_models/ip-adapter_sdxl.safetensors", b"another model")
    out = tmp_path / "w"
    assert main(["fetch", "--local-dir", str(out), "--ip-adapter"]) == 0
    assert _files(out / IP_ADAPTER_DIR) == {IP_ADAPTER_FILE}
    assert f"--init-ip-adapter {out / IP_ADAPTER_DIR / IP_ADAPTER_FILE}" in capsys.readouterr().err


def test_push_adapter_sends_the_file_and_a_model_card(hub, tmp_path):
    adapter = _tiny_adapter(tmp_path / "adapter.safetensors", 0.5)
    card = adapter_card(repo="me/widget-sga", base="sd15", data_summary="8 anomalies: widget/scratch 3, ...",
                        steps=1200, final_loss=0.0421, command=["anomaly-studio", "train", "--data", "d", "--token", TOKEN])
    url = push_adapter(adapter, "me/widget-sga", card=card)
    assert url.endswith("/me/widget-sga")
    repo = hub.repo("me/widget-sga")
    assert repo.files[ADAPTER_FILE] == adapter.read_bytes()
    text = repo.files["README.md"].decode()
    for expected in (SD_REPO, BLIP_REPO, "8 anomalies", "Steps: 1200", "Final loss: 0.0421", "anomaly-studio train"):
        assert expected in text
    assert TOKEN not in text and "hf_***" in text
    assert any(r.authorization == f"Bearer {TOKEN}" for r in hub.requests if r.method == "POST")


def test_offline_fetch_sends_nothing_and_says_so_once(hub, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["fetch"]) == 2
    err = _error_lines(capsys.readouterr())
    assert len(err) == 1 and "HF_HUB_OFFLINE" in err[0] and "nothing was fetched" in err[0]
    assert hub.requests == []


def test_an_unreachable_hub_gives_one_message_and_exit_2(hub, monkeypatch, capsys):
    from huggingface_hub import constants

    from tests.helpers.ui_server import free_port

    dead = f"http://127.0.0.1:{free_port()}"  # bound, then closed: nothing listens
    monkeypatch.setenv("HF_ENDPOINT", dead)
    monkeypatch.setattr(constants, "ENDPOINT", dead)
    assert main(["fetch"]) == 2
    err = _error_lines(capsys.readouterr())
    assert len(err) == 1 and "cannot be reached" in err[0] and "nothing was fetched" in err[0]


def test_tokens_are_scrubbed_from_text_that_goes_out():
    assert scrub(f"train --token {TOKEN} --x") == "train --token hf_*** --x"
    assert TOKEN not in scrub(f"Authorization: Bearer {TOKEN}")


def test_the_fetch_patterns_cover_every_file_the_engine_checks():
    from huggingface_hub.utils import filter_repo_objects

    from studio.engines.anomalycontrol.weights import BLIP_REQUIRED, SD_REQUIRED

    for required, patterns in ((SD_REQUIRED, SD_PATTERNS), (BLIP_REQUIRED, BLIP_PATTERNS)):
        for alternatives in required:
            assert list(filter_repo_objects(alternatives, allow_patterns=list(patterns))), alternatives


def test_no_token_in_logs_or_output_while_fetching_and_pushing(hub, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    assert main(["fetch", "--local-dir", str(tmp_path / "w")]) == 0
    assert any(r.authorization == f"Bearer {TOKEN}" for r in hub.gets())  # it was used ...
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err                      # ... and never shown
    card = adapter_card(repo="me/a", base="tiny", data_summary="d", steps=1, final_loss=None, command=["x"])
    push_adapter(_tiny_adapter(tmp_path / "a.safetensors", 0.0), "me/a", card=card)
    assert TOKEN not in caplog.text
    assert json.dumps([r.path for r in hub.requests]).count(TOKEN) == 0


def test_generate_takes_an_adapter_by_hub_id(hub, tmp_path, monkeypatch, surface, blob_mask):
    from PIL import Image

    monkeypatch.setenv("ANOMALY_STUDIO_SGA", "")  # restored after the CLI sets it
    hub.add_file("someone/sga-tiny", ADAPTER_FILE, _tiny_adapter(tmp_path / "a.safetensors", 0.25).read_bytes())
    assert main(["fetch", "--local-dir", str(tmp_path / "w")]) == 0
    Image.fromarray(surface).save(tmp_path / "normal.png")
    Image.fromarray(blob_mask.astype("uint8") * 255).save(tmp_path / "mask.png")
    out = tmp_path / "out"
    assert main(["generate", "--image", str(tmp_path / "normal.png"), "--mask", str(tmp_path / "mask.png"),
                 "--prompt", "a scratch", "--out", str(out), "--engine", "anomalycontrol",
                 "--weights", str(tmp_path / "w"), "--sga", "someone/sga-tiny", "--steps", "2"]) == 0
    sga = json.loads((out / "candidate_00.json").read_text())["sga"]
    assert sga["checkpoint"].startswith(str(tmp_path / "cache")) and sga["checkpoint"].endswith(ADAPTER_FILE)
