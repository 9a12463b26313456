"""Checks of an image against what a request asked for: the `Checker` protocol and two checkers.

An `Expectation` lists objects that must be present and objects that must be gone (an edit's old
object). A checker returns a `CheckVerdict`: one `CheckItem` per question asked, with the answer heard.

- `OracleChecker`: the shapes-world pixel oracle (`mmkit.shapes.oracle.detect`); exact for that world.
- `VlmChecker`: asks the vision-language model "Is there a red circle?" / "图中有红色的圆吗？" for each
  object, and grounds the object to check its position when one was asked.

The eval harness can use the same checkers (they take an image and an expectation, nothing else).
This module knows images, vocabulary and the VLM call shape; it knows nothing about routing or sessions.
"""

from __future__ import annotations

import re
import time
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from mmkit.shapes import detect, position_word

from .phrases import Language, ObjectQuery, parse_object

__all__ = ["Expectation", "CheckItem", "CheckVerdict", "Checker", "OracleChecker", "VlmChecker",
           "expectation_from_prompt"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Expectation(_Frozen):
    """What an image should show."""

    present: tuple[ObjectQuery, ...] = ()
    absent: tuple[ObjectQuery, ...] = ()
    language: Language = "en"

    @property
    def empty(self) -> bool:
        return not self.present and not self.absent


class CheckItem(_Frozen):
    """One question asked of the image and what was heard."""

    question: str
    expected: str
    observed: str
    passed: bool


class CheckVerdict(_Frozen):
    """A checker's judgement; `passed` is None when there was nothing it could check."""

    checker: str
    passed: bool | None
    items: tuple[CheckItem, ...] = ()
    seconds: float = 0.0

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f"{i.question}: expected {i.expected}, observed {i.observed}" for i in self.items if not i.passed)


@runtime_checkable
class Checker(Protocol):
    """Anything that judges an image against an `Expectation`."""

    name: str

    def check(self, image: Any, expectation: Expectation) -> CheckVerdict: ...


def expectation_from_prompt(prompt: str) -> Expectation:
    """The objects a generation prompt asks for, read with the shapes vocabulary (empty when it names
    none). Several objects are read from captions ("a red circle on the left and a blue square ...")."""
    from mmkit.exceptions import UsageError
    from mmkit.shapes import parse_prompt

    from .phrases import detect_language

    lang = detect_language(prompt)
    try:
        spec = parse_prompt(prompt)
        objects = tuple(ObjectQuery(colour=o.colour, kind=o.kind, position=o.position) for o in spec.objects)
    except UsageError:
        one = parse_object(prompt)
        objects = (one,) if one is not None else ()
    return Expectation(present=objects, language=lang)


def _matches(query: ObjectQuery, colour: str, kind: str) -> bool:
    return (query.colour is None or query.colour == colour) and (query.kind is None or query.kind == kind)


class OracleChecker:
    """Judge with the shapes-world pixel oracle (exact there; meaningless on natural images)."""

    name = "oracle"

    def check(self, image: Any, expectation: Expectation) -> CheckVerdict:
        start = time.perf_counter()
        if expectation.empty:
            return CheckVerdict(checker=self.name, passed=None)
        found = detect(image)
        seen = ", ".join(f"{d.colour} {d.kind} {d.position}" for d in found) or "nothing"
        items = []
        for query in expectation.present:
            hits = [d for d in found if _matches(query, d.colour, d.kind)]
            ok = bool(hits) and (query.position is None or any(d.position == query.position for d in hits))
            items.append(CheckItem(question=f"present: {query.phrase()}", expected="present", observed=seen, passed=ok))
        for query in expectation.absent:
            gone = not any(_matches(query, d.colour, d.kind) and (query.position is None or d.position == query.position)
                           for d in found)
            items.append(CheckItem(question=f"absent: {query.phrase()}", expected="absent", observed=seen, passed=gone))
        return CheckVerdict(checker=self.name, passed=all(i.passed for i in items), items=tuple(items),
                            seconds=time.perf_counter() - start)


_YES = re.compile(r"^\s*(?:yes|yeah|yep|true|有|是|对)", re.IGNORECASE)
_NO = re.compile(r"^\s*(?:no|nope|false|没有|不是|无|否)", re.IGNORECASE)


def _yes_no(text: str) -> str:
    if _NO.search(text):
        return "no"
    return "yes" if _YES.search(text) else "unclear"


class VlmChecker:
    """Ask the vision-language model about each expected object.

    Args:
        model: anything with `chat(text, images=[...], **kw) -> Answer` and `ground(image, query, **kw) -> Answer`
            (a `VisionLanguageModel`, or the fakes in `mmkit.agents.fakes`).
        max_new_tokens: answer budget per question.
    """

    name = "vlm"

    def __init__(self, model: Any, *, max_new_tokens: int = 16) -> None:
        self.model = model
        self.max_new_tokens = max_new_tokens

    def _ask(self, image: Any, query: ObjectQuery, lang: Language) -> tuple[str, str]:
        # Whether the object is there at all; where it is, is asked by grounding (`_where`): one fact per question.
        query = query.model_copy(update={"position": None})
        if lang == "zh":
            question = f"图中有{query.phrase('zh')}吗？请回答有或没有。"
        else:
            question = f"Is there {query.phrase('en')} in the image? Answer yes or no."
        answer = self.model.chat(question, images=[image], max_new_tokens=self.max_new_tokens, do_sample=False)
        return question, _yes_no(answer.text)

    def _where(self, image: Any, query: ObjectQuery, *, present: bool) -> CheckItem:
        """Ground the object (without its position) and compare where it is with `query.position`: it must be
        there when `present`, anywhere else when not."""
        phrase = query.model_copy(update={"position": None}).phrase("en", definite=True)
        answer = self.model.ground(image, phrase, max_new_tokens=64)
        where = position_word(answer.boxes[0], image.size) if answer.boxes else "no box"
        at = where == query.position
        return CheckItem(question=f"where is {query.phrase(definite=True)}",
                         expected=query.position if present else f"not {query.position}", observed=where,
                         passed=at if present else not at)

    def check(self, image: Any, expectation: Expectation) -> CheckVerdict:
        start = time.perf_counter()
        if expectation.empty:
            return CheckVerdict(checker=self.name, passed=None)
        items = []
        for query in expectation.present:
            question, heard = self._ask(image, query, expectation.language)
            items.append(CheckItem(question=question, expected="yes", observed=heard, passed=heard == "yes"))
            if heard == "yes" and query.position is not None:
                items.append(self._where(image, query, present=True))
        for query in expectation.absent:
            question, heard = self._ask(image, query, expectation.language)
            if heard == "yes" and query.position is not None:  # one elsewhere is fine
                items.append(self._where(image, query, present=False))
            else:
                items.append(CheckItem(question=question, expected="no", observed=heard, passed=heard == "no"))
        return CheckVerdict(checker=self.name, passed=all(i.passed for i in items), items=tuple(items),
                            seconds=time.perf_counter() - start)
