"""The curated store: add / get / list / relabel / remove / stats, ids, labels, concurrency, recovery, merge."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from studio.cli import main
from studio.errors import InputError
from studio.store import SAMPLE_ID_RE, NewSample, Store, new_sample_id
from studio.types import Candidate
from tests.helpers.samples import make_sample, read_png

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "data") as s:
        yield s


def test_add_get_roundtrip(store):
    cand, normal = make_sample(1)
    ref = np.full((20, 24, 3), 7, np.uint8)
    ref_mask = np.zeros((20, 24), bool)
    ref_mask[5:10, 5:10] = True
    sid = store.add(cand, normal_image=normal, reference=ref, reference_mask=ref_mask,
                    category=" bottle ", defect_type="crack", note="looks real")
    assert SAMPLE_ID_RE.match(sid) and len(sid) == 26
    rec = store.get(sid)
    assert (rec.category, rec.defect_type, rec.note) == ("bottle", "crack", "looks real")
    assert np.array_equal(read_png(rec.image_path), cand.image)
    assert np.array_equal(read_png(rec.mask_path), cand.mask)
    assert np.array_equal(read_png(rec.normal_path), normal)
    assert np.array_equal(read_png(rec.reference_path), ref)
    assert np.array_equal(read_png(rec.reference_mask_path) > 0, ref_mask)
    on_disk = json.loads((rec.image_path.parent / "metadata.json").read_text())
    assert on_disk == rec.metadata
    for key, value in {"engine": "fake", "prompt": "defect 1", "seed": 1, "k": 1, "np_value": 0.5,
                       "defect_type": "crack", "category": "bottle", "note": "looks real", "id": sid}.items():
        assert on_disk[key] == value
    assert on_disk["accepted_at"] == rec.accepted_at
    assert (rec.width, rec.height) == (32, 32)


def test_labels_are_cleaned_and_defaulted(store):
    cand, normal = make_sample(2)
    sid = store.add(cand, normal_image=normal, category="", defect_type="  \x00 ")
    rec = store.get(sid)
    assert (rec.category, rec.defect_type) == ("product", "defect")
    sid2 = store.add(cand, normal_image=normal, category="../../etc", defect_type="scr\x00atch\n\nnew")
    rec2 = store.get(sid2)
    assert rec2.category == "../../etc"  # kept as text; paths never come from labels
    assert rec2.defect_type == "scratch new"
    assert rec2.image_path.parent.name == sid2
    with pytest.raises(InputError):
        store.add(cand, normal_image=normal, defect_type="x" * 5000)


def test_ids_unique_and_sortable():
    ids = [new_sample_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(SAMPLE_ID_RE.match(i) for i in ids)


def test_unknown_and_malformed_ids(store):
    with pytest.raises(InputError, match="No sample"):
        store.get("01ABCDEFGHJKMNPQRSTVWXYZ00")
    for bad in ("../../etc", "", "a/b", "x" * 100, None):
        with pytest.raises(InputError):
            store.get(bad)
        with pytest.raises(InputError):
            store.remove(bad)
    assert "../x" not in store


def test_normals_deduplicated_and_list_filters(store):
    ids = []
    for i in range(6):
        cand, normal = make_sample(i, normal_value=50 if i < 4 else 60)
        ids.append(store.add(cand, normal_image=normal, category="a" if i % 2 else "b",
                             defect_type=["scratch", "crack", "hole"][i % 3]))
    assert len(list((store.root / "normals").iterdir())) == 2
    assert [r.id for r in store.list()] == ids  # oldest first
    assert {r.id for r in store.list(category="a")} == {ids[1], ids[3], ids[5]}
    assert {r.id for r in store.list(defect_type="crack")} == {ids[1], ids[4]}
    assert [r.id for r in store.list(category="a", defect_type="crack")] == [ids[1]]
    stats = store.stats()
    assert stats["total"] == 6
    assert stats["by_defect_type"] == {"crack": 2, "hole": 2, "scratch": 2}
    assert stats["by_category"] == {"a": 3, "b": 3}
    assert stats["normal_images"] == 2


def test_relabel_and_remove(store):
    cand, normal = make_sample(3)
    sid = store.add(cand, normal_image=normal, defect_type="scratch")
    keep = store.add(*make_sample(4)[:1], normal_image=normal)
    store.relabel(sid, defect_type="crack", note="fixed")
    rec = store.get(sid)
    assert (rec.defect_type, rec.note, rec.category) == ("crack", "fixed", "product")
    assert json.loads((rec.image_path.parent / "metadata.json").read_text())["defect_type"] == "crack"
    with pytest.raises(InputError):
        store.relabel("01ABCDEFGHJKMNPQRSTVWXYZ00", defect_type="x")
    store.remove(sid)
    assert sid not in store and keep in store
    assert not rec.image_path.exists()
    with pytest.raises(InputError):
        store.remove(sid)
    assert store.get(keep).normal_path.is_file()  # shared normal stays while used


def test_bad_inputs_rejected(store):
    cand, normal = make_sample(5)
    with pytest.raises(InputError):
        store.add(cand, normal_image=normal[:10])
    with pytest.raises(InputError):
        store.add(Candidate(cand.image, cand.mask[:5], 0, {}), normal_image=normal)
    with pytest.raises(InputError):
        store.add(cand, normal_image=normal, reference_mask=np.ones((4, 4), bool))
    assert len(store) == 0
    assert list((store.root / "samples").iterdir()) == []


def test_add_many_with_job_is_atomic_and_idempotent(store):
    items = [NewSample(*make_sample(i), sample_id=f"job1-{i:02d}") for i in range(3)]
    ids = store.add_many(items, job_id="job1")
    assert ids == ["job1-00", "job1-01", "job1-02"]
    assert store.job_samples("job1") == ids and "job1" in store.finished_jobs()
    again = store.add_many([NewSample(*make_sample(9), sample_id="job1-09")], job_id="job1")
    assert again == ids and len(store) == 3
    with pytest.raises(InputError):  # an id already present: nothing of the batch is kept
        store.add_many([NewSample(*make_sample(7), sample_id="other-00"),
                        NewSample(*make_sample(8), sample_id="job1-00")])
    assert len(store) == 3 and "other-00" not in store
    assert sorted(p.name for p in (store.root / "samples").iterdir()) == ids


def test_many_threads_accept_concurrently(store):
    errors, ids = [], []
    lock = threading.Lock()

    def worker(t: int) -> None:
        try:
            for j in range(6):
                cand, normal = make_sample(t * 100 + j, normal_value=t % 3)
                sid = store.add(cand, normal_image=normal, defect_type=f"t{t}")
                with lock:
                    ids.append(sid)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(ids) == len(set(ids)) == 48
    assert {r.id for r in store.list()} == set(ids)
    assert len(list((store.root / "normals").iterdir())) == 3


CHILD = """
import sys
sys.path.insert(0, {repo!r})
from tests.helpers.samples import make_sample
from studio.store import Store
with Store(sys.argv[1]) as store:
    for i in range(int(sys.argv[2]), int(sys.argv[2]) + 15):
        cand, normal = make_sample(i, normal_value=i % 2)
        print(store.add(cand, normal_image=normal, defect_type="p"), flush=True)
"""


def test_several_processes_share_one_store(tmp_path):
    root = tmp_path / "data"
    code = CHILD.format(repo=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(root), str(k * 100)], stdout=subprocess.PIPE,
                              text=True) for k in range(3)]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    ids = [i for out in outs for i in out]
    assert len(ids) == len(set(ids)) == 45
    with Store(root) as store:
        assert {r.id for r in store.list()} == set(ids)
        for rec in store.list():
            k = int(rec.metadata["k"])
            assert np.array_equal(read_png(rec.image_path), make_sample(k)[0].image)


def test_recovery_removes_debris_only_when_alone(tmp_path):
    root = tmp_path / "data"
    with Store(root) as store:
        cand, normal = make_sample(1)
        sid = store.add(cand, normal_image=normal)
    (root / "tmp" / "half.png.1234").write_bytes(b"\x89PNG half")
    orphan = root / "samples" / "01ORPHANORPHANORPHANORPHAN"
    orphan.mkdir()
    (orphan / "image.png").write_bytes(b"partial")
    (root / "normals" / ("f" * 64 + ".png")).write_bytes(b"unused")
    (root / "review").mkdir()
    (root / "review" / ".abc.partial-1234").mkdir()

    first = Store(root)  # alone: cleans
    try:
        rep = first.last_recovery
        assert rep.skipped is None and rep.temp_entries == 2 and rep.orphan_samples == 1 and rep.orphan_blobs == 1
        assert not orphan.exists() and list((root / "tmp").iterdir()) == []
        (root / "tmp" / "inflight").write_bytes(b"someone else's write")
        second = Store(root)  # another Store is open: it might be mid-write, so nothing is touched
        try:
            assert second.last_recovery.skipped and (root / "tmp" / "inflight").exists()
            assert second.get(sid).image_path.is_file()
        finally:
            second.close()
    finally:
        first.close()
    with Store(root) as third:
        assert third.last_recovery.temp_entries == 1 and [r.id for r in third.list()] == [sid]


def test_merge_keeps_ids_and_skips_present(tmp_path):
    with Store(tmp_path / "a") as a, Store(tmp_path / "b") as b:
        ids_a = [a.add(*make_sample(i)[:1], normal_image=make_sample(i)[1], defect_type="x") for i in range(3)]
        b.add_many([NewSample(*make_sample(10), sample_id="jobz-00")], job_id="jobz")
        ref = np.full((8, 8, 3), 9, np.uint8)
        b.add(make_sample(11)[0], normal_image=make_sample(11)[1], reference=ref, reference_mask=np.ones((8, 8), bool))
        assert a.merge_from(b.root) == (2, 0)
        assert a.merge_from(b) == (0, 2)
        assert len(a) == 5 and "jobz" in a.finished_jobs()
        merged = a.get("jobz-00")
        assert np.array_equal(read_png(merged.image_path), make_sample(10)[0].image)
        assert set(ids_a) <= {r.id for r in a.list()}
        assert sum(r.reference_path is not None for r in a.list()) == 1
        with pytest.raises(InputError):
            a.merge_from(a.root)


def test_store_cli(tmp_path, capsys):
    root = tmp_path / "data"
    with Store(root) as store:
        sid = store.add(*make_sample(1)[:1], normal_image=make_sample(1)[1], defect_type="scratch", category="c")
        other = store.add(*make_sample(2)[:1], normal_image=make_sample(2)[1], defect_type="crack", category="c")
    assert main(["store", "list", "--data-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert sid in out and other in out
    assert main(["store", "list", "--data-dir", str(root), "--defect-type", "crack", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == [other] and Path(rows[0]["image"]).is_file()
    assert main(["store", "relabel", sid, "--defect-type", "dent", "--data-dir", str(root)]) == 0
    assert main(["store", "stats", "--json", "--data-dir", str(root)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["by_defect_type"] == {"crack": 1, "dent": 1} and stats["total"] == 2
    assert main(["store", "remove", "01ABCDEFGHJKMNPQRSTVWXYZ00", "--data-dir", str(root)]) == 2
    assert "No sample" in capsys.readouterr().err
    assert main(["store", "remove", sid, "--data-dir", str(root)]) == 0
    assert main(["store", "stats", "--data-dir", str(root)]) == 0
    assert "total: 1 sample(s)" in capsys.readouterr().out
    src = tmp_path / "other"
    with Store(src) as s2:
        s2.add(*make_sample(5)[:1], normal_image=make_sample(5)[1])
    assert main(["store", "merge", str(src), "--data-dir", str(root)]) == 0
    with Store(root) as store:
        assert len(store) == 2


def test_encoded_pictures_are_kept_as_given_and_checked(store):
    """A review folder's PNG bytes are stored as they are (no second encoding); bytes whose header does not
    fit (wrong size or mode) are not trusted: the arrays are encoded instead."""
    from studio.imaging import to_png_bytes

    cand, normal = make_sample(3)
    image_png, mask_png = to_png_bytes(cand.image, fast=True), to_png_bytes(cand.mask, fast=True)
    sid = store.add_many([NewSample(cand, normal, encoded=(image_png, mask_png))])[0]
    rec = store.get(sid)
    assert rec.image_path.read_bytes() == image_png and rec.mask_path.read_bytes() == mask_png
    wrong = (to_png_bytes(cand.image[:16]), to_png_bytes(np.dstack([cand.mask] * 3)))  # half height; RGB mask
    for encoded in (wrong, (image_png, wrong[1]), (b"not a png", mask_png)):
        rec = store.get(store.add_many([NewSample(cand, normal, encoded=encoded)])[0])
        assert rec.image_path.read_bytes() == to_png_bytes(cand.image) != image_png  # both encoded again
        assert rec.mask_path.read_bytes() == to_png_bytes(cand.mask)
        assert np.array_equal(read_png(rec.image_path), cand.image)
