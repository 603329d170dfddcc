"""Issue 21 through ``gradio_client``: batch-job decisions are shared by every session and kept on disk.

Bug 4: a session cannot undo (or re-decide) what another session stored. Bug 5: a reopened job (a new
session: a reload) shows the decisions made before, and a reject on another session's accept is refused
with the sample left in the store.
"""
from __future__ import annotations

import pytest

from studio.batch import load_spec, run_batch
from studio.store import Store
from tests.helpers.samples import make_spec
from tests.helpers.ui_server import live_app  # noqa: F401 - fixture

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402


def review_job(live_app, tmp_path, count: int = 3) -> str:  # noqa: F811 - fixture
    spec = load_spec(make_spec(tmp_path / "spec", jobs=1, count=count))
    run_batch(spec, live_app.data_dir, review=True, show_progress=False)
    return spec.jobs[0].job_id


def test_bug4_undo_never_crosses_sessions(live_app, tmp_path):  # noqa: F811 - fixture
    job_id = review_job(live_app, tmp_path)
    tab1, tab2 = Client(live_app.url, verbose=False), Client(live_app.url, verbose=False)
    tab1.predict(job_id, api_name="/open_review")
    tab2.predict(job_id, api_name="/open_review")
    accepted = tab1.predict(0, "scratch", "bottle", "", api_name="/accept")
    assert accepted["new"]
    with pytest.raises(AppError, match="already in the curated set"):  # tab 2 presses A on #1
        tab2.predict(0, "scratch", "bottle", "", api_name="/accept")
    with pytest.raises(AppError, match="no decision"):  # ... and then Z: nothing of its own to undo
        tab2.predict(api_name="/undo")
    with Store(live_app.data_dir) as store:
        assert accepted["id"] in store
    assert tab1.predict(api_name="/undo")["status"] == "undecided"  # tab 1 can undo its own
    with Store(live_app.data_dir) as store:
        assert accepted["id"] not in store


def test_bug5_a_reopened_job_shows_its_decisions(live_app, tmp_path):  # noqa: F811 - fixture
    job_id = review_job(live_app, tmp_path)
    first = Client(live_app.url, verbose=False)
    first.predict(job_id, api_name="/open_review")
    accepted = first.predict(1, "scratch", "bottle", "", api_name="/accept")
    first.predict(2, api_name="/reject")
    reloaded = Client(live_app.url, verbose=False)  # a reload: a new session opens the same job
    info = reloaded.predict(job_id, api_name="/open_review")
    assert [(c["status"], c["sample_id"]) for c in info["candidates"]] == [
        ("undecided", None), ("accepted", accepted["id"]), ("rejected", None)]
    with pytest.raises(AppError, match="already in the curated set"):  # R on #2: refused, the sample stays
        reloaded.predict(1, api_name="/reject")
    with Store(live_app.data_dir) as store:
        assert accepted["id"] in store
