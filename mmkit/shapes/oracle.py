"""The pixel oracle: read an image of the shapes world back into shapes, and judge generated images.

From pixels alone (no scene, no model): the background is the median of the border; foreground is
what lies far from it; connected components (run-length union-find, numpy only) are the shapes. Each
shape's colour is the hue of its fully-covered core, snapped to the palette; its coverage map
(alpha = projection of each pixel on the line background -> shape colour) gives an area and a centroid,
both unchanged by blur and unbiased under noise. Each shape class turns (area, centroid) into a square
box through its unit geometry (`render.shape_stats`); the class whose ideal outline, drawn in that box,
best overlaps the observed half-coverage mask wins, and a weak or near-tied winner is "unknown":
the oracle never guesses.

This module knows pixels, vocabulary and geometry; it knows nothing about models or training.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from ..exceptions import UsageError
from ..understand.answer import Box
from ..understand.grounding import iou
from .render import coverage, shape_stats
from .scene import ObjectSpec, PromptSpec, position_word
from .vocab import COLOURS, SHAPES

__all__ = [
    "UNKNOWN",
    "Detection",
    "detect",
    "label_components",
    "colour_name",
    "count",
    "ObjectMatch",
    "Verdict",
    "judge_caption",
    "BoxMatch",
    "match_boxes",
    "iou",
    "position_word",
]

UNKNOWN = "unknown"
_FG_DISTANCE = 48.0  # RGB distance from the background that starts a component (noise std <= ~8)
_PAD = 3  # pixels around a component in which its coverage is integrated
_MIN_SCORE, _MIN_MARGIN = 0.72, 0.04  # class template IoU needed, and lead over the runner-up
_MAX_HUE_DIST, _MIN_HUE_MARGIN, _MIN_SATURATION = 20.0, 6.0, 0.3
_PALETTE_HUES = {name: colorsys.rgb_to_hsv(*(v / 255 for v in c.rgb))[0] * 360 for name, c in COLOURS.items()}


@dataclass(frozen=True)
class Detection:
    """One shape the oracle found."""

    kind: str  # a key of vocab.SHAPES, or "unknown"
    colour: str  # a key of vocab.COLOURS, or "unknown"
    box: Box  # absolute pixels, labelled "colour kind"
    position: str  # 3x3 grid word of the box centre
    area: float  # integrated coverage, pixels
    score: float  # IoU of the winning class outline with the observed mask (0 when unknown)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean mask (run-length union-find; scipy is not needed).

    Returns:
        (labels, n): int32 labels (0 = background, 1..n components, in raster order of first pixel).
    """
    height, width = mask.shape
    edges = np.diff(np.pad(mask.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    rows, starts = np.nonzero(edges == 1)
    ends = np.nonzero(edges == -1)[1]
    parent = list(range(len(starts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    row_first = np.searchsorted(rows, np.arange(height + 1))
    for r in range(1, height):
        a, a_end, b, b_end = row_first[r - 1], row_first[r], row_first[r], row_first[r + 1]
        while a < a_end and b < b_end:  # runs overlap (8-connected) when [s-1, e+1) intersect
            if starts[a] <= ends[b] and starts[b] <= ends[a]:
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
            if ends[a] < ends[b]:
                a += 1
            else:
                b += 1
    labels = np.zeros((height, width), dtype=np.int32)
    ids: dict[int, int] = {}
    for i in range(len(starts)):
        root = ids.setdefault(find(i), len(ids) + 1)
        labels[rows[i], starts[i]:ends[i]] = root
    return labels, len(ids)


def colour_name(rgb: Sequence[float]) -> str:
    """The palette colour of an RGB triple by hue, or "unknown" when it is grey, dark, or between two."""
    h, s, v = colorsys.rgb_to_hsv(*(float(c) / 255 for c in rgb))
    if s < _MIN_SATURATION or v < 0.25:
        return UNKNOWN
    dist = sorted((min(abs(h * 360 - hue), 360 - abs(h * 360 - hue)), name) for name, hue in _PALETTE_HUES.items())
    (best, name), (second, _) = dist[0], dist[1]
    return name if best <= _MAX_HUE_DIST and second - best >= _MIN_HUE_MARGIN else UNKNOWN


def _as_array(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.float32)
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise UsageError("expected an RGB image (PIL or HxWx3 array)", received=getattr(arr, "shape", arr),
                         fix="pass a PIL image or a uint8 array of shape (H, W, 3)")
    return arr.astype(np.float32)


def detect(image: Image.Image | np.ndarray, *, kinds: Sequence[str] = tuple(SHAPES),
           min_area: float | None = None) -> tuple[Detection, ...]:
    """Find every shape in an image of the shapes world.

    Args:
        image: an RGB PIL image or HxWx3 uint8 array.
        kinds: the classes to consider (a shape matching none of them well is "unknown").
        min_area: components smaller than this (pixels) are specks and ignored; default 0.4% of the image.

    Returns:
        The detections in reading order (top to bottom, then left to right by grid cell).
    """
    pixels = _as_array(image)
    height, width = pixels.shape[:2]
    min_area = max(4.0, 0.004 * height * width) if min_area is None else min_area
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    diff = pixels - np.median(border, axis=0)
    dist = np.sqrt((diff * diff).sum(axis=2))
    labels, n = label_components(dist > _FG_DISTANCE)
    found = []
    for comp in range(1, n + 1):
        ys, xs = np.nonzero(labels == comp)
        if len(ys) >= min_area:
            found.append(_read_shape(pixels, diff, dist, labels, comp, ys, xs, kinds))
    found = [d for d in found if d is not None and d.area >= min_area]
    return tuple(sorted(found, key=lambda d: (int(3 * d.box.center[1] / height), int(3 * d.box.center[0] / width))))


def _read_shape(pixels, diff, dist, labels, comp, ys, xs, kinds) -> Detection | None:
    height, width = dist.shape
    comp_dist = dist[ys, xs]
    core = comp_dist >= 0.85 * np.percentile(comp_dist, 90)
    colour_rgb = np.median(pixels[ys[core], xs[core]], axis=0)
    direction = np.median(diff[ys[core], xs[core]], axis=0)
    x0, x1 = max(0, xs.min() - _PAD), min(width, xs.max() + 1 + _PAD)
    y0, y1 = max(0, ys.min() - _PAD), min(height, ys.max() + 1 + _PAD)
    window_labels = labels[y0:y1, x0:x1]
    alpha = diff[y0:y1, x0:x1] @ (direction / float(direction @ direction))
    alpha = np.where((window_labels == 0) | (window_labels == comp), np.clip(alpha, -1.0, 2.0), 0.0)
    area = float(alpha.sum())
    if area <= 0:
        return None
    gy, gx = np.mgrid[0:y1 - y0, 0:x1 - x0]
    cx, cy = float((alpha * (gx + 0.5)).sum() / area), float((alpha * (gy + 0.5)).sum() / area)
    mask = alpha >= 0.5
    kind, score, box = _classify(mask, area, cx, cy, kinds)
    box = Box(x1=box[0] + x0, y1=box[1] + y0, x2=box[2] + x0, y2=box[3] + y0)
    colour = colour_name(colour_rgb)
    box = box.model_copy(update={"label": f"{colour} {kind}"})
    return Detection(kind=kind, colour=colour, box=box, position=position_word(box, (width, height)),
                     area=area, score=score)


def _classify(mask: np.ndarray, area: float, cx: float, cy: float,
              kinds: Sequence[str]) -> tuple[str, float, tuple[float, float, float, float]]:
    scores = []
    for kind in kinds:
        stats = shape_stats(kind)
        side = (area / stats.fill) ** 0.5
        box = (cx - stats.cx * side, cy - stats.cy * side, cx + (1 - stats.cx) * side, cy + (1 - stats.cy) * side)
        template = coverage(kind, box, mask.shape[0], mask.shape[1], supersample=1) > 0.5
        union = np.logical_or(template, mask).sum()
        scores.append((float(np.logical_and(template, mask).sum() / union) if union else 0.0, kind, box))
    scores.sort(reverse=True)
    best, kind, box = scores[0]
    margin = best - scores[1][0] if len(scores) > 1 else 1.0
    if best >= _MIN_SCORE and margin >= _MIN_MARGIN:
        return kind, best, box
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return UNKNOWN, 0.0, box
    return UNKNOWN, 0.0, (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def count(image: Image.Image | np.ndarray, colour: str | None = None, kind: str | None = None) -> int:
    """How many shapes the oracle sees, optionally only those of one colour and/or kind.

    Args:
        image: an RGB image of the shapes world.
        colour: a key of vocab.COLOURS, or None for any.
        kind: a key of vocab.SHAPES, or None for any.
    """
    for value, table, what in ((colour, COLOURS, "colour"), (kind, SHAPES, "kind")):
        if value is not None and value not in table:
            raise UsageError(f"unknown {what}", received=value, fix=f"use one of {sorted(table)} or None")
    return sum((colour is None or d.colour == colour) and (kind is None or d.kind == kind) for d in detect(image))


@dataclass(frozen=True)
class ObjectMatch:
    """How one requested object was (or was not) found."""

    wanted: ObjectSpec
    detection: Detection | None  # the detection assigned to it (best partial match), or None
    colour_ok: bool
    kind_ok: bool
    position_ok: bool  # True when no position was asked

    @property
    def ok(self) -> bool:
        return self.colour_ok and self.kind_ok and self.position_ok


@dataclass(frozen=True)
class Verdict:
    """The oracle's judgement of an image against a prompt."""

    passed: bool  # every object found right, and (if exact) nothing else there
    matches: tuple[ObjectMatch, ...]
    extra: tuple[Detection, ...]  # detections no requested object claimed
    detections: tuple[Detection, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        out = []
        for m in self.matches:
            if not m.ok:
                got = f"{m.detection.colour} {m.detection.kind} {m.detection.position}" if m.detection else "nothing"
                out.append(f"wanted {m.wanted.colour} {m.wanted.kind} {m.wanted.position or ''}".strip() + f", got {got}")
        out.extend(f"unexpected {d.colour} {d.kind} {d.position}" for d in self.extra)
        return tuple(out)


def judge_caption(image: Image.Image | np.ndarray, prompt: PromptSpec | str, *, exact: bool = True) -> Verdict:
    """Judge whether an image shows what a prompt asks for: each object with the right colour, class and
    (when asked) position.

    Objects are assigned to detections greedily, best partial match first (colour, class and position
    each count one), so a verdict also says what was partly right.

    Args:
        image: the generated image.
        prompt: prompt text (either language; parsed with `language.parse_prompt`) or a `PromptSpec`.
        exact: also fail when the image holds shapes nobody asked for.
    """
    from .language import parse_prompt  # language imports scene only; keep the oracle import-light

    spec = parse_prompt(prompt) if isinstance(prompt, str) else prompt
    detections = detect(image)
    checks = []
    for i, obj in enumerate(spec.objects):
        for j, d in enumerate(detections):
            flags = (d.colour == obj.colour, d.kind == obj.kind, obj.position is None or d.position == obj.position)
            checks.append((sum(flags), i, j, flags))
    checks.sort(key=lambda c: (-c[0], c[1], c[2]))
    assigned: dict[int, tuple[int, tuple[bool, bool, bool]]] = {}
    used: set[int] = set()
    for _, i, j, flags in checks:
        if i not in assigned and j not in used:
            assigned[i] = (j, flags)
            used.add(j)
    matches = []
    for i, obj in enumerate(spec.objects):
        j, flags = assigned.get(i, (None, (False, False, False)))
        matches.append(ObjectMatch(obj, detections[j] if j is not None else None, *flags))
    extra = tuple(d for j, d in enumerate(detections) if j not in used)
    passed = all(m.ok for m in matches) and not (exact and extra)
    return Verdict(passed=passed, matches=tuple(matches), extra=extra, detections=detections)


@dataclass(frozen=True)
class BoxMatch:
    """One-to-one matching of predicted boxes to true boxes."""

    pairs: tuple[tuple[int, int, float], ...]  # (pred index, truth index, IoU), IoU >= threshold
    unmatched_pred: tuple[int, ...]
    unmatched_truth: tuple[int, ...]

    @property
    def precision(self) -> float:
        n = len(self.pairs) + len(self.unmatched_pred)
        return len(self.pairs) / n if n else 1.0

    @property
    def recall(self) -> float:
        n = len(self.pairs) + len(self.unmatched_truth)
        return len(self.pairs) / n if n else 1.0


def match_boxes(pred: Sequence[Box], truth: Sequence[Box], iou_threshold: float = 0.5, *,
                same_label: bool = False) -> BoxMatch:
    """Greedy one-to-one matching by descending IoU (the usual detection-eval rule).

    Args:
        pred: predicted boxes.
        truth: ground-truth boxes.
        iou_threshold: a pair counts when its IoU is at least this.
        same_label: also require equal `label`s.
    """
    if not 0.0 <= iou_threshold <= 1.0:
        raise UsageError("iou_threshold must be in [0, 1]", received=iou_threshold, fix="pass e.g. 0.5")
    candidates = sorted(((iou(p, t), i, j) for i, p in enumerate(pred) for j, t in enumerate(truth)
                         if not same_label or p.label == t.label), key=lambda c: (-c[0], c[1], c[2]))
    pairs, used_p, used_t = [], set(), set()
    for value, i, j in candidates:
        if value >= iou_threshold and i not in used_p and j not in used_t:
            pairs.append((i, j, value))
            used_p.add(i)
            used_t.add(j)
    return BoxMatch(tuple(sorted(pairs)), tuple(i for i in range(len(pred)) if i not in used_p),
                    tuple(j for j in range(len(truth)) if j not in used_t))
