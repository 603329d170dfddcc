"""A full disk during an accept or an export: one sentence the user can act on, nothing half-written.

The data folder lives on a tiny tmpfs (4 MB) mounted for the test; where mounting is not
allowed (not root, no CAP_SYS_ADMIN, a container without mount) the tests are skipped.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from studio.errors import DiskFullError
from studio.errors import StudioError
from studio.export import export_dataset
from studio.store import Store
from studio.types import Candidate
from tests.helpers.samples import read_png

SIZE = 160  # random pixels do not compress: ~77 KB per PNG, ~230 KB per accept (image, mask, normal)


@pytest.fixture()
def tiny_disk(tmp_path: Path):
    """A 4 MB tmpfs at ``tmp_path/disk``, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here, so no tiny file system to fill")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not allowed here ({result.stderr.strip() or result.returncode})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def sample(k: int) -> tuple[Candidate, np.ndarray]:
    rng = np.random.default_rng(k)
    image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[20 + k % 50:60 + k % 50, 30:90] = 255
    normal = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)  # a new normal each time: a new blob
    return Candidate(image=image, mask=mask, seed=k, metadata={"engine": "test", "k": k}), normal


def ballast(folder: Path, free_left: int) -> Path:
    """A file taking all but ``free_left`` bytes of the file system, so filling up takes a few accepts."""
    path = folder / "ballast.bin"
    free = shutil.disk_usage(folder).free
    with open(path, "wb") as fh:
        fh.write(b"\0" * max(0, free - free_left))
    return path


def visible_entries(root: Path) -> set[str]:
    """Every path under the data folder except the index files and the folder lock."""
    skip = {"index.sqlite", "index.sqlite-wal", "index.sqlite-shm", "store.lock"}
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.name not in skip}


def test_accept_on_a_full_disk_says_so_and_leaves_nothing_half_written(tiny_disk: Path) -> None:
    data = tiny_disk / "data"
    room = ballast(tiny_disk, 1_500_000)
    accepted: dict[str, int] = {}
    with Store(data) as store:
        error = None
        for k in range(60):
            cand, normal = sample(k)
            before = visible_entries(data)
            try:
                accepted[store.add(cand, normal_image=normal, defect_type="scratch")] = k
            except DiskFullError as exc:
                error = exc
                break
        assert error is not None, "the disk never filled up"
        assert accepted, "the very first accept already failed; the ballast left too little room"
        message = str(error)
        assert isinstance(error, StudioError)  # the page shows a StudioError's sentence as it is
        assert message.startswith("Accepting the sample failed") and str(data) in message
        assert "free" in message and "nothing was half-written" in message
        assert "Errno" not in message and "OSError" not in message

        # every earlier sample is intact, and the failed one left nothing a person could see
        assert sorted(r.id for r in store.list()) == sorted(accepted)
        for rec in store.list():
            cand, normal = sample(accepted[rec.id])
            assert np.array_equal(read_png(rec.image_path), cand.image)
            assert np.array_equal(read_png(rec.mask_path), cand.mask)
            assert np.array_equal(read_png(rec.normal_path), normal)
        after = visible_entries(data)
        new = {p for p in after - before if not p.startswith("normals/")}
        assert new == set(), f"half-written entries left behind: {sorted(new)}"
        assert not [p for p in after if Path(p).name.startswith(".")], "a staging entry is visible"
        assert list((data / "tmp").iterdir()) == []
        assert {p.name for p in (data / "samples").iterdir()} == set(accepted)
        for blob in (data / "normals").iterdir():  # a blob is whole or absent (it may be unused: recovery's)
            assert read_png(blob).shape == (SIZE, SIZE, 3)

        # space freed: the next accept goes through
        room.unlink()
        cand, normal = sample(999)
        sid = store.add(cand, normal_image=normal)
        assert np.array_equal(read_png(store.get(sid).image_path), cand.image)
        assert len(store) == len(accepted) + 1
    with Store(data) as reopened:  # and a fresh open agrees
        assert len(reopened) == len(accepted) + 1 and not reopened.last_recovery.damaged_rows


def test_export_on_a_full_disk_says_so_and_leaves_no_partial_export(tmp_path: Path, tiny_disk: Path) -> None:
    with Store(tmp_path / "data") as store:
        for k in range(12):  # ~2.8 MB of samples, exported to a disk with 1 MB free
            cand, normal = sample(k)
            store.add(cand, normal_image=normal)
        room = ballast(tiny_disk, 1_000_000)
        for make_zip in (False, True):
            with pytest.raises(DiskFullError) as caught:
                export_dataset(store, "mvtec", tiny_disk / "exports" / "ds", make_zip=make_zip)
            message = str(caught.value)
            assert message.startswith(f"Exporting to {tiny_disk / 'exports' / 'ds'}")
            assert "free" in message and "nothing was half-written" in message
            assert list((tiny_disk / "exports").iterdir()) == []
        room.unlink()
        out = export_dataset(store, "mvtec", tiny_disk / "exports" / "ds")
        assert (out / "export.json").is_file()
