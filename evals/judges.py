"""Judges for text-to-image alignment: does a generated image show what GenEval metadata asks for?

- `OracleJudge`: GenEval's own rule (`evaluate_images.py`: counts, colours, relative positions with its
  0.1 position threshold) applied to the detections of the shapes-world pixel oracle
  (`mmkit.shapes.oracle.detect`) instead of a Mask2Former detector. Exact for shapes-world images.
- `VLMJudge`: TIFA / DSG-style: yes/no questions generated from the metadata, asked to a
  `VisionLanguageModel`; a child question (colour, count, position) only counts when its parent
  ("is there a circle?") was answered yes (DSG's dependency rule).

A judge is any callable `judge(image, prompt) -> Judgement`. This module knows metadata and detections;
it knows nothing about generators or files.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .matching import normalize_answer
from .readers import GenEvalObject, GenEvalPrompt

__all__ = ["Judgement", "Judge", "OracleJudge", "VLMJudge", "geneval_verdict", "relative_position",
           "judge_questions", "POSITION_THRESHOLD"]

POSITION_THRESHOLD = 0.1  # GenEval: offsets smaller than 0.1 x (sum of the two sizes) do not count


class Judgement(BaseModel):
    """One image's verdict."""

    model_config = ConfigDict(frozen=True)
    correct: bool
    reason: str = ""
    score: float | None = Field(default=None, description="fraction of judge questions passed (VLM judge)")
    questions: tuple[tuple[str, str, bool], ...] = Field(default=(), description="(question, answer, passed)")


class Judge(Protocol):
    name: str

    def __call__(self, image: Any, prompt: GenEvalPrompt) -> Judgement: ...


def relative_position(a: Sequence[float], b: Sequence[float]) -> set[str]:
    """GenEval's relations of box `a` relative to box `b` ([x1, y1, x2, y2]): subset of {"left of",
    "right of", "above", "below"}."""
    boxes = np.array([a[:4], b[:4]], dtype=float).reshape(2, 2, 2)
    center_a, center_b = boxes.mean(axis=-2)
    dim_a, dim_b = np.abs(np.diff(boxes, axis=-2))[..., 0, :]
    offset = center_a - center_b
    revised = np.maximum(np.abs(offset) - POSITION_THRESHOLD * (dim_a + dim_b), 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    rel = set()
    if dx < -0.5:
        rel.add("left of")
    if dx > 0.5:
        rel.add("right of")
    if dy < -0.5:
        rel.add("above")
    if dy > 0.5:
        rel.add("below")
    return rel


def geneval_verdict(objects: dict[str, list[tuple[tuple[float, float, float, float], str]]],
                    prompt: GenEvalPrompt) -> Judgement:
    """GenEval's decision rule on detected objects.

    Args:
        objects: class -> [(box [x1, y1, x2, y2], colour name)], most confident first.
        prompt: the metadata.
    """
    correct, reasons, groups = True, [], []
    for req in prompt.include:
        found = objects.get(req.class_, [])[: req.count]
        matched = len(found) >= req.count
        if not matched:
            reasons.append(f"expected {req.class_}>={req.count}, found {len(found)}")
        elif req.color is not None and [c for _, c in found].count(req.color) < req.count:
            matched = False
            reasons.append(f"expected {req.color} {req.class_}>={req.count}, found {[c for _, c in found]}")
        if matched and req.position is not None:
            relation, target = req.position
            if target >= len(groups) or groups[target] is None:
                matched = False
                reasons.append(f"no target for {req.class_} to be {relation}")
            else:
                for box, _ in found:
                    wrong = [t for t, _ in groups[target] if relation not in relative_position(box, t)]
                    if wrong:
                        matched = False
                        reasons.append(f"expected {req.class_} {relation} target, found "
                                       f"{sorted(relative_position(box, wrong[0]))}")
                        break
        correct = correct and matched
        groups.append(found if matched else None)
    for req in prompt.exclude:
        if len(objects.get(req.class_, [])) >= req.count:
            correct = False
            reasons.append(f"expected {req.class_}<{req.count}, found {len(objects[req.class_])}")
    return Judgement(correct=correct, reason="\n".join(reasons))


class OracleJudge:
    """GenEval's rule on the shapes-world pixel oracle's detections (classes = shape kinds)."""

    name = "oracle"

    def __call__(self, image: Any, prompt: GenEvalPrompt) -> Judgement:
        from mmkit.shapes.oracle import detect

        objects: dict[str, list] = {}
        for d in sorted(detect(image), key=lambda d: -d.score):
            objects.setdefault(d.kind, []).append((d.box.as_tuple(), d.colour))
        return geneval_verdict(objects, prompt)


def _plural(word: str) -> str:
    return word + ("es" if word.endswith(("s", "x", "sh", "ch")) else "s")


def judge_questions(prompt: GenEvalPrompt) -> list[tuple[str, int | None]]:
    """DSG-style yes/no questions for the metadata: (question, index of the parent question or None)."""
    out: list[tuple[str, int | None]] = []
    roots: list[int] = []
    for req in prompt.include:
        roots.append(len(out))
        out.append((f"Is there a {req.class_} in the image?", None))
        if req.count > 1:
            out.append((f"Are there {req.count} {_plural(req.class_)} in the image?", roots[-1]))
        if req.color:
            what = f"Are the {_plural(req.class_)}" if req.count > 1 else f"Is the {req.class_}"
            out.append((f"{what} {req.color}?", roots[-1]))
        if req.position:
            relation, target = req.position
            if 0 <= target < len(prompt.include):
                other: GenEvalObject = prompt.include[target]
                out.append((f"Is the {req.class_} {relation} the {other.class_}?", roots[-1]))
    return out


class VLMJudge:
    """Ask a vision-language model the metadata's yes/no questions (TIFA / DSG style).

    Args:
        model: anything with `chat(text, images=[image], max_new_tokens=..., do_sample=False)` -> Answer.
        max_new_tokens: answer budget per question.
    """

    name = "vlm"

    def __init__(self, model: Any, *, max_new_tokens: int = 8) -> None:
        self.model = model
        self.max_new_tokens = max_new_tokens

    def __call__(self, image: Any, prompt: GenEvalPrompt) -> Judgement:
        results: list[tuple[str, str, bool]] = []
        passed: list[bool] = []
        for question, parent in judge_questions(prompt):
            if parent is not None and not passed[parent]:
                results.append((question, "(parent failed)", False))
                passed.append(False)
                continue
            text = self.model.chat(f"{question} Answer yes or no.", images=[image],
                                   max_new_tokens=self.max_new_tokens, do_sample=False).text
            ok = normalize_answer(text).split()[:1] == ["yes"]
            results.append((question, text, ok))
            passed.append(ok)
        failed = [q for q, _, ok in results if not ok]
        return Judgement(correct=not failed, reason="\n".join(f"no: {q}" for q in failed),
                         score=sum(passed) / len(passed) if passed else None, questions=tuple(results))
