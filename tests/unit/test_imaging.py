"""studio.imaging: every hostile input of issue 2 is an InputError (and exit 2 from the CLI);
every accepted mode and format decodes to RGB uint8; masks load, resize and validate."""
from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from studio import config
from studio.cli import main as cli_main
from studio.errors import InputError
from studio.imaging import (
    channel_medians, check_mask, dilate, disc_by_rows, erode, labels_in, load_image, load_mask, mask_coords,
    mask_from_array, median, pixels, slope_at,
)

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG file that *claims* width x height pixels (a decompression bomb's header)."""
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b""))


def sample_rgb(width: int = 48, height: int = 32) -> Image.Image:
    yy, xx = np.mgrid[:height, :width]
    array = np.stack([xx * 5 % 256, yy * 7 % 256, (xx + yy) * 3 % 256], axis=2).astype(np.uint8)
    return Image.fromarray(array)


def _truncated(fmt: str) -> bytes:
    data = encode(sample_rgb(64, 64), fmt)
    return data[: len(data) // 2]


#: name -> (file bytes, max_pixels or None). Every one must be refused with InputError.
HOSTILE: dict[str, tuple[bytes, int | None]] = {
    "random-bytes": (bytes(np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8)), None),
    "text-file": (b"this is not an image, it is a note\n" * 20, None),
    "empty-file": (b"", None),
    "truncated-png": (_truncated("PNG"), None),
    "truncated-jpeg": (_truncated("JPEG"), None),
    "corrupt-png-body": (encode(sample_rgb(), "PNG")[:60] + b"\x00" * 200 + b"IEND", None),
    "gif-format": (encode(sample_rgb().convert("P"), "GIF"), None),
    "decompression-bomb": (png_header_only(100_000, 100_000), None),
    "zero-width": (png_header_only(0, 16), None),
    "zero-height": (png_header_only(16, 0), None),
    "over-pixel-limit": (encode(sample_rgb(64, 64), "PNG"), 1000),
}


# --------------------------------------------------------------------------- hostile inputs


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_image_is_input_error(name: str) -> None:
    data, limit = HOSTILE[name]
    with pytest.raises(InputError) as info:
        load_image(data, max_pixels=limit)
    message = str(info.value)
    assert message and "\n" not in message


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_on_disk_is_input_error(name: str, tmp_path: Path) -> None:
    data, limit = HOSTILE[name]
    path = tmp_path / "input.png"
    path.write_bytes(data)
    with pytest.raises(InputError):
        load_image(path, max_pixels=limit)


@pytest.mark.parametrize("name", ["random-bytes", "truncated-png", "decompression-bomb", "zero-width", "empty-file"])
def test_hostile_mask_is_input_error(name: str) -> None:
    with pytest.raises(InputError):
        load_mask(HOSTILE[name][0], (32, 32))


def test_default_pixel_limit_is_40_megapixels() -> None:
    assert config.MAX_PIXELS == 40_000_000 or "ANOMALY_STUDIO_MAX_PIXELS" in os.environ
    with pytest.raises(InputError, match="MP"):
        load_image(png_header_only(8000, 6000))  # 48 MP: over 40 MP, under PIL's own bomb limit


def test_missing_file_and_wrong_type_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(InputError):
        load_image(12345)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        load_image(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(InputError):
        load_image(np.zeros((4, 4, 5), np.uint8))


# --------------------------------------------------------------------------- accepted modes and formats


FORMATS = ["PNG", "JPEG", "WEBP", "BMP", "TIFF"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_formats_accepted(fmt: str) -> None:
    source = sample_rgb()
    kwargs = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    array = load_image(encode(source, fmt, **kwargs))
    assert array.shape == (32, 48, 3) and array.dtype == np.uint8
    error = np.abs(array.astype(int) - np.asarray(source, int)).mean()
    assert error == 0 if fmt in ("PNG", "BMP", "TIFF") else error < 12


def _mode_image(mode: str) -> Image.Image:
    if mode == "RGB":
        return sample_rgb()
    if mode == "RGBA":
        rgba = np.zeros((32, 48, 4), np.uint8)
        rgba[..., 0], rgba[..., 3] = 200, 255
        rgba[:, :24, 3] = 0  # left half transparent -> white
        return Image.fromarray(rgba, "RGBA")
    if mode == "L":
        return Image.fromarray(np.full((32, 48), 100, np.uint8), "L")
    if mode == "P":
        return sample_rgb().quantize(colors=16)
    if mode == "I;16":
        array = np.full((32, 48), 65535, np.uint16)
        array[:, :24] = 0
        return Image.fromarray(array, "I;16")
    if mode == "CMYK":
        return sample_rgb().convert("CMYK")
    raise AssertionError(mode)


@pytest.mark.parametrize("mode,fmt", [
    ("RGB", "PNG"), ("RGBA", "PNG"), ("RGBA", "WEBP"), ("L", "PNG"), ("L", "JPEG"), ("L", "BMP"),
    ("P", "PNG"), ("P", "BMP"), ("P", "TIFF"), ("I;16", "PNG"), ("I;16", "TIFF"), ("CMYK", "JPEG"), ("CMYK", "TIFF"),
])
def test_modes_accepted(mode: str, fmt: str) -> None:
    image = _mode_image(mode)
    assert image.mode == mode
    array = load_image(encode(image, fmt))
    assert array.shape == (32, 48, 3) and array.dtype == np.uint8
    if mode == "RGBA" and fmt == "PNG":
        assert (array[:, :24] == 255).all(), "transparent pixels are composited on white"
        assert (array[:, 24:, 0] == 200).all()
    if mode == "L" and fmt != "JPEG":
        assert (array == 100).all()
    if mode == "I;16":
        assert (array[:, :24] == 0).all() and (array[:, 24:] == 255).all()
    if mode == "CMYK" and fmt == "TIFF":
        assert np.abs(array.astype(int) - np.asarray(sample_rgb(), int)).max() <= 2


def test_numpy_and_pil_sources() -> None:
    grey16 = np.full((10, 12), 65535, np.uint16)
    assert (load_image(grey16) == 255).all()
    assert load_image(sample_rgb()).shape == (32, 48, 3)
    floats = np.full((5, 6, 3), 0.5, np.float32)
    assert (load_image(floats) == 128).all()


def test_exif_orientation_applied() -> None:
    # stored 40 wide x 20 high: left half red, right half blue; orientation 6 = rotate 90° clockwise
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, :20] = (255, 0, 0)
    array[:, 20:] = (0, 0, 255)
    stored = Image.fromarray(array)
    exif = Image.Exif()
    exif[0x0112] = 6
    for fmt in ("JPEG", "PNG"):
        upright = load_image(encode(stored, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {})))
        assert upright.shape == (40, 20, 3), fmt
        # after a clockwise quarter turn the (red) left half is on top
        assert upright[5, 10, 0] > 200 and upright[5, 10, 2] < 60, fmt
        assert upright[35, 10, 2] > 200 and upright[35, 10, 0] < 60, fmt


# --------------------------------------------------------------------------- masks


def test_mask_nonzero_is_defect_and_nearest_neighbour_resize() -> None:
    small = np.zeros((4, 4), np.uint8)
    small[1, 2] = 7  # any non-zero value is defect
    small[3, 0] = 255
    mask = load_mask(encode(Image.fromarray(small), "PNG"), (16, 8))  # (width, height)
    assert mask.shape == (8, 16) and mask.dtype == bool
    expected = np.kron(small != 0, np.ones((2, 4), bool))
    assert np.array_equal(mask, expected), "masks are resized by nearest neighbour, no blur, no threshold drift"


def test_mask_from_rgb_and_alpha() -> None:
    rgb = np.zeros((6, 6, 3), np.uint8)
    rgb[2, 3] = (0, 0, 9)
    assert mask_from_array(rgb).sum() == 1
    brush = np.zeros((6, 6, 4), np.uint8)
    brush[..., :3] = 255  # white paint everywhere, but only painted where alpha > 0
    brush[1:3, 1:3, 3] = 255
    assert mask_from_array(brush).sum() == 4


def test_empty_mask_rejected() -> None:
    empty = load_mask(encode(Image.new("L", (20, 20), 0), "PNG"), (20, 20))
    with pytest.raises(InputError, match="sketch the defect region"):
        check_mask(empty)


def test_mask_over_90_percent_rejected() -> None:
    full = np.ones((20, 20), bool)
    full[0, :3] = False  # 99% covered
    with pytest.raises(InputError, match="90%"):
        check_mask(full)
    ok = np.zeros((20, 20), bool)
    ok[:18] = True  # exactly 90%
    assert check_mask(ok) is ok


# --------------------------------------------------------------------------- the CLI: exit 2, one line


@pytest.fixture
def good_files(tmp_path: Path) -> dict[str, Path]:
    image = tmp_path / "normal.png"
    image.write_bytes(encode(sample_rgb(64, 64), "PNG"))
    mask = tmp_path / "mask.png"
    m = np.zeros((64, 64), np.uint8)
    m[20:40, 16:48] = 255
    mask.write_bytes(encode(Image.fromarray(m), "PNG"))
    return {"image": image, "mask": mask, "out": tmp_path / "out"}


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli_main(args)
    return code, capsys.readouterr().err


def _assert_one_error_line(code: int, err: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err


@pytest.mark.parametrize("name,role", [
    (name, role) for name in sorted(HOSTILE) for role in ("image", "mask", "ref")
    if name != "over-pixel-limit" or role == "image"  # the limit applies to every input alike
])
def test_cli_hostile_input_exit_2(name: str, role: str, good_files: dict[str, Path],
                                  tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data, limit = HOSTILE[name]
    if limit is not None:
        monkeypatch.setattr(config, "MAX_PIXELS", limit)
    bad = tmp_path / "bad.png"
    bad.write_bytes(data)
    files = {"image": good_files["image"], "mask": good_files["mask"]}
    extra: list[str] = []
    if role == "ref":
        extra = ["--ref", str(bad)]
    else:
        files[role] = bad
    code, err = _cli(["generate", "--engine", "classic", "--image", str(files["image"]), "--mask", str(files["mask"]),
                      *extra, "--prompt", "a scratch", "--out", str(good_files["out"])], capsys)
    _assert_one_error_line(code, err)


@pytest.mark.parametrize("coverage", ["empty", "full"])
def test_cli_bad_mask_coverage_exit_2(coverage: str, good_files: dict[str, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    value = 0 if coverage == "empty" else 255
    mask = tmp_path / f"{coverage}.png"
    mask.write_bytes(encode(Image.new("L", (64, 64), value), "PNG"))
    code, err = _cli(["generate", "--engine", "classic", "--image", str(good_files["image"]), "--mask", str(mask),
                      "--prompt", "a scratch", "--out", str(good_files["out"])], capsys)
    _assert_one_error_line(code, err)
    assert not good_files["out"].exists()


def test_cli_subprocess_exit_2_no_traceback(good_files: dict[str, Path], tmp_path: Path) -> None:
    """The real process: exit status 2 and a single ``error:`` line, for a corrupt file and a pixel limit."""
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(HOSTILE["truncated-jpeg"][0])
    env = {**os.environ, "ANOMALY_STUDIO_MAX_PIXELS": "1000"}
    for image, environment in ((corrupt, os.environ), (good_files["image"], env)):
        proc = subprocess.run(
            [sys.executable, "-m", "studio", "generate", "--engine", "classic", "--image", str(image),
             "--mask", str(good_files["mask"]), "--prompt", "a crack", "--out", str(good_files["out"])],
            cwd=ROOT, env=dict(environment), capture_output=True, text=True, timeout=120,
        )
        _assert_one_error_line(proc.returncode, proc.stderr)


@pytest.mark.parametrize("radius", [1, 2, 7, 15, 16, 17, 23, 31, 50])
def test_disc_by_rows_is_opencvs_dilation_and_erosion(radius: int) -> None:
    """The row-wise disc morphology equals OpenCV's elliptic one pixel for pixel, borders included."""
    rng = np.random.default_rng(radius)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    for mask in (cv2.GaussianBlur(rng.random((97, 131)), (0, 0), 4) > 0.5, rng.random((40, 70)) > 0.97):
        grown = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
        shrunk = cv2.erode(mask.astype(np.uint8), kernel).astype(bool)
        assert np.array_equal(disc_by_rows(mask, radius, erode=False), grown)
        assert np.array_equal(disc_by_rows(mask, radius, erode=True), shrunk)
        assert np.array_equal(dilate(mask, radius), grown) and np.array_equal(erode(mask, radius), shrunk)


@pytest.mark.parametrize("shape", [(2, 2), (5, 7), (40, 33)])
def test_slope_at_some_pixels_equals_the_full_gradient_there(shape: tuple[int, int]) -> None:
    """The gradient magnitude read at chosen pixels is np.gradient's, to the bit, borders included."""
    rng = np.random.default_rng(0)
    image = rng.normal(0, 10, shape).astype(np.float32)
    where = rng.random(shape) < 0.5
    where[0, 0] = where[-1, -1] = True
    gy, gx = np.gradient(image)
    assert np.array_equal(slope_at(image, where), np.hypot(gx[where], gy[where]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_median_is_numpys_to_the_bit(dtype: type) -> None:
    """The single-partition median equals np.median exactly, odd and even counts, ties and one value."""
    rng = np.random.default_rng(1)
    for size in (1, 2, 3, 4, 10, 11, 1000, 1001, 40_000):
        values = (rng.normal(3, 5, size) * 10 ** rng.uniform(-3, 3)).astype(dtype)
        for case in (values, np.round(values), np.abs(values).reshape(-1, 1)):
            assert median(case) == float(np.median(case))


def test_channel_medians_are_numpys_to_the_bit() -> None:
    rng = np.random.default_rng(4)
    for shape in ((31, 17, 3), (8, 8, 3), (1, 1, 2)):
        image = rng.normal(0, 30, shape).astype(np.float32)
        assert np.array_equal(channel_medians(image), np.median(image, axis=(0, 1)))
        assert channel_medians(image).dtype == np.median(image, axis=(0, 1)).dtype


def test_labels_in_is_numpys_isin() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 40, (60, 70)).astype(np.int32)
    for chosen in ([], [0], [3, 17, 39], np.arange(0, 40, 3)):
        assert np.array_equal(labels_in(labels, np.asarray(chosen, int), 40), np.isin(labels, chosen))


def test_mask_coords_are_numpys_nonzero() -> None:
    rng = np.random.default_rng(6)
    for mask in (rng.random((37, 53)) > 0.7, np.zeros((4, 5), bool), np.ones((1, 9), bool),
                 (rng.random((20, 30)) > 0.5)[3:, ::2], rng.integers(0, 3, (6, 7)).astype(np.float32)):
        rows, cols = mask_coords(mask)
        expected = np.nonzero(mask)
        assert np.array_equal(rows, expected[0]) and np.array_equal(cols, expected[1])
        assert rows.dtype == expected[0].dtype


def test_pixels_are_boolean_indexing() -> None:
    """The masked rows of an (H, W, C) image, in numpy's order: contiguous or a view, any channel count."""
    rng = np.random.default_rng(3)
    for shape, dtype in (((40, 50, 3), np.float32), ((7, 9, 1), np.uint8), ((1, 1, 4), np.float64)):
        image = (rng.random(shape) * 200).astype(dtype)
        mask = rng.random(shape[:2]) > 0.4
        assert np.array_equal(pixels(image, mask), image[mask])
        view, part = image[1:, ::2], mask[1:, ::2]
        assert np.array_equal(pixels(view, part), view[part])
    assert pixels(image, np.zeros(shape[:2], bool)).shape == (0, 4)
