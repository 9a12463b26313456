"""Readers for the public evaluation formats, into typed samples.

- grounding: RefCOCO-style JSONL / TSV rows (image, expression, box); boxes [x1, y1, x2, y2] in original
  pixels, or COCO [x, y, w, h] with `box_format="xywh"`.
- vqa: VLMEvalKit TSV (index, image as base64 or image_path, question, optional A/B/C/D... options,
  answer, category), or JSONL with the same keys.
- temporal: Charades-STA annotation lines ("video start end##query") or JSONL (video, query, start, end).
- geneval: GenEval's `evaluation_metadata.jsonl` (tag, include / exclude [{class, count, color,
  position}], prompt).

Images stay references (a path, or a `data:` URL for base64 cells) so readers stay cheap; models load
them. This module knows file formats; it knows nothing about models or metrics.
"""
from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mmkit.exceptions import UsageError
from mmkit.understand.answer import Box, TimeSpan

__all__ = ["GroundingSample", "VQASample", "TemporalSample", "GenEvalObject", "GenEvalPrompt",
           "read_rows", "read_grounding", "read_vqa", "read_temporal", "read_geneval"]

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # VLMEvalKit TSVs hold whole images in one cell


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class GroundingSample(_Frozen):
    id: str
    image: str = Field(description="image path or data: URL")
    expression: str
    box: Box = Field(description="target box, [x1, y1, x2, y2] pixels of the original image")
    category: str = "all"


class VQASample(_Frozen):
    id: str
    image: str = Field(description="image path or data: URL")
    question: str
    answer: str = Field(description="option letter (multiple choice) or the reference answer")
    options: dict[str, str] = Field(default_factory=dict, description="letter -> option text; empty: open")
    answers: tuple[str, ...] = Field(default=(), description="every annotator's answer (VQAv2: ten), for the "
                                     "soft VQA score; empty when the data has one reference")
    category: str = "all"


class TemporalSample(_Frozen):
    id: str
    video: str = Field(description="video path")
    query: str
    span: TimeSpan = Field(description="target span, seconds from the video start")
    category: str = "all"


class GenEvalObject(_Frozen):
    """One `include` / `exclude` entry of GenEval metadata."""

    class_: str = Field(alias="class")
    count: int = Field(default=1, ge=0)
    color: str | None = None
    position: tuple[str, int] | None = Field(default=None, description='("left of", index of the include entry)')


class GenEvalPrompt(_Frozen):
    """One line of GenEval's `evaluation_metadata.jsonl` (keys other than these are ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    id: str = Field(description="the line index, 5 digits (GenEval's folder name)")
    tag: str
    prompt: str
    include: tuple[GenEvalObject, ...] = ()
    exclude: tuple[GenEvalObject, ...] = ()

    def metadata(self) -> dict[str, Any]:
        """The line as GenEval writes it (no `id`; no empty `exclude`)."""
        line = self.model_dump(mode="json", by_alias=True, exclude={"id"}, exclude_none=True)
        if not line["exclude"]:
            del line["exclude"]
        return line


def _bad(path: Path, line: int, problem: str, received: Any, fix: str) -> UsageError:
    return UsageError(f"{path.name} line {line}: {problem}", received=received, fix=fix)


def read_rows(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each record of a JSONL (`.jsonl`/`.json` list) or TSV (`.tsv`) file."""
    file = Path(path)
    if not file.is_file():
        raise UsageError("data file not found", received=str(file), fix="pass an existing .jsonl or .tsv file")
    if file.suffix.lower() == ".tsv":
        with open(file, newline="", encoding="utf-8") as handle:
            for i, row in enumerate(csv.DictReader(handle, delimiter="\t"), start=2):
                yield i, {k: v for k, v in row.items() if k is not None}
        return
    if file.suffix.lower() == ".json":
        rows = json.loads(file.read_text(encoding="utf-8"))
        yield from ((i, row) for i, row in enumerate(rows if isinstance(rows, list) else [rows], start=1))
        return
    with open(file, encoding="utf-8") as handle:
        for i, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield i, json.loads(line)
                except json.JSONDecodeError as err:
                    raise _bad(file, i, "not valid JSON", line[:80], f"fix the line ({err.msg})") from err


def _first(row: dict, *keys: str) -> Any:
    return next((row[k] for k in keys if k in row and row[k] not in (None, "")), None)


def _image_ref(value: str | None, root: Path) -> str | None:
    if value is None:
        return None
    text = str(value)
    if text.startswith(("data:", "http://", "https://", "file://")):
        return text
    if len(text) > 256 and "/" not in text[:64] and not Path(text[:200]).suffix:  # a base64 cell
        return "data:image/png;base64," + text
    return str(Path(text) if Path(text).is_absolute() else root / text)


def _numbers(value: Any) -> list[float]:
    if isinstance(value, str):
        value = json.loads(value) if value.strip().startswith("[") else value.replace(",", " ").split()
    return [float(v) for v in value]


def read_grounding(path: str | os.PathLike[str], *, box_format: Literal["xyxy", "xywh"] = "xyxy",
                   image_root: str | os.PathLike[str] | None = None) -> list[GroundingSample]:
    """Read referring-expression samples.

    Args:
        path: JSONL / JSON / TSV with `image` (or `image_path`, `file_name`), `expression` (or `sentence`,
            `ref`, `query`, `text`), `box` (or `bbox`), and optional `id` / `index`, `category`.
        box_format: "xyxy" (x1, y1, x2, y2) or "xywh" (COCO: x, y, width, height), original pixels.
        image_root: folder that relative image paths are under (default: the data file's folder).
    """
    if box_format not in ("xyxy", "xywh"):
        raise UsageError("box_format must be 'xyxy' or 'xywh'", received=box_format, fix="pass box_format='xywh' for COCO boxes")
    file = Path(path)
    root = Path(image_root) if image_root else file.parent
    out = []
    for line, row in read_rows(file):
        image = _image_ref(_first(row, "image", "image_path", "file_name"), root)
        text, box = _first(row, "expression", "sentence", "ref", "query", "text"), _first(row, "box", "bbox")
        if image is None or text is None or box is None:
            raise _bad(file, line, "a grounding row needs image, expression and box", sorted(row),
                       "name the columns image, expression, box")
        x, y, a, b = _numbers(box)
        x2, y2 = (x + a, y + b) if box_format == "xywh" else (a, b)
        if x2 <= x or y2 <= y:
            raise _bad(file, line, f"box is empty as {box_format}", box,
                       "pass box_format='xywh' for COCO [x, y, w, h] boxes" if box_format == "xyxy" else "check the box")
        out.append(GroundingSample(id=str(_first(row, "id", "index") or line), image=image, expression=str(text),
                                   box=Box(x1=x, y1=y, x2=x2, y2=y2), category=str(row.get("category") or "all")))
    return out


def read_vqa(path: str | os.PathLike[str], *, image_root: str | os.PathLike[str] | None = None) -> list[VQASample]:
    """Read VLMEvalKit-style question answering samples (multiple choice when option columns are filled).

    Args:
        path: TSV / JSONL with `index`, `image` (base64) or `image_path`, `question`, optional option columns
            `A`, `B`, ... (a JSONL may give `options` as a list or a dict), `answer`, optional `category`, and
            optional `answers` (VQAv2's annotator answers: a list, or "|"-separated in a TSV) for `vqa_soft`.
        image_root: folder that relative image paths are under (default: the data file's folder).
    """
    file = Path(path)
    root = Path(image_root) if image_root else file.parent
    out = []
    for line, row in read_rows(file):
        image = _image_ref(_first(row, "image", "image_path"), root)
        question, answer = _first(row, "question"), _first(row, "answer")
        if image is None or question is None or answer is None:
            raise _bad(file, line, "a vqa row needs image (or image_path), question and answer", sorted(row),
                       "use VLMEvalKit's columns: index, image, question, A, B, ..., answer, category")
        options = row.get("options") or {}
        if isinstance(options, list):
            options = {chr(65 + i): str(v) for i, v in enumerate(options)}
        options.update({k: str(row[k]) for k in "ABCDEFGHIJ" if row.get(k) not in (None, "") and str(row[k]) != "nan"})
        answers = row.get("answers") or ()  # VQAv2: the annotators' answers (a JSON list, or "a|b|c" in a TSV)
        if isinstance(answers, str):
            answers = answers.split("|")
        answers = tuple(str(a["answer"] if isinstance(a, dict) else a) for a in answers)
        out.append(VQASample(id=str(_first(row, "index", "id") or line), image=image, question=str(question),
                             answer=str(answer), options=dict(sorted(options.items())), answers=answers,
                             category=str(row.get("category") or "all")))
    return out


def read_temporal(path: str | os.PathLike[str], *, video_root: str | os.PathLike[str] | None = None,
                  video_suffix: str = ".mp4") -> list[TemporalSample]:
    """Read temporal grounding samples.

    Args:
        path: Charades-STA annotations (`.txt`: "VIDEO_ID START END##query" per line) or JSONL / TSV with
            `video`, `query` (or `sentence`), `start`, `end` (seconds), optional `id`, `category`.
        video_root: folder of the videos (default: the data file's folder).
        video_suffix: appended to Charades-STA video ids.
    """
    file = Path(path)
    root = Path(video_root) if video_root else file.parent
    if file.suffix.lower() == ".txt":
        rows = []
        for line, text in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if text.strip():
                head, sep, query = text.partition("##")
                parts = head.split()
                if not sep or len(parts) != 3:
                    raise _bad(file, line, "not a Charades-STA line", text[:80], "write 'VIDEO START END##query'")
                rows.append((line, {"video": parts[0] + video_suffix, "start": parts[1], "end": parts[2],
                                    "query": query.strip(), "id": f"{parts[0]}#{line}"}))
    else:
        rows = list(read_rows(file))
    out = []
    for line, row in rows:
        video, query = _first(row, "video", "video_path"), _first(row, "query", "sentence", "question")
        if video is None or query is None or row.get("start") is None or row.get("end") is None:
            raise _bad(file, line, "a temporal row needs video, query, start and end", sorted(row),
                       "name the columns video, query, start, end (seconds)")
        start, end = float(row["start"]), float(row["end"])
        if not 0 <= start < end:
            raise _bad(file, line, "need 0 <= start < end", (start, end), "give the span in seconds")
        out.append(TemporalSample(id=str(_first(row, "id", "index") or line), video=str(_image_ref(video, root)),
                                  query=str(query), span=TimeSpan(start=start, end=end),
                                  category=str(row.get("category") or "all")))
    return out


def read_geneval(path: str | os.PathLike[str]) -> list[GenEvalPrompt]:
    """Read GenEval prompt metadata (one JSON object per line); ids are the 0-based line indices, 5 digits."""
    file = Path(path)
    out = []
    for index, (line, row) in enumerate(read_rows(file)):
        try:
            out.append(GenEvalPrompt(id=f"{index:05d}", **row))
        except (ValidationError, TypeError) as err:
            raise _bad(file, line, "not GenEval metadata", row,
                       f"each line needs tag, prompt, include [{{class, count, color?, position?}}] ({err})") from err
    return out
