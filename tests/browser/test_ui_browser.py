"""The curation workstation in a real browser (Playwright + Debian's chromium, headless).

One classic-engine server for the module and one page per screen size:

- 1440×900: example → generate 8 → layout check (Generate, a ≥512 px candidate, Accept/Reject in
  the viewport) → review all 8 by keyboard alone (one key per decision, with →, Z and a number
  key) → the store holds exactly the accepted ones with their labels → the curated tab and the
  MVTec zip hold exactly those → a failed generate and a refused accept leave the strip and the
  curated gallery as they were → upload your own image: no label carries over;
- 390×844: the candidate at full width (≥360 px).

Screenshots of every state go to test-artifacts/browser/ (``<size>_<step>.png``).
"""
from __future__ import annotations

import re
import shutil
import zipfile

import pytest

from studio.ui.review_queue import STRIP_WINDOW
from tests.helpers.browser import open_page, write_review_job_of
from tests.helpers.ui_server import ARTIFACTS, REPO, live_app_fixture

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = ARTIFACTS / "browser"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-extensions", "--mute-audio"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser installs Debian's)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")

browser_app = live_app_fixture("--engine", "classic")
STABLE_IDS = ("generate-btn", "candidate-viewer", "candidate-strip", "accept-btn", "reject-btn", "undo-btn", "category",
              "defect-type", "prompt", "reference-text", "curated-gallery", "export-btn")


@pytest.fixture(scope="module")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


def shot(page, name: str, full: bool = False) -> None:
    width = page.viewport_size["width"]
    page.screenshot(path=str(SHOTS / f"{width}_{name}.png"), full_page=full)


def details(page) -> str:
    return page.locator("#details").inner_text()


def under_review(page) -> int:
    """The candidate number (1-based) the details line says is under review."""
    match = re.match(r"#(\d+) of", details(page).strip())
    assert match, details(page)
    return int(match.group(1))


def press(page, key: str, expect: int | None, message: str = "") -> None:
    """One key press; then wait until candidate ``expect`` is shown (or ``message`` appears)."""
    before = page.locator("#message").inner_text()
    page.keyboard.press(key)
    if expect is not None:
        page.wait_for_function(f"/^#{expect} of/.test(document.querySelector('#details')?.innerText.trim())")
    if message:
        page.wait_for_function(f"document.querySelector('#message')?.innerText.includes({message!r})")
    elif key in ("a", "r", "z"):
        page.wait_for_function(f"document.querySelector('#message')?.innerText !== {before!r}")
    if expect is not None:  # what is highlighted is what the next key acts on
        page.wait_for_function("document.querySelector('#candidate-strip .thumbnail-item.selected')?.innerText"
                               f".trim().startsWith('#{expect} ')")


def strip_captions(page) -> list[str]:
    return [c.strip() for c in page.locator("#candidate-strip .thumbnail-item").all_inner_texts()]


def no_error_badges(page) -> None:
    for gallery in ("#candidate-strip", "#curated-gallery"):
        assert page.locator(f"{gallery} .error").count() == 0, f"an error badge replaced {gallery}"


def inside(page, selector: str) -> dict:
    box = page.locator(selector).first.bounding_box()
    viewport = page.viewport_size
    assert box, f"{selector} is not rendered"
    assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= viewport["width"] + 1 and box["y"] + box["height"] <= viewport["height"] + 1, (
        selector, box, viewport)
    return box


def test_workstation_review_by_keyboard(browser_app, browser, tmp_path):
    context, page = open_page(browser, browser_app.url, 1440, 900)
    shot(page, "01_loaded")
    # the weight-free engine cannot explain: no dead-end preview, a one-line hint instead
    page.locator("#reference-tab-button").click()
    assert not page.locator("#preview-attention").is_visible()
    assert "not available" in page.locator("#attention-hint").inner_text()
    page.locator("#advanced-button").click()
    from studio.engines import declared_parameters
    from studio.engines.classic import ClassicEngine

    used = {p.name for p in ClassicEngine().parameters()}
    assert {p.name for p in declared_parameters() if page.locator(f"#param-{p.name}").is_visible()} == used
    assert "classic" in page.locator("#params-hint").inner_text()
    page.locator("#random-seed input").uncheck()
    shot(page, "02_advanced")
    page.locator("#image-tab-button").click()

    # an example fills every input and label at once
    page.locator("#examples .thumbnail-item").first.click()
    page.wait_for_function("document.querySelector('#message')?.innerText.includes('Example')")
    assert page.locator("#category input").input_value() == "metal"
    assert page.locator("#prompt textarea").input_value() == "a dark scratch"
    assert page.locator("#reference-text textarea").input_value() == "a dark scratch"
    assert page.locator("#defect-type input").input_value() == "scratch"
    shot(page, "03_example")

    # the editor's trash icon cannot delete the photo: it comes back with the example's region
    page.locator("#defect-editor button[aria-label='Clear canvas']").click()
    page.wait_for_function("document.querySelector('#message')?.innerText.includes('photo stays')")

    count = page.locator("#num input")
    count.fill("8")
    page.locator("#generate-btn").click()
    page.wait_for_function("document.querySelector('#candidate-strip')?.innerText.includes('of 8')")
    assert len(strip_captions(page)) == STRIP_WINDOW  # a window of the queue around the one under review
    page.wait_for_function("document.querySelector('#viewer-image img')?.complete")
    assert under_review(page) == 1
    shot(page, "04_generated")

    # one working screen: Generate, a large candidate and the decision buttons without scrolling
    page.evaluate("window.scrollTo(0, 0)")
    inside(page, "#generate-btn")
    assert inside(page, "#viewer-image img")["width"] >= 512
    inside(page, "#accept-btn")
    inside(page, "#reject-btn")

    # zoom and pan in the viewer: the wheel zooms, a double click resets
    box = page.locator("#viewer-image img").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -400)
    zoom = "parseFloat(getComputedStyle(document.querySelector('#viewer-image')).getPropertyValue('--zoom') || 1)"
    page.wait_for_function(f"{zoom} > 1.2")
    page.mouse.dblclick(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(f"{zoom} === 1")

    # the views (O cycles them; before / after is an image slider)
    page.locator("body").click(position={"x": 5, "y": 5})
    shown = "document.querySelector('#viewer-image img')?.src || ''"
    for view, ready, name in (("overlay", f"/_overlay/.test({shown})", "05_overlay"),
                              ("before / after", "document.querySelector('#viewer-slider img')?.offsetParent",
                               "06_before_after"),
                              ("mask", f"/_mask/.test({shown}) && document.querySelector('#viewer-image img').offsetParent",
                               "07_mask"),
                              ("image", f"!/_(mask|overlay)/.test({shown})", None)):
        page.keyboard.press("o")
        page.wait_for_function(f"document.querySelector('#view input:checked')?.value === {view!r}")
        page.wait_for_function(ready)
        if name:
            page.wait_for_timeout(200)  # let the image paint before the screenshot
            shot(page, name)
    page.locator("#viewer-image img").wait_for()

    # review all 8 with the keyboard alone: one key per decision, → skips, Z undoes, 7 picks a defect type
    seeds: dict[int, int] = {}

    def seed_shown() -> None:
        seeds[under_review(page)] = int(re.search(r"seed (\d+)", details(page)).group(1))

    page.keyboard.press("7")  # the 7th defect type of the list shown: stain
    page.wait_for_function("document.querySelector('#defect-type input')?.value === 'stain'")
    assert "7 stain" in page.locator("#type-keys").inner_text()
    plan = [("a", 2), ("r", 3), ("ArrowRight", 4), ("a", 5), ("z", 4), ("r", 5), ("a", 6), ("a", 7), ("r", 8),
            ("a", 3), ("a", None)]
    for key, following in plan:
        seed_shown()
        press(page, key, following, "All 8 decided" if following is None else "")
    shot(page, "08_all_decided")
    captions = strip_captions(page)
    marks = {int(re.match(r"#(\d+)", c).group(1)): c[-1] for c in captions}
    expected = {1: "✓", 2: "✗", 3: "✓", 4: "✗", 5: "✓", 6: "✓", 7: "✗", 8: "✓"}
    assert len(marks) == STRIP_WINDOW and marks == {n: expected[n] for n in marks}, captions
    no_error_badges(page)

    from studio.store import Store

    accepted = {1, 3, 5, 6, 8}
    with Store(browser_app.data_dir) as store:
        records = store.list()
    assert sorted(r.metadata["seed"] for r in records) == sorted(seeds[n] for n in accepted)
    assert {(r.category, r.defect_type) for r in records} == {("metal", "stain")}

    # the curated workspace: exactly those, captioned category · defect type; export holds exactly those
    page.locator("#curated-tab-button").click()
    page.wait_for_function("document.querySelectorAll('#curated-gallery .thumbnail-item').length === 5")
    assert all("metal · stain" in c for c in page.locator("#curated-gallery .thumbnail-item").all_inner_texts())
    page.locator("#curated-gallery .thumbnail-item").first.click()
    page.wait_for_function("document.querySelector('#curated-message')?.innerText.includes('Opened')")
    page.wait_for_function("document.querySelector('#curated-view img')?.complete")
    shot(page, "09_curated")
    for elem_id in STABLE_IDS:  # what tests and users' own automation find things by (every tab seen by now)
        assert page.locator(f"#{elem_id}").count() == 1, elem_id
    page.locator("#export-btn").click()
    link = page.locator("#export-file a[download]").first
    link.wait_for()
    shot(page, "10_export")
    with page.expect_download() as info:
        link.click()
    archive = tmp_path / "export.zip"
    info.value.save_as(archive)
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
    tests = [n for n in names if "/test/stain/" in n and n.endswith(".png")]
    masks = [n for n in names if "/ground_truth/stain/" in n and n.endswith("_mask.png")]
    assert len(tests) == 5 and len(masks) == 5, names
    assert not [n for n in names if "/test/" in n and "/test/stain/" not in n and n.endswith(".png")], names

    # errors never hide work: a failed generate and a refused accept leave strip and curated gallery as they were
    page.locator("#workstation-tab-button").click()
    page.locator("#defect-clear").click()
    page.wait_for_function("document.querySelector('#message')?.innerText.includes('Region cleared')")
    page.locator("#generate-btn").click()
    page.wait_for_function("document.querySelector('#message')?.innerText.includes('defect region is empty')")
    assert strip_captions(page) == captions
    shot(page, "11_generate_error")
    no_error_badges(page)

    # carry-over: upload your own image -> category from its file name, no prompt, no defect type
    own = tmp_path / "steel plate.png"
    shutil.copy(REPO / "assets" / "normal" / "wood_plank.png", own)
    with page.expect_file_chooser() as chooser:
        page.locator("#upload-normal").click()
    chooser.value.set_files(str(own))
    page.wait_for_function("document.querySelector('#message')?.innerText.includes('steel plate.png')")
    assert page.locator("#category input").input_value() == "steel_plate"
    page.wait_for_function("document.querySelectorAll('#candidate-strip .thumbnail-item').length === 0")
    assert "No candidates" in details(page)  # the old image's candidates left the queue with its labels
    assert page.locator("#examples .thumbnail-item.selected").count() == 0  # no example looks loaded
    assert page.locator("#prompt textarea").input_value() == ""
    assert page.locator("#defect-type input").input_value() == ""
    assert "refused" in page.locator("#will-store").inner_text()
    page.locator("#defect-shape-box").click()
    page.wait_for_function("document.querySelector('#message')?.innerText === ''")
    count.fill("2")
    page.locator("#generate-btn").click()
    page.wait_for_function("document.querySelectorAll('#candidate-strip .thumbnail-item').length === 2")
    page.locator("body").click(position={"x": 5, "y": 5})
    press(page, "a", None, "defect type is empty")
    shot(page, "12_accept_refused")
    no_error_badges(page)
    with Store(browser_app.data_dir) as store:
        assert len(store.list()) == 5, "a refused accept stored something"
    page.locator("#curated-tab-button").click()
    page.wait_for_function("document.querySelectorAll('#curated-gallery .thumbnail-item').length === 5")

    # a batch review job is reviewed in the same queue, with its own labels
    job_id = write_review_job_of(browser_app.data_dir, 3)
    page.locator("#workstation-tab-button").click()
    page.locator("#batch-tab-button").click()
    page.locator("#review-refresh").click()
    page.wait_for_function("document.querySelector('#review-job input')?.value.includes('0/3 decided')")
    page.locator("#review-open").click()
    page.wait_for_function("/^#1 of 3/.test(document.querySelector('#details')?.innerText.trim())")
    assert page.locator("#defect-type input").input_value() == "crack"
    page.locator("#candidate-viewer").click(position={"x": 5, "y": 5})
    press(page, "a", 2)
    shot(page, "13_batch_review")
    with Store(browser_app.data_dir) as store:
        assert f"{job_id}-00" in store and len(store.list()) == 6
    context.close()


def test_phone_shows_the_candidate_full_width(browser_app, browser):
    context, page = open_page(browser, browser_app.url, 390, 844)
    shot(page, "01_loaded", full=True)
    page.locator("#generate-btn").click()
    page.wait_for_function("document.querySelectorAll('#candidate-strip .thumbnail-item').length >= 1")
    # the strip can show before the viewer's picture has loaded (a busy machine): measure it once it has
    page.wait_for_function("document.querySelector('#viewer-image img')?.complete && "
                           "document.querySelector('#viewer-image img').naturalWidth > 0")
    page.locator("#viewer-image img").scroll_into_view_if_needed()
    assert page.locator("#viewer-image img").bounding_box()["width"] >= 360
    shot(page, "02_generated")
    shot(page, "03_generated_page", full=True)
    page.locator("#accept-btn").click()  # a tap: the same callback as A
    page.wait_for_function("document.querySelector('#message')?.innerText.includes('Accepted')")
    top = page.locator("#candidate-viewer").bounding_box()["y"]
    assert -1 <= top < 844 / 2, f"after a tap on Accept the viewer's top is at {top:.0f} px, not in view"
    shot(page, "04_accepted")
    page.locator("#curated-tab-button").click()
    page.wait_for_function("document.querySelectorAll('#curated-gallery .thumbnail-item').length >= 1")
    shot(page, "05_curated", full=True)
    context.close()
