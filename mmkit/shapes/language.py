"""Words about scenes, in English and Chinese: captions, question/answer pairs, referring expressions,
and the parser that turns a prompt back into a `PromptSpec`.

Everything is a deterministic function of the scene (sampling a single question takes an explicit
`numpy.random.Generator`). Answers are short and canonical: a colour or shape name from `vocab`, a
digit string, or yes/no ("yes"/"no", "有"/"没有").

This module knows scenes and vocabularies; it knows nothing about pixels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..exceptions import UsageError
from ..understand.answer import Box
from .scene import ObjectSpec, PromptSpec, Scene, ShapeSpec, layout_scene
from .vocab import BASE_KINDS, COLOURS, LANGUAGES, POSITIONS, SHAPES

__all__ = [
    "Language",
    "QA",
    "GroundingTarget",
    "object_phrase",
    "caption",
    "questions",
    "sample_question",
    "sample_yes_no",
    "grounding_targets",
    "parse_prompt",
    "scene_from_prompt",
]

Language = Literal["en", "zh"]
QuestionKind = Literal["count", "count_colour", "count_kind", "colour_of", "kind_at", "colour_at", "exists"]
YES = {"en": "yes", "zh": "有"}
NO = {"en": "no", "zh": "没有"}


@dataclass(frozen=True)
class QA:
    question: str
    answer: str  # short canonical answer
    kind: QuestionKind
    lang: Language
    about: tuple[ShapeSpec, ...] = ()  # the shapes the answer is read from (none for a "no")
    asks: tuple[str, str] | None = None  # "is there" questions: the (colour, kind) asked about


@dataclass(frozen=True)
class GroundingTarget:
    expression: str  # "the red circle", "左边的形状"
    box: Box  # the one shape it refers to
    lang: Language


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise UsageError("unsupported language", received=lang, fix=f"use one of {LANGUAGES}")


def object_phrase(colour: str, kind: str, lang: Language = "en", position: str | None = None) -> str:
    """"a red circle on the left" / "左边一个红色的圆" (position optional)."""
    _check_lang(lang)
    if lang == "zh":
        where = POSITIONS[position].zh if position else ""
        return f"{where}一个{COLOURS[colour].zh}的{SHAPES[kind].zh}"
    article = "an" if colour[0] in "aeiou" else "a"
    where = f" {POSITIONS[position].en_phrase}" if position else ""
    return f"{article} {colour} {kind}{where}"


def caption(scene: Scene, lang: Language = "en", *, positions: bool | None = None) -> str:
    """Caption a scene: "a red circle" or "a red circle on the left and a blue square on the right";
    Chinese "一个红色的圆" / "左边一个红色的圆，右边一个蓝色的正方形".

    Args:
        scene: the scene (shapes are named in reading order).
        lang: "en" or "zh".
        positions: name each shape's position; default only when there are two or more shapes.
    """
    _check_lang(lang)
    with_pos = len(scene.shapes) > 1 if positions is None else positions
    parts = [object_phrase(s.colour, s.kind, lang, s.position if with_pos else None) for s in scene.shapes]
    if lang == "zh":
        return "，".join(parts)
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _unique(scene: Scene, **match: str) -> ShapeSpec | None:
    hits = [s for s in scene.shapes if all(getattr(s, k) == v for k, v in match.items())]
    return hits[0] if len(hits) == 1 else None


def questions(scene: Scene, lang: Language = "en") -> list[QA]:
    """Every question this scene answers unambiguously, in a fixed order.

    Kinds: total count; count per present colour and per present kind; colour of a kind present once;
    kind and colour at each shape's position; "is there" for every shape (yes) and, per shape, the same
    kind in the next palette colour absent from the scene (no).
    """
    _check_lang(lang)
    zh = lang == "zh"
    out = [QA("图中有几个形状？" if zh else "How many shapes are there?", str(len(scene.shapes)), "count", lang,
              scene.shapes)]
    for colour in dict.fromkeys(s.colour for s in scene.shapes):
        hits = tuple(s for s in scene.shapes if s.colour == colour)
        q = f"图中有几个{COLOURS[colour].zh}的形状？" if zh else f"How many {colour} shapes are there?"
        out.append(QA(q, str(len(hits)), "count_colour", lang, hits))
    for kind in dict.fromkeys(s.kind for s in scene.shapes):
        hits = tuple(s for s in scene.shapes if s.kind == kind)
        q = f"图中有几个{SHAPES[kind].zh}？" if zh else f"How many {SHAPES[kind].plural} are there?"
        out.append(QA(q, str(len(hits)), "count_kind", lang, hits))
    for shape in scene.shapes:
        if _unique(scene, kind=shape.kind):
            q = f"{SHAPES[shape.kind].zh}是什么颜色？" if zh else f"What colour is the {shape.kind}?"
            out.append(QA(q, COLOURS[shape.colour].zh if zh else shape.colour, "colour_of", lang, (shape,)))
    for shape in scene.shapes:
        where = POSITIONS[shape.position]
        q = f"{where.zh}是什么形状？" if zh else f"What shape is {where.en_phrase}?"
        out.append(QA(q, SHAPES[shape.kind].zh if zh else shape.kind, "kind_at", lang, (shape,)))
        q = f"{where.zh}的形状是什么颜色？" if zh else f"What colour is the shape {where.en_phrase}?"
        out.append(QA(q, COLOURS[shape.colour].zh if zh else shape.colour, "colour_at", lang, (shape,)))
    for shape in scene.shapes:
        out.append(_exists(shape.colour, shape.kind, True, lang, (shape,)))
        absent = _next_absent_colour(scene, shape)
        if absent is not None:
            out.append(_exists(absent, shape.kind, False, lang))
    return out


def _exists(colour: str, kind: str, present: bool, lang: Language, about: tuple[ShapeSpec, ...] = ()) -> QA:
    if lang == "zh":
        q = f"图中有{COLOURS[colour].zh}的{SHAPES[kind].zh}吗？"
    else:
        q = f"Is there {object_phrase(colour, kind)}?"
    return QA(q, (YES if present else NO)[lang], "exists", lang, about, (colour, kind))


def _next_absent_colour(scene: Scene, shape: ShapeSpec) -> str | None:
    names = list(COLOURS)
    start = names.index(shape.colour)
    for step in range(1, len(names)):
        colour = names[(start + step) % len(names)]
        if not any(s.colour == colour and s.kind == shape.kind for s in scene.shapes):
            return colour
    return None


def sample_question(scene: Scene, rng: np.random.Generator, lang: Language = "en") -> QA:
    """One question drawn uniformly from `questions(scene, lang)`."""
    pool = questions(scene, lang)
    return pool[int(rng.integers(len(pool)))]


def sample_yes_no(scene: Scene, rng: np.random.Generator, lang: Language = "en",
                  kinds: tuple[str, ...] = BASE_KINDS) -> QA:
    """One "is there …?" question, "yes" or "no" with equal odds.

    A "yes" asks about one of the scene's shapes. A "no" asks about any colour and kind of `kinds` that
    no shape has: an absent kind, or a present kind in another colour, or a present colour on another
    kind ("a red square" when the scene has a red circle and a blue square). `questions` asks only the
    next absent colour of each present kind.
    """
    _check_lang(lang)
    if rng.random() < 0.5:
        shape = scene.shapes[int(rng.integers(len(scene.shapes)))]
        return _exists(shape.colour, shape.kind, True, lang, (shape,))
    present = {(s.colour, s.kind) for s in scene.shapes}
    absent = [(c, k) for k in kinds for c in COLOURS if (c, k) not in present]
    colour, kind = absent[int(rng.integers(len(absent)))]
    return _exists(colour, kind, False, lang)


def grounding_targets(scene: Scene, lang: Language = "en") -> list[GroundingTarget]:
    """Referring expressions that pick out exactly one shape, with its box: "the red circle", "the
    circle", "the red shape", "the shape on the left" (each only when unambiguous)."""
    _check_lang(lang)
    zh = lang == "zh"
    out = []
    for s in scene.shapes:
        colour_w, kind_w = (COLOURS[s.colour].zh, SHAPES[s.kind].zh) if zh else (s.colour, s.kind)
        candidates = [
            (dict(colour=s.colour, kind=s.kind), f"{colour_w}的{kind_w}" if zh else f"the {s.colour} {s.kind}"),
            (dict(kind=s.kind), kind_w if zh else f"the {s.kind}"),
            (dict(colour=s.colour), f"{colour_w}的形状" if zh else f"the {s.colour} shape"),
            (dict(position=s.position),
             f"{POSITIONS[s.position].zh}的形状" if zh else f"the shape {POSITIONS[s.position].en_phrase}"),
        ]
        out.extend(GroundingTarget(text, s.box, lang) for match, text in candidates if _unique(scene, **match))
    return out


def _alternation(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_EN_OBJECT = re.compile(
    rf"^(?:a|an|one)\s+(?P<colour>{_alternation(COLOURS)})\s+(?P<kind>{_alternation(SHAPES)})"
    rf"(?:\s+(?P<where>{_alternation(p.en_phrase for p in POSITIONS.values())}))?$")
_ZH_OBJECT = re.compile(
    rf"^(?P<where>{_alternation(p.zh for p in POSITIONS.values())})?(?:一个)?"
    rf"(?P<colour>{_alternation(c.zh for c in COLOURS.values())})的?(?P<kind>{_alternation(s.zh for s in SHAPES.values())})$")
_BY_PHRASE = {p.en_phrase: p.name for p in POSITIONS.values()} | {p.zh: p.name for p in POSITIONS.values()}
_BY_ZH = {c.zh: c.name for c in COLOURS.values()} | {s.zh: s.name for s in SHAPES.values()}


def parse_prompt(text: str) -> PromptSpec:
    """Parse a caption-style prompt (either language) into the objects it asks for.

    Accepts what `caption` writes: "a red circle", "a red circle on the left and a blue square on the
    right", "左边一个红色的圆，右边一个蓝色的正方形".

    Args:
        text: the prompt.
    """
    cleaned = text.strip().rstrip(".。").strip()
    if re.search(r"[\u4e00-\u9fff]", cleaned):
        parts, pattern = re.split(r"[，,、]|和", cleaned), _ZH_OBJECT
    else:
        parts, pattern = re.split(r",\s*(?:and\s+)?|\s+and\s+", cleaned.lower()), _EN_OBJECT
    objects = []
    for part in (p.strip() for p in parts):
        found = pattern.match(part)
        if not found:
            raise UsageError("could not read this part of the prompt", received=part,
                             fix=f"write '<a> <colour> <shape> [position]' with colours {list(COLOURS)}, "
                                 f"shapes {list(SHAPES)}, e.g. 'a red circle on the left'")
        colour, kind, where = found["colour"], found["kind"], found["where"]
        objects.append(ObjectSpec(colour=_BY_ZH.get(colour, colour), kind=_BY_ZH.get(kind, kind),
                                  position=_BY_PHRASE[where] if where else None))
    return PromptSpec(objects=tuple(objects))


def scene_from_prompt(prompt: str | PromptSpec, *, size: int = 64, scale: float = 0.28) -> Scene:
    """The canonical scene for a prompt (see `scene.layout_scene`): what a perfect generator would draw.

    Args:
        prompt: prompt text (either language) or a parsed `PromptSpec`.
        size: image side in pixels.
        scale: shape side as a fraction of the image side.
    """
    spec = parse_prompt(prompt) if isinstance(prompt, str) else prompt
    return layout_scene(spec, size=size, scale=scale)
