"""The studio's callbacks called directly (no server): editor values, the review queue on the
classic engine, no silent mislabels, errors that keep the page's work, the curated workspace,
batch review in the same queue, engines through the protocol only."""
from __future__ import annotations

import errno
import json
import re
import zipfile

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from studio.atomic import disk_full_error
from studio.batch import load_spec, run_batch
from studio.engines.classic import ClassicEngine
from studio.types import AttentionStep, AttentionTrace, EngineParameter
from studio.ui import review_queue as queue
from studio.ui.assets import Assets, NormalSample, ReferenceExample, load_assets, parse_manifest
from studio.ui.context import build_context
from studio.ui.inputs import resolve_seed
from studio.ui.page import Page
from studio.ui.session import candidate_key
from studio.ui.panels import review as rv
from studio.ui.widgets import editor as ed
from tests.helpers.samples import make_spec

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # gr.Warning outside a request


class FakeCSMEngine:
    """Stands in for AnomalyControl's tiny profile: it explains (attention moves into the marked region)."""

    name = "fakecsm"
    label = "fake CSM · tiny"
    profile = "tiny"
    can_explain = True
    hint = ""

    def parameters(self):
        return (EngineParameter("asea_steps", "ASEA steps", 5, 0, 50, 1, True),)

    def gpu_seconds(self, request, work="generate"):
        return 0

    def generate(self, request, progress=None):
        raise RuntimeError("boom: not meant to generate")

    def explain(self, request, progress=None):
        mask = request.reference_mask.astype(np.float32)
        steps = []
        for k in range(int(request.params["asea_steps"]) + 1):
            weight = (k + 1) / (request.params["asea_steps"] + 1)
            heat = weight * mask + (1 - weight) * 0.5
            steps.append(AttentionStep(heatmap=heat, inmask_fraction=float((heat * mask).sum() / heat.sum())))
        return AttentionTrace(steps=steps)

    def status(self):
        return "Engine: fake CSM (tiny random weights)."


def rgba(image: np.ndarray) -> np.ndarray:
    return np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])


def stroke_layer(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    layer = np.zeros((*shape, 4), np.uint8)
    x0, y0, x1, y1 = box
    layer[y0:y1, x0:x1] = (255, 0, 80, 255)
    return layer


@pytest.fixture
def studio(tmp_path, surface) -> Page:
    ctx = build_context(tmp_path / "data", engines={"classic": ClassicEngine(), "fakecsm": FakeCSMEngine()},
                        temp_root=tmp_path / "tmp")
    normal, normal_mask = tmp_path / "normal.png", tmp_path / "normal_mask.png"
    Image.fromarray(surface).save(normal)
    suggested = np.zeros(surface.shape[:2], np.uint8)
    suggested[10:20, 10:30] = 255
    Image.fromarray(suggested).save(normal_mask)
    reference = surface.copy()
    reference[100:140, 100:150] = (180, 40, 40)
    ref_path, ref_mask_path = tmp_path / "ref.png", tmp_path / "ref_mask.png"
    Image.fromarray(reference).save(ref_path)
    ref_mask = np.zeros(surface.shape[:2], np.uint8)
    ref_mask[100:140, 100:150] = 255
    Image.fromarray(ref_mask).save(ref_mask_path)
    assets = Assets((NormalSample("plate", normal, "metal_plate", normal_mask, "a red stain"),),
                    (ReferenceExample("stain", ref_path, ref_mask_path, "a red stain", "stain"),))
    page = Page(ctx, assets)
    page.render()
    return page


@pytest.fixture
def sketched(surface) -> dict:
    return {"background": rgba(surface), "layers": [stroke_layer(surface.shape[:2], (100, 100, 140, 120))],
            "composite": None}


def pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def select(index: int) -> gr.SelectData:
    return gr.SelectData(None, {"index": index, "value": None, "selected": True})


def as_browser_sends(value: dict, strokes: list[np.ndarray] | None = None) -> dict:
    """What the page sends back: the shown background (RGBA) and only the user's own strokes."""
    background = np.asarray(Image.open(value["background"]).convert("RGB"))  # the server sends files
    return {"background": rgba(background), "layers": strokes or [], "composite": None}


def controls(studio: Page, **values) -> list:
    """The Advanced controls' values in the order the events take them (their defaults, or ``values``)."""
    return [values.get(name, control.value) for name, control in studio.advanced.controls.items()]


def generate(studio: Page, sketched: dict, num: int = 2, state=None, view: str = "image", seed: int = 11):
    """Generate with the example's reference on the classic engine; returns its outputs."""
    reference, source, text, _, _ = studio.reference.pick_reference(select(0))
    return studio.inputs.generate(state, sketched, None, as_browser_sends(reference), source, "a red stain", text, num,
                                  seed, False, view, None, None, None, "classic", None, *controls(studio))


def skipped(outputs: tuple) -> bool:
    """Whether every output but the last (the message) is left as it was."""
    return all(o == gr.skip() for o in outputs[:-1])


# --------------------------------------------------------------------------- editor values
def test_mask_is_union_of_layers_resized_to_background(surface):
    small = np.zeros((64, 64, 4), np.uint8)
    small[:8, :8, 3] = 255
    value = {"background": rgba(surface), "layers": [stroke_layer((256, 256), (200, 200, 220, 220)), small]}
    image, mask = ed.image_and_mask(value, "normal image", "missing")
    assert image.shape == (256, 256, 3)
    assert mask[210, 210] and mask[10, 10] and not mask[128, 128]
    assert mask.sum() == 400 + 32 * 32


@pytest.mark.parametrize("shape", ed.SHAPES)
def test_quick_shapes_draw_at_chosen_place_and_survive_strokes(studio, shape):
    value, source = studio.inputs.pick_example(None, "image", select(0))[6:8]
    value, source, _ = studio.inputs.normal.clear_region(as_browser_sends(value), source)
    value, source, _ = studio.inputs.normal.add_shape(as_browser_sends(value), source, shape, 20, 25, 75)
    image, mask = ed.image_and_mask(as_browser_sends(value), "normal image", "missing", source)
    ys, xs = np.nonzero(mask)
    assert abs(xs.mean() - 0.25 * 255) < 4 and abs(ys.mean() - 0.75 * 255) < 4
    assert np.array_equal(image, np.asarray(Image.open(studio.service.assets.normals[0].path).convert("RGB")))
    stroke = stroke_layer((256, 256), (200, 10, 230, 30))  # the user paints after the shape
    image2, mask2 = ed.image_and_mask(as_browser_sends(value, [stroke]), "normal image", "missing", source)
    assert np.array_equal(mask2, mask | (stroke[..., 3] > 0)) and np.array_equal(image2, image)
    cleared, source, _ = studio.inputs.normal.clear_region(as_browser_sends(value, [stroke]), source)
    assert not ed.image_and_mask(as_browser_sends(cleared), "normal image", "missing", source)[1].any()


def test_the_editor_clear_button_cannot_delete_the_photo(studio):
    value, source = studio.inputs.pick_example(None, "image", select(0))[6:8]
    restored, source2, message = studio.inputs.normal.restore_image(source)  # the editor's own trash icon emptied it
    image, region = ed.image_and_mask(as_browser_sends(restored), "normal image", "missing", source2)
    assert np.array_equal(image, np.asarray(Image.open(studio.service.assets.normals[0].path).convert("RGB")))
    assert region[10:20, 10:30].all() and not np.array_equal(pixels(restored["background"]), image)  # shown tinted
    assert "Clear region" in message


def test_example_fills_every_input_at_once_and_uploads_reset_labels(studio):
    out = studio.inputs.pick_example(None, "image", select(0))[6:]
    value, source, ref_value, ref_source, category, prompt, text, defect, picked, note, _ = out
    assert (category, prompt, text, defect["value"], picked) == ("metal_plate", "a red stain", "a red stain", "stain", 0)
    assert ed.image_and_mask(as_browser_sends(value), "normal", "missing", source)[1][10:20, 10:30].all()
    assert ed.image_and_mask(as_browser_sends(ref_value), "reference", "missing", ref_source)[1].sum() == 40 * 50
    # your own image: category from its file name, no description, no defect type, no suggested region
    own = studio.service.assets.normals[0].path.with_name("Steel Plate.png")
    own.write_bytes(studio.service.assets.normals[0].path.read_bytes())
    out = studio.inputs.upload_normal(str(own), None, "image")[6:]
    value, source, category, prompt, defect, picked, examples, ref_value, ref_source, text, note, message = out
    assert category == "steel_plate" and prompt == "" and defect["value"] is None and picked is None
    assert (ref_value, ref_source, text, note) == (None, None, "", "")  # no reference, no note carried over
    assert examples["selected_index"] is None  # no example stays highlighted
    assert source["preset"] is None and "cleared" in message
    # a reference upload drops the old text and mask
    value, source, text, _ = studio.reference.upload_reference(str(own))
    assert text == "" and source["preset"] is None


def test_a_new_normal_image_closes_the_old_queue(studio, sketched):
    state = generate(studio, sketched, num=3)[0]
    studio.review.accept(state, "stain", "metal_plate", "", "image")
    out = studio.inputs.pick_example(state, "image", select(0))
    state, viewer, _, strip, details, key = out[:6]
    assert state.candidates == [] and strip["value"] == [] and "No candidates" in details and key == ""
    assert "2 undecided" in out[-1] and len(studio.service.ctx.store) == 1  # the accepted one stays
    assert "no candidates" in studio.review.accept(state, "stain", "metal_plate", "", "image")[-1].lower()
    own = studio.service.assets.normals[0].path
    out = studio.inputs.upload_normal(str(own), state, "image")
    assert out[0].candidates == [] and "left the review queue" not in out[-1]  # nothing was left to close


def test_editor_without_image_says_what_to_do(studio):
    *_, message = studio.inputs.normal.add_shape({"background": None, "layers": []}, None, "box", 10, 50, 50)
    assert "first" in message


# --------------------------------------------------------------------------- the review queue
def test_generate_review_by_decisions_auto_advance_and_undo(studio, sketched):
    state, viewer, slider, strip, details, key, seed, message = generate(studio, sketched, num=4)
    assert seed == 11 and "4 candidate" in message and details.startswith("**#1** of 4")
    assert [c for _, c in strip["value"]][0].startswith("#1") and strip["selected_index"] == 0
    assert viewer["value"] == state.candidates[0].image and not slider["visible"]
    assert all(r.score is not None for r in state.candidates)  # the engine scores every candidate

    out = studio.review.accept(state, "stain", "metal_plate", "nice", "image")
    state, _, _, strip, details, key, *fields, message = out
    assert all(f == gr.skip() for f in fields)  # a generation's queue: the label fields stay as typed
    assert "Accepted **#1**" in message and details.startswith("**#2**") and strip["selected_index"] == 1
    assert strip["value"][0][1].endswith("✓")
    record = studio.service.ctx.store.get(state.candidates[0].sample_id)
    assert (record.defect_type, record.category, record.note) == ("stain", "metal_plate", "nice")
    assert record.metadata["seed"] == state.candidates[0].seed and record.reference_path is not None

    state, *_, message = studio.review.reject(state, "image")
    assert state.selected == 2 and "Rejected **#2**" in message
    state, *_ = studio.review.next(state, "image")  # → skips #3
    assert state.selected == 3
    state, *_ = studio.review.accept(state, "stain", "metal_plate", "", "image")
    assert state.selected == 2  # the only undecided one left, wrapping round
    state, *_, message = studio.review.undo(state, "image")  # undo the accept of #4: its sample goes again
    assert state.selected == 3 and state.candidates[3].status == "undecided" and len(studio.service.ctx.store) == 1
    state, *_, message = studio.review.reject_all_undecided(state, "", "", "", "image")
    assert "Rejected all 2" in message and queue.tally(state) == {"undecided": 0, "accepted": 1, "rejected": 3}
    *_, message = studio.review.reject(state, "image")
    assert "already" in message or "Rejected" in message


def test_presses_take_effect_in_the_order_pressed_not_the_order_they_arrive(studio, sketched):
    state = generate(studio, sketched, num=3)[0]
    first, second = (candidate_key(state, r) for r in state.candidates[:2])
    # R then A pressed on #1 within a few milliseconds; A's request reaches the server first
    message = studio.review.accept(state, "stain", "metal_plate", "", "image", first, "tab0:2")[-1]
    assert "still on its way" in message and queue.tally(state)["undecided"] == 3
    message = studio.review.reject(state, "image", first, "tab0:1")[-1]
    assert "Rejected **#1**" in message and len(studio.service.ctx.store) == 0
    studio.review.accept(state, "stain", "metal_plate", "", "image", second, "tab0:3")
    assert state.candidates[1].status == "accepted" and len(studio.service.ctx.store) == 1
    # Z overtaking a → pressed before it: refused (the move still happens), then pressed again
    assert "still on its way" in studio.review.undo(state, "image", "tab0:5")[-1]
    assert "⚠️" not in studio.review.next(state, "image", "tab0:4")[-1]
    assert state.candidates[1].status == "accepted" and len(studio.service.ctx.store) == 1
    assert "Undid the decision on **#2**" in studio.review.undo(state, "image", "tab0:6")[-1]
    assert len(studio.service.ctx.store) == 0 and state.candidates[0].status == "rejected"


def test_views_and_best_first(studio, sketched):
    state = generate(studio, sketched, num=4)[0]
    overlay = studio.review.view_changed(state, "overlay")[1]["value"]
    assert pixels(overlay).shape == pixels(state.candidates[0].image).shape
    assert not np.array_equal(pixels(overlay), pixels(state.candidates[0].image))
    assert studio.review.view_changed(state, "overlay")[1]["value"] == overlay  # drawn once, then reused
    _, viewer, slider, *_ = studio.review.view_changed(state, "before / after")
    assert not viewer["visible"] and slider["visible"] and slider["value"] == (state.normal, state.candidates[0].image)
    assert studio.review.view_changed(state, "mask")[1]["value"] == state.candidates[0].mask
    state, _, _, strip, *_ = studio.review.order_changed(state, True, "image")
    scores = [state.candidates[i].score for i in queue.order(state)]
    assert scores == sorted(scores, reverse=True) and "best first" in strip["label"]
    state.candidates[1].metadata.pop("score")  # an engine without a score: shown last, says so
    assert queue.order(state)[-1] == 1 and "no score" in rv.details(state, state.candidates[1])
    # a plain mark (nothing the engine drew showed) says so beside its score, so it is not accepted unseen
    assert "plain mark" not in rv.details(state, state.candidates[0])
    state.candidates[0].metadata["score"] = {"value": -5.0, "method": "m", "plain_mark": True}
    assert "a plain mark" in rv.details(state, state.candidates[0])


def test_strip_shows_a_window_around_the_candidate_under_review(studio, sketched):
    state = generate(studio, sketched, num=8)[0]
    state.candidates = state.candidates * 3  # 24 records (indices repeat: only the window is checked)
    for i, record in enumerate(state.candidates):
        state.candidates[i] = type(record)(**{**record.__dict__, "index": i})
    queue.select(state, 20)
    shown = queue.window(state)
    assert len(shown) == queue.STRIP_WINDOW and 20 in shown and shown == sorted(shown)
    state, *_ = studio.review.select_candidate(state, "image", select(shown.index(22)))
    assert state.selected == 22


def test_no_silent_mislabels_empty_labels_are_refused_and_nothing_stored(studio, sketched):
    state = generate(studio, sketched, num=2)[0]
    for defect, category, said in (("", "plate", "defect type is empty"), ("stain", " ", "category is empty")):
        out = studio.review.accept(state, defect, category, "", "image")
        assert skipped(out) and said in out[-1]
    assert len(studio.service.ctx.store) == 0 and state.candidates[0].status == "undecided"
    assert "refused" in rv.will_store("", "stain")
    assert rv.will_store("plate", "stain") == "Next queue: category `plate` · defect type `stain`"
    types = studio.review.load()[1]  # the list the page shows is the list the keys pick from
    assert "**3** " + types[2] in rv.type_keys_markdown(types)
    assert studio.review.type_key(3, types)[0]["value"] == types[2] and "Key 9 has no defect type" in studio.review.type_key(9, types)[-1]


def test_errors_keep_the_strip_and_say_what_went_wrong(studio, sketched, monkeypatch, tmp_path):
    state = generate(studio, sketched, num=2)[0]
    empty = {"background": sketched["background"], "layers": []}
    reference, source, text, _, _ = studio.reference.pick_reference(select(0))
    args = [as_browser_sends(reference), source, "", text, 2, 1, False, "image", None, None, None, "classic", None,
            *controls(studio)]
    for normal, said in ((empty, "defect region is empty"), (None, "normal image first")):
        out = studio.inputs.generate(state, normal, None, *args)
        assert skipped(out) and said in out[-1]
    out = studio.inputs.generate(state, sketched, None, *args[:11], "fakecsm", *args[12:])
    assert skipped(out) and "Something went wrong" in out[-1]  # an engine bug stays a message

    def disk_full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(studio.service.ctx.store, "add", disk_full)
    out = studio.review.accept(state, "stain", "plate", "", "image")
    assert skipped(out) and out[-1].startswith("⚠️") and state.candidates[0].status == "undecided"
    assert not state.history

    def store_says_disk_full(*_a, **_k):  # what the store raises when the disk fills during an accept
        raise disk_full_error("Accepting the sample", studio.service.ctx.store.root)

    monkeypatch.setattr(studio.service.ctx.store, "add", store_says_disk_full)
    out = studio.review.accept(state, "stain", "plate", "", "image")
    assert skipped(out) and "disk holding" in out[-1] and "free" in out[-1]  # the store's own sentence
    monkeypatch.undo()
    assert studio.review.accept(state, "stain", "plate", "", "image")[-1].startswith("Accepted")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"GIF89a not really")
    assert re.search("(?i)image", studio.inputs.upload_normal(str(bad), state, "image")[-1])
    assert "Nothing to export" in studio.curated.export("mvtec", "current filter", "nope", "", "", "", "",
                                                   progress=None)[-1]


def test_sessions_are_isolated(studio, sketched, surface):
    state_a = generate(studio, sketched, num=1)[0]
    dark = {"background": rgba(surface // 3), "layers": sketched["layers"]}
    reference, source, text, _, _ = studio.reference.pick_reference(select(0))
    state_b = studio.inputs.generate(None, dark, None, as_browser_sends(reference), source, "", text, 1, 3, False,
                                     "image", None, None, None, "classic", None, *controls(studio))[0]
    assert state_a.id != state_b.id and state_a.dir != state_b.dir
    assert pixels(state_a.candidates[0].image).mean() > 2 * pixels(state_b.candidates[0].image).mean()
    studio.review.accept(state_b, "stain", "plate", "", "image")
    assert state_a.candidates[0].status == "undecided"


def test_accepting_twice_keeps_one_sample(studio, sketched):
    state = generate(studio, sketched, num=1)[0]
    first = studio.api.api_accept(0, "stain", "", "", state)[0]
    second = studio.api.api_accept(0, "stain", "", "", state)[0]
    assert first["id"] == second["id"] and not second["new"] and second["stats"]["total"] == 1


# --------------------------------------------------------------------------- curated workspace and API
def test_curated_workspace_pages_filters_relabel_remove_export(studio, sketched):
    state = generate(studio, sketched, num=3)[0]
    studio.review.accept_all_undecided(state, "stain", "plate", "", "image")
    gallery, ids, page, counts, picks, *_ = studio.curated.browse("", "", "", "", "", 1)
    assert len(gallery) == 3 and page == 1 and all(c == "plate · stain" for _, c in gallery)
    assert "**3** of 3" in counts and len(picks["choices"]) == 3
    image, meta, opened, cat, defect, _ = studio.curated.open_sample(ids, select(0))
    assert opened == ids[0] and json.loads(meta)["id"] == ids[0]
    # the relabel fields stay empty (its labels only as placeholders): a bulk relabel never writes them
    assert (cat["value"], defect["value"]) == ("", "") and "plate" in cat["placeholder"]
    gallery, ids2, *_, message = studio.curated.relabel(ids[:2], None, "", "crack", "re-checked", "", "", "", "", "", 1)
    assert "Relabelled 2" in message and sorted(r.defect_type for r in studio.service.ctx.store.list()) == [
        "crack", "crack", "stain"]
    assert len(studio.curated.browse("", "crack", "", "", "", 1)[0]) == 2
    assert studio.curated.browse("", "", "", "2020-01-01", "2020-12-31", 1)[0] == []
    assert "YYYY-MM-DD" in studio.curated.browse("", "", "", "yesterday", "", 1)[-1]
    download, message = studio.curated.export("mvtec", "current filter", "", "crack", "", "", "", None)
    with zipfile.ZipFile(download["value"]) as zf:
        tests = [n for n in zf.namelist() if "/test/" in n and n.endswith(".png")]
    assert len(tests) == 2 and all("/test/crack/" in n for n in tests) and "2 sample" in message
    whole = studio.api.api_export("mvtec")
    with zipfile.ZipFile(whole) as zf:
        assert len([n for n in zf.namelist() if "/test/" in n and n.endswith(".png")]) == 3
    *_, armed, message = studio.curated.remove([], opened, [], "", "", "", "", "", 1)
    assert "again to confirm" in message and len(studio.service.ctx.store) == 3  # the first click asks
    *_, view, meta, still_opened, armed, message = studio.curated.remove([], opened, armed, "", "", "", "", "", 1)
    assert "Removed 1" in message and len(studio.service.ctx.store) == 2
    assert (view, still_opened, armed) == (None, None, [])  # the removed sample is no longer shown


def test_api_decide_undo_curated_pages_relabel(studio, sketched):
    state = generate(studio, sketched, num=3)[0]
    info, state = studio.api.api_decide(0, "accept", "stain", "plate", "", state)
    assert info["status"] == "accepted" and info["next"] == 1 and info["counts"]["accepted"] == 1
    info, state = studio.api.api_decide(1, "reject", "", "", "", state)
    assert info["status"] == "rejected" and info["next"] == 2
    with pytest.raises(gr.Error, match="category is empty"):
        studio.api.api_decide(2, "accept", "stain", "", "", state)
    with pytest.raises(gr.Error, match="decision must be"):
        studio.api.api_decide(2, "maybe", "stain", "plate", "", state)
    info, state = studio.api.api_undo(state)
    assert info == {"index": 1, "status": "undecided", "counts": {"undecided": 2, "accepted": 1, "rejected": 0}}
    listed = studio.api.api_curated("stain", "plate", "", "", "", 1, 10)
    assert listed["total"] == 1 and listed["pages"] == 1 and listed["samples"][0]["engine"] == "classic"
    sample_id = listed["samples"][0]["id"]
    relabelled = studio.api.api_relabel(sample_id, "", "scratch", "")
    assert relabelled["samples"][0]["defect_type"] == "scratch"
    with pytest.raises(gr.Error):
        studio.api.api_relabel("01NOTANID00000000000000000", "", "scratch", "")


def test_batch_review_job_reviews_in_the_same_queue_and_accepts_once(studio, sketched, tmp_path):
    spec = load_spec(make_spec(tmp_path / "spec", jobs=1, count=2))  # classic engine, defect "scratch"
    run_batch(spec, studio.service.ctx.store.root, review=True, show_progress=False)
    job_id = spec.jobs[0].job_id
    listed, progress, message = studio.batch_jobs.list_jobs(None)
    assert message == gr.skip()  # the message line keeps what the page's load said (the note on the queue)
    ((title, batch),) = listed["choices"]
    assert listed["value"] == batch and title.endswith("1 job(s) · 2 candidate(s) · 0/2 decided")
    assert f"job 1 `{job_id[:16]}` · a scratch · 0/2" in progress
    assert studio.api.api_review_jobs()["jobs"][0]["candidates"] == 2

    state, viewer, _, strip, details, key, defect, category, note, progress, message = studio.batch_jobs.open_job(
        None, batch, "image")
    assert len(strip["value"]) == 2 and "2 candidate(s) in 1 job(s)" in message and f"job `{job_id[:8]}…`" in details
    assert (defect, category, note) == ("scratch", "bottle", "")
    folder = studio.service.ctx.store.root / "review" / job_id
    assert np.array_equal(pixels(viewer["value"]), pixels(folder / "candidate_00.png"))

    state, *_ = studio.review.next(state, "image")
    assert "bottle · crack" in studio.review.apply_labels(state, "crack", "bottle", "kept", "image")[-1]
    state, *_, message = studio.review.accept(state, "crack", "bottle", "kept", "image")
    assert f"`{job_id}-01`" in message
    record = studio.service.ctx.store.get(f"{job_id}-01")
    assert record.defect_type == "crack" and record.note == "kept" and record.reference_path is not None
    assert record.metadata["batch_job"] == job_id
    info, other = studio.api.api_open_review(job_id)  # another session accepts the same candidate: no duplicate
    assert [c["index"] for c in info["candidates"]] == [0, 1] and info["defect_type"] == "scratch"
    with pytest.raises(gr.Error, match="already in the curated set"):  # decided by the first session
        studio.api.api_accept(1, "crack", "bottle", "", other)
    assert studio.api.api_reject(0, other)[0]["remaining"] == [1]
    assert len(studio.service.ctx.store) == 1
    state, *_, message = studio.review.undo(state, "image")  # undo removes the reviewed sample again
    assert f"{job_id}-01" not in studio.service.ctx.store

    (studio.service.ctx.store.root / "review" / "half").mkdir()  # not a review job: no job.json
    for bad in ("", "nope", "half", f"../review/{job_id}", f"{job_id}/..", str(folder), "../../etc"):
        assert "no review jobs" in studio.batch_jobs.open_job(None, bad, "image")[-1]
        with pytest.raises(gr.Error, match="batch review job"):
            studio.api.api_open_review(bad)


# --------------------------------------------------------------------------- engines through the protocol
def test_attention_preview_only_where_an_engine_explains(studio, sketched):
    reference, source, text, _, _ = studio.reference.pick_reference(select(0))
    args = (sketched, None, as_browser_sends(reference), source, text, "", "classic", None,
            *controls(studio, asea_steps=3))
    maps, note, _ = studio.reference.preview_attention(*args)  # classic cannot: the fake CSM engine runs
    assert len(maps["value"]) == 4 and re.fullmatch(r"step 0 · \d+%", maps["value"][0][1])
    assert "inside the marked region" in note and "fake CSM" in note
    *sliders, preview, hint, listed = studio.advanced.show_engine("fakecsm")
    assert preview["visible"] and hint == "" and sum(s["visible"] for s in sliders) == 1
    studio.service.ctx.engine_names.remove("fakecsm")
    *sliders, preview, hint, listed = studio.advanced.show_engine("classic")
    assert not preview["visible"] and "weights" in hint
    assert [s["visible"] for s in sliders] == [False] * len(sliders) or "Parameters" in listed
    maps, note, _ = studio.reference.preview_attention(*args)
    assert not maps["visible"] and "No attention maps" in note


def test_a_swapped_default_engine_is_used_by_the_next_call(studio, sketched):
    class Renamed(ClassicEngine):
        name = "classic2"
        label = "classic, swapped in"

        def status(self):
            return "Engine: classic, swapped in."

    before = studio.status_line()
    assert studio.status_line(before) == gr.skip()  # the timer sends nothing while nothing changed
    studio.service.ctx.add_engine(Renamed())
    assert "swapped in" in studio.status_line(before).splitlines()[0]
    reference, source, text, _, _ = studio.reference.pick_reference(select(0))
    out = studio.inputs.generate(None, sketched, None, as_browser_sends(reference), source, "", text, 1, 1, False,
                                 "image", None, None, None, "", None, *controls(studio))
    assert "classic, swapped in" in out[-1]
    assert studio.load("")[1]["choices"][0] == ("default: classic, swapped in", "")


def test_a_startup_note_replaces_the_default_engines_own_advice(studio):
    studio.service.ctx.startup_note = "Fetching the AnomalyControl weights in the background (3/10 files)."
    try:
        status = studio.service.ctx.status_markdown()
    finally:
        studio.service.ctx.startup_note = ""
    lines = status.split("  \n")
    first, note = lines[0], lines[-1]
    default = studio.service.ctx.engines[studio.service.ctx.default_engine]
    assert first == default.label and note.startswith("Fetching")
    assert "weights/README.md" not in status  # no "put the weights in weights/" while they are being fetched
    assert studio.service.ctx.status_markdown().split("  \n")[0] == default.status()


def test_resolve_seed():
    assert resolve_seed(5) == 5 and resolve_seed("12") == 12
    assert 0 <= resolve_seed(-1) < 2**32 and 0 <= resolve_seed(3, True) < 2**32
    for bad in (-2, 2**33, 1.5, "x"):
        with pytest.raises(Exception, match="seed"):
            resolve_seed(bad)


def test_manifest_parsing_skips_missing_and_escaping_files(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "r.png").write_bytes(b"x")
    manifest = {"normals": [{"image": "a.png", "name": "plate", "prompt": "a stain"}, {"image": "../../etc/passwd"},
                            "missing.png"],
                "references": [{"image": "r.png", "mask": "nope.png", "text": "a stain", "defect_type": "stain"}]}
    assets = parse_manifest(manifest, tmp_path)
    assert [n.name for n in assets.normals] == ["plate"]
    assert assets.references[0].mask_path is None and assets.references[0].text == "a stain"
    (example,) = assets.examples()
    assert example.reference is assets.references[0] and example.defect_type == "stain"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert load_assets(tmp_path).normals[0].path == (tmp_path / "a.png").resolve()


def test_the_viewer_shows_large_candidates_downscaled_once(studio, monkeypatch, sketched):
    from studio.ui.widgets import views

    state = generate(studio, sketched, num=1)[0]
    monkeypatch.setattr(views, "VIEW_MAX", 128)  # the 256 px candidate counts as large
    record = state.candidates[0]
    for view in ("image", "overlay", "mask"):
        shown = views.view_file(record, view)
        assert max(Image.open(shown).size) == 128 and views.view_file(record, view) == shown
    before, after = views.before_after(record, state.normal)
    assert Image.open(before).size == Image.open(after).size == (128, 128)
    monkeypatch.setattr(views, "VIEW_MAX", 4096)
    assert views.view_file(record, "image") == record.image and views.view_file(record, "mask") == record.mask


def test_a_category_close_to_a_stored_one_is_flagged(studio, sketched):
    state = generate(studio, sketched, num=1)[0]
    studio.review.accept(state, "stain", "oak_board", "", "image")
    assert "close to `oak_board`" in studio.review.category_keys("Oak-Board")[1]
    assert "close to" not in studio.review.category_keys("oak_board")[1]
    assert "close to" not in studio.review.category_keys("steel")[1]
