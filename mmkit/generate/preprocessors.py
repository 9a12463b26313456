"""Control-image preprocessors: photo -> the conditioning map a ControlNet was trained on.

Owns: `canny` (OpenCV's detector, the one lllyasviel's canny ControlNets were trained with and diffusers' docs
use: `cv2.Canny` on the RGB array, the single-channel edge map repeated to 3 channels), `passthrough` for maps the
user made elsewhere (depth, pose, scribble, segmentation), the `PREPROCESSORS` registry, and where resizing
happens.

Resizing: the ControlNet pipelines resize every control image to the generation size with their
`control_image_processor` (a `VaeImageProcessor`, PIL Lanczos; diffusers' pipeline_controlnet*.py
`prepare_image`). A user-made map is therefore passed through unchanged and resized once, there. A detector must
see the image at the generation size (edges one pixel wide, as in training, instead of edges blurred by a later
resize), so `prepare_control_image` resizes the photo first with the same Lanczos filter and then detects; the
pipeline's resize of an image already at the target size is the identity (PIL returns a copy), so nothing is
resized twice. This module knows nothing about models or pipelines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np
from PIL import Image

from ..exceptions import UsageError
from .inputs import load_rgb

__all__ = ["PreprocessorName", "Preprocessor", "PREPROCESSORS", "canny", "passthrough", "prepare_control_image"]

PreprocessorName = Literal["none", "canny"]


def _check_thresholds(low: Any, high: Any) -> None:
    for value in (low, high):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UsageError("Canny thresholds must be finite numbers", received=(low, high),
                             fix="Use e.g. low=100, high=200")
    if not 0 <= low < high:
        raise UsageError("Canny thresholds need 0 <= low < high", received=(low, high),
                         fix="Use e.g. low=100, high=200 (lower values keep more edges)")


def canny(image: Any, low: int = 100, high: int = 200) -> Image.Image:
    """Canny edges as a 3-channel white-on-black image, at the input's size.

    Uses `cv2.Canny(rgb_array, low, high)` (hysteresis thresholds on the Sobel gradient, L1 norm, aperture 3),
    as lllyasviel's ControlNet annotator and diffusers' docs do.

    Args:
        image: PIL image, uint8 array (HW / HWC), file path, URL or bytes.
        low: lower hysteresis threshold.
        high: upper hysteresis threshold.

    Returns:
        RGB PIL image, 255 on edges, 0 elsewhere.
    """
    import cv2

    _check_thresholds(low, high)
    edges = cv2.Canny(np.asarray(load_rgb(image, "Control image")), low, high)
    return Image.fromarray(np.repeat(edges[:, :, None], 3, axis=2))


def passthrough(image: Any) -> Image.Image:
    """A user-made control map (depth, pose, scribble, ...) as RGB, unchanged otherwise (the pipeline resizes it).

    Args:
        image: PIL image, uint8 array (HW / HWC), file path, URL or bytes.
    """
    return load_rgb(image, "Control image")


@dataclass(frozen=True)
class Preprocessor:
    """One registry entry.

    Attributes:
        name: the registry name.
        run: image (+ options) -> RGB PIL control map.
        detector: True if it must run at the generation size (so the photo is resized before it runs).
    """

    name: str
    run: Callable[..., Image.Image]
    detector: bool


PREPROCESSORS: dict[str, Preprocessor] = {
    "none": Preprocessor("none", passthrough, detector=False),
    "canny": Preprocessor("canny", canny, detector=True),
}


def prepare_control_image(image: Any, preprocess: str, *, width: int, height: int, **options: Any) -> Image.Image:
    """Run a registered preprocessor so the pipeline resizes the result at most once.

    Args:
        image: the control input (photo for a detector, finished map for `"none"`).
        preprocess: a `PREPROCESSORS` name.
        width: generation width in pixels.
        height: generation height in pixels.
        **options: passed to the preprocessor (e.g. `low`, `high` for canny).

    Returns:
        RGB PIL image; detector outputs are exactly `width` x `height`.
    """
    entry = PREPROCESSORS.get(preprocess)
    if entry is None:
        raise UsageError(f"Unknown control preprocessor {preprocess!r}", received=preprocess,
                         fix=f"Use one of {sorted(PREPROCESSORS)}")
    if not entry.detector:
        return entry.run(image, **options)
    rgb = load_rgb(image, "Control image")
    if rgb.size != (width, height):  # same filter as diffusers' VaeImageProcessor (resample="lanczos")
        rgb = rgb.resize((width, height), resample=Image.Resampling.LANCZOS)
    return entry.run(rgb, **options)
