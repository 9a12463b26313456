"""Control-image preprocessors: canny edges land on shape borders; sizes are handled once."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mmkit.exceptions import MediaError, UsageError
from mmkit.generate.preprocessors import PREPROCESSORS, canny, passthrough, prepare_control_image

# A filled rectangle: columns 16..47, rows 12..35 (inclusive) on a 64 x 48 black image.
X0, Y0, X1, Y1 = 16, 12, 47, 35


def _square(fill=(200, 60, 30)) -> Image.Image:
    image = Image.new("RGB", (64, 48))
    ImageDraw.Draw(image).rectangle([X0, Y0, X1, Y1], fill=fill)
    return image


def _border_band() -> np.ndarray:
    """Pixels within one pixel of the rectangle's border, on either side of it."""
    band = np.zeros((48, 64), dtype=bool)
    band[Y0 - 1 : Y1 + 2, X0 - 1 : X1 + 2] = True
    band[Y0 + 1 : Y1, X0 + 1 : X1] = False
    return band


def test_canny_edges_lie_exactly_on_the_square_border():
    edges = np.asarray(canny(_square()))
    assert edges.shape == (48, 64, 3) and edges.dtype == np.uint8
    assert set(np.unique(edges)) == {0, 255}
    assert (edges[:, :, 0] == edges[:, :, 1]).all() and (edges[:, :, 0] == edges[:, :, 2]).all()
    on = edges[:, :, 0] > 0
    assert not (on & ~_border_band()).any(), "edge pixels off the border"
    # each side is traced by exactly one pixel across the two-pixel band (away from the corners)
    for x in range(X0 + 2, X1 - 1):
        assert on[Y0 - 1 : Y0 + 1, x].sum() == 1 and on[Y1 : Y1 + 2, x].sum() == 1
    for y in range(Y0 + 2, Y1 - 1):
        assert on[y, X0 - 1 : X0 + 1].sum() == 1 and on[y, X1 : X1 + 2].sum() == 1


def test_canny_thresholds_decide_which_edges_survive():
    faint = _square(fill=(12, 12, 12))  # gradient too weak for the default thresholds
    assert np.asarray(canny(faint)).max() == 0
    assert np.asarray(canny(faint, low=5, high=10)).max() == 255


def test_canny_accepts_arrays_and_paths(tmp_path):
    square = _square()
    expected = np.asarray(canny(square))
    assert (np.asarray(canny(np.asarray(square))) == expected).all()
    square.save(tmp_path / "square.png")
    assert (np.asarray(canny(tmp_path / "square.png")) == expected).all()


@pytest.mark.parametrize("low, high", [(200, 100), (-1, 10), (10, 10), (float("nan"), 10)])
def test_canny_rejects_bad_thresholds(low, high):
    with pytest.raises(UsageError) as info:
        canny(_square(), low=low, high=high)
    assert "received" in str(info.value)


def test_passthrough_keeps_pixels_and_size():
    depth = Image.fromarray(np.arange(48 * 64, dtype=np.uint8).reshape(48, 64))  # grey "depth map"
    out = passthrough(depth)
    assert out.mode == "RGB" and out.size == (64, 48)
    assert (np.asarray(out)[:, :, 1] == np.asarray(depth)).all()


def test_registry_and_resizing_rules():
    assert set(PREPROCESSORS) == {"none", "canny"}
    assert PREPROCESSORS["canny"].detector and not PREPROCESSORS["none"].detector
    photo = _square()
    # a finished map is passed through at its own size: the pipeline resizes it, once
    assert prepare_control_image(photo, "none", width=128, height=96).size == (64, 48)
    # a detector runs at the generation size on the Lanczos-resized photo: edges stay one pixel wide
    edges = prepare_control_image(photo, "canny", width=128, height=96, low=100, high=200)
    assert edges.size == (128, 96)
    expected = canny(photo.resize((128, 96), resample=Image.Resampling.LANCZOS))
    assert (np.asarray(edges) == np.asarray(expected)).all()
    # already at the target size: no resize at all
    assert (np.asarray(prepare_control_image(photo, "canny", width=64, height=48)) == np.asarray(canny(photo))).all()


def test_bad_inputs_raise_typed_errors(tmp_path):
    with pytest.raises(UsageError, match="Unknown control preprocessor"):
        prepare_control_image(_square(), "depth", width=64, height=64)
    with pytest.raises(UsageError, match="uint8"):
        passthrough(np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(UsageError, match="PIL image"):
        passthrough(123)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(MediaError):
        passthrough(tmp_path / "broken.png")
