"""Fuzzing the one image/mask loader: every outcome is an image or an InputError, fast, bounded in memory.

`make test` runs a few hundred cases; `FUZZ_CASES=5000 pytest tests/unit/test_fuzz_imaging.py`
(or `make fuzz`) runs the nightly size.
"""
from __future__ import annotations

import io
import os
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from studio.errors import InputError
from studio.imaging import load_image, load_mask

CASES = int(os.environ.get("FUZZ_CASES", "150"))
#: One input must decode or be refused within this bound (generous for a loaded 2-core CI box).
PER_INPUT_SECONDS = 5.0
FUZZ_SETTINGS = settings(
    max_examples=CASES, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _seed_files() -> list[bytes]:
    """Small valid files in every accepted format and several modes, to mutate."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    out = []
    for fmt, image in [
        ("PNG", rgb), ("JPEG", rgb), ("WEBP", rgb), ("TIFF", rgb), ("BMP", rgb),
        ("PNG", rgb.convert("RGBA")), ("PNG", rgb.convert("P")), ("TIFF", rgb.convert("CMYK")),
        ("PNG", Image.fromarray(rng.integers(0, 65535, (16, 16), dtype=np.uint16))),
    ]:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        out.append(buffer.getvalue())
    return out


SEEDS = _seed_files()


def _check_outcome(data: bytes) -> None:
    start = time.perf_counter()
    try:
        image = load_image(data)
    except InputError as exc:
        assert str(exc).strip(), "an InputError must carry a message"
    else:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert image.shape[0] * image.shape[1] <= 40_000_000
    try:
        mask = load_mask(data, (8, 8))
    except InputError:
        pass
    else:
        assert mask.shape == (8, 8) and mask.dtype == bool
    assert time.perf_counter() - start < PER_INPUT_SECONDS


@FUZZ_SETTINGS
@given(st.binary(min_size=0, max_size=4096))
def test_random_bytes_decode_or_refuse(data: bytes) -> None:
    _check_outcome(data)


@FUZZ_SETTINGS
@given(
    st.sampled_from(range(len(SEEDS))),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=12),
    st.integers(0, 10_000),
)
def test_mutated_valid_files_decode_or_refuse(index: int, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(SEEDS[index])
    for position, value in flips:
        data[position % len(data)] = value
    if cut:
        data = data[: max(1, len(data) - cut % len(data))]
    _check_outcome(bytes(data))


def test_decompression_bomb_refused_before_decoding() -> None:
    """A 50,000 x 50,000 PNG header must be refused without allocating its pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 0, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    start = time.perf_counter()
    with pytest.raises(InputError, match="MP limit|decompression bomb"):
        load_image(bomb)
    assert time.perf_counter() - start < 1.0
