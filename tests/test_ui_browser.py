"""The whole studio flow in a real browser (Playwright + Debian's chromium, headless).

load page → pick sample → sketch a stroke → add reference + mark it → type description →
preview attention → generate 2 → accept 1 → export MVTec zip → download and check the zip.
Screenshots of every stage go to test-artifacts/browser/.
"""
from __future__ import annotations

import io
import re
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from ui_server import ARTIFACTS, REPO, live_app_fixture

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = ARTIFACTS / "browser"
TIMEOUT_MS = 60_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser installs Debian's)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")

#: The tiny random AnomalyControl model makes the attention preview real (maps of the mechanism);
#: generation then switches to the classic engine in "Advanced" (fast, realistic pixels).
browser_app = live_app_fixture("--engine", "anomalycontrol", "--weights", "tiny")


@pytest.fixture(scope="module")
def page(browser_app):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        yield page
        context.close()
        browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def stroke(page, selector: str, points: list[tuple[float, float]]) -> None:
    """Drag the mouse through ``points`` (fractions of the drawing canvas) with the button down."""
    canvas = page.locator(f"{selector} canvas").last
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box, "the editor has no canvas"
    to_xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*to_xy[0])
    page.mouse.down()
    for x, y in to_xy[1:]:
        page.mouse.move(x, y, steps=3)  # each move repaints the canvas: slow in software GL
    page.mouse.up()


def no_error_toast(page) -> None:
    errors = page.locator(".toast-body.error")
    assert errors.count() == 0, errors.first.inner_text()


def error_toast(page, text: str) -> None:
    """Wait for an error toast containing ``text``, then close every toast."""
    page.locator(".toast-body.error", has_text=text).first.wait_for()
    for close in page.locator(".toast-body .toast-close").all():
        if close.is_visible():
            close.click()
    page.wait_for_function("document.querySelectorAll('.toast-body.error').length === 0")


def test_full_flow_in_browser(browser_app, page, tmp_path):
    page.goto(browser_app.url)
    page.wait_for_selector("#defect-editor canvas")
    page.wait_for_function("document.querySelector('#status-line')?.innerText.includes('tiny')")
    shot(page, "01_loaded")

    # bad input first: a corrupt upload and an empty sketch give visible errors, the page stays usable
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 20)
    with page.expect_file_chooser() as chooser:
        page.locator("#upload-normal").click()
    chooser.value.set_files(str(corrupt))
    page.locator(".toast-body.error", has_text="uploaded image").first.wait_for()
    page.locator("#generate").click()
    page.locator(".toast-body.error", has_text="defect region is empty").first.wait_for()
    page.screenshot(path=str(SHOTS / "02_errors.png"))  # the viewport: toasts are fixed top-right
    error_toast(page, "defect region is empty")

    # 1 · pick a shipped sample
    page.locator("#normal-samples .thumbnail-item").first.click()
    page.wait_for_function("document.querySelector('#category input')?.value.length > 0")
    page.wait_for_timeout(500)  # let the canvas paint the new image before the screenshot
    shot(page, "03_sample")

    # 2 · sketch a stroke with the brush
    page.locator("#defect-editor button[aria-label='Brush']").click()
    stroke(page, "#defect-editor", [(0.35, 0.30), (0.48, 0.36), (0.62, 0.42)])
    page.locator("#defect-editor").screenshot(path=str(SHOTS / "04_sketch_editor.png"))
    shot(page, "04_sketch")

    # 3 · reference example one click away, then mark more of it with the brush
    zoom = "document.querySelector('#reference-editor')?.innerText.match(/\\d+%/)?.[0]"
    empty_zoom = page.evaluate(zoom)
    page.locator("#reference-examples .thumbnail-item").first.click()
    page.wait_for_function("document.querySelector('#reference-text textarea')?.value.length > 0")
    page.wait_for_function(f"{zoom} !== {empty_zoom!r}")  # the image is on the canvas, fitted
    page.locator("#reference-editor button[aria-label='Brush']").click()
    stroke(page, "#reference-editor", [(0.40, 0.80), (0.52, 0.84)])  # below the example's region
    shot(page, "05_reference")

    # 4 · target description
    page.locator("#prompt textarea").fill("a red contamination stain on the disc")

    # 5 · attention preview
    page.locator("#preview-attention").click()
    page.wait_for_function("document.querySelectorAll('#attention-gallery .thumbnail-item').length >= 2")
    assert "mechanism only" in page.locator("#attention-note").inner_text()
    captions = page.locator("#attention-gallery .thumbnail-item").all_inner_texts()
    assert all(re.fullmatch(r"step \d+ · \d+%", c.strip()) for c in captions), captions
    page.locator("#attention-note").scroll_into_view_if_needed()
    shot(page, "06_attention")
    no_error_toast(page)

    # 6 · generate 2, on the classic engine (chosen in "Advanced")
    page.locator("#advanced").click()
    page.locator("#engine input").click()
    page.get_by_role("option", name="classic (weight-free)").click()
    count = page.locator("#num input[type='number']")
    count.fill("2")
    count.press("Enter")
    page.locator("#generate").click()
    page.wait_for_function("document.querySelectorAll('#candidates .thumbnail-item').length === 2")
    page.locator("#candidates").scroll_into_view_if_needed()
    shot(page, "07_generated")
    page.locator("#view label", has_text="side by side").click()
    page.wait_for_function("(() => { const img = document.querySelector('#candidates .thumbnail-item img');"
                           " return img && img.complete && img.naturalWidth > 1.8 * img.naturalHeight; })()")
    page.locator("#candidates").screenshot(path=str(SHOTS / "07b_side_by_side.png"))
    no_error_toast(page)

    # 7 · accept 1
    page.locator("#candidates .thumbnail-item").first.click()
    page.wait_for_function("document.querySelector('#selection')?.innerText.includes('Selected candidate')")
    defect = page.locator("#defect-type input")
    defect.fill("stain")
    defect.press("Enter")
    page.locator("#accept").click()
    page.wait_for_function("document.querySelectorAll('#curated .thumbnail-item').length === 1")
    assert "stain" in page.locator("#counts").inner_text()
    page.locator("#curated").scroll_into_view_if_needed()
    shot(page, "08_curated")
    no_error_toast(page)

    # 8 · export MVTec zip and download it
    page.locator("#export-format label", has_text="mvtec").click()
    page.locator("#export").click()
    link = page.locator("#export-file a[download]").first
    link.wait_for()
    shot(page, "09_export")
    with page.expect_download() as info:
        link.click()
    archive = tmp_path / "export.zip"
    info.value.save_as(archive)
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        masks = [n for n in names if "/ground_truth/stain/" in n and n.endswith("_mask.png")]
        tests = [n for n in names if "/test/stain/" in n and n.endswith(".png")]
        goods = [n for n in names if "/train/good/" in n and n.endswith(".png")]
        assert len(masks) == 1 and len(tests) == 1 and len(goods) == 1, names
        mask = np.asarray(Image.open(io.BytesIO(zf.read(masks[0]))).convert("L"))
        normal = np.asarray(Image.open(io.BytesIO(zf.read(goods[0]))).convert("RGB")).astype(int)
    ys, xs = np.nonzero(mask)
    assert xs.size > 20, "the sketched region should be labelled"
    # the stroke ran across the upper middle of the image, left to right
    assert 0.2 < xs.mean() / mask.shape[1] < 0.8 and 0.15 < ys.mean() / mask.shape[0] < 0.55
    # the normal image is the photo, not the photo with the brush stroke painted on it
    pink = (normal[..., 0] - normal[..., 1] > 80) & (normal[..., 0] > 180)
    assert pink.sum() < 20
    # the reference went in clean, its region = the example's region plus the extra stroke
    from studio.store import Store

    with Store(browser_app.data_dir) as store:
        (record,) = store.list()
        marked = np.asarray(Image.open(record.reference_mask_path).convert("L")) > 0
        clean = np.asarray(Image.open(record.reference_path).convert("RGB"))
    example = REPO / "assets" / "references" / "red_stain"
    preset = np.asarray(Image.open(example.with_name("red_stain_mask.png")).convert("L")) > 0
    assert np.array_equal(clean, np.asarray(Image.open(example.with_suffix(".png")).convert("RGB")))
    assert (marked & preset).sum() == preset.sum() and marked.sum() > preset.sum()
    no_error_toast(page)
