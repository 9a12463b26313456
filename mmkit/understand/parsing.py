"""Read structure out of what a Qwen-VL model wrote: thinking vs answer, boxes and points, video time spans.

Everything here is text in, plain values out, and nothing raises on odd model output: garbage gives an
empty result, a list cut by `max_new_tokens` keeps its complete elements and says `truncated=True`, and no
box is made up from prose. Coordinates come out exactly as the model wrote them (`RawBox`, `RawPoint`);
turning them into pixels of the original image is `grounding.py`'s job. This module knows nothing about
models, images or coordinate conventions.

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

import ast
import json
import re
from dataclasses import dataclass
from typing import Any, Iterator, NamedTuple

from .answer import TimeSpan

__all__ = [
    "ThinkingSplit",
    "split_thinking",
    "RawBox",
    "RawPoint",
    "ParsedGeometry",
    "parse_grounding",
    "parse_time_spans",
]


# ----------------------------------------------------------------------------------------------------------
# thinking
# ----------------------------------------------------------------------------------------------------------

_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"


class ThinkingSplit(NamedTuple):
    """The generated text split into reasoning and answer.

    Attributes:
        thinking: the text inside the think block(s), stripped. `None` when there was no think block at
            all; `""` when there was one and it was empty (`<think>\\n\\n</think>`), so callers can tell
            "the model was in thinking mode but wrote nothing" from "no thinking mode". Test truthiness
            (`if split.thinking:`) to treat both as "no reasoning".
        answer: the text outside think blocks, stripped; `""` when generation stopped while thinking.
        closed: False when a think block was opened and never closed (the model hit `max_new_tokens`
            while thinking: everything after the opening is thinking).
    """

    thinking: str | None
    answer: str
    closed: bool


def split_thinking(text: str, *, prompt_opened_think: bool = False) -> ThinkingSplit:
    """Split generated text into (thinking, answer, closed).

    Handles `<think>...</think>answer`, text that starts inside the block (Qwen3 "Thinking" chat templates
    end the prompt with `<think>`, so the generation has only `</think>`), empty blocks, several blocks
    (their texts are joined with a blank line), and a block never closed.

    Args:
        text: the generated text, special tokens removed (`<think>`/`</think>` are ordinary added tokens in
            Qwen tokenizers and survive `skip_special_tokens=True`).
        prompt_opened_think: set when the prompt itself ended with `<think>`; then text without any
            `</think>` is all thinking (cut at `max_new_tokens`) rather than all answer.

    Returns:
        `ThinkingSplit(thinking, answer, closed)`.
    """
    thoughts: list[str] = []
    answer_parts: list[str] = []
    closed = True
    rest = text
    first_close, first_open = rest.find(_THINK_CLOSE), rest.find(_THINK_OPEN)
    starts_inside = first_close != -1 and (first_open == -1 or first_close < first_open)
    if prompt_opened_think or starts_inside:
        rest = rest.lstrip()
        rest = rest[len(_THINK_OPEN):] if rest.startswith(_THINK_OPEN) else rest  # model repeated the tag
        close = rest.find(_THINK_CLOSE)
        if close == -1:
            return ThinkingSplit(rest.strip(), "", closed=False)
        thoughts.append(rest[:close])
        rest = rest[close + len(_THINK_CLOSE):]
    while (start := rest.find(_THINK_OPEN)) != -1:
        answer_parts.append(rest[:start])
        rest = rest[start + len(_THINK_OPEN):]
        close = rest.find(_THINK_CLOSE)
        if close == -1:
            thoughts.append(rest)
            rest, closed = "", False
            break
        thoughts.append(rest[:close])
        rest = rest[close + len(_THINK_CLOSE):]
    answer_parts.append(rest)
    thinking = "\n\n".join(t.strip() for t in thoughts if t.strip()) if thoughts else None
    return ThinkingSplit(thinking, "".join(answer_parts).strip(), closed)


# ----------------------------------------------------------------------------------------------------------
# JSON blocks inside free text
# ----------------------------------------------------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*[A-Za-z0-9_-]*[ \t]*\n?(.*?)(?:```|\Z)", re.S)
_OPENER = re.compile(r"[\[{]")
_CLOSER_OF = {"[": "]", "{": "}"}
_TRAILING_COMMA = re.compile(r",(\s*[\]}])")
_LOOKS_LIKE_JSON = re.compile(r"[\[{]\s*(?:[\[{\"']|-?\d)")
_DIGIT = re.compile(r"\d")
_FAIL = object()
_MAX_UNCLOSED_SCANS = 16  # "[" in prose that never close; keeps parsing linear-ish on pathological text


@dataclass(frozen=True)
class _Block:
    start: int  # offsets in the parsed text
    end: int
    value: Any
    keyless_ok: bool  # inside a code fence, or the JSON is the whole answer
    truncated: bool  # the block ran to the end of the text; only its complete elements were kept


def _loads(candidate: str) -> Any:
    """JSON, then JSON without trailing commas, then a Python literal (single quotes); `_FAIL` otherwise."""
    for attempt in (candidate, _TRAILING_COMMA.sub(r"\1", candidate)):
        try:
            return json.loads(attempt)
        except ValueError:
            pass
    pythonish = re.sub(r"\b(true|false|null)\b", lambda m: {"true": "True", "false": "False"}.get(m[1], "None"),
                       candidate)
    try:
        return ast.literal_eval(pythonish)  # literals only: never evaluates code
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _FAIL


def _match_brackets(text: str, start: int) -> tuple[str, int | None, tuple[str, ...]]:
    """Scan a bracketed value from `start`, respecting quoted strings.

    Returns ("closed", end, ()), ("bad", None, ()) on a mismatched bracket, or ("open", cut, stack) when the
    text ended first: `cut` is just after the last value that closed as an element of a list (None if
    none did) and `stack` the brackets still open there.
    """
    stack: list[str] = []
    quote, cut, cut_stack, j = None, None, (), start
    while j < len(text):
        char = text[j]
        if quote:
            if char == "\\":
                j += 1
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "[{":
            stack.append(char)
        elif char in "]}":
            if not stack or _CLOSER_OF[stack[-1]] != char:
                return "bad", None, ()
            stack.pop()
            if not stack:
                return "closed", j + 1, ()
            if stack[-1] == "[":
                cut, cut_stack = j + 1, tuple(stack)
        j += 1
    return "open", cut, cut_stack


def _scan_json(text: str, offset: int, fenced: bool) -> Iterator[_Block]:
    """Yield every JSON-like value found in `text` (a fence body or prose), in order."""
    whole = text.strip()
    pos = unclosed_prose = 0
    while (found := _OPENER.search(text, pos)) is not None:
        i = found.start()
        state, end, stack = _match_brackets(text, i)
        if state == "closed":
            value = _loads(text[i:end])
            if value is not _FAIL:
                keyless = fenced or text[i:end].strip() == whole
                yield _Block(offset + i, offset + end, value, keyless, truncated=False)
                pos = end
                continue
        elif state == "open" and (fenced or _LOOKS_LIKE_JSON.match(text, i)) and _DIGIT.search(text, i):
            # Cut by max_new_tokens: keep the complete elements; nothing after `i` is outside this value.
            # (Without a single digit it cannot have held coordinates: garbage, not a cut list.)
            value = _FAIL
            if end is not None:
                value = _loads(text[i:end] + "".join(_CLOSER_OF[b] for b in reversed(stack)))
            keyless = fenced or text[i:].strip() == whole
            yield _Block(offset + i, offset + len(text), None if value is _FAIL else value, keyless, truncated=True)
            return
        elif state == "open":
            unclosed_prose += 1  # each such scan reads to the end of the text: bound the total work
            if unclosed_prose > _MAX_UNCLOSED_SCANS:
                return
        pos = i + 1


def _json_blocks(text: str) -> list[_Block]:
    """JSON values in code fences and in the prose between them, in text order."""
    blocks: list[_Block] = []
    prose_start = 0
    for fence in _FENCE.finditer(text):
        blocks.extend(_scan_json(text[prose_start:fence.start()], prose_start, fenced=False))
        blocks.extend(_scan_json(fence[1], fence.start(1), fenced=True))
        prose_start = fence.end()
    blocks.extend(_scan_json(text[prose_start:], prose_start, fenced=False))
    return blocks


# ----------------------------------------------------------------------------------------------------------
# boxes and points
# ----------------------------------------------------------------------------------------------------------


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
        label = next((_label(lowered[k]) for k in _LABEL_KEYS if _label(lowered.get(k)) is not None), None)
        box_key = next((k for k in _BOX_KEYS if k in lowered), None)
        point_key = next((k for k in _POINT_KEYS if k in lowered), None)
        if box_key:
            self.add_keyed(lowered[box_key], 4, label, image_index)
        if point_key:
            self.add_keyed(lowered[point_key], 2, label, image_index)
        if not box_key and not point_key:
            for item in lowered.values():  # wrappers like {"objects": [...]}; key-less lists not trusted here
                self.walk(item, keyless_ok=False, image_index=image_index)


def _label(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


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
            label = _label(match["ref"] if match["ref"] is not None else match["ref_v1"])
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
        label = _label(attrs.get("alt")) or _label(match[3])
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
    for block in _json_blocks(text):
        out.truncated |= block.truncated
        if block.value is not None:
            out.walk(block.value, block.keyless_ok or bare_lists, None)
    return ParsedGeometry(tuple(out.boxes), tuple(out.points), out.truncated, out.skipped)


# ----------------------------------------------------------------------------------------------------------
# video time spans
# ----------------------------------------------------------------------------------------------------------

_NUM = r"\d+(?:\.\d+)?"
_CLOCK = r"(?:\d{1,2}:)?\d{1,2}:\d{2}(?:\.\d+)?"
_UNIT = r"(?:seconds?|secs?|s|秒钟?)(?![A-Za-z])"
_SEP = r"(?:-|–|—|~|～|〜|to\b|until\b|till\b|至|到|(?(between)and\b|(?!)))"  # "and" only after "between"
_RANGE = re.compile(
    rf"(?:(?P<between>\bbetween\s+)|\bfrom\s+|[从在由]\s*)?(?<![\d.:])"
    rf"(?P<a><\s*(?:{_CLOCK}|{_NUM}\s*(?:{_UNIT})?)\s*>|{_CLOCK}|{_NUM}(?:\s*{_UNIT})?)"
    rf"\s*{_SEP}\s*"
    rf"(?P<b><\s*(?:{_CLOCK}|{_NUM}\s*(?:{_UNIT})?)\s*>|{_CLOCK}|{_NUM}\s*{_UNIT})",
    re.I,
)
_INSTANT = re.compile(rf"(?<![\d.:])(?:<\s*(?:{_CLOCK}|{_NUM}\s*(?:{_UNIT})?)\s*>|{_CLOCK}|{_NUM}\s*{_UNIT})", re.I)
_START_KEYS = ("start", "start_time", "begin", "start_sec", "start_seconds", "from")
_END_KEYS = ("end", "end_time", "stop", "end_sec", "end_seconds", "to")
_EVENT_KEYS = ("event", "description", "label", "caption", "action", "text")


def _seconds(value: Any) -> float | None:
    """3.5, "3.5", "<3.5 seconds>", "3.5s", "01:02", "1:02:03.5" -> seconds; None if not a time."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    core = re.sub(rf"^\s*<?\s*|\s*(?:{_UNIT})?\s*>?\s*$", "", value, flags=re.I)
    if re.fullmatch(_CLOCK, core):
        total = 0.0
        for part in core.split(":"):
            total = total * 60 + float(part)
        return total
    return float(core) if re.fullmatch(_NUM, core) else None


def _span(start: float, end: float, raw: str, label: str | None = None) -> TimeSpan:
    start, end = min(start, end), max(start, end)  # "from 7 to 3 seconds" means the span 3..7
    return TimeSpan(start=start, end=end, label=label, raw=raw)


def _json_spans(text: str) -> tuple[list[tuple[int, TimeSpan]], list[tuple[int, int]]]:
    spans: list[tuple[int, TimeSpan]] = []
    used: list[tuple[int, int]] = []
    for block in _json_blocks(text):
        found = [(block.start, s) for s in _walk_span_dicts(block.value)]
        if found:
            spans.extend(found)
            used.append((block.start, block.end))
    return spans, used


def _walk_span_dicts(value: Any) -> Iterator[TimeSpan]:
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _walk_span_dicts(item)
    elif isinstance(value, dict):
        lowered = {str(k).strip().lower(): v for k, v in value.items()}
        start = next((lowered[k] for k in _START_KEYS if k in lowered), None)
        end = next((lowered[k] for k in _END_KEYS if k in lowered), None)
        start_s, end_s = _seconds(start), _seconds(end)
        if start_s is not None and end_s is not None:
            label = next((_label(lowered[k]) for k in _EVENT_KEYS if _label(lowered.get(k))), None)
            yield _span(start_s, end_s, json.dumps(value, ensure_ascii=False), label)
        else:
            for item in lowered.values():
                yield from _walk_span_dicts(item)


def parse_time_spans(text: str, *, include_instants: bool = True) -> list[TimeSpan]:
    """Find the video time spans an answer names, in seconds.

    Understands ranges (`3.5-7.0 seconds`, `from 3.5 to 7 seconds`, `between 00:03 and 00:07`,
    `3.5s - 7s`, `<3.5 seconds> - <7.0 seconds>`, `从3.5秒到7秒`, `3.5秒至7.0秒`), clock times
    (`mm:ss`, `mm:ss.ff` with ff fractions of a second, `hh:mm:ss`), Qwen3-VL's `<3.5 seconds>` and JSON
    lists of `{"start_time": "00:21.00", "end_time": "00:49.00", "description": ...}` or
    `{"start": 0.0, "end": 30.0}`. A bare number is only a time when a unit or a clock form says so.
    A reversed range is reordered. Never raises on odd input.

    Args:
        text: the model's answer.
        include_instants: also return single timestamps (`at 00:12`, `<3.5 seconds>`) as zero-length spans
            (start == end). Set False when the answer may state durations ("the clip is 30 seconds long").

    Returns:
        Spans in text order, each with `raw` = the text it was parsed from (the JSON object for JSON spans).
    """
    if not isinstance(text, str) or not text.strip():
        return []
    found, used = _json_spans(text)
    masked = list(text)
    for start, end in used:
        masked[start:end] = " " * (end - start)
    plain = "".join(masked)
    for match in _RANGE.finditer(plain):
        start_s, end_s = _seconds(match["a"]), _seconds(match["b"])
        if start_s is not None and end_s is not None:
            found.append((match.start(), _span(start_s, end_s, match[0].strip())))
            plain = plain[:match.start()] + " " * (match.end() - match.start()) + plain[match.end():]
    if include_instants:
        for match in _INSTANT.finditer(plain):
            at = _seconds(match[0])
            if at is not None:
                found.append((match.start(), _span(at, at, match[0].strip())))
    return [span for _, span in sorted(found, key=lambda item: item[0])]
