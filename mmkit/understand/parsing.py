"""Read boxes and points out of what a Qwen-VL model wrote, with the numbers exactly as written.

Text in, plain values out, and nothing raises on odd model output: garbage gives an empty result, a list
cut by `max_new_tokens` keeps its complete elements and says `truncated=True`, and no box is made up from
prose. Coordinates come out exactly as the model wrote them (`RawBox`, `RawPoint`); turning them into
pixels of the original image is `grounding.py`'s job. Reasoning is split off first (`thinking.py`); video
time spans are `time_spans.py`. This module knows nothing about models, images or coordinate conventions.

Grounding formats understood (all may appear several times in one answer, inside prose or code fences):

- JSON (Qwen2.5-VL / Qwen3-VL): `[{"bbox_2d": [x1, y1, x2, y2], "label": "cat"}]`, `{"point_2d": [x, y]}`;
  box keys `bbox_2d`/`bbox`/`box_2d`/`box`, point keys `point_2d`/`point`, labels under
  `label`/`name`/`category`/`class`/`text_content`/`text`, optional `image_index`; numbers may be strings;
  a single object instead of a list, trailing commas, single quotes, Python literals; one key holding
  several boxes (`"bbox_2d": [[...], [...]]`); wrappers such as `{"objects": [...]}`.
- Key-less lists (`[[x1, y1, x2, y2], ...]`, `[x, y]`): only inside a code fence or when the JSON is the
  whole answer, so that a number list in a sentence never becomes a box (unless `bare_lists=True`).
- Qwen2-VL special tokens `<|object_ref_start|>dog<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>`
  and Qwen-VL's `<ref>dog</ref><box>(x1,y1),(x2,y2)</box>`. These tokens are *special*: decode with
  `skip_special_tokens=False` (or keep them) before parsing Qwen2-VL output, otherwise they are gone.
- Qwen2.5-VL cookbook XML points `<points x1=".." y1=".." alt="spoon">spoon</points>` and `<point x y>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .json_in_text import find_json, scalar_text

__all__ = ["RawBox", "RawPoint", "ParsedGeometry", "parse_grounding"]


@dataclass(frozen=True)
class RawBox:
    """A box exactly as the model wrote it (convention unknown here).

    Attributes:
        coords: (x1, y1, x2, y2) as written; not reordered, not clamped.
        label: the label the model gave, if any.
        image_index: the image the model said the box is on, if it said (0-based `image_index` key).
    """

    coords: tuple[float, float, float, float]
    label: str | None = None
    image_index: int | None = None


@dataclass(frozen=True)
class RawPoint:
    """A point exactly as the model wrote it: (x, y), label, optional image index."""

    coords: tuple[float, float]
    label: str | None = None
    image_index: int | None = None


@dataclass(frozen=True)
class ParsedGeometry:
    """Boxes and points found in one answer.

    Attributes:
        boxes / points: in the order found (tagged styles, then XML points, then JSON).
        truncated: the output was cut inside a geometry list or tag; the complete elements were kept.
        skipped: elements that named a box/point key or tag but whose coordinates were unusable (wrong
            count, not numbers). Nothing found and `skipped == 0` means the text had no grounding at all.
    """

    boxes: tuple[RawBox, ...] = ()
    points: tuple[RawPoint, ...] = ()
    truncated: bool = False
    skipped: int = 0

    @property
    def empty(self) -> bool:
        return not self.boxes and not self.points


_BOX_KEYS = ("bbox_2d", "bbox", "box_2d", "box")
_POINT_KEYS = ("point_2d", "point")
_LABEL_KEYS = ("label", "name", "category", "class", "text_content", "text")
_CORNER_KEYS = (("x1", "y1", "x2", "y2"), ("xmin", "ymin", "xmax", "ymax"), ("x", "y"))
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_NUMBERS_ONLY = re.compile(r"[\s\[\](),;\d.-]*")


def _numbers(value: Any) -> tuple[float, ...] | None:
    """Coordinates from a list of numbers / numeric strings, a "1, 2, 3, 4" string or an {x1: ..} dict."""
    if isinstance(value, str):
        return tuple(float(n) for n in _NUMBER.findall(value)) if _NUMBERS_ONLY.fullmatch(value) else None
    if isinstance(value, dict):
        lowered = {str(k).lower(): v for k, v in value.items()}
        for keys in _CORNER_KEYS:
            if all(k in lowered for k in keys):
                return _numbers([lowered[k] for k in keys])
        return None
    if not isinstance(value, (list, tuple)):
        return None
    out = []
    for item in value:
        if isinstance(item, bool):
            return None
        if isinstance(item, (int, float)):
            out.append(float(item))
        elif isinstance(item, str) and _NUMBER.fullmatch(item.strip()):
            out.append(float(item))
        else:
            return None
    return tuple(out)


class _Collector:
    def __init__(self) -> None:
        self.boxes: list[RawBox] = []
        self.points: list[RawPoint] = []
        self.truncated = False
        self.skipped = 0

    def add(self, coords: tuple[float, ...], label: str | None, image_index: int | None) -> bool:
        if len(coords) == 4:
            self.boxes.append(RawBox(coords, label, image_index))  # type: ignore[arg-type]
        elif len(coords) == 2:
            self.points.append(RawPoint(coords, label, image_index))  # type: ignore[arg-type]
        else:
            return False
        return True

    def add_keyed(self, value: Any, size: int, label: str | None, image_index: int | None) -> None:
        """The value of a box (size 4) or point (size 2) key: one coordinate list or a list of them."""
        coords = _numbers(value)
        if coords is None and size == 4 and isinstance(value, (list, tuple)) and len(value) == 2:
            corners = [_numbers(corner) for corner in value]  # [[x1, y1], [x2, y2]]
            if all(c is not None and len(c) == 2 for c in corners):
                coords = corners[0] + corners[1]  # type: ignore[operator]
        if coords is not None and len(coords) == size:
            self.add(coords, label, image_index)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, (list, tuple, dict)) for v in value):
            for item in value:
                self.add_keyed(item, size, label, image_index)
        else:
            self.skipped += 1

    def walk(self, value: Any, keyless_ok: bool, image_index: int | None) -> None:
        if isinstance(value, dict):
            self.walk_dict(value, image_index)
        elif isinstance(value, (list, tuple)):
            coords = _numbers(value)
            if coords is not None:
                if keyless_ok:
                    self.add(coords, None, image_index)
                return
            for item in value:
                self.walk(item, keyless_ok, image_index)

    def walk_dict(self, value: dict, image_index: int | None) -> None:
        lowered = {str(k).strip().lower(): v for k, v in value.items()}
        index = lowered.get("image_index")
        if isinstance(index, int) and not isinstance(index, bool) and index >= 0:
            image_index = index
        label = next((scalar_text(lowered[k]) for k in _LABEL_KEYS if scalar_text(lowered.get(k)) is not None), None)
        box_key = next((k for k in _BOX_KEYS if k in lowered), None)
        point_key = next((k for k in _POINT_KEYS if k in lowered), None)
        if box_key:
            self.add_keyed(lowered[box_key], 4, label, image_index)
        if point_key:
            self.add_keyed(lowered[point_key], 2, label, image_index)
        if not box_key and not point_key:
            for item in lowered.values():  # wrappers like {"objects": [...]}; key-less lists not trusted here
                self.walk(item, keyless_ok=False, image_index=image_index)


_TAGGED = re.compile(
    r"<\|object_ref_start\|>(?P<ref>.*?)<\|object_ref_end\|>"
    r"|<ref>(?P<ref_v1>.*?)</ref>"
    r"|<\|box_start\|>(?P<box>.*?)(?P<box_end><\|box_end\|>|\Z)"
    r"|<box>(?P<box_v1>.*?)(?P<box_v1_end></box>|\Z)",
    re.S,
)
_PAREN_PAIR = re.compile(r"\(\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\)")
_XML_POINT = re.compile(r"<(points?)\b([^<>]*)>(.*?)(</\1>|\Z)", re.S)
_XML_ATTR = re.compile(r"""([A-Za-z_][\w-]*)\s*=\s*["']([^"']*)["']""")
_UNCLOSED_TAG = re.compile(r"<(?:points?\b|\|box_start|box>|ref>|\|object_ref_start)[^>]*\Z")


def _collect_tagged(text: str, out: _Collector) -> None:
    label = None
    for match in _TAGGED.finditer(text):
        if match["ref"] is not None or match["ref_v1"] is not None:
            label = scalar_text(match["ref"] if match["ref"] is not None else match["ref_v1"])
            continue
        content, end = (match["box"], match["box_end"]) if match["box"] is not None else (
            match["box_v1"], match["box_v1_end"])
        if not end:  # cut inside the tag
            out.truncated = True
            continue
        pairs = [(float(x), float(y)) for x, y in _PAREN_PAIR.findall(content)]
        if not pairs or len(pairs) % 2:
            out.skipped += 1
            continue
        for first, second in zip(pairs[::2], pairs[1::2]):
            out.add(first + second, label, None)


def _collect_xml_points(text: str, out: _Collector) -> None:
    for match in _XML_POINT.finditer(text):
        if not match[4]:
            out.truncated = True
            continue
        attrs = {k.lower(): v for k, v in _XML_ATTR.findall(match[2])}
        label = scalar_text(attrs.get("alt")) or scalar_text(match[3])
        if "x" in attrs or "y" in attrs:
            pairs = [(attrs.get("x"), attrs.get("y"))]
        else:
            pairs = [(attrs.get(f"x{i}"), attrs.get(f"y{i}")) for i in range(1, 1 + len(attrs) // 2)
                     if f"x{i}" in attrs or f"y{i}" in attrs]
        for x, y in pairs:
            coords = _numbers([x, y]) if x is not None and y is not None else None
            if coords is None:
                out.skipped += 1
            else:
                out.add(coords, label, None)


def parse_grounding(text: str, *, bare_lists: bool = False) -> ParsedGeometry:
    """Find every box and point in a model answer, with the numbers exactly as written.

    Never raises on odd input: text without grounding gives an empty `ParsedGeometry`; an answer cut
    inside a list keeps its complete elements and sets `truncated`. Pass the answer part only
    (`split_thinking(text).answer`): reasoning often quotes draft coordinates.

    Args:
        text: the model's answer.
        bare_lists: also read key-less number lists found in prose ("The box is [10, 20, 30, 40].") as
            boxes (4 numbers) or points (2 numbers). Off by default so a chat answer never grows boxes;
            turn it on when the caller explicitly asked for a location.

    Returns:
        `ParsedGeometry(boxes, points, truncated, skipped)` of `RawBox` / `RawPoint`.
    """
    out = _Collector()
    if not isinstance(text, str) or not text.strip():
        return ParsedGeometry()
    _collect_tagged(text, out)
    _collect_xml_points(text, out)
    if _UNCLOSED_TAG.search(text):
        out.truncated = True
    for block in find_json(text):
        out.truncated |= block.truncated
        if block.value is not None:
            out.walk(block.value, block.keyless_ok or bare_lists, None)
    return ParsedGeometry(tuple(out.boxes), tuple(out.points), out.truncated, out.skipped)
