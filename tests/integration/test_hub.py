"""The hub paths against a local hub double on 127.0.0.1: fetch, resume, adapters by id, pushes, offline, tokens."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from studio.cli import main
from studio.engines.anomalycontrol.hub import ADAPTER_FILE, adapter_card, push_adapter
from studio.engines.anomalycontrol.models import load_bundle
from studio.engines.anomalycontrol.sga import save_adapter
from studio.engines.anomalycontrol.weights import (
    BLIP_DIR, BLIP_FILES, BLIP_REPO, IP_ADAPTER_DIR, IP_ADAPTER_FILE, IP_ADAPTER_FILES, IP_ADAPTER_REPO, SD_DIR,
    SD_FILES, SD_REPO, SGA_FILE, sd15_available,
)
from studio.errors import WeightsError
from studio.publish import scrub
from tests.helpers.hub import TOKEN, UNET_FILE, VAE_FILE, error_lines, hub, real_repos  # noqa: F401 - fixtures
from tests.helpers.hub_double import MANIFEST, HubDouble, serve, tiny_real_repos

def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts}


def _fetched(hub: HubDouble) -> set[tuple[str, str]]:
    """(repo, file) of every file GET the double answered."""
    out = set()
    for r in hub.gets():
        repo, rest = r.path.lstrip("/").split("/resolve/")
        out.add((repo, rest.split("/", 1)[1]))
    return out


def _no_pickle_no_duplicate(fetched: set[tuple[str, str]]) -> None:
    names = [name for _, name in fetched]
    assert not any(name.endswith((".bin", ".ckpt", ".pt", ".pth")) for name in names), names
    assert not any(name.startswith(("safety_checker/", "feature_extractor/", "sdxl_models/")) for name in names)
    sd_weights = [n for r, n in fetched if r == SD_REPO and n.endswith(".safetensors")]
    assert sd_weights and all(n.endswith(".fp16.safetensors") for n in sd_weights)  # no fp32 duplicate


def test_the_double_serves_the_real_file_lists_with_the_engine_files_real(hub, real_repos):
    repos, placeholders = real_repos
    for repo, names in MANIFEST.items():
        assert sorted(hub.repo(repo).files) == sorted(names), repo
    for repo, files in ((SD_REPO, SD_FILES), (BLIP_REPO, BLIP_FILES), (IP_ADAPTER_REPO, IP_ADAPTER_FILES)):
        assert set(files) <= set(MANIFEST[repo]), repo                      # every file fetch asks for exists
        assert not {(repo, f) for f in files} & placeholders, repo          # and holds a real miniature
    assert (SD_REPO, "unet/diffusion_pytorch_model.bin") in placeholders     # the pickles are served, never fetched
    assert "unet/diffusion_pytorch_model.safetensors" not in MANIFEST[SD_REPO]  # the repo has no fp32 safetensors


@pytest.mark.parametrize("flags, mode", [([], "text"), (["--ip-adapter"], "ip-adapter")])
def test_fetch_real_layout_then_generate_runs_in_the_mode_the_files_give(hub, tmp_path, capsys, surface, blob_mask,
                                                                        flags, mode):
    from PIL import Image

    out = tmp_path / "weights"
    assert main(["fetch", "--local-dir", str(out), *flags]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out) and f"guidance mode {mode}" in captured.err
    fetched = _fetched(hub)
    _no_pickle_no_duplicate(fetched)
    expected = {(SD_REPO, f) for f in SD_FILES} | {(BLIP_REPO, f) for f in BLIP_FILES}
    if mode == "ip-adapter":
        expected |= {(IP_ADAPTER_REPO, f) for f in IP_ADAPTER_FILES}
    assert fetched == expected
    bundle = load_bundle(str(out), device="cpu")
    assert bundle.guidance == mode and bundle.unet.config.in_channels == 9
    source = load_file(out / SD_DIR / UNET_FILE)
    name = next(iter(source))
    assert torch.equal(bundle.unet.state_dict()[name], source[name].float())  # fp16 file, loaded in fp32 on a CPU
    Image.fromarray(surface).save(tmp_path / "normal.png")
    Image.fromarray(blob_mask.astype("uint8") * 255).save(tmp_path / "mask.png")
    assert main(["generate", "--image", str(tmp_path / "normal.png"), "--mask", str(tmp_path / "mask.png"),
                 "--ref", str(tmp_path / "normal.png"), "--ref-mask", str(tmp_path / "mask.png"),
                 "--prompt", "a scratch", "--out", str(tmp_path / "out"), "--engine", "anomalycontrol",
                 "--weights", str(out), "--steps", "2"]) == 0
    meta = json.loads((tmp_path / "out" / "candidate_00.json").read_text())
    assert meta["guidance"]["mode"] == mode and meta["guidance"]["active"] == (mode != "text")
    assert meta["asea"]["ran"] is False


def test_fetch_into_the_cache_is_what_the_sd15_profile_finds(hub, tmp_path, capsys):
    assert not sd15_available(tmp_path / "empty")
    assert main(["fetch", "--ip-adapter"]) == 0
    assert capsys.readouterr().out.strip() == "sd15"
    _no_pickle_no_duplicate(_fetched(hub))
    assert sd15_available(tmp_path / "empty")
    bundle = load_bundle("sd15", device="cpu")
    assert bundle.unet.config.in_channels == 9 and bundle.guidance == "ip-adapter"


def test_an_interrupted_fetch_resumes_without_downloading_finished_files_again(hub, tmp_path, capsys):
    out = tmp_path / "weights"
    hub.fail[("model", SD_REPO, VAE_FILE)] = 500          # the server breaks off in the middle of the fetch
    assert main(["fetch", "--local-dir", str(out)]) == 2
    err = error_lines(capsys.readouterr())
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
    import huggingface_hub
    from huggingface_hub import constants

    if int(huggingface_hub.__version__.split(".")[0]) < 1:
        pytest.skip("huggingface_hub < 1.0 (the floor with transformers 4.56) resumes a broken file on the next "
                    "fetch (test_an_interrupted_fetch_resumes...), not within the same call")

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
        bundle = load_bundle("tiny", device="cpu", sga=spec)
        assert bundle.guidance == "sga" and str(tmp_path / "cache") in bundle.guidance_source
        assert all(torch.all(p == fill) for p in bundle.adapter.parameters())
    # Fetched once, it loads offline from the cache; the studio's variable names it too.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ANOMALY_STUDIO_SGA", "someone/sga-tiny")
    asked = len(hub.requests)
    assert str(tmp_path / "cache") in load_bundle("tiny", device="cpu").guidance_source
    assert len(hub.requests) == asked


def test_adapter_specs_that_are_not_safetensors_or_not_found_give_one_clear_error(hub, monkeypatch):
    for spec, words in (("someone/sga-tiny/adapter.bin", "not a .safetensors"),
                        ("nobody/missing", "was not found"), ("./no/such/file.safetensors", "neither a file")):
        with pytest.raises(WeightsError if "safetensors" in words or "neither" in words else Exception,
                           match=words):
            load_bundle("tiny", device="cpu", sga=spec)


def test_fetch_with_an_adapter_puts_it_where_the_folder_profile_loads_it(hub, tmp_path):
    hub.add_file("someone/sga-tiny", ADAPTER_FILE, _tiny_adapter(tmp_path / "a.safetensors", 0.125).read_bytes())
    assert main(["fetch", "--local-dir", str(tmp_path / "w"), "--sga", "someone/sga-tiny"]) == 0
    bundle = load_bundle(str(tmp_path / "w"), device="cpu")
    assert bundle.guidance == "sga" and bundle.guidance_source == str(tmp_path / "w" / SGA_FILE)
    assert all(torch.all(p == 0.125) for p in bundle.adapter.parameters())


def test_fetch_brings_ip_adapter_sd15_and_its_image_encoder_only(hub, tmp_path, capsys):
    out = tmp_path / "w"
    assert main(["fetch", "--local-dir", str(out), "--ip-adapter"]) == 0
    assert _files(out / IP_ADAPTER_DIR) == set(IP_ADAPTER_FILES)
    assert f"--init-ip-adapter {out / IP_ADAPTER_DIR / IP_ADAPTER_FILE}" in capsys.readouterr().err


def test_a_space_fetches_ip_adapter_by_default(hub, tmp_path, monkeypatch):
    from studio.engines.anomalycontrol.hub import fetch_weights

    monkeypatch.setenv("SPACE_ID", "me/anomaly-studio")
    fetched = fetch_weights(tmp_path / "w")
    assert fetched.ip_adapter == tmp_path / "w" / IP_ADAPTER_DIR / IP_ADAPTER_FILE
    assert load_bundle(fetched.weights, device="cpu").guidance == "ip-adapter"


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
    err = error_lines(capsys.readouterr())
    assert len(err) == 1 and "HF_HUB_OFFLINE" in err[0] and "nothing was fetched" in err[0]
    assert hub.requests == []


def test_an_unreachable_hub_gives_one_message_and_exit_2(hub, monkeypatch, capsys):
    from huggingface_hub import constants

    from tests.helpers.ui_server import free_port

    dead = f"http://127.0.0.1:{free_port()}"  # bound, then closed: nothing listens
    monkeypatch.setenv("HF_ENDPOINT", dead)
    monkeypatch.setattr(constants, "ENDPOINT", dead)
    assert main(["fetch"]) == 2
    err = error_lines(capsys.readouterr())
    assert len(err) == 1 and "cannot be reached" in err[0] and "nothing was fetched" in err[0]


def test_tokens_are_scrubbed_from_text_that_goes_out():
    assert scrub(f"train --token {TOKEN} --x") == "train --token hf_*** --x"
    assert TOKEN not in scrub(f"Authorization: Bearer {TOKEN}")


def test_the_fetched_files_satisfy_every_check_the_engine_makes():
    from studio.engines.anomalycontrol.weights import BLIP_REQUIRED, IP_ADAPTER_REQUIRED, SD_REQUIRED

    for required, files in ((SD_REQUIRED, SD_FILES), (BLIP_REQUIRED, BLIP_FILES), (IP_ADAPTER_REQUIRED, IP_ADAPTER_FILES)):
        for alternatives in required:
            assert set(alternatives) & set(files), alternatives


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

    hub.add_file("someone/sga-tiny", ADAPTER_FILE, _tiny_adapter(tmp_path / "a.safetensors", 0.25).read_bytes())
    assert main(["fetch", "--local-dir", str(tmp_path / "w")]) == 0
    Image.fromarray(surface).save(tmp_path / "normal.png")
    Image.fromarray(blob_mask.astype("uint8") * 255).save(tmp_path / "mask.png")
    out = tmp_path / "out"
    assert main(["generate", "--image", str(tmp_path / "normal.png"), "--mask", str(tmp_path / "mask.png"),
                 "--prompt", "a scratch", "--out", str(out), "--engine", "anomalycontrol",
                 "--weights", str(tmp_path / "w"), "--sga", "someone/sga-tiny", "--steps", "2"]) == 0
    meta = json.loads((out / "candidate_00.json").read_text())
    guidance = meta["guidance"]
    assert guidance["mode"] == "sga" and guidance["weights"].startswith(str(tmp_path / "cache"))
    assert guidance["weights"].endswith(ADAPTER_FILE) and meta["asea"]["skipped"] == "SGA is off (no reference image)"
    assert "ANOMALY_STUDIO_SGA" not in os.environ  # --sga is an argument, not a variable the CLI sets
