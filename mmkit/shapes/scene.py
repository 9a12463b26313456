"""Typed scenes of the shapes world and how they are made: sampled from a seed, or laid out from a
request such as "a red circle on the left and a blue square on the right".

A scene is 1-3 coloured shapes on a plain light background. Each shape fills a square box with integer
pixel edges (`Box` from `mmkit.understand.answer`), boxes never overlap and keep a gap, and every shape
sits in its own cell of a 3x3 grid, so the position word ("top left", "centre", ...) of each shape is
unambiguous. Randomness only ever comes from the `numpy.random.Generator` passed in.

This module knows geometry and vocabulary; it knows nothing about pixels (`render.py`) or words beyond
the constant vocabularies (`language.py`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..exceptions import UsageError
from ..understand.answer import Box
from .vocab import BACKGROUNDS, BASE_KINDS, COLOURS, POSITIONS, SHAPES

__all__ = [
    "ShapeSpec",
    "Scene",
    "ObjectSpec",
    "PromptSpec",
    "position_word",
    "sample_scene",
    "layout_scene",
    "SUPPORTED_SIZES",
]

SUPPORTED_SIZES = (32, 64, 96, 128)
"""Image sizes the world is tested at (any size >= 32 works)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_name(value: str | None, table: dict, what: str) -> str | None:
    if value is not None and value not in table:
        raise ValueError(f"unknown {what} {value!r}; use one of {sorted(table)}")
    return value


class ShapeSpec(_Frozen):
    """One shape of a scene."""

    kind: str = Field(description="shape class, a key of vocab.SHAPES")
    colour: str = Field(description="palette colour, a key of vocab.COLOURS")
    box: Box = Field(description="the square box the shape fills, absolute pixels")
    position: str = Field(description="3x3 grid cell of the box centre, a key of vocab.POSITIONS")

    _kind = field_validator("kind")(lambda v: _check_name(v, SHAPES, "shape kind"))
    _colour = field_validator("colour")(lambda v: _check_name(v, COLOURS, "colour"))
    _position = field_validator("position")(lambda v: _check_name(v, POSITIONS, "position"))

    @property
    def name(self) -> str:
        """"red circle"."""
        return f"{self.colour} {self.kind}"


class Scene(_Frozen):
    """A still image of the shapes world, fully described."""

    size: int = Field(ge=16, description="image width = height, pixels")
    background: str = Field(default="white", description="a key of vocab.BACKGROUNDS")
    shapes: tuple[ShapeSpec, ...] = Field(description="the shapes, in reading order (rows, then columns)")

    _background = field_validator("background")(lambda v: _check_name(v, BACKGROUNDS, "background"))

    @model_validator(mode="after")
    def _inside(self) -> "Scene":
        for shape in self.shapes:
            b = shape.box
            if b.x1 < 0 or b.y1 < 0 or b.x2 > self.size or b.y2 > self.size:
                raise ValueError(f"{shape.name} box {b.as_tuple()} leaves the {self.size}px image")
        return self

    def key(self) -> tuple:
        """Hashable content key: two scenes with the same key render to the same pixels."""
        return (self.size, self.background,
                tuple((s.kind, s.colour, s.box.as_tuple()) for s in self.shapes))


class ObjectSpec(_Frozen):
    """One object a prompt asks for; `position` None means "anywhere"."""

    colour: str
    kind: str
    position: str | None = None

    _kind = field_validator("kind")(lambda v: _check_name(v, SHAPES, "shape kind"))
    _colour = field_validator("colour")(lambda v: _check_name(v, COLOURS, "colour"))
    _position = field_validator("position")(lambda v: _check_name(v, POSITIONS, "position"))


class PromptSpec(_Frozen):
    """What a generation prompt asks for: the objects (and optionally the background)."""

    objects: tuple[ObjectSpec, ...] = Field(min_length=1)
    background: str | None = None

    _background = field_validator("background")(lambda v: _check_name(v, BACKGROUNDS, "background"))


def position_word(box: Box, image_size: int | tuple[int, int]) -> str:
    """The 3x3-grid word for where the centre of `box` falls ("top left", "left", "centre", ...).

    Args:
        box: a box in absolute pixels.
        image_size: the image side, or (width, height).
    """
    width, height = (image_size, image_size) if isinstance(image_size, int) else image_size
    cx, cy = box.center
    col = min(2, max(0, int(3 * cx / width)))
    row = min(2, max(0, int(3 * cy / height)))
    return _CELL_WORD[(col, row)]


_CELL_WORD = {(p.col, p.row): p.name for p in POSITIONS.values()}


def _reading_order(shapes: Sequence[ShapeSpec]) -> tuple[ShapeSpec, ...]:
    return tuple(sorted(shapes, key=lambda s: (POSITIONS[s.position].row, POSITIONS[s.position].col)))


def _gap(size: int) -> int:
    return max(2, size // 16)


def _apart(a: Box, b: Box, gap: float) -> bool:
    return (a.x2 + gap <= b.x1 or b.x2 + gap <= a.x1 or a.y2 + gap <= b.y1 or b.y2 + gap <= a.y1)


def _edge_in_cell(rng: np.random.Generator, cell: int, side: int, size: int) -> int | None:
    """A random integer left (or top) edge that keeps the box inside the image and its centre in the
    cell, at least 1.5 px from the cell's borders (so the position word is never a coin toss)."""
    margin = max(1, size // 32)
    lo_centre, hi_centre = cell * size / 3 + 1.5, (cell + 1) * size / 3 - 1.5
    lo = max(margin, int(np.ceil(lo_centre - side / 2)))
    hi = min(size - margin - side, int(np.floor(hi_centre - side / 2)))
    return None if lo > hi else int(rng.integers(lo, hi + 1))


def sample_scene(rng: np.random.Generator, *, n_shapes: int | tuple[int, int] = (1, 3),
                 kinds: Sequence[str] = BASE_KINDS, colours: Sequence[str] | None = None,
                 backgrounds: Sequence[str] = ("white",), size: int = 64,
                 scale: tuple[float, float] = (0.22, 0.32)) -> Scene:
    """Sample a random scene.

    Args:
        rng: the only source of randomness (`numpy.random.default_rng(seed)`).
        n_shapes: an exact count or an inclusive (min, max) range, at most 9.
        kinds: shape classes to draw from (default: the base classes, no held-out concept).
        colours: palette colours to draw from (default: all).
        backgrounds: background names to draw from (default: white only).
        size: image side in pixels (>= 32 recommended; tested at 32, 64, 96, 128).
        scale: range of the shape side as a fraction of the image side.
    """
    colours = tuple(colours or COLOURS)
    lo_n, hi_n = (n_shapes, n_shapes) if isinstance(n_shapes, int) else n_shapes
    if not 1 <= lo_n <= hi_n <= 9:
        raise UsageError("n_shapes must be 1-9 shapes (an int or an inclusive range)", received=n_shapes,
                         fix="pass e.g. n_shapes=2 or n_shapes=(1, 3)")
    if size < 16:
        raise UsageError("image size too small for the shapes world", received=size, fix="use size >= 32")
    for name, table, what in ((kinds, SHAPES, "kinds"), (colours, COLOURS, "colours"),
                              (backgrounds, BACKGROUNDS, "backgrounds")):
        bad = [v for v in name if v not in table]
        if bad or not name:
            raise UsageError(f"unknown or empty {what}", received=list(name), fix=f"choose from {sorted(table)}")
    count = int(rng.integers(lo_n, hi_n + 1))
    background = str(backgrounds[int(rng.integers(len(backgrounds)))])
    sides = (max(4, round(scale[0] * size)), max(4, round(scale[1] * size)))
    for _ in range(200):
        shapes = _try_place(rng, count, kinds, colours, sides, size)
        if shapes is not None:
            return Scene(size=size, background=background, shapes=_reading_order(shapes))
    raise UsageError("could not place that many shapes without overlap", received=(count, size, scale),
                     fix="use fewer shapes, a larger image or a smaller scale")


def _try_place(rng, count, kinds, colours, sides, size) -> list[ShapeSpec] | None:
    cells = rng.choice(9, size=count, replace=False)
    shapes: list[ShapeSpec] = []
    for cell in cells:
        col, row = int(cell) % 3, int(cell) // 3
        side = int(rng.integers(sides[0], sides[1] + 1))
        x1, y1 = _edge_in_cell(rng, col, side, size), _edge_in_cell(rng, row, side, size)
        if x1 is None or y1 is None:
            return None
        box = Box(x1=x1, y1=y1, x2=x1 + side, y2=y1 + side)
        if not all(_apart(box, other.box, _gap(size)) for other in shapes):
            return None
        kind = str(kinds[int(rng.integers(len(kinds)))])
        colour = str(colours[int(rng.integers(len(colours)))])
        shapes.append(ShapeSpec(kind=kind, colour=colour, position=position_word(box, size),
                                box=box.model_copy(update={"label": f"{colour} {kind}"})))
    return shapes


_DEFAULT_CELLS = {1: ("centre",), 2: ("left", "right"), 3: ("left", "centre", "right")}


def layout_scene(spec: PromptSpec, *, size: int = 64, scale: float = 0.28) -> Scene:
    """The canonical scene for a prompt: each object centred in its grid cell (objects without a
    position go to the centre, left/right, or left/centre/right), all the same size.

    Args:
        spec: the objects asked for (see `language.parse_prompt`).
        size: image side in pixels.
        scale: shape side as a fraction of the image side.
    """
    free = [p for p in _DEFAULT_CELLS.get(len(spec.objects), tuple(POSITIONS)) if
            p not in {o.position for o in spec.objects}]
    positions = [o.position or free.pop(0) for o in spec.objects]
    if len(set(positions)) != len(positions):
        raise UsageError("two objects were asked for at the same position", received=positions,
                         fix="give every object its own position")
    side = max(4, round(scale * size))
    shapes = []
    for obj, word in zip(spec.objects, positions):
        cell = POSITIONS[word]
        x1 = round((cell.col + 0.5) * size / 3 - side / 2)
        y1 = round((cell.row + 0.5) * size / 3 - side / 2)
        box = Box(x1=x1, y1=y1, x2=x1 + side, y2=y1 + side, label=f"{obj.colour} {obj.kind}")
        shapes.append(ShapeSpec(kind=obj.kind, colour=obj.colour, box=box, position=position_word(box, size)))
    return Scene(size=size, background=spec.background or "white", shapes=_reading_order(shapes))
