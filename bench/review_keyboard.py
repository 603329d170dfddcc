"""Keyboard review latency: a batch review job of 100 candidates reviewed in the browser by keys alone.

    python -m bench.review_keyboard [--candidates 100] [--load]

Writes a review job of classic-engine candidates (a shipped 512x512 sample) into a fresh data
folder, starts ``app.py`` on it, opens the job in headless Chromium at 1440x900 and decides every
candidate with one key (A, A, R, ...). Prints the median and 90th percentile time from a key press
to the next candidate shown (its details line and its picture loaded in the viewer); target ≤ 0.3 s.
With ``--load`` a second session (``gradio_client``) generates 8 candidates at a time through the
``generate`` API for the whole review, as a colleague on the same studio would; the line then
says how many generations ran meanwhile.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from studio import config
from studio.batch.review import review_root, write_review_job
from studio.engines.classic import ClassicEngine
from studio.requests import build_request
from tests.helpers.ui_server import start_app, stop_app

KEYS = ("a", "a", "r")
#: Candidates per generation of the second session (--load).
LOAD_CANDIDATES = 8
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]


def write_job(data_dir: Path, count: int) -> str:
    """A review job of ``count`` classic candidates of the metal disc sample; returns its id."""
    engine = ClassicEngine()
    candidates = []
    seed = 0
    while len(candidates) < count:
        num = min(config.MAX_CANDIDATES, count - len(candidates))
        request = build_request(config.ASSETS_DIR / "normal" / "metal_disc.png",
                                config.ASSETS_DIR / "masks" / "metal_disc_mask.png", prompt="a dark scratch",
                                num=num, seed=seed)
        candidates += engine.generate(request)
        seed += num
    job_id = "bench-keyboard-review"
    write_review_job(review_root(data_dir), job_id, candidates, request.image, None, None,
                     {"prompt": "a dark scratch", "category": "metal", "defect_type": "scratch", "note": ""})
    return job_id


def review_by_keyboard(url: str, count: int) -> list[float]:
    """Seconds from each key press to the next candidate shown, for ``count`` decisions."""
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(url)
        page.wait_for_selector("#defect-editor canvas")
        page.locator("#batch-tab-button").click()
        page.locator("#review-refresh").click()
        page.wait_for_function("document.querySelector('#review-job input')?.value.includes('100')"
                               if count == 100 else "document.querySelector('#review-job input')?.value")
        page.locator("#review-open").click()
        page.wait_for_function(f"document.querySelector('#details')?.innerText.trim().startsWith('#1 of {count}')")
        page.locator("#candidate-viewer").click(position={"x": 5, "y": 5})  # focus off any text field
        for n in range(1, count + 1):
            src = page.evaluate("document.querySelector('#viewer-image img')?.src")
            start = time.perf_counter()
            page.keyboard.press(KEYS[(n - 1) % len(KEYS)])
            if n < count:
                page.wait_for_function(
                    f"(() => {{ const d = document.querySelector('#details')?.innerText.trim() || '';"
                    f" const img = document.querySelector('#viewer-image img');"
                    f" return d.startsWith('#{n + 1} of') && img && img.src !== {src!r} && img.complete"
                    f" && img.naturalWidth > 0; }})()", polling=5)
            else:
                page.wait_for_function(f"document.querySelector('#message')?.innerText.includes('All {count} decided')",
                                       polling=5)
            times.append(time.perf_counter() - start)
        browser.close()
    return times


class Generator(threading.Thread):
    """A second client session generating candidates over and over until :meth:`stop`."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.done = 0
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        from gradio_client import Client, handle_file

        try:
            client = Client(self.url, verbose=False)
            image = handle_file(str(config.ASSETS_DIR / "normal" / "metal_disc.png"))
            mask = handle_file(str(config.ASSETS_DIR / "masks" / "metal_disc_mask.png"))
            while not self._halt.is_set():
                client.predict(image, mask, "a dark scratch", None, None, "", LOAD_CANDIDATES, -1,
                               api_name="/generate")
                self.done += 1
        except BaseException as exc:  # reported by main: a load that failed measured nothing
            self.error = exc

    def stop(self) -> None:
        self._halt.set()
        self.join(300)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--load", action="store_true", help="a second client session generates meanwhile")
    args = parser.parse_args(argv)
    load = None
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data"
        started = time.perf_counter()
        write_job(data, args.candidates)
        print(f"review job of {args.candidates} candidates written in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)
        app = start_app(data, Path(folder) / "app.log", "--engine", "classic")
        try:
            if args.load:
                load = Generator(app.url)
                load.start()
            times = review_by_keyboard(app.url, args.candidates)
        finally:
            if load is not None:
                load.stop()
            stop_app(app.process)
    if load is not None and load.error is not None:
        raise SystemExit(f"the second session's generate failed: {load.error}")
    ordered = sorted(times)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    meanwhile = f" while a second session ran {load.done} generation(s) of {LOAD_CANDIDATES}" if load else ""
    print(f"keyboard review{meanwhile}, {len(times)} candidates: key press -> next candidate shown: "
          f"median {statistics.median(times):.3f} s, p90 {p90:.3f} s, max {ordered[-1]:.3f} s (target <= 0.3 s)")


if __name__ == "__main__":
    main()
