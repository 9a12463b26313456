"""The one coordinate convention: raw model numbers -> pixels on the ORIGINAL image.

Qwen-VL families write coordinates differently (measured facts in FIELD-NOTES.md, from the Qwen
maintainers' answers and cookbooks):

- Qwen2.5-VL: absolute pixels on the smart-resized model input ("resized_pixels"), so converting needs
  the input size the processor chose (`image_grid_thw * patch_size`) as well as the original size.
- Qwen2-VL, Qwen3-VL (dense and MoE): 0-1000 relative to the image ("relative_1000").

Every `Box`/`Point` mmkit returns is in pixels of the image the caller passed, ordered (x1 < x2, y1 < y2;
a reversed box is swapped) and clamped to [0, w] x [0, h]; the numbers the model wrote stay in `raw`
with `raw_convention`. A box that is degenerate after clamping (zero width or height, e.g. entirely
outside the image) is KEPT, not dropped: the model did predict it, evaluations must count it, and
`box.area == 0` identifies it.

This module knows the conventions and nothing about models, processors or text generation; parsing the
text is `parsing.py`.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, Sequence, get_args

from ..exceptions import UsageError
from .answer import Box, Point, RawConvention
from .parsing import parse_grounding

__all__ = [
    "convention_for",
    "to_original_box",
    "to_original_point",
    "GroundingResult",
    "boxes_from_text",
    "to_relative",
    "from_relative",
    "iou",
    "box_center_inside",
]

_FAMILY_CONVENTIONS: dict[str, RawConvention] = {
    "qwen2_5_vl": "resized_pixels",
    "qwen2_vl": "relative_1000",
    "qwen3_vl": "relative_1000",
    "qwen3_vl_moe": "relative_1000",
}

Size = tuple[int, int]
"""(width, height) in pixels."""


def convention_for(family: str) -> RawConvention:
    """How a model family writes grounding coordinates.

    Args:
        family: the transformers `model_type` of the checkpoint ("qwen2_5_vl", "qwen2_vl", "qwen3_vl",
            "qwen3_vl_moe").

    Returns:
        "resized_pixels" for Qwen2.5-VL, "relative_1000" for Qwen2-VL and Qwen3-VL.
    """
    if family not in _FAMILY_CONVENTIONS:
        raise UsageError(
            "unknown model family for grounding coordinates",
            received=family,
            fix=f"use one of {sorted(_FAMILY_CONVENTIONS)}",
        )
    return _FAMILY_CONVENTIONS[family]


def _check_size(name: str, size: object) -> Size:
    ok = (isinstance(size, (tuple, list)) and len(size) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in size))
    if not ok:
        raise UsageError(f"{name} must be (width, height) with both > 0", received=size,
                         fix=f"pass {name}=(w, h), e.g. image.size for a PIL image")
    return (size[0], size[1])  # type: ignore[index]


def _scale_factors(convention: str, original_size: object, input_size: object) -> tuple[float, float, float, float]:
    """(numerator_x, denominator_x, numerator_y, denominator_y) that map raw numbers to original pixels."""
    width, height = _check_size("original_size", original_size)
    if convention == "resized_pixels":
        if input_size is None:
            raise UsageError("the 'resized_pixels' convention needs the size of the resized model input",
                             received=None, fix="pass input_size=(w, h) of the smart-resized image "
                             "(image_grid_thw[2] * patch_size, image_grid_thw[1] * patch_size)")
        in_w, in_h = _check_size("input_size", input_size)
        return width, in_w, height, in_h
    if convention == "relative_1000":
        return width, 1000, height, 1000
    if convention == "relative_1":
        return width, 1, height, 1
    if convention == "original_pixels":
        return 1, 1, 1, 1
    raise UsageError("unknown coordinate convention", received=convention,
                     fix=f"use one of {list(get_args(RawConvention))}")


def _coords(raw: Sequence[float], count: int) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in raw)
    except (TypeError, ValueError):
        values = ()
    if len(values) != count or any(v != v for v in values):  # v != v: NaN
        raise UsageError(f"raw coordinates must be {count} numbers", received=raw,
                         fix="pass RawBox.coords / RawPoint.coords from parse_grounding()")
    return values


def to_original_box(
    raw: Sequence[float],
    *,
    convention: RawConvention,
    original_size: Size,
    input_size: Size | None = None,
    label: str | None = None,
    image_index: int = 0,
) -> Box:
    """Convert (x1, y1, x2, y2) as the model wrote it to a `Box` in pixels of the original image.

    Args:
        raw: the four numbers the model wrote (`RawBox.coords`).
        convention: how they are meant (`convention_for(family)`).
        original_size: (width, height) of the image the caller passed.
        input_size: (width, height) of the smart-resized model input; required for "resized_pixels".
        label: the label to carry.
        image_index: which image of the request the box is on.

    Returns:
        A `Box` scaled to the original image, reordered so x1 <= x2 and y1 <= y2, clamped to
        [0, w] x [0, h], with `raw` and `raw_convention` kept. Zero-area results are kept.
    """
    x1, y1, x2, y2 = _coords(raw, 4)
    num_x, den_x, num_y, den_y = _scale_factors(convention, original_size, input_size)
    width, height = original_size
    xs = sorted(_clamp(v * num_x / den_x, width) for v in (x1, x2))
    ys = sorted(_clamp(v * num_y / den_y, height) for v in (y1, y2))
    return Box(x1=xs[0], y1=ys[0], x2=xs[1], y2=ys[1], label=label, image_index=image_index,
               raw=(x1, y1, x2, y2), raw_convention=convention)


def to_original_point(
    raw: Sequence[float],
    *,
    convention: RawConvention,
    original_size: Size,
    input_size: Size | None = None,
    label: str | None = None,
    image_index: int = 0,
) -> Point:
    """Convert (x, y) as the model wrote it to a `Point` in pixels of the original image (clamped).

    Args: as `to_original_box`, with `raw` = (x, y).
    """
    x, y = _coords(raw, 2)
    num_x, den_x, num_y, den_y = _scale_factors(convention, original_size, input_size)
    width, height = original_size
    return Point(x=_clamp(x * num_x / den_x, width), y=_clamp(y * num_y / den_y, height), label=label,
                 image_index=image_index, raw=(x, y), raw_convention=convention)


def _clamp(value: float, limit: float) -> float:
    return float(min(max(value, 0.0), limit))


class GroundingResult(NamedTuple):
    """Boxes and points of one answer in original-image pixels; unpacks as (boxes, points, truncated)."""

    boxes: list[Box]
    points: list[Point]
    truncated: bool


def boxes_from_text(
    text: str,
    *,
    family: str,
    original_sizes: Sequence[Size],
    input_sizes: Sequence[Size] | None = None,
    bare_lists: bool = False,
) -> GroundingResult:
    """Parse an answer's boxes and points and convert them to pixels of the original images.

    The image a box belongs to is the `image_index` the model wrote (0-based), else 0. A box naming an
    image the request did not have cannot be placed and is left out.

    Args:
        text: the model's answer (thinking removed).
        family: the checkpoint's `model_type` (see `convention_for`).
        original_sizes: (width, height) of each image of the request, in order.
        input_sizes: (width, height) of each smart-resized model input, same order; required for
            Qwen2.5-VL ("resized_pixels").
        bare_lists: also read number lists in prose as boxes/points (see `parse_grounding`); set it when
            the request asked for a location (`ground()`, `point()`), leave it off for free chat.

    Returns:
        `GroundingResult(boxes, points, truncated)`.
    """
    convention = convention_for(family)
    if not original_sizes:
        raise UsageError("boxes_from_text needs the size of at least one image", received=original_sizes,
                         fix="pass original_sizes=[(w, h), ...] for the images of the request")
    if convention == "resized_pixels" and (input_sizes is None or len(input_sizes) != len(original_sizes)):
        raise UsageError(f"family {family!r} writes pixels of the resized input: one input size per image "
                         "is needed", received=input_sizes,
                         fix=f"pass input_sizes with {len(original_sizes)} (w, h) entries")
    parsed = parse_grounding(text, bare_lists=bare_lists)

    def where(index: int | None) -> dict | None:
        index = 0 if index is None else index
        if index >= len(original_sizes):
            return None
        return {"convention": convention, "original_size": original_sizes[index], "image_index": index,
                "input_size": input_sizes[index] if input_sizes else None}

    boxes = [to_original_box(b.coords, label=b.label, **kw) for b in parsed.boxes
             if (kw := where(b.image_index)) is not None]
    points = [to_original_point(p.coords, label=p.label, **kw) for p in parsed.points
              if (kw := where(p.image_index)) is not None]
    return GroundingResult(boxes, points, parsed.truncated)


def to_relative(box: Box, image_size: Size, scale: Literal[1.0, 1000.0] = 1.0) -> tuple[float, float, float, float]:
    """(x1, y1, x2, y2) of a pixel box as fractions of the image (scale 1.0) or on Qwen's 0-1000 grid.

    Args:
        box: a box in pixels of the image.
        image_size: (width, height) of that image.
        scale: 1.0 for 0-1 fractions, 1000.0 for Qwen2-VL / Qwen3-VL prompts.
    """
    _check_scale(scale)
    width, height = _check_size("image_size", image_size)
    return (box.x1 / width * scale, box.y1 / height * scale, box.x2 / width * scale, box.y2 / height * scale)


def from_relative(
    coords: Sequence[float],
    image_size: Size,
    *,
    scale: Literal[1.0, 1000.0] = 1.0,
    label: str | None = None,
    image_index: int = 0,
) -> Box:
    """A pixel `Box` from relative (x1, y1, x2, y2) (the inverse of `to_relative`), ordered and clamped.

    Args:
        coords: four fractions (scale 1.0) or 0-1000 values (scale 1000.0).
        image_size: (width, height) of the image.
        scale: 1.0 or 1000.0.
        label / image_index: carried to the box.
    """
    _check_scale(scale)
    convention: RawConvention = "relative_1" if scale == 1.0 else "relative_1000"
    return to_original_box(coords, convention=convention, original_size=image_size, label=label,
                           image_index=image_index)


def _check_scale(scale: float) -> None:
    if scale not in (1.0, 1000.0):
        raise UsageError("scale must be 1.0 (fractions) or 1000.0 (Qwen's 0-1000 grid)", received=scale,
                         fix="pass scale=1.0 or scale=1000.0")


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (geometry only: `image_index` is not compared). 0.0 when both
    have zero area."""
    inter_w = min(a.x2, b.x2) - max(a.x1, b.x1)
    inter_h = min(a.y2, b.y2) - max(a.y1, b.y1)
    inter = max(0.0, inter_w) * max(0.0, inter_h)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def box_center_inside(a: Box, b: Box) -> bool:
    """Whether the center of `a` lies inside `b` (edges included); a lenient "found it" check."""
    cx, cy = a.center
    return b.x1 <= cx <= b.x2 and b.y1 <= cy <= b.y2
