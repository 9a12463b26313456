"""Object phrases in requests, English and Chinese: "the red circle", "a blue square on the left",
"红色的圆", "蓝色的方块" -> `ObjectQuery(colour, kind, position)`; and the request's language.

The agent reads the shapes-world vocabulary (`mmkit.shapes.vocab`) plus a few everyday synonyms people
type ("方块" for 正方形, "color" for colour). A phrase that names no known colour or shape gives None:
the agent then works with the raw text and skips the vocabulary-based checks.

This module knows words only: no images, no models, no routing decisions.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from mmkit.shapes import COLOURS, POSITIONS, SHAPES
from mmkit.shapes.language import object_phrase

__all__ = ["Language", "ObjectQuery", "detect_language", "parse_object", "canonical_prompt"]

Language = Literal["en", "zh"]

_CJK = re.compile(r"[\u4e00-\u9fff]")

# Everyday words beyond the canonical vocabulary, mapped to canonical names. Longest match wins.
_ZH_SHAPES = {s.zh: s.name for s in SHAPES.values()} | {
    "圆形": "circle", "圆圈": "circle", "圆": "circle", "方块": "square", "方形": "square", "正方形": "square",
    "三角": "triangle", "星星": "star", "星形": "star", "星": "star", "十字形": "cross", "十字": "cross"}
_ZH_COLOURS = {c.zh: c.name for c in COLOURS.values()} | {
    "红": "red", "橙": "orange", "橘色": "orange", "黄": "yellow", "绿": "green", "蓝": "blue", "紫": "purple"}
_EN_SHAPES = {s.name: s.name for s in SHAPES.values()} | {s.plural: s.name for s in SHAPES.values()} | {
    "disc": "circle", "disk": "circle", "dot": "circle"}
_EN_COLOURS = {c: c for c in COLOURS} | {"violet": "purple"}
_EN_POSITIONS = {p.name: p.name for p in POSITIONS.values()} | {"center": "centre", "middle": "centre"}
_ZH_POSITIONS = {p.zh: p.name for p in POSITIONS.values()} | {"左侧": "left", "右侧": "right", "中央": "centre",
                                                          "上面": "top", "下面": "bottom", "左面": "left", "右面": "right"}


class ObjectQuery(BaseModel):
    """An object named in a request; any part may be unknown (None)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    colour: str | None = None  # a key of vocab.COLOURS
    kind: str | None = None  # a key of vocab.SHAPES
    position: str | None = None  # a key of vocab.POSITIONS

    @property
    def complete(self) -> bool:
        """Colour and kind both known (what a generation prompt needs)."""
        return self.colour is not None and self.kind is not None

    def phrase(self, lang: Language = "en", *, definite: bool = False) -> str:
        """"a red circle on the left" / "the red circle" / "红色的圆"; partial queries say "shape"."""
        if lang == "zh":
            where = POSITIONS[self.position].zh if self.position else ""
            colour = f"{COLOURS[self.colour].zh}的" if self.colour else ""
            return f"{where}{'的' if where else ''}{colour}{SHAPES[self.kind].zh if self.kind else '形状'}"
        if self.complete and not definite:
            return object_phrase(self.colour, self.kind, "en", self.position)
        words = " ".join(w for w in (self.colour, self.kind or "shape") if w)
        where = f" {POSITIONS[self.position].en_phrase}" if self.position else ""
        return f"{'the' if definite else 'a'} {words}{where}"


def detect_language(text: str) -> Language:
    """"zh" when the text holds any CJK ideograph, else "en"."""
    return "zh" if _CJK.search(text) else "en"


def _first(text: str, table: dict[str, str], *, words: bool) -> tuple[str | None, int]:
    """The canonical name of the earliest (then longest) table entry found in `text`, and where."""
    best: tuple[int, int, str] | None = None
    for surface, name in table.items():
        pattern = rf"\b{re.escape(surface)}\b" if words else re.escape(surface)
        for found in re.finditer(pattern, text):
            key = (found.start(), -len(surface), name)
            best = key if best is None or key < best else best
            break
    return (best[2], best[0]) if best else (None, -1)


def parse_object(text: str) -> ObjectQuery | None:
    """Read colour, shape and position words from a phrase; None when it names no colour and no shape.

    Args:
        text: a phrase such as "the red circle on the left", "a blue square", "左边的红色的圆", "蓝色的方块".
    """
    lowered = text.lower().replace("color", "colour")
    zh = detect_language(text) == "zh"
    colours, shapes, places = (_ZH_COLOURS, _ZH_SHAPES, _ZH_POSITIONS) if zh else (_EN_COLOURS, _EN_SHAPES, _EN_POSITIONS)
    colour, _ = _first(lowered, colours, words=not zh)
    kind, _ = _first(lowered, shapes, words=not zh)
    position, _ = _first(lowered, places, words=not zh)
    if colour is None and kind is None:
        return None
    return ObjectQuery(colour=colour, kind=kind, position=position)


def canonical_prompt(text: str, lang: Language) -> str:
    """The prompt as the shapes-world generators were trained to read it ("a red circle on the left",
    "左边一个红色的圆"), when `text` names exactly one complete object; otherwise `text` unchanged."""
    from mmkit.shapes import parse_prompt
    from mmkit.exceptions import UsageError

    try:  # already a caption the shapes world reads: one object is re-written canonically, several kept
        spec = parse_prompt(text)
        if len(spec.objects) > 1:
            return text.strip()
        one = spec.objects[0]
        return object_phrase(one.colour, one.kind, lang, one.position)
    except UsageError:
        pass
    query = parse_object(text)
    if query is None or not query.complete or len(re.findall(r"\band\b|和|，|,", text)) > 0:
        return text.strip()
    return object_phrase(query.colour, query.kind, lang, query.position)
