"""The review workstation walked through as a quality engineer would, at 1440×900 and on a 390×844 phone,
with a screenshot of every step in test-artifacts/walkthrough/ (``<width>_<step>.png``):

fresh page → own photo → a reference chosen and removed → a queue of candidates → a batch job reviewed
→ the curated set: relabel, remove. At 1440×900 Generate and the decision buttons stay on the screen
throughout; on the phone the decision bar stays on the screen.
"""
from __future__ import annotations

import shutil

import pytest

from tests.helpers.browser import (NEEDS_CHROMIUM, generate, launch, open_batch, open_page, shot, upload_normal,
                                   wait_text, write_review_job_of)
from tests.helpers.ui_server import ARTIFACTS, REPO, live_app_fixture

pytestmark = [pytest.mark.browser, NEEDS_CHROMIUM]

walk_app = live_app_fixture("--engine", "classic")
SHOTS = ARTIFACTS / "walkthrough"


@pytest.fixture(scope="module")
def browser():
    yield from launch(SHOTS)


def in_view(page, selector: str) -> None:
    box = page.locator(selector).first.bounding_box()
    size = page.viewport_size
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= size["height"] + 1, (selector, box)


def shows(page, number: int) -> None:
    """Wait until candidate ``number`` is under review, its picture loaded."""
    page.wait_for_function(f"/^#{number} of/.test(document.querySelector('#details')?.innerText.trim())")
    page.wait_for_function("document.querySelector('#viewer-image img')?.complete")


def open_tab(page, name: str, elem_id: str) -> None:
    """Click a tab, through the "More tabs" menu when a narrow screen folded it there."""
    button = page.locator(f"#{elem_id}-button")
    if button.count() and button.is_visible():
        button.click()
        return
    wrapper = page.locator(".tab-wrapper:has(#image-tab-button)")
    wrapper.locator("button[aria-label='More tabs']").click()
    wrapper.locator(".overflow-dropdown button").filter(has_text=name).click()


def own_photo_to_queue(page, tmp_path, width: int) -> None:
    shot(page, SHOTS, "01_fresh")
    assert page.locator("#batch-tab-button").is_visible()  # every input tab fits, a phone's width too
    own = tmp_path / "oak board.png"
    shutil.copy(REPO / "assets" / "normal" / "wood_plank.png", own)
    upload_normal(page, own)
    wait_text(page, "#reference-status", "No reference")
    shot(page, SHOTS, "02_own_photo")
    open_tab(page, "② Reference", "reference-tab")
    page.locator("#reference-examples .thumbnail-item").first.click()
    wait_text(page, "#reference-status", "Reference:")
    page.wait_for_function("document.querySelector('#reference-thumb img')?.naturalWidth > 0")  # shown beside it
    shot(page, SHOTS, "03_reference_chosen")
    page.locator("#reference-clear").click()
    wait_text(page, "#reference-status", "No reference")
    page.wait_for_function("!document.querySelector('#reference-thumb img')?.offsetParent")
    shot(page, SHOTS, "04_reference_removed")
    open_tab(page, "① Image", "image-tab")
    page.locator("#defect-shape-ellipse").click()
    page.wait_for_function("document.querySelector('#message')?.innerText === ''")  # the region is drawn
    page.locator("#defect-type input").fill("knot_crack")
    page.locator("#defect-type input").press("Enter")
    generate(page, 6)
    page.wait_for_function("document.querySelector('#viewer-image img')?.complete")
    shot(page, SHOTS, "05_queue")
    if width > 1000:
        page.evaluate("window.scrollTo(0, 0)")
        for selector in ("#generate-btn", "#accept-btn", "#reject-btn", "#undo-btn", "#next-btn"):
            in_view(page, selector)
    else:
        in_view(page, "#accept-btn")
    for key, following in (("a", 2), ("r", 3)):
        page.keyboard.press(key)
        shows(page, following)
    shot(page, SHOTS, "06_decided")


def batch_then_curated(page, app, width: int) -> None:
    batch = f"walk-{width}.yaml"
    for defect in ("crack", "knot"):  # two jobs of one batch: one queue across both
        write_review_job_of(app.data_dir, 2, f"walk-{width}-{defect}", defect, batch=batch)
    open_tab(page, "Batch jobs", "batch-tab")
    open_batch(page, batch)
    shows(page, 1)
    page.locator("body").click(position={"x": 5, "y": 5})
    for key, following in (("a", 2), ("r", 3)):  # job 1 finished, on to job 2
        page.keyboard.press(key)
        shows(page, following)
    shot(page, SHOTS, "07_batch_review")
    page.locator("#curated-tab-button").click()
    page.wait_for_function("document.querySelectorAll('#curated-gallery .thumbnail-item').length >= 2")
    page.locator("#curated-gallery .thumbnail-item").first.click()
    page.wait_for_function("document.querySelector('#curated-view img')?.complete")
    shot(page, SHOTS, "08_curated_opened")
    page.locator("#relabel-defect-type input").fill("knot")
    page.locator("#relabel-btn").click()
    wait_text(page, "#curated-message", "Relabelled 1")
    shot(page, SHOTS, "09_curated_relabelled")
    page.locator("#remove-btn").click()
    wait_text(page, "#curated-message", "again to confirm")
    shot(page, SHOTS, "10_remove_asks")
    page.locator("#remove-btn").click()
    wait_text(page, "#curated-message", "Removed 1")
    shot(page, SHOTS, "11_removed")


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_walkthrough(walk_app, browser, tmp_path, width, height):
    context, page = open_page(browser, walk_app.url, width, height)
    try:
        own_photo_to_queue(page, tmp_path, width)
        batch_then_curated(page, walk_app, width)
    finally:
        shot(page, SHOTS, "99_last", full=True)
        context.close()
