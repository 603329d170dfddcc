"""The page's panels against the engines' own parameter declarations: every control the Advanced panel
shows is an input of Generate, the label threshold reaches the stored label, a parameter an engine
does not use is refused and never recorded; model work asks ZeroGPU only for engines that need a GPU;
the service runs without Gradio."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.engines.anomalycontrol import parameters as ac_parameters
from studio.engines.classic import ClassicEngine
from studio.errors import InputError
from studio.requests import build_request
from studio.types import AttentionTrace
from studio.ui import zerogpu
from studio.ui.assets import Assets
from studio.ui.context import build_context
from studio.ui.page import Page

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # gr.Warning outside a request


class DiffusionLike(ClassicEngine):
    """Classic's pixels behind the anomalycontrol engine's declaration (its parameters, no model)."""

    name = "diffusionlike"
    label = "diffusion-like"

    def parameters(self):
        return ac_parameters.PARAMETERS


def rgba(image: np.ndarray) -> np.ndarray:
    return np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])


def sketched(surface: np.ndarray) -> dict:
    layer = np.zeros((*surface.shape[:2], 4), np.uint8)
    layer[90:150, 80:170] = (255, 0, 80, 255)
    return {"background": rgba(surface), "layers": [layer], "composite": None}


def page_for(tmp_path: Path, **engines) -> Page:
    ctx = build_context(tmp_path / "data", engines=engines, temp_root=tmp_path / "tmp")
    page = Page(ctx, Assets((), ()))
    page.demo = page.render()
    return page


def controls(page: Page, **values) -> list:
    return [values.get(name, control.value) for name, control in page.advanced.controls.items()]


def event_inputs(page: Page, api_name: str) -> set[int]:
    """The component ids that are inputs of the page's event ``api_name``."""
    (fn,) = [f for f in page.demo.fns.values() if f.api_name == api_name]
    return {block._id for block in fn.inputs}


def test_every_control_advanced_shows_is_an_input_of_generate(tmp_path):
    page = page_for(tmp_path, diffusionlike=DiffusionLike(), classic=ClassicEngine())
    generate = event_inputs(page, "ui_generate")
    for engine in ("diffusionlike", "classic"):
        shown = page.advanced.show_engine(engine)[:len(page.advanced.controls)]
        visible = [c for c, update in zip(page.advanced.controls.values(), shown) if update["visible"]]
        assert all(c._id in generate for c in visible), engine
    assert {p.name for p in ac_parameters.PARAMETERS if p.shown} <= set(page.advanced.controls)
    assert not any(u["visible"] for u in page.advanced.show_engine("classic")[:len(page.advanced.controls)])


def test_the_threshold_slider_changes_the_stored_label(tmp_path, surface):
    tiny = pytest.importorskip("studio.engines.anomalycontrol.pipeline").AnomalyControlEngine.load("tiny")
    page = page_for(tmp_path, anomalycontrol=tiny)
    stored = []
    for threshold in (0, 40):
        state = page.inputs.generate(None, sketched(surface), None, None, None, "a deep scratch", "", 1, 5, False,
                                     "image", None, None, None, "", None, *controls(page, steps=10, label_threshold=threshold))[0]
        assert state.candidates[0].metadata["params"]["label_threshold"] == threshold
        message = page.review.accept(state, "scratch", "plate", "", "image")[-1]
        assert message.startswith("Accepted"), message
        record = page.service.ctx.store.get(state.candidates[0].sample_id)
        stored.append(np.asarray(Image.open(record.mask_path)) > 0)
    sketch, changed = stored
    assert sketch.sum() == 60 * 90 and changed.any() and changed.sum() < sketch.sum()


def test_a_parameter_an_engine_does_not_use_is_refused_and_never_recorded(tmp_path, surface, blob_mask):
    classic = ClassicEngine()
    with pytest.raises(InputError, match="does not use the parameter"):
        build_request(surface, blob_mask, prompt="a scratch", params={"sga_scale": 2}, engine=classic)
    request = build_request(surface, blob_mask, prompt="a scratch", engine=classic)
    assert classic.generate(request)[0].metadata["params"] == {}
    given_anyway = build_request(surface, blob_mask, prompt="a scratch", params={"steps": 20})  # not refused here
    assert classic.generate(given_anyway)[0].metadata["params"] == {}  # but never recorded
    page = page_for(tmp_path, classic=classic)
    image, mask = tmp_path / "image.png", tmp_path / "mask.png"
    Image.fromarray(surface).save(image)
    Image.fromarray(blob_mask.astype(np.uint8) * 255).save(mask)
    with pytest.raises(Exception, match="does not use the parameter"):
        page.api.api_generate(str(image), str(mask), steps=20)  # the API refuses it too


class Slot:
    """A stand-in ``spaces`` package: records the durations it is asked for."""

    def __init__(self):
        self.asked: list[int] = []

    def GPU(self, duration):  # noqa: N802 - the real package's name
        def wrap(fn):
            def on_slot(*args):
                self.asked.append(duration(*args))
                return fn(*args)
            return on_slot
        return wrap


class NeedsGpu(ClassicEngine):
    name = "needsgpu"

    def gpu_seconds(self, request, work="generate"):
        return 42 if work == "generate" else 7

    def explain(self, request, progress=None):
        return AttentionTrace(skipped="none here")


def test_only_engines_that_need_a_gpu_ask_zerogpu_for_a_slot_of_their_estimate(monkeypatch, surface, blob_mask):
    from studio.engines import register

    slot = Slot()
    monkeypatch.setitem(sys.modules, "spaces", slot)
    zerogpu.slots.cache_clear()
    try:
        classic, needs = register(ClassicEngine()), register(NeedsGpu())
        request = build_request(surface, blob_mask, prompt="a scratch")
        assert zerogpu.on_zero_gpu() and len(zerogpu.generate(classic, request)) == 1
        assert slot.asked == []  # the weight-free engine never asks for a slot
        assert len(zerogpu.generate(needs, request)) == 1 and zerogpu.explain(needs, request).skipped
        assert slot.asked == [42, 7]
    finally:
        zerogpu.slots.cache_clear()


def test_the_service_runs_without_gradio():
    code = "import sys, studio.ui.service, studio.ui.filters; assert 'gradio' not in sys.modules, 'gradio imported'"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_service_generates_decides_and_curates_with_plain_values(tmp_path, surface, blob_mask):
    from studio.ui.filters import Filters
    from studio.ui.service import StudioService

    service = StudioService(build_context(tmp_path / "data", engines={"classic": ClassicEngine()},
                                          temp_root=tmp_path / "tmp"), Assets((), ()))
    engine = service.ctx.engine("")
    request = build_request(surface, blob_mask, prompt="a scratch", num=3, seed=4, engine=engine)
    state = service.generate(None, request, engine)
    assert [r.seed for r in state.candidates] == [4, 5, 6]
    with pytest.raises(InputError, match="category is empty"):
        service.accept(state, 0, "scratch", "", "")
    sample_id, new = service.accept(state, 0, "scratch", "plate", "")
    assert new and service.accept(state, 0, "scratch", "plate", "") == (sample_id, False)
    service.reject(state, 1)
    assert service.undo(state).index == 1 and state.candidates[1].status == "undecided"
    assert service.decide_all(state, "accepted", "dent", "plate", "") == 2
    assert [r.defect_type for r in service.records(Filters.of(defect_type="dent"))] == ["dent", "dent"]
    path, count = service.export("imagefolder", Filters.of(defect_type="scratch"))
    assert count == 1 and path.suffix == ".zip"


def test_a_reloaded_tab_gets_its_batch_queue_back_in_its_own_folder(tmp_path):
    from studio.ui.service import StudioService
    from tests.helpers.browser import write_review_job_of

    service = StudioService(build_context(tmp_path / "data", engines={"classic": ClassicEngine()},
                                          temp_root=tmp_path / "tmp"), Assets((), ()))
    for defect in ("crack", "knot"):
        write_review_job_of(service.ctx.store.root, 2, f"reload-{defect}", defect, batch="reload.yaml")
    state, info = service.open_batch(None, service.batches()[0].batch)
    assert [r.labels.defect_type for r in state.candidates] == ["crack", "crack", "knot", "knot"]
    service.accept(state, 2, "knot", "wood", "")
    back = service.resume(state.id)  # the reload: the same session id
    assert back is not state and back.dir != state.dir and not Path(state.dir).exists()
    assert [r.status for r in back.candidates] == ["undecided", "undecided", "accepted", "undecided"]
    assert all(Path(r.image).is_file() and r.image.startswith(back.dir) for r in back.candidates)
    assert service.undo(back).index == 2 and "reload-knot-00" not in service.ctx.store  # its history came back
    assert service.resume("f" * 32) is None  # a session the studio never had


def test_the_reference_thumbnail_writes_nothing_beside_its_picture(tmp_path, surface, blob_mask):
    from studio.ui.panels.inputs import REFERENCE_THUMB, reference_shown

    folder = tmp_path / "install"  # an example's picture lies in the (maybe read-only) install
    folder.mkdir()
    Image.fromarray(surface).save(folder / "ref.png")
    Image.fromarray(blob_mask.astype(np.uint8) * 255).save(folder / "ref_mask.png")
    line, thumb = reference_shown({"image": str(folder / "ref.png"), "preset": str(folder / "ref_mask.png")})
    assert sorted(p.name for p in folder.iterdir()) == ["ref.png", "ref_mask.png"]
    assert "ref" in line and thumb["visible"] and max(thumb["value"].shape[:2]) <= REFERENCE_THUMB
    assert (thumb["value"] == (255, 60, 60)).all(axis=-1).any()  # the marked region is outlined
