"""Pixels of the shapes world: unit geometry of each shape class, the anti-aliased renderer, and the
degradation that makes a clean render look like a small diffusion model's output.

Every shape is drawn to fill a square box exactly (its bounding box IS the box in the scene); edge
pixels carry their coverage measured on a 4x4 sub-grid (numpy point-in-polygon, no PIL rasteriser
quirks). The oracle reads the
same unit geometry (`shape_stats`) to turn an area and a centroid back into a box.

This module knows scenes and pixels; it knows nothing about language or about the oracle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageFilter

from ..exceptions import UsageError
from .scene import Scene
from .vocab import BACKGROUNDS, COLOURS, SHAPES

__all__ = ["SUPERSAMPLE", "ShapeStats", "unit_outline", "shape_stats", "coverage", "render", "perturb"]

SUPERSAMPLE = 4
"""Supersampling factor of `render` (edge pixels get coverage in steps of 1/16)."""


def _star(points: int = 5, inner: float = 0.382) -> list[tuple[float, float]]:
    raw = []
    for i in range(2 * points):
        radius = 1.0 if i % 2 == 0 else inner
        angle = -math.pi / 2 + i * math.pi / points  # first point straight up
        raw.append((radius * math.cos(angle), radius * math.sin(angle)))
    xs, ys = [p[0] for p in raw], [p[1] for p in raw]
    # Stretch to fill the unit square exactly (a regular star is 1.90 R wide and 1.81 R tall).
    return [((x - min(xs)) / (max(xs) - min(xs)), (y - min(ys)) / (max(ys) - min(ys))) for x, y in raw]


def _cross(arm: float = 1 / 3) -> list[tuple[float, float]]:
    a, b = (1 - arm) / 2, (1 + arm) / 2
    return [(a, 0), (b, 0), (b, a), (1, a), (1, b), (b, b), (b, 1), (a, 1), (a, b), (0, b), (0, a), (a, a)]


_OUTLINES: dict[str, list[tuple[float, float]] | None] = {
    "circle": None,  # the inscribed disc
    "square": [(0, 0), (1, 0), (1, 1), (0, 1)],
    "triangle": [(0.5, 0), (1, 1), (0, 1)],  # apex up, base on the bottom edge
    "star": _star(),
    "cross": _cross(),
}


def unit_outline(kind: str) -> list[tuple[float, float]] | None:
    """The polygon of `kind` in the unit square (None for the circle, which is an ellipse)."""
    if kind not in _OUTLINES:
        raise UsageError("unknown shape kind", received=kind, fix=f"use one of {sorted(SHAPES)}")
    return _OUTLINES[kind]


@dataclass(frozen=True)
class ShapeStats:
    """Geometry of a shape filling the unit square: area fraction and centroid (both blur-invariant)."""

    fill: float  # area / box area: square 1, circle pi/4, triangle 1/2
    cx: float  # centroid, fraction of the box width from its left edge
    cy: float  # centroid, fraction of the box height from its top edge


@lru_cache(maxsize=None)
def shape_stats(kind: str) -> ShapeStats:
    """Area fraction and centroid of `kind` in its box (shoelace formula for polygons)."""
    outline = unit_outline(kind)
    if outline is None:
        return ShapeStats(math.pi / 4, 0.5, 0.5)
    area = cx = cy = 0.0
    for (x0, y0), (x1, y1) in zip(outline, outline[1:] + outline[:1]):
        cross = x0 * y1 - x1 * y0
        area += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    area /= 2
    return ShapeStats(abs(area), cx / (6 * area), cy / (6 * area))


def _inside(kind: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether unit-square points (u, v) lie inside `kind` (even-odd rule for the polygons)."""
    outline = unit_outline(kind)
    if outline is None:
        return (u - 0.5) ** 2 + (v - 0.5) ** 2 < 0.25
    inside = np.zeros(np.broadcast_shapes(u.shape, v.shape), dtype=bool)
    for (x0, y0), (x1, y1) in zip(outline, outline[1:] + outline[:1]):
        if y0 == y1:
            continue
        crosses = ((y0 > v) != (y1 > v)) & (u < x0 + (v - y0) * (x1 - x0) / (y1 - y0))
        inside ^= crosses
    return inside


def coverage(kind: str, box: tuple[float, float, float, float], height: int, width: int,
             supersample: int = SUPERSAMPLE) -> np.ndarray:
    """Fraction of each pixel of a `height` x `width` image covered by `kind` filling `box`.

    Pixel (i, j) spans [j, j+1) x [i, i+1); each is sampled at `supersample`^2 regular sub-points, so
    `supersample=1` samples pixel centres (a crisp mask), 4 gives anti-aliased coverage in 1/16 steps.

    Args:
        kind: shape class.
        box: (x1, y1, x2, y2) in pixels, may be fractional.
        height, width: size of the returned float32 array.
        supersample: sub-samples per pixel side.
    """
    x1, y1, x2, y2 = box
    out = np.zeros((height, width), dtype=np.float32)
    c0, c1 = max(0, int(np.floor(x1))), min(width, int(np.ceil(x2)))
    r0, r1 = max(0, int(np.floor(y1))), min(height, int(np.ceil(y2)))
    if c0 >= c1 or r0 >= r1 or x2 <= x1 or y2 <= y1:
        return out
    offsets = (np.arange(supersample) + 0.5) / supersample
    xs = (np.arange(c0, c1)[:, None] + offsets).ravel()
    ys = (np.arange(r0, r1)[:, None] + offsets).ravel()
    inside = _inside(kind, ((xs - x1) / (x2 - x1))[None, :], ((ys - y1) / (y2 - y1))[:, None])
    if supersample > 1:
        inside = inside.reshape(r1 - r0, supersample, c1 - c0, supersample).mean(axis=(1, 3))
    out[r0:r1, c0:c1] = inside
    return out


def render(scene: Scene) -> Image.Image:
    """Render a scene to an RGB image of `scene.size` x `scene.size` pixels, anti-aliased (exact
    coverage on a 4x4 sub-grid per pixel, composited over the background).

    Args:
        scene: the scene; shape boxes are in output pixels.
    """
    pixels = np.empty((scene.size, scene.size, 3), dtype=np.float32)
    pixels[:] = BACKGROUNDS[scene.background].rgb
    for shape in scene.shapes:
        alpha = coverage(shape.kind, shape.box.as_tuple(), scene.size, scene.size)[..., None]
        pixels = pixels * (1 - alpha) + np.asarray(COLOURS[shape.colour].rgb, dtype=np.float32) * alpha
    return Image.fromarray(np.rint(pixels).astype(np.uint8))


def perturb(image: Image.Image, rng: np.random.Generator, *, blur: tuple[float, float] = (0.0, 0.8),
            noise: tuple[float, float] = (0.0, 6.0), jitter: float = 10.0, gain: float = 0.06) -> Image.Image:
    """Degrade a render the way a small generator's output differs from it: blur, noise, colour shift.

    Args:
        image: an RGB image.
        rng: source of the random strengths (deterministic for a seeded generator).
        blur: range of the Gaussian blur sigma, in pixels.
        noise: range of the per-pixel Gaussian noise std, in 0-255 units.
        jitter: maximum per-channel offset, in 0-255 units.
        gain: maximum relative contrast change per channel (around mid-grey).
    """
    sigma = rng.uniform(*blur)
    if sigma > 0.05:
        image = image.filter(ImageFilter.GaussianBlur(radius=sigma))
    pixels = np.asarray(image, dtype=np.float32)
    channel_gain = 1 + rng.uniform(-gain, gain, size=3)
    offset = rng.uniform(-jitter, jitter, size=3)
    pixels = (pixels - 128) * channel_gain + 128 + offset
    pixels += rng.normal(0.0, rng.uniform(*noise), size=pixels.shape)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
