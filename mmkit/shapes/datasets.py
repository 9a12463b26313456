"""Seeded datasets of the shapes world with train / val / test splits that never share a scene.

Disjointness does not rest on seeds alone (a small world repeats itself): every scene is assigned to a
split by a hash of its content (80% train, 10% val, 10% test), and sampling for a split rejects scenes
that belong to another. The same (kind, n, seed, split, options) always gives the same examples.
This module composes `scene`, `render`, `language` and `video`; it adds no new vocabulary.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from PIL import Image

from ..exceptions import UsageError
from ..understand.answer import Box, TimeSpan
from .language import caption, grounding_targets, sample_question
from .render import render
from .scene import Scene, sample_scene
from .video import VideoScene, render_video, sample_video, temporal_queries
from .vocab import BASE_KINDS

__all__ = ["Split", "DatasetKind", "Example", "split_of", "make_dataset"]

Split = Literal["train", "val", "test"]
DatasetKind = Literal["caption", "vqa", "grounding", "video"]
_SPLIT_ID = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class Example:
    """One example. `text` is the caption / question / referring expression; `answer` the short answer
    (caption datasets: the caption in the other language is not included, ask for lang="zh")."""

    scene: Scene | VideoScene
    text: str
    answer: str = ""
    image: Image.Image | None = None  # stills
    frames: np.ndarray | None = None  # videos, (T, H, W, 3) uint8
    box: Box | None = None  # grounding target
    span: TimeSpan | None = None  # temporal target
    lang: str = "en"


def split_of(scene: Scene | VideoScene) -> Split:
    """The split a scene belongs to, from a hash of its content (80/10/10)."""
    bucket = int(hashlib.sha1(scene.model_dump_json().encode()).hexdigest(), 16) % 10
    return "train" if bucket < 8 else ("val" if bucket == 8 else "test")


def make_dataset(kind: DatasetKind, n: int, seed: int, split: Split, *, lang: Literal["en", "zh"] = "en",
                 size: int = 64, kinds: Sequence[str] = BASE_KINDS, colours: Sequence[str] | None = None,
                 backgrounds: Sequence[str] = ("white",), n_shapes: int | tuple[int, int] = (1, 3)) -> list[Example]:
    """Build `n` examples of one kind for one split.

    Args:
        kind: "caption" (image, caption), "vqa" (image, question, answer), "grounding" (image, referring
            expression, box) or "video" (frames, temporal question, span).
        n: number of examples.
        seed: dataset seed; each split draws from its own stream of it.
        split: "train", "val" or "test"; scenes of other splits are rejected (content-hash split).
        lang: "en" or "zh".
        size, kinds, colours, backgrounds, n_shapes: passed to the scene sampler.
    """
    if kind not in ("caption", "vqa", "grounding", "video") or split not in _SPLIT_ID or n < 0:
        raise UsageError("bad dataset request", received=(kind, n, split),
                         fix="kind in caption/vqa/grounding/video, split in train/val/test, n >= 0")
    rng = np.random.default_rng([seed, _SPLIT_ID[split]])
    out: list[Example] = []
    while len(out) < n:
        if kind == "video":
            video = sample_video(rng, size=size, kinds=kinds, colours=colours, backgrounds=backgrounds)
            if split_of(video) != split:
                continue
            queries = temporal_queries(video, lang)
            q = queries[int(rng.integers(len(queries)))]
            out.append(Example(video, q.question, frames=render_video(video), span=q.span, lang=lang))
            continue
        scene = sample_scene(rng, n_shapes=n_shapes, kinds=kinds, colours=colours, backgrounds=backgrounds, size=size)
        if split_of(scene) != split:
            continue
        out.append(_still_example(kind, scene, rng, lang))
    return out


def _still_example(kind: str, scene: Scene, rng: np.random.Generator, lang: str) -> Example:
    image = render(scene)
    if kind == "caption":
        return Example(scene, caption(scene, lang), image=image, lang=lang)
    if kind == "vqa":
        qa = sample_question(scene, rng, lang)
        return Example(scene, qa.question, qa.answer, image=image, lang=lang)
    targets = grounding_targets(scene, lang)
    target = targets[int(rng.integers(len(targets)))]
    return Example(scene, target.expression, image=image, box=target.box, lang=lang)
