"""The closed vocabularies of the shapes world, in English and Chinese.

Prompts, captions, questions, parsers and the oracle all read these constants, so a word the world can
say is always a word the oracle and the parsers understand. This module is data only: no drawing, no
sampling, no image analysis.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Colour",
    "ShapeKind",
    "Background",
    "Position",
    "COLOURS",
    "SHAPES",
    "BASE_KINDS",
    "NEW_KINDS",
    "BACKGROUNDS",
    "POSITIONS",
    "LANGUAGES",
]

LANGUAGES = ("en", "zh")


@dataclass(frozen=True)
class Colour:
    """A palette colour: saturated, and at least ~20 degrees of hue away from every other one."""

    name: str  # canonical English name, also the short answer to "what colour" questions
    zh: str  # Chinese name as used in captions ("红色")
    rgb: tuple[int, int, int]


@dataclass(frozen=True)
class ShapeKind:
    """A shape class. Geometry lives in `render.py`; this is only its names."""

    name: str  # canonical English noun
    zh: str  # Chinese noun ("正方形")
    plural: str  # English plural, for count questions


@dataclass(frozen=True)
class Background:
    name: str
    zh: str
    rgb: tuple[int, int, int]


@dataclass(frozen=True)
class Position:
    """One cell of the 3x3 grid the image is divided into, named by where the box centre falls."""

    name: str  # canonical word ("top left", "left", "centre", ...)
    col: int  # 0 left, 1 middle, 2 right
    row: int  # 0 top, 1 middle, 2 bottom
    en_phrase: str  # "on the left", "at the top left"
    zh: str  # "左边", "左上角"


# Hues (HSV degrees): red 0, orange 32, yellow 55, green 129, blue 224, purple 280.
COLOURS: dict[str, Colour] = {
    c.name: c
    for c in (
        Colour("red", "红色", (230, 40, 40)),
        Colour("orange", "橙色", (250, 140, 10)),
        Colour("yellow", "黄色", (240, 220, 20)),
        Colour("green", "绿色", (40, 180, 60)),
        Colour("blue", "蓝色", (40, 90, 230)),
        Colour("purple", "紫色", (150, 50, 200)),
    )
}

SHAPES: dict[str, ShapeKind] = {
    s.name: s
    for s in (
        ShapeKind("circle", "圆", "circles"),
        ShapeKind("square", "正方形", "squares"),
        ShapeKind("triangle", "三角形", "triangles"),
        ShapeKind("star", "五角星", "stars"),
        ShapeKind("cross", "十字", "crosses"),
    )
}

BASE_KINDS: tuple[str, ...] = ("circle", "square", "triangle")
"""What the base training data contains."""

NEW_KINDS: tuple[str, ...] = ("star", "cross")
"""Concepts the base data never contains: held out for LoRA / new-concept experiments."""

BACKGROUNDS: dict[str, Background] = {
    b.name: b
    for b in (
        Background("white", "白色", (255, 255, 255)),
        Background("grey", "浅灰色", (232, 232, 232)),
        Background("cream", "米色", (250, 244, 222)),
        Background("sky", "浅蓝色", (226, 236, 250)),
    )
}

POSITIONS: dict[str, Position] = {
    p.name: p
    for p in (
        Position("top left", 0, 0, "at the top left", "左上角"),
        Position("top", 1, 0, "at the top", "上边"),
        Position("top right", 2, 0, "at the top right", "右上角"),
        Position("left", 0, 1, "on the left", "左边"),
        Position("centre", 1, 1, "in the centre", "中间"),
        Position("right", 2, 1, "on the right", "右边"),
        Position("bottom left", 0, 2, "at the bottom left", "左下角"),
        Position("bottom", 1, 2, "at the bottom", "下边"),
        Position("bottom right", 2, 2, "at the bottom right", "右下角"),
    )
}
