"""The studio's click-to-first-candidate latency on the classic engine, through gradio_client.

    python -m bench.studio_latency        # prints the median over 5 clicks and the app's start time

Starts ``app.py`` on a free loopback port with a fresh data folder, then times ``/generate`` with one
candidate on a shipped 512x512 sample, from the call to the decoded result (upload included).
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from studio import config
from tests.helpers.ui_server import start_app, stop_app


def click_to_first_candidate(repeats: int = 5) -> float:
    """Median seconds from a /generate call (1 candidate) to its result, after one warm-up click."""
    from gradio_client import Client, handle_file

    image = handle_file(str(config.ASSETS_DIR / "normal" / "metal_disc.png"))
    mask = handle_file(str(config.ASSETS_DIR / "masks" / "metal_disc_mask.png"))
    with tempfile.TemporaryDirectory() as folder:
        app = start_app(Path(folder) / "data", Path(folder) / "app.log", "--engine", "classic")
        try:
            client = Client(app.url, verbose=False)
            times = []
            for i in range(repeats + 1):
                start = time.perf_counter()
                client.predict(image, mask, "a dark scratch", None, None, "", 1, i, api_name="/generate")
                times.append(time.perf_counter() - start)
            print(f"app answered HTTP 200 after {app.startup_s:.2f} s", file=sys.stderr)
        finally:
            stop_app(app.process)
    return statistics.median(times[1:])


if __name__ == "__main__":
    print(f"click-to-first-candidate (classic, 512x512): {click_to_first_candidate():.3f} s")
