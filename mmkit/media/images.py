"""Images from any source to an RGB `PIL.Image`: decoded safely, EXIF-transposed, alpha on white.

Owns `load_image()` and the numpy/PIL conversions. Sources are fetched through `fetch.read_source` (so the
`MediaPolicy` bounds apply); the pixel-count limit is checked from the image header before any pixel is
decoded. Knows nothing about models or resizing rules (see `resize.py`, `vision_info.py`).
"""
from __future__ import annotations

import warnings
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..exceptions import MediaError, UsageError
from .fetch import DEFAULT_MEDIA_POLICY, MediaPolicy, MediaSource, read_source

__all__ = ["ImageSource", "load_image", "to_rgb", "image_from_array"]

ImageSource = Union[MediaSource, Image.Image, np.ndarray]
_FLOAT_FIX = (
    "mmkit does not guess the scale of float pixels; convert explicitly, e.g. "
    "(array * 255).round().clip(0, 255).astype(np.uint8) for values in 0..1"
)


def load_image(source: ImageSource, *, policy: MediaPolicy = DEFAULT_MEDIA_POLICY) -> Image.Image:
    """Load an image as RGB `PIL.Image`, EXIF orientation applied, transparent pixels composited on white.

    Args:
        source: one of
            - a local path (str or `os.PathLike`), a `file://`, `http(s)://` or `data:` URL, or raw bytes;
            - a `PIL.Image.Image`;
            - a `numpy.ndarray` of dtype uint8, shaped HxW (gray), HxWx1, HxWx3 (RGB) or HxWx4 (RGBA).
              Float arrays are refused, not rescaled: their scale (0..1 or 0..255) cannot be known.
        policy: safety bounds for fetching and decoding (see `MediaPolicy`).

    Returns:
        A fully decoded RGB `PIL.Image.Image`.

    Raises:
        UsageError: unsupported type, dtype or shape.
        UnsafeSourceError: a safety rule refused the source.
        MediaError: missing, empty, corrupt, non-image, or over `policy.max_image_pixels`.
    """
    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        image = image_from_array(source)
    elif type(source).__module__.startswith("torch"):
        raise UsageError("torch tensors are not accepted as images", received=type(source).__name__,
                         fix="Pass tensor.permute(1, 2, 0).numpy() as uint8 HWC, or a PIL image")
    else:
        image = _decode(source, policy)
    return to_rgb(_exif_transpose(image))


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB copy of `image`; pixels with alpha are composited onto white.

    qwen-vl-utils' `to_rgb` composites mode RGBA onto white and converts everything else with
    `convert("RGB")`, which drops transparency in LA/PA/P images (showing whatever colour hides under it).
    We send every mode that carries alpha through RGBA first, so all of them land on white alike.
    """
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.split()[3])  # alpha channel as mask, as qwen-vl-utils does
    return background


def image_from_array(array: np.ndarray) -> Image.Image:
    """PIL image from a uint8 HxW, HxWx1, HxWx3 or HxWx4 array; anything else raises with the fix."""
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise UsageError("image arrays must be uint8", received=f"dtype={array.dtype}",
                         fix="Pass array.astype(np.uint8) * 255 for masks, or a uint8 image")
    if np.issubdtype(array.dtype, np.floating):
        raise UsageError("float image arrays are refused", received=f"dtype={array.dtype}", fix=_FLOAT_FIX)
    if array.dtype != np.uint8:
        raise UsageError("image arrays must be uint8", received=f"dtype={array.dtype}",
                         fix="Scale to 0..255 and call .astype(np.uint8) yourself (e.g. uint16 >> 8)")
    if array.size == 0:
        raise MediaError("the image array is empty", received=f"shape={array.shape}", fix="Pass a non-empty image")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(array), mode="L")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(array), mode="RGB" if array.shape[2] == 3 else "RGBA")
    channels_first = array.ndim == 3 and array.shape[0] in (1, 3, 4)
    hint = " (looks channels-first: use array.transpose(1, 2, 0))" if channels_first else ""
    raise UsageError(f"image arrays must be HxW, HxWx1, HxWx3 or HxWx4{hint}", received=f"shape={array.shape}",
                     fix="Pass a uint8 array in height x width x channels order")


def _decode(source: Any, policy: MediaPolicy) -> Image.Image:
    fetched = read_source(source, policy=policy)
    if fetched.data is not None and not fetched.data:
        raise MediaError("the image data is empty (0 bytes)", received=fetched.name, fix="Pass a non-empty file")
    with fetched.open() as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit below is the one that counts
        try:
            image = Image.open(handle)
        except UnidentifiedImageError as err:
            raise MediaError("not a recognised image (empty, corrupt or unsupported format)", received=fetched.name,
                             fix="Pass a PNG, JPEG, WebP, GIF, BMP or TIFF file") from err
        except Image.DecompressionBombError as err:
            raise MediaError(
                f"image refused by Pillow's decompression-bomb limit ({err}), which applies on top of "
                f"max_image_pixels={policy.max_image_pixels}",
                received=fetched.name,
                fix="Downscale the image; Pillow's own limit is PIL.Image.MAX_IMAGE_PIXELS",
            ) from err
        width, height = image.size  # read from the header; no pixel decoded yet
        if width * height > policy.max_image_pixels:
            raise MediaError(
                f"image is {width}x{height} = {width * height} pixels, over max_image_pixels="
                f"{policy.max_image_pixels} (decompression-bomb limit)",
                received=fetched.name,
                fix="Downscale the image, or raise MediaPolicy.max_image_pixels if you trust it",
            )
        try:
            image.load()
        except (OSError, SyntaxError, ValueError, EOFError) as err:
            raise MediaError(f"image data is truncated or corrupt: {err}", received=fetched.name,
                             fix="Check the file is a complete image") from err
    return image


def _exif_transpose(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError) as err:
        raise MediaError(f"image has unreadable EXIF orientation data: {err}", received=image,
                         fix="Re-save the image without EXIF data") from err
