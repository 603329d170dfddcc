"""Soak: 8 concurrent clients x N rounds of generate -> accept against a live classic studio (issue 8, point 3).

`make test` runs 8 rounds; `SOAK_ROUNDS=25 pytest tests/slow/test_soak_live.py -s` (or `make soak`) runs the
full 25 and prints the figures. Loopback only, bounded in count and time.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psutil
import pytest
from PIL import Image

from tests.helpers.ui_server import live_app_fixture

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

CLIENTS = 8
ROUNDS = int(os.environ.get("SOAK_ROUNDS", "8"))
#: RSS is compared between the end of this round and the end of the last one.
BASELINE_ROUND = 5
SIZE = 96
live = live_app_fixture("--engine", "classic")


def _tree_rss(pid: int) -> int:
    process = psutil.Process(pid)
    return process.memory_info().rss + sum(c.memory_info().rss for c in process.children(recursive=True))


def test_soak_concurrent_generate_accept(live, tmp_path) -> None:
    assert ROUNDS > BASELINE_ROUND
    paths = {}
    for k in range(CLIENTS):  # each client has its own surface level, so a leak is visible in pixels
        image = np.full((SIZE, SIZE, 3), 40 + 25 * k, np.uint8)
        mask = np.zeros((SIZE, SIZE), np.uint8)
        mask[30:60, 20:80] = 255
        Image.fromarray(image).save(tmp_path / f"image_{k}.png")
        Image.fromarray(mask).save(tmp_path / f"mask_{k}.png")
        paths[k] = (str(tmp_path / f"image_{k}.png"), str(tmp_path / f"mask_{k}.png"))
    clients = {k: Client(live.url, verbose=False) for k in range(CLIENTS)}
    outside = np.ones((SIZE, SIZE), bool)
    outside[25:65, 15:85] = False

    def one_round(k: int, round_: int) -> str:
        image, mask = paths[k]
        images, _, info = clients[k].predict(handle_file(image), handle_file(mask), "a dark scratch", None, None,
                                             "", 1, 1000 * k + round_, api_name="/generate")
        pixels = np.asarray(Image.open(images[0]["image"]).convert("RGB"))
        assert (pixels[outside] == 40 + 25 * k).all(), f"client {k} saw another session's candidate"
        assert info["candidates"][0]["seed"] == 1000 * k + round_
        return clients[k].predict(0, f"soak-{k}", "soak", "", api_name="/accept")["id"]

    accepted: list[str] = []
    rss: dict[int, int] = {}
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        for round_ in range(1, ROUNDS + 1):
            accepted += list(pool.map(lambda k: one_round(k, round_), range(CLIENTS)))
            rss[round_] = _tree_rss(live.process.pid)
            assert time.perf_counter() - start < 60 * 8, "soak exceeded its time bound"
    elapsed = time.perf_counter() - start
    samples = Client(live.url, verbose=False).predict("", api_name="/curated")["samples"]
    stored = {s["id"] for s in samples}
    assert len(accepted) == len(set(accepted)) == CLIENTS * ROUNDS
    assert set(accepted) <= stored
    growth = rss[ROUNDS] / rss[BASELINE_ROUND] - 1
    print(f"\nsoak: {CLIENTS} clients x {ROUNDS} rounds = {len(accepted)} generate+accept in {elapsed:.1f} s "
          f"({len(accepted) / elapsed:.1f}/s), 0 failures; server RSS round {BASELINE_ROUND} "
          f"{rss[BASELINE_ROUND] / 2**20:.0f} MiB -> round {ROUNDS} {rss[ROUNDS] / 2**20:.0f} MiB ({growth:+.1%})")
    assert growth < 0.15
