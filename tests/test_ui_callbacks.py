"""The studio's callbacks called directly (no server): editor values, the whole flow on the
classic engine, per-session isolation, and errors that stay readable."""
from __future__ import annotations

import json
import re
import zipfile

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from studio.batch import load_spec, run_batch
from studio.engines.classic import ClassicEngine
from studio.types import AttentionStep, AttentionTrace
from studio.ui import editor as ed
from studio.ui.assets import Assets, NormalSample, ReferenceExample, load_assets, parse_manifest
from studio.ui.callbacks import Studio
from studio.ui.context import build_context
from studio.ui.inputs import resolve_seed
from test_batch import make_spec


class FakeCSMEngine:
    """Stands in for AnomalyControl's tiny profile: attention moves into the marked region."""

    name = "anomalycontrol"
    profile = "tiny"

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
        return "Engine: anomalycontrol (tiny random weights)."


def rgba(image: np.ndarray) -> np.ndarray:
    return np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])


def stroke_layer(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    layer = np.zeros((*shape, 4), np.uint8)
    x0, y0, x1, y1 = box
    layer[y0:y1, x0:x1] = (255, 0, 80, 255)
    return layer


@pytest.fixture
def studio(tmp_path, surface) -> Studio:
    ctx = build_context(tmp_path / "data", engines={"classic": ClassicEngine(), "anomalycontrol": FakeCSMEngine()},
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
    assets = Assets((NormalSample("plate", normal, "metal_plate", "a plate", normal_mask, "a dark scratch"),),
                    (ReferenceExample("stain", ref_path, ref_mask_path, "a red stain", "stain"),))
    return Studio(ctx, assets)


@pytest.fixture
def sketched(surface) -> dict:
    return {"background": rgba(surface), "layers": [stroke_layer(surface.shape[:2], (100, 100, 140, 120))],
            "composite": None}


def pixels(item: tuple[str, str]) -> np.ndarray:
    """The picture of a gallery item (galleries get files)."""
    return np.asarray(Image.open(item[0]).convert("RGB"))


def select(index: int) -> gr.SelectData:
    return gr.SelectData(None, {"index": index, "value": None, "selected": True})


def as_browser_sends(value: dict, strokes: list[np.ndarray] | None = None) -> dict:
    """What the page sends back: the shown background (RGBA) and only the user's own strokes."""
    background = np.asarray(Image.open(value["background"]).convert("RGB"))  # the server sends files
    return {"background": rgba(background), "layers": strokes or [], "composite": None}


def flow_inputs(studio: Studio, sketched: dict, num: int = 2) -> list:
    reference, source, text, _ = studio.ui_pick_reference(select(0))
    return [None, sketched, None, as_browser_sends(reference), source, "a red stain", text, num, 11, False,
            10, 0.7, 7.0, 1.0, 3, "classic", "image"]


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
    value, source, _, _, _ = studio.ui_pick_sample("", select(0))
    value, source = studio.ui_add_shape(as_browser_sends(value), source, shape, 20, 25, 75)
    image, mask = ed.image_and_mask(as_browser_sends(value), "normal image", "missing", source)
    ys, xs = np.nonzero(mask)
    assert abs(xs.mean() - 0.25 * 255) < 4 and abs(ys.mean() - 0.75 * 255) < 4
    assert np.array_equal(image, np.asarray(Image.open(studio.assets.normals[0].path).convert("RGB")))
    stroke = stroke_layer((256, 256), (200, 10, 230, 30))  # the user paints after the shape
    image2, mask2 = ed.image_and_mask(as_browser_sends(value, [stroke]), "normal image", "missing", source)
    assert np.array_equal(mask2, mask | (stroke[..., 3] > 0)) and np.array_equal(image2, image)
    cleared, source = studio.ui_clear_sketch(as_browser_sends(value, [stroke]), source)
    assert not ed.image_and_mask(as_browser_sends(cleared), "normal image", "missing", source)[1].any()


def test_example_region_is_kept_when_the_user_adds_strokes(studio):
    value, source, text, defect = studio.ui_pick_reference(select(0))
    assert text == "a red stain" and defect["value"] == "stain"
    shown = np.asarray(Image.open(value["background"]).convert("RGB"))
    clean, preset = ed.image_and_mask(as_browser_sends(value), "reference", "missing", source)
    assert preset.sum() == 40 * 50 and not np.array_equal(shown, clean)  # tinted for display only
    stroke = stroke_layer((256, 256), (10, 10, 30, 30))
    _, both = ed.image_and_mask(as_browser_sends(value, [stroke]), "reference", "missing", source)
    assert both.sum() == 40 * 50 + 400
    uploaded, new_source = studio.ui_upload_reference(str(studio.assets.normals[0].path))
    assert new_source["preset"] is None
    assert not ed.image_and_mask(as_browser_sends(uploaded), "reference", "missing", new_source)[1].any()


def test_editor_without_image_says_what_to_do(studio):
    with pytest.raises(gr.Error, match="first"):
        studio.ui_add_shape({"background": None, "layers": []}, None, "box", 10, 50, 50)


# --------------------------------------------------------------------------- the flow
def test_flow_generate_view_accept_reject_export(studio, sketched):
    normal, source, category, prompt, picked = studio.ui_pick_sample("", select(0))
    assert category == "metal_plate" and Image.open(normal["background"]).size == (256, 256)
    assert prompt["value"] == "a dark scratch" and picked == 0
    suggested, source = studio.ui_add_suggested(as_browser_sends(normal), source, picked)
    assert ed.image_and_mask(as_browser_sends(suggested), "normal image", "missing", source)[1][10:20, 10:30].all()
    inputs = flow_inputs(studio, sketched)
    state, gallery, seed, selected, _, message = studio.ui_generate(*inputs, progress=None)
    assert seed == 11 and selected is None and "2 candidate" in message
    assert [caption for _, caption in gallery] == ["#1 · seed 11", "#2 · seed 12"]
    overlay = studio.ui_view(state, "overlay")
    side = studio.ui_view(state, "side by side")
    plain = pixels(gallery[0])
    assert pixels(overlay[0]).shape == plain.shape and not np.array_equal(pixels(overlay[0]), plain)
    assert pixels(side[0]).shape[1] > 2 * plain.shape[1]
    assert studio.ui_view(state, "overlay")[0][0] == overlay[0][0]  # drawn once, then reused

    index, text = studio.ui_select_candidate(state, select(1))
    assert index == 1 and "#2" in text
    out = studio.ui_accept(state, index, "stain", "metal_plate", "nice", "image", "")
    state, gallery, curated, counts, ids, text, _ = out
    assert "accepted" in gallery[1][1] and len(curated) == 1 and "| stain | 1 |" in counts
    record = studio.ctx.store.get(ids[0])
    assert record.defect_type == "stain" and record.category == "metal_plate" and record.note == "nice"
    assert record.reference_path is not None and record.metadata["seed"] == 12
    reference = np.asarray(Image.open(record.reference_path).convert("RGB"))
    assert np.array_equal(reference, np.asarray(Image.open(studio.assets.references[0].path).convert("RGB")))

    state, gallery, selected, _ = studio.ui_reject(state, 0, "image")
    assert selected is None and len(gallery) == 1

    download, text = studio.ui_export("mvtec", progress=None)
    with zipfile.ZipFile(download["value"]) as zf:
        names = zf.namelist()
    assert any("ground_truth/stain/" in n for n in names) and "1 sample" in text

    sample, _ = studio.ui_select_curated(ids, select(0))
    curated, counts, ids, gone, _ = studio.ui_remove(sample, "")
    assert curated == [] and ids == [] and gone is None and "empty" in counts


def test_sessions_are_isolated(studio, sketched, surface):
    inputs = flow_inputs(studio, sketched, num=1)
    state_a = studio.ui_generate(*inputs, progress=None)[0]
    dark = {"background": rgba(surface // 3), "layers": sketched["layers"]}
    state_b = studio.ui_generate(None, dark, *inputs[2:], progress=None)[0]
    assert state_a["id"] != state_b["id"] and state_a["dir"] != state_b["dir"]
    a_img = pixels(studio.ui_view(state_a, "image")[0])
    b_img = pixels(studio.ui_view(state_b, "image")[0])
    assert a_img.mean() > 2 * b_img.mean()
    studio.ui_accept(state_b, 0, "stain", "", "", "image", "")
    assert state_a["candidates"][0]["status"] == "new"


def test_accepting_twice_keeps_one_sample(studio, sketched):
    state = studio.ui_generate(*flow_inputs(studio, sketched, num=1), progress=None)[0]
    first = studio.api_accept(0, "stain", "", "", state)[0]
    second = studio.api_accept(0, "stain", "", "", state)[0]
    assert first["id"] == second["id"] and not second["new"] and second["stats"]["total"] == 1


def test_batch_review_job_opens_in_the_gallery_and_accepts_once(studio, sketched, tmp_path):
    spec = load_spec(make_spec(tmp_path / "spec", jobs=1, count=2))  # classic engine, defect "scratch"
    run_batch(spec, studio.ctx.store.root, review=True, show_progress=False)
    job_id = spec.jobs[0].job_id
    listed = studio.ui_review_jobs(None)
    assert listed["value"] == job_id and listed["choices"] == [(f"{job_id[:8]}… · 2 candidate(s) · a scratch", job_id)]
    assert studio.api_review_jobs()["jobs"][0]["candidates"] == 2

    state, gallery, selected, _, message, defect, category = studio.ui_open_review(None, job_id, "image")
    assert len(gallery) == 2 and selected is None and job_id in message
    assert defect["value"] == "scratch" and category == "bottle"
    folder = studio.ctx.store.root / "review" / job_id
    assert np.array_equal(pixels(gallery[1]), np.asarray(Image.open(folder / "candidate_01.png").convert("RGB")))
    assert not np.array_equal(pixels(studio.ui_view(state, "overlay")[1]), pixels(gallery[1]))

    index, _ = studio.ui_select_candidate(state, select(1))
    state, gallery, _, counts, ids, text, _ = studio.ui_accept(state, index, "crack", "bottle", "kept", "image", "")
    assert ids == [f"{job_id}-01"] and "accepted" in gallery[1][1] and "| crack | 1 |" in counts
    record = studio.ctx.store.get(f"{job_id}-01")
    assert record.defect_type == "crack" and record.note == "kept" and record.reference_path is not None
    assert record.metadata["batch_job"] == job_id
    info, other = studio.api_open_review(job_id)  # another session accepts the same candidate: no duplicate
    assert [c["index"] for c in info["candidates"]] == [0, 1] and info["defect_type"] == "scratch"
    again = studio.api_accept(1, "crack", "bottle", "", other)[0]
    assert again["id"] == f"{job_id}-01" and not again["new"] and again["stats"]["total"] == 1
    assert studio.api_reject(0, other)[0]["remaining"] == [1]

    state = studio.ui_generate(state, *flow_inputs(studio, sketched, num=1)[1:], progress=None)[0]
    fresh = studio.api_accept(0, "stain", "", "", state)[0]  # a new generation is no longer the review job
    assert fresh["new"] and not fresh["id"].startswith(job_id) and fresh["stats"]["total"] == 2

    (studio.ctx.store.root / "review" / "half").mkdir()  # not a review job: no job.json
    for bad in ("", "nope", "half", f"../review/{job_id}", f"{job_id}/..", str(folder), "../../etc"):
        with pytest.raises(gr.Error, match="batch review job"):
            studio.ui_open_review(None, bad, "image")
        with pytest.raises(gr.Error, match="batch review job"):
            studio.api_open_review(bad)


def test_attention_preview_classic_explains_and_csm_engine_maps(studio, sketched):
    reference, source, text, _ = studio.ui_pick_reference(select(0))
    args = (sketched, None, as_browser_sends(reference), source, text, "", 3, "classic")
    studio.ctx.engines.pop("anomalycontrol")
    maps, note = studio.ui_preview_attention(*args, progress=None)
    assert maps["value"] == [] and not maps["visible"] and "No attention maps" in note and "weights" in note
    studio.ctx.engines["anomalycontrol"] = FakeCSMEngine()
    maps, note = studio.ui_preview_attention(*args, progress=None)
    maps = maps["value"]
    assert len(maps) == 4 and re.fullmatch(r"step 0 · \d+%", maps[0][1])
    assert "inside the marked region" in note
    assert "tiny" in note and "mechanism" in note


# --------------------------------------------------------------------------- errors
def test_errors_are_readable(studio, sketched, tmp_path):
    inputs = flow_inputs(studio, sketched)
    empty = {"background": sketched["background"], "layers": []}
    with pytest.raises(gr.Error, match="defect region is empty"):
        studio.ui_generate(None, empty, *inputs[2:], progress=None)
    with pytest.raises(gr.Error, match="normal image first"):
        studio.ui_generate(None, None, *inputs[2:], progress=None)
    with pytest.raises(gr.Error, match="does not exist"):
        studio.ui_upload_reference(str(tmp_path / "missing.png"))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"GIF89a not really")
    with pytest.raises(gr.Error, match="(?i)image"):
        studio.ui_upload_normal(str(bad))
    with pytest.raises(gr.Error, match="Select a candidate"):
        studio.ui_accept(None, None, "", "", "", "image", "")
    with pytest.raises(gr.Error, match="empty"):
        studio.ui_export("mvtec", progress=None)
    with pytest.raises(gr.Error, match="prompt|description"):
        studio.ui_generate(None, sketched, *inputs[2:5], "x" * 5000, *inputs[6:], progress=None)
    with pytest.raises(gr.Error, match="Something went wrong"):  # an engine bug stays a message
        studio.ui_generate(None, sketched, *inputs[2:15], "anomalycontrol", "image", progress=None)
    assert studio.ui_generate(None, sketched, *inputs[2:], progress=None)[1]  # and the next one works


def test_resolve_seed():
    assert resolve_seed(5) == 5 and resolve_seed("12") == 12
    assert 0 <= resolve_seed(-1) < 2**32 and 0 <= resolve_seed(3, True) < 2**32
    for bad in (-2, 2**33, 1.5, "x"):
        with pytest.raises(Exception, match="seed"):
            resolve_seed(bad)


def test_manifest_parsing_skips_missing_and_escaping_files(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "r.png").write_bytes(b"x")
    manifest = {"normals": [{"image": "a.png", "name": "plate"}, {"image": "../../etc/passwd"}, "missing.png"],
                "references": [{"image": "r.png", "mask": "nope.png", "text": "a stain", "defect_type": "stain"}]}
    assets = parse_manifest(manifest, tmp_path)
    assert [n.name for n in assets.normals] == ["plate"]
    assert assets.references[0].mask_path is None and assets.references[0].text == "a stain"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert load_assets(tmp_path).normals[0].path == (tmp_path / "a.png").resolve()
