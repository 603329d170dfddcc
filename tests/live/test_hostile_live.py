"""Hostile requests against a live app through gradio_client (issue 8, point 2).

Every hostile input gets a clear error (or, where the input is in fact fine, a correct result),
the server stays up, the next valid request succeeds, and failed requests leave the store unchanged.
The app runs with a 50 MP pixel limit so that an 8000x6000 camera JPEG is a fine input here (the
library default is 40 MP; ``ANOMALY_STUDIO_MAX_PIXELS`` changes it).
"""
from __future__ import annotations

import io
import struct
import zlib
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from tests.helpers.ui_server import LiveApp, live_app_fixture

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

hostile_app = live_app_fixture("--engine", "classic", env={"ANOMALY_STUDIO_MAX_PIXELS": "50000000"})


@pytest.fixture(scope="module")
def live(hostile_app: LiveApp) -> Iterator[LiveApp]:
    """The live app; once every test of the module has run, its log must hold no traceback
    (hostile input is handled, not crashed through)."""
    yield hostile_app
    assert "Traceback" not in hostile_app.log(), hostile_app.log()[-3000:]
SIZE = 128


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims width x height pixels."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 4096, 9)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(1)
    surface = np.clip(rng.normal(140, 6, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[40:70, 30:100] = 255
    gif = io.BytesIO()
    frames = [Image.fromarray(np.full((32, 32, 3), v, np.uint8)) for v in (0, 128, 255)]
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], loop=0)
    tiff16 = io.BytesIO()
    Image.fromarray((rng.random((SIZE, SIZE)) * 60000).astype(np.uint16)).save(tiff16, format="TIFF")
    # A smooth 8000x6000 camera-like picture (compresses well) and a one-pixel defect mask for it.
    yy, xx = np.mgrid[0:6000:8, 0:8000:8]
    small = np.stack([(xx / 8000 * 200 + 30), (yy / 6000 * 180 + 40), np.full_like(xx, 120.0)], -1).astype(np.uint8)
    big = Image.fromarray(small).resize((8000, 6000), Image.BILINEAR)
    jpeg = io.BytesIO()
    big.save(jpeg, format="JPEG", quality=85)
    one_pixel = np.zeros((6000, 8000), np.uint8)
    one_pixel[3000, 4000] = 255
    contents = {
        "image.png": _png(surface),
        "mask.png": _png(mask),
        "corrupt.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        "zero.png": b"",
        "text.png": b"hello, I am plain text pretending to be a PNG\n" * 20,
        "drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>',
        "bomb.png": _png_bomb(50_000, 50_000),
        "deep.tiff": tiff16.getvalue(),
        "animated.gif": gif.getvalue(),
        "one.png": _png(np.full((1, 1, 3), 200, np.uint8)),
        "one_mask.png": _png(np.full((1, 1), 255, np.uint8)),
        "big.jpg": jpeg.getvalue(),
        "big_one_pixel_mask.png": _png(one_pixel),
        "empty_mask.png": _png(np.zeros((SIZE, SIZE), np.uint8)),
        "full_mask.png": _png(np.full((SIZE, SIZE), 255, np.uint8)),
        "other_size_mask.png": _png(np.kron(mask[::4, ::4], np.ones((1, 1), np.uint8))),
    }
    out = {}
    for name, data in contents.items():
        (folder / name).write_bytes(data)
        out[name] = str(folder / name)
    return out


def _generate(client: Client, image: str, mask: str, prompt: str = "a dark scratch", num: float = 1,
              seed: float = 3, steps: float | None = None, reference_text: str = ""):
    return client.predict(handle_file(image), handle_file(mask), prompt, None, None, reference_text,
                          num, seed, steps, None, None, None, None, "", api_name="/generate")


REFUSED = [  # (image, mask, extra kwargs, what the message must say)
    ("corrupt.png", "mask.png", {}, r"(?i)not an image|could not be (decoded|opened)"),
    ("zero.png", "mask.png", {}, r"(?i)empty|0 bytes|missing"),
    ("text.png", "mask.png", {}, r"(?i)not an image"),
    ("drawing.svg", "mask.png", {}, r"(?i)not an image|PNG, JPEG"),
    ("bomb.png", "mask.png", {}, r"(?i)MP limit|decompression bomb"),
    ("animated.gif", "mask.png", {}, r"(?i)GIF.*use PNG|PNG, JPEG"),
    ("one.png", "one_mask.png", {}, r"(?i)covers 100%"),
    ("image.png", "empty_mask.png", {}, r"(?i)sketch the defect region"),
    ("image.png", "full_mask.png", {}, r"(?i)covers 100%"),
    ("image.png", "mask.png", {"prompt": "x" * 100_000}, r"(?i)characters long"),
    ("image.png", "mask.png", {"num": -3}, r"(?i)candidates"),
    ("image.png", "mask.png", {"num": 10**9}, r"(?i)candidates"),
    ("image.png", "mask.png", {"steps": -5}, r"(?i)steps"),
    ("image.png", "mask.png", {"steps": 10**9}, r"(?i)steps"),
    ("image.png", "mask.png", {"seed": 2**40}, r"(?i)seed"),
    ("image.png", "mask.png", {"seed": -7}, r"(?i)seed"),
]


def test_hostile_requests_get_clear_errors_and_change_nothing(live, files) -> None:
    client = Client(live.url, verbose=False)
    before = client.predict("", api_name="/curated")["stats"]
    for image, mask, extra, message in REFUSED:
        with pytest.raises(AppError, match=message):
            _generate(client, files[image], files[mask], **extra)
        assert client.predict(api_name="/status"), f"server down after {image}/{mask}/{list(extra)}"
    with pytest.raises(AppError, match=r"(?i)no candidates"):
        client.predict(0, "scratch", "", "", api_name="/accept")  # nothing was generated by those requests
    assert client.predict("", api_name="/curated")["stats"] == before
    images, masks, info = _generate(client, files["image.png"], files["mask.png"], num=2)
    assert len(images) == 2 and info["candidates"][0]["metadata"]["engine"] == "classic"


def test_odd_but_fine_inputs_give_correct_results(live, files) -> None:
    client = Client(live.url, verbose=False)
    # NUL bytes and emoji in texts: cleaned, kept readable.
    images, _, info = _generate(client, files["image.png"], files["mask.png"], prompt="a dark\x00 scratch 🔩",
                                reference_text="nul\x00 text ✨")
    assert info["candidates"][0]["metadata"]["prompt"] == "a dark scratch 🔩"
    accepted = client.predict(0, "scratch 🔩\x00", "plate\x00", "note ✨", api_name="/accept")
    sample = next(s for s in client.predict("", api_name="/curated")["samples"] if s["id"] == accepted["id"])
    assert sample["defect_type"] == "scratch 🔩" and "\x00" not in sample["category"]
    # A 16-bit TIFF and a mask of another size (resized with nearest neighbour) are fine inputs.
    images, masks, _ = _generate(client, files["deep.tiff"], files["other_size_mask.png"])
    label = np.asarray(Image.open(masks[0]["image"]).convert("L"))
    assert label.shape == (SIZE, SIZE) and label[:35].max() == 0 and label.max() == 255
    # An 8000x6000 camera JPEG with a one-pixel defect: full-resolution result, label near that pixel.
    images, masks, _ = _generate(client, files["big.jpg"], files["big_one_pixel_mask.png"], prompt="a dark spot")
    label = np.asarray(Image.open(masks[0]["image"]).convert("L"))
    assert label.shape == (6000, 8000)
    ys, xs = np.nonzero(label)
    assert ys.size and abs(ys.mean() - 3000) < 10 and abs(xs.mean() - 4000) < 10
    assert client.predict(api_name="/status")

