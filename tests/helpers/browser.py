"""Driving the studio page in headless Chromium (Playwright): launch, open a page, wait, screenshot."""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers.ui_server import ARTIFACTS, REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TIMEOUT_MS = 60_000
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-extensions", "--mute-audio"]
NEEDS_CHROMIUM = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser installs it)")


def launch(folder: Path = ARTIFACTS / "browser") -> Iterator:
    """A headless Chromium for a module (a generator for a fixture); screenshots go to ``folder``."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


def open_page(browser, url: str, width: int = 1440, height: int = 900):
    """(context, page) with the studio loaded and its classic engine named on the status line."""
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector("#defect-editor canvas")
    page.wait_for_function("document.querySelector('#status-line')?.innerText.includes('classic')")
    return context, page


def wait_text(page, selector: str, text: str) -> None:
    """Wait until ``selector``'s text contains ``text``."""
    page.wait_for_function(f"document.querySelector({selector!r})?.innerText.includes({text!r})")


def under_review(page) -> int:
    """The candidate number (1-based) the details line says is under review."""
    text = page.locator("#details").inner_text().strip()
    match = re.match(r"#(\d+) of", text)
    assert match, text
    return int(match.group(1))


def upload_normal(page, path: Path) -> None:
    """Upload ``path`` as your own normal image and wait for the message naming it."""
    with page.expect_file_chooser() as chooser:
        page.locator("#upload-normal").click()
    chooser.value.set_files(str(path))
    wait_text(page, "#message", path.name)


def generate(page, count: int) -> None:
    """Generate ``count`` candidates and wait until the strip shows them and the first is under review."""
    page.locator("#num input").fill(str(count))
    before = page.locator("#message").inner_text()
    page.locator("#generate-btn").click()
    page.wait_for_function(f"document.querySelector('#candidate-strip')?.innerText.includes('of {count}') || "
                           f"document.querySelector('#message')?.innerText !== {before!r}")
    wait_text(page, "#candidate-strip", f"of {count}")
    page.wait_for_function("/^#1 of/.test(document.querySelector('#details')?.innerText.trim())")
    page.locator("body").click(position={"x": 5, "y": 5})  # focus out of any field: keys are hotkeys


def shot(page, folder: Path, name: str, full: bool = False) -> None:
    page.screenshot(path=str(folder / f"{page.viewport_size['width']}_{name}.png"), full_page=full)


def write_review_job_of(data_dir: Path, count: int, job_id: str = "browser-review-job", defect_type: str = "crack",
                        batch: str = "", category: str = "wood") -> str:
    """What ``anomaly-studio batch --review`` leaves: a review job of ``count`` classic candidates of the wood
    plank labelled ``category`` (``batch``: the spec it came from, so jobs group into one batch)."""
    from studio.batch.review import review_root, write_review_job
    from studio.engines.classic import ClassicEngine
    from studio.requests import build_request

    request = build_request(REPO / "assets" / "normal" / "wood_plank.png", REPO / "assets" / "masks" /
                            "wood_plank_mask.png", prompt=f"a {defect_type}", num=count, seed=5)
    info = {"prompt": f"a {defect_type}", "category": category, "defect_type": defect_type, "note": ""}
    if batch:
        info["spec"] = batch
    write_review_job(review_root(data_dir), job_id, ClassicEngine().generate(request), request.image, None, None, info)
    return job_id


def open_batch(page, name: str) -> None:
    """On the (shown) Batch jobs tab: refresh the list, choose batch ``name`` (its spec's file name), open it."""
    page.locator("#review-refresh").click()
    page.wait_for_function("document.querySelector('#review-job input')?.value.includes('decided')")
    if name not in page.locator("#review-job input").input_value():
        page.locator("#review-job input").click()
        page.locator("[role='option']").filter(has_text=name).first.click()
    page.locator("#review-open").click()
    wait_text(page, "#message", name)
