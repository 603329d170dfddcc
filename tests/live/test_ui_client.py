"""The studio driven through ``gradio_client`` against a live ``python app.py`` (classic engine).

Flow (generate → preview → accept → curated → export → remove), 4 concurrent sessions with no
candidate leakage, visible errors for bad input with the next request succeeding, and the
file route refusing paths outside the app's folders.
"""
from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from studio.batch import load_spec, run_batch
from tests.helpers.samples import make_spec
from tests.helpers.ui_client import SIZE, ellipse, files, generate, surface  # noqa: F401 - fixture
from tests.helpers.ui_server import UPLOAD_LIMIT, live_app  # noqa: F401 - fixture

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402


def test_flow_generate_accept_export(live_app, files, tmp_path):  # noqa: F811
    client = Client(live_app.url, verbose=False)
    status = client.predict(api_name="/status")
    assert "classic" in status and "weights" in status

    images, masks, info = generate(client, files, files["image"], files["mask"], num=2)
    assert len(images) == 2 and len(masks) == 2
    assert [c["seed"] for c in info["candidates"]] == [7, 8]
    assert info["candidates"][0]["metadata"]["engine"] == "classic"
    first = np.asarray(Image.open(images[0]["image"]).convert("RGB"))
    label = np.asarray(Image.open(masks[0]["image"]).convert("L"))
    assert first.shape == (SIZE, SIZE, 3) and label.shape == (SIZE, SIZE)
    assert label.max() == 255 and (label > 0).sum() > 50

    maps, trace = client.predict(handle_file(files["reference"]), handle_file(files["reference_mask"]),
                                 "a red contamination stain", "a red stain", 3, "", api_name="/preview_attention")
    assert maps == [] and trace["skipped"] and "weights" in trace["skipped"]

    before = client.predict("", api_name="/curated")["stats"]["total"]
    accepted = client.predict(1, "stain", "plate", "looks real", api_name="/accept")
    assert accepted["new"] and accepted["stats"]["total"] == before + 1
    again = client.predict(1, "stain", "plate", "", api_name="/accept")
    assert again["id"] == accepted["id"] and not again["new"]
    with pytest.raises(AppError, match="already accepted"):
        client.predict(1, api_name="/reject")
    assert client.predict(0, api_name="/reject")["remaining"] == [1]

    curated = client.predict("stain", api_name="/curated")
    sample = next(s for s in curated["samples"] if s["id"] == accepted["id"])
    assert sample["category"] == "plate" and sample["note"] == "looks real"

    archive = client.predict("mvtec", api_name="/export")
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
    assert any("/test/stain/" in n and n.endswith(".png") for n in names), names
    assert any("/ground_truth/stain/" in n and n.endswith("_mask.png") for n in names), names
    assert any("/train/good/" in n for n in names), names

    removed = client.predict(accepted["id"], api_name="/remove")
    assert removed["stats"]["total"] == before
    with pytest.raises(AppError, match="No sample"):
        client.predict(accepted["id"], api_name="/remove")


def test_batch_review_job_round_trip(live_app, tmp_path):  # noqa: F811
    spec = load_spec(make_spec(tmp_path / "spec", jobs=1, count=2))
    run_batch(spec, live_app.data_dir, review=True, show_progress=False)
    job_id = spec.jobs[0].job_id
    client = Client(live_app.url, verbose=False)
    jobs = client.predict(api_name="/review_jobs")["jobs"]
    assert [(j["job_id"], j["candidates"], j["defect_type"]) for j in jobs] == [(job_id, 2, "scratch")]
    info = client.predict(job_id, api_name="/open_review")
    assert [c["index"] for c in info["candidates"]] == [0, 1] and info["category"] == "bottle"
    accepted = client.predict(0, "scratch", "bottle", "", api_name="/accept")
    assert accepted["id"] == f"{job_id}-00" and accepted["new"]
    other = Client(live_app.url, verbose=False)
    other.predict(job_id, api_name="/open_review")
    with pytest.raises(AppError, match="already in the curated set"):  # decided by the first session
        other.predict(0, "scratch", "bottle", "", api_name="/accept")
    assert client.predict(0, "scratch", "bottle", "", api_name="/accept")["id"] == accepted["id"]  # once
    with pytest.raises(AppError, match="no batch review job"):
        client.predict("../../etc", api_name="/open_review")


def test_four_concurrent_clients_see_only_their_candidates(live_app, files):  # noqa: F811
    levels = (60, 100, 180, 220)
    clients = {level: Client(live_app.url, verbose=False) for level in levels}

    def run(level: int):
        client = clients[level]
        images, _, info = generate(client, files, files[f"image_{level}"], files["mask"], num=2,
                                   seed=level, reference=False, prompt="a dark scratch")
        accepted = client.predict(0, f"scratch-{level}", "", "", api_name="/accept")
        return images, info, accepted

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(levels, pool.map(run, levels)))

    outside = ~ellipse(80, 70, 36, 22)
    store_ids = {s["id"]: s for s in clients[60].predict("", api_name="/curated")["samples"]}
    for level, (images, info, accepted) in results.items():
        assert [c["seed"] for c in info["candidates"]] == [level, level + 1]
        for item in images:  # every pixel away from the sketch is this client's own surface
            pixels = np.asarray(Image.open(item["image"]).convert("RGB")).astype(np.int16)
            assert np.array_equal(pixels[outside], surface(level, level)[outside])
        assert store_ids[accepted["id"]]["defect_type"] == f"scratch-{level}"
    assert len({r[2]["id"] for r in results.values()}) == 4


def test_bad_input_is_reported_and_next_request_succeeds(live_app, files):  # noqa: F811
    client = Client(live_app.url, verbose=False)
    with pytest.raises(AppError, match="(?i)not an image|could not be decoded|could not be opened"):
        generate(client, files, files["corrupt"], files["mask"])
    with pytest.raises(AppError, match="(?i)empty"):
        generate(client, files, files["image"], files["empty_mask"])
    with pytest.raises(AppError, match="(?i)candidates"):
        generate(client, files, files["image"], files["mask"], num=50)
    with pytest.raises(AppError, match="(?i)seed"):
        generate(client, files, files["image"], files["mask"], seed=-5)
    with pytest.raises(AppError, match="(?i)no candidates"):
        Client(live_app.url, verbose=False).predict(0, api_name="/accept")
    with pytest.raises(AppError, match="(?i)format"):
        client.predict("pdf", api_name="/export")
    images, _, _ = generate(client, files, files["image"], files["mask"], num=1)
    assert len(images) == 1


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_uploads_over_the_limit_are_refused(live_app, tmp_path):  # noqa: F811
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(UPLOAD_LIMIT + 1024))
    client = Client(live_app.url, verbose=False)
    with pytest.raises(Exception, match="(?i)size|large|413"):  # the client checks the limit itself
        client.predict(handle_file(str(big)), handle_file(str(big)), api_name="/generate")
    with big.open("rb") as fh:  # and the server refuses it too
        response = httpx.post(live_app.url.rstrip("/") + "/gradio_api/upload", files={"files": fh}, timeout=30)
    assert response.status_code == 413
    assert client.predict(api_name="/status")  # still up


def test_file_route_serves_nothing_outside_its_folders(live_app, files):  # noqa: F811
    """Session files, the store, the inputs and the code are never served, whatever the path says."""
    client = Client(live_app.url, verbose=False)
    generate(client, files, files["image"], files["mask"], num=2, seed=11, reference=False, prompt="a scratch")
    client.predict(0, "accept", "route-check", "plate", "", api_name="/decide")
    base = live_app.url.rstrip("/") + "/gradio_api/file="
    store_files = sorted(live_app.data_dir.rglob("*.png"))
    assert store_files, "the accept above must have written the sample into the store"
    [temp_root] = live_app.temp_roots()
    session_files = sorted(temp_root.glob("sessions/*/gen*/candidate_*.png"))
    assert session_files, f"the generate above must have written session files under {temp_root}"
    repo = Path(__file__).resolve().parents[2]
    for target in ["/etc/passwd", "../../../../etc/passwd", "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
                   str(Path(files["image"])), str(store_files[0]), str(live_app.data_dir / "index.sqlite"),
                   str(session_files[-1]), str(temp_root / ".owner.json"), str(repo / "app.py")]:
        assert _status(base + urllib.parse.quote(target, safe="/%")) in (403, 404), target
    served = _status(base + urllib.parse.quote(str(repo / "README.md")))
    assert served in (403, 404)


def test_review_api_decide_undo_curated_relabel_export_filter(live_app, files):  # noqa: F811 - fixture
    """The README's gradio_client examples for the review endpoints, against the live app."""
    client = Client(live_app.url, verbose=False)
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/generate", "/decide", "/undo", "/curated", "/relabel", "/remove", "/export", "/status"} <= names
    assert not any(n.startswith("/ui_") for n in names), "page glue must stay out of the API docs"
    _, _, info = generate(client, files, files["image"], files["mask"], num=3, seed=40, reference=False,
                          prompt="a dark scratch")
    assert all(c["score"] is not None and c["status"] == "undecided" for c in info["candidates"])
    decided = client.predict(0, "accept", "scratch-api", "plate-api", "", api_name="/decide")
    assert decided["status"] == "accepted" and decided["next"] == 1
    assert client.predict(1, "reject", "", "", "", api_name="/decide")["next"] == 2
    assert client.predict(api_name="/undo") == {"index": 1, "status": "undecided",
                                                "counts": {"undecided": 2, "accepted": 1, "rejected": 0}}
    with pytest.raises(AppError, match="category is empty"):
        client.predict(2, "accept", "scratch-api", "", "", api_name="/decide")
    page = client.predict("scratch-api", "plate-api", "", "", "", 1, 10, api_name="/curated")
    assert page["total"] == 1 and page["pages"] == 1 and page["samples"][0]["id"] == decided["sample_id"]
    relabelled = client.predict(decided["sample_id"], "", "scratch-api-2", "", api_name="/relabel")
    assert relabelled["samples"][0]["defect_type"] == "scratch-api-2"
    archive = client.predict("mvtec", "scratch-api-2", api_name="/export")
    with zipfile.ZipFile(archive) as zf:
        tests = [n for n in zf.namelist() if "/test/" in n and n.endswith(".png")]
    assert len(tests) == 1 and "/test/scratch-api-2/" in tests[0]
    client.predict(decided["sample_id"], api_name="/remove")
