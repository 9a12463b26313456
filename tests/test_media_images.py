"""mmkit.media.images.load_image: every source kind, alpha on white, EXIF, bombs, corrupt data, numpy dtypes."""
from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mmkit.exceptions import MediaError, UsageError
from mmkit.media import MediaPolicy, load_image


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def pattern() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(12, 20, 3), dtype=np.uint8)


def test_every_source_kind_gives_the_same_rgb_pixels(tmp_path, pattern):
    data = _png_bytes(Image.fromarray(pattern))
    path = tmp_path / "p.png"
    path.write_bytes(data)
    sources = [str(path), path, "file://" + str(path), data, bytearray(data),
               "data:image/png;base64," + base64.b64encode(data).decode(), Image.fromarray(pattern), pattern]
    for source in sources:
        image = load_image(source)
        assert image.mode == "RGB" and image.size == (20, 12)
        np.testing.assert_array_equal(np.asarray(image), pattern)


def test_rgba_and_other_alpha_modes_are_composited_on_white():
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (255, 0, 0, 0)  # fully transparent red -> white
    rgba[1, 0] = (0, 0, 0, 128)  # half-transparent black -> grey
    out = np.asarray(load_image(_png_bytes(Image.fromarray(rgba, mode="RGBA"))))
    assert out[0, 0].tolist() == [255, 0, 0] and out[0, 1].tolist() == [255, 255, 255]
    assert 125 <= out[1, 0, 0] <= 128
    la = Image.fromarray(np.array([[[0, 0], [0, 255]]], dtype=np.uint8), mode="LA")
    assert np.asarray(load_image(_png_bytes(la))).tolist() == [[[255, 255, 255], [0, 0, 0]]]
    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    palette.putpixel((1, 0), 1)
    palette.info["transparency"] = 0  # palette entry 0 (black) is transparent
    assert np.asarray(load_image(_png_bytes(palette))).tolist() == [[[255, 255, 255], [0, 255, 0]]]


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (4, 2), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    assert Image.open(io.BytesIO(buffer.getvalue())).size == (4, 2)
    assert load_image(buffer.getvalue()).size == (2, 4)


def _png_header_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_from_the_header():
    with pytest.raises(MediaError, match="decompression-bomb") as info:
        load_image(_png_header_claiming(50_000, 50_000))
    assert "max_image_pixels" in str(info.value)
    with pytest.raises(MediaError, match="10000x10000 = 100000000 pixels, over max_image_pixels=89478485"):
        load_image(_png_header_claiming(10_000, 10_000))  # under Pillow's hard limit: our header check refuses
    with pytest.raises(MediaError, match="max_image_pixels=100"):
        load_image(_png_header_claiming(20, 20), policy=MediaPolicy(max_image_pixels=100))


@pytest.mark.parametrize("data, match", [
    (b"", "empty"),
    (b"this is not an image at all", "not a recognised image"),
    (None, "truncated or corrupt"),  # filled in below: a PNG cut in half
])
def test_corrupt_empty_and_non_image_bytes(data, match, pattern):
    if data is None:
        full = _png_bytes(Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)))
        data = full[: len(full) // 2]
    with pytest.raises(MediaError, match=match):
        load_image(data)


def test_numpy_shapes_and_dtypes():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.asarray(load_image(gray))[..., 1].tolist() == gray.tolist()
    assert np.asarray(load_image(gray[..., None])).shape == (3, 4, 3)
    assert load_image(np.zeros((3, 4, 4), dtype=np.uint8)).getpixel((0, 0)) == (255, 255, 255)  # alpha 0
    with pytest.raises(UsageError, match="float image arrays are refused") as info:
        load_image(np.full((3, 4, 3), 0.5, dtype=np.float32))
    assert "astype(np.uint8)" in info.value.fix
    with pytest.raises(UsageError, match="float"):
        load_image(np.zeros((3, 4), dtype=np.float64))
    with pytest.raises(UsageError, match="uint8"):
        load_image(np.zeros((3, 4), dtype=np.uint16))
    with pytest.raises(UsageError, match="uint8"):
        load_image(np.zeros((3, 4), dtype=bool))
    with pytest.raises(UsageError, match="channels-first"):
        load_image(np.zeros((3, 8, 8), dtype=np.uint8))
    with pytest.raises(UsageError, match="HxW"):
        load_image(np.zeros((2, 2, 2, 3), dtype=np.uint8))
    with pytest.raises(MediaError, match="empty"):
        load_image(np.zeros((0, 4, 3), dtype=np.uint8))


def test_pil_inputs_are_converted_not_mutated():
    source = Image.new("L", (3, 2), 7)
    out = load_image(source)
    assert out.mode == "RGB" and source.mode == "L" and out.getpixel((0, 0)) == (7, 7, 7)


def test_torch_tensor_is_refused_with_a_fix():
    import torch

    with pytest.raises(UsageError, match="torch tensors") as info:
        load_image(torch.zeros(3, 4, 4, dtype=torch.uint8))
    assert "permute" in info.value.fix
