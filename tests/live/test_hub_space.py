"""The Space start-up path: ``SPACE_ID`` set, the hub double serving tiny models, a live ``python app.py``.

The page answers at once on the weight-free engine, the status line shows the background fetch,
the default engine becomes ``anomalycontrol`` without a restart, and a ``gradio_client`` session
opened before the switch keeps working after it.
"""
from __future__ import annotations

import time

import pytest

from studio.engines.anomalycontrol.weights import IP_ADAPTER_FILE
from tests.helpers.hub_double import HubDouble, serve
from tests.helpers.hub import UNET_FILE, hub, real_repos  # noqa: F401 - fixtures
from tests.helpers.ui_client import files, generate  # noqa: F401 - fixture
from tests.helpers.ui_server import start_app, stop_app

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402



def _poll(client: Client, done, timeout: float) -> list[str]:
    """Status lines seen until ``done(line)`` (or the time is up)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(client.predict(api_name="/status"))
        if done(seen[-1]):
            return seen
        time.sleep(0.25)
    raise AssertionError(f"status never settled; last lines: {seen[-3:]}")


@pytest.mark.slow
def test_space_starts_weight_free_fetches_and_switches_without_a_restart(real_repos, files, tmp_path):  # noqa: F811
    with HubDouble() as hub:
        serve(hub, real_repos[0])  # the public repos' real file lists
        hub.delay_s = 1.5  # each file takes a while, so the progress is there to be seen
        env = {"SPACE_ID": "me/anomaly-studio", "HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "cache"),
               "HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": "", "HF_HUB_DISABLE_XET": "1",
               "ANOMALY_STUDIO_WEIGHTS": str(tmp_path / "no-weights"), "ANOMALY_STUDIO_SGA": "",
               "ANOMALY_STUDIO_FETCH": "always"}  # this machine has no GPU
        app = start_app(tmp_path / "data", tmp_path / "app.log", env_extra=env, timeout=60)
        try:
            client = Client(app.url, verbose=False)
            first = client.predict(api_name="/status")
            assert "classic" in first  # the page answered before the fetch finished (no wait on the hub)
            _, _, info = generate(client, files, files["image"], files["mask"], num=1)
            assert info["candidates"][0]["metadata"]["engine"] == "classic"

            seen = _poll(client, lambda line: line.startswith("anomalycontrol"), timeout=180)
            fetching = [line for line in seen if "Fetching" in line]
            assert any("files" in line for line in fetching), seen
            assert "Fetching" not in seen[-1] and "tiny" not in seen[-1].split("\n")[0]

            _, _, info = generate(client, files, files["image"], files["mask"], num=1)   # same session
            assert info["candidates"][0]["metadata"]["engine"] == "anomalycontrol"
            assert info["candidates"][0]["metadata"]["guidance"]["mode"] == "ip-adapter"  # a Space fetches IP-Adapter
            accepted = client.predict(0, "crack", "widget", "", api_name="/accept")
            assert accepted["new"] and accepted["id"]
            assert hub.gets(UNET_FILE) and hub.gets(IP_ADAPTER_FILE)
            assert not [r for r in hub.gets() if r.path.endswith((".bin", ".ckpt"))]
        finally:
            stop_app(app.process)
        assert "Traceback" not in app.log(), app.log()[-3000:]


@pytest.mark.slow
def test_space_offline_keeps_the_weight_free_engine_and_says_so(tmp_path):
    env = {"SPACE_ID": "me/anomaly-studio", "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "cache"),
           "ANOMALY_STUDIO_WEIGHTS": str(tmp_path / "no-weights"), "ANOMALY_STUDIO_FETCH": "always"}
    app = start_app(tmp_path / "data", tmp_path / "app.log", env_extra=env, timeout=60)
    try:
        client = Client(app.url, verbose=False)
        lines = _poll(client, lambda line: "HF_HUB_OFFLINE" in line, timeout=30)
        assert lines[-1].count("HF_HUB_OFFLINE is set") == 1 and "classic" in lines[-1]
    finally:
        stop_app(app.process)


def test_a_space_that_cannot_reach_the_hub_keeps_serving_and_says_why_once(hub, monkeypatch):  # noqa: F811
    from types import SimpleNamespace

    from huggingface_hub import constants

    from studio.ui import space
    from tests.helpers.ui_server import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HF_ENDPOINT", dead)
    monkeypatch.setattr(constants, "ENDPOINT", dead)
    monkeypatch.setenv(space.FETCH_ENV, "always")
    ctx = SimpleNamespace(startup_note="", engines={}, add_engine=lambda engine: pytest.fail("switched"))
    space.BackgroundWeights(ctx).run()
    assert ctx.startup_note.count("cannot be reached") == 1 and "weight-free engine" in ctx.startup_note
    assert "Traceback" not in ctx.startup_note


def test_a_space_without_a_gpu_does_not_fetch_unless_told(monkeypatch):
    import torch

    from studio.ui import space

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    for policy, fetches in (("", False), ("auto", False), ("always", True), ("never", False)):
        monkeypatch.setenv(space.FETCH_ENV, policy)
        assert (space.fetch_policy() == "") == fetches, policy
    monkeypatch.setenv(space.FETCH_ENV, "auto")
    assert "no GPU" in space.fetch_policy()
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert space.fetch_policy() == ""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("SPACES_ZERO_GPU")
    assert space.fetch_policy() == ""


def test_zerogpu_slots_are_sized_to_the_request(surface, blob_mask):
    """The slot grows with the request's work, within ZeroGPU's limits (the engine's own estimate)."""
    from studio.engines import get_engine
    from studio.engines.anomalycontrol import pipeline
    from studio.types import SynthesisRequest

    engine = get_engine("anomalycontrol", "tiny")

    def request(num: int, steps: int) -> SynthesisRequest:
        return SynthesisRequest.create(surface, blob_mask, "a scratch", num=num, params={"steps": steps},
                                       parameters=engine.parameters())

    small, big = engine.gpu_seconds(request(1, 20)), engine.gpu_seconds(request(8, 50))
    assert pipeline.GPU_MIN_S <= small < big <= pipeline.GPU_MAX_S
    assert engine.gpu_seconds(request(64, 200)) == pipeline.GPU_MAX_S
    assert pipeline.GPU_MIN_S <= engine.gpu_seconds(request(1, 50), "explain") <= small
