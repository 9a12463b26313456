"""Read the video time spans a Qwen-VL answer names, in seconds.

Text in, `TimeSpan`s out; never raises on odd model output, and a bare number is only a time when a unit
or a clock form says so. The seconds come out as the answer wrote them: shifting them onto the un-trimmed
video's clock (Qwen2.5-VL counts from the first sampled frame) is `postprocess.py`'s job. Knows nothing
about models or videos.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

from .answer import TimeSpan
from .json_in_text import find_json, scalar_text

__all__ = ["parse_time_spans"]

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
    for block in find_json(text):
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
            label = next((scalar_text(lowered[k]) for k in _EVENT_KEYS if scalar_text(lowered.get(k))), None)
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
