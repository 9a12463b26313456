"""Find JSON values inside free text: code fences, prose, lists cut short by `max_new_tokens`.

Shared by the grounding parser (`parsing.py`) and the time-span parser (`time_spans.py`). Values are read
with `json`, then without trailing commas, then as Python literals (`ast.literal_eval`, which never runs
code). Knows nothing about what the values mean: boxes, points and spans are the callers' business.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any, Iterator

__all__ = ["JsonBlock", "find_json", "scalar_text"]

_FENCE = re.compile(r"```[ \t]*[A-Za-z0-9_-]*[ \t]*\n?(.*?)(?:```|\Z)", re.S)
_OPENER = re.compile(r"[\[{]")
_CLOSER_OF = {"[": "]", "{": "}"}
_TRAILING_COMMA = re.compile(r",(\s*[\]}])")
_LOOKS_LIKE_JSON = re.compile(r"[\[{]\s*(?:[\[{\"']|-?\d)")
_DIGIT = re.compile(r"\d")
_FAIL = object()
_MAX_UNCLOSED_SCANS = 16  # "[" in prose that never close; keeps parsing linear-ish on pathological text


@dataclass(frozen=True)
class JsonBlock:
    """One JSON-like value found in a text.

    Attributes:
        start / end: character offsets of the value in the text that was searched.
        value: the parsed value; `None` when the value was cut and no complete element could be kept.
        keyless_ok: the value sits inside a code fence, or is the whole answer, so a key-less number list in
            it was meant as data rather than prose.
        truncated: the value ran to the end of the text (cut by `max_new_tokens`); only its complete
            elements were kept.
    """

    start: int
    end: int
    value: Any
    keyless_ok: bool
    truncated: bool


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


def _scan_json(text: str, offset: int, fenced: bool) -> Iterator[JsonBlock]:
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
                yield JsonBlock(offset + i, offset + end, value, keyless, truncated=False)
                pos = end
                continue
        elif state == "open" and (fenced or _LOOKS_LIKE_JSON.match(text, i)) and _DIGIT.search(text, i):
            # Cut by max_new_tokens: keep the complete elements; nothing after `i` is outside this value.
            # (Without a single digit it cannot have held coordinates: garbage, not a cut list.)
            value = _FAIL
            if end is not None:
                value = _loads(text[i:end] + "".join(_CLOSER_OF[b] for b in reversed(stack)))
            keyless = fenced or text[i:].strip() == whole
            yield JsonBlock(offset + i, offset + len(text), None if value is _FAIL else value, keyless, truncated=True)
            return
        elif state == "open":
            unclosed_prose += 1  # each such scan reads to the end of the text: bound the total work
            if unclosed_prose > _MAX_UNCLOSED_SCANS:
                return
        pos = i + 1


def find_json(text: str) -> list[JsonBlock]:
    """Every JSON-like value in code fences and in the prose between them, in text order.

    Lenient the way model output needs: trailing commas, single quotes and Python literals are read; a
    value cut at the end of the text keeps its complete list elements (`truncated=True`). Never raises.

    Args:
        text: free text, e.g. a model's answer.

    Returns:
        `JsonBlock`s with offsets into `text`.
    """
    blocks: list[JsonBlock] = []
    prose_start = 0
    for fence in _FENCE.finditer(text):
        blocks.extend(_scan_json(text[prose_start:fence.start()], prose_start, fenced=False))
        blocks.extend(_scan_json(fence[1], fence.start(1), fenced=True))
        prose_start = fence.end()
    blocks.extend(_scan_json(text[prose_start:], prose_start, fenced=False))
    return blocks


def scalar_text(value: Any) -> str | None:
    """A label-like scalar as text: a non-empty string stripped, a number written out; None otherwise."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None
