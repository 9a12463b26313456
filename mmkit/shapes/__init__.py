"""The shapes world: a small synthetic world where every answer can be checked from pixels.

No pretrained weights can be downloaded here, so mmkit trains its own small models (an SD-1.5-shaped
generator, a ControlNet, a LoRA, a Qwen-VL-shaped VLM) on coloured geometric shapes on plain
backgrounds. This package makes that world and judges it:

- `vocab`: colours, shape classes, backgrounds and 3x3 positions, with English and Chinese names.
- `scene`: typed `Scene` / `ShapeSpec`, seeded `sample_scene`, `layout_scene` for prompt layouts.
- `render`: anti-aliased `render(scene)`, and `perturb` to mimic a small generator's output.
- `language`: captions, question/answer pairs, referring expressions, `parse_prompt`, in en and zh.
- `video`: clips where shapes appear / disappear / move at known times, temporal questions.
- `datasets`: `make_dataset(kind, n, seed, split)` with content-disjoint train/val/test splits.
- `oracle`: reads an image back into shapes (colour, class, box) and judges prompts, counts, boxes.

Everything is numpy + PIL and deterministic from a `numpy.random.Generator`; nothing here needs torch.
"""

from .datasets import DatasetKind, Example, Split, make_dataset, split_of
from .language import (QA, GroundingTarget, caption, grounding_targets, object_phrase, parse_prompt,
                       questions, sample_question, sample_yes_no, scene_from_prompt)
from .oracle import (UNKNOWN, BoxMatch, Detection, ObjectMatch, Verdict, colour_name, count, detect,
                     iou, judge_caption, label_components, match_boxes)
from .render import coverage, perturb, render, shape_stats, unit_outline
from .scene import ObjectSpec, PromptSpec, Scene, ShapeSpec, layout_scene, position_word, sample_scene
from .video import (TemporalQuery, Track, VideoScene, frame_scene, render_video, sample_video,
                    temporal_queries)
from .vocab import BACKGROUNDS, BASE_KINDS, COLOURS, LANGUAGES, NEW_KINDS, POSITIONS, SHAPES

__all__ = [
    # vocabulary
    "COLOURS", "SHAPES", "BASE_KINDS", "NEW_KINDS", "BACKGROUNDS", "POSITIONS", "LANGUAGES",
    # scenes and pixels
    "Scene", "ShapeSpec", "ObjectSpec", "PromptSpec", "sample_scene", "layout_scene", "position_word",
    "render", "perturb", "coverage", "shape_stats", "unit_outline",
    # language
    "QA", "GroundingTarget", "caption", "object_phrase", "questions", "sample_question", "sample_yes_no",
    "grounding_targets", "parse_prompt", "scene_from_prompt",
    # video
    "Track", "VideoScene", "TemporalQuery", "sample_video", "frame_scene", "render_video", "temporal_queries",
    # datasets
    "Example", "Split", "DatasetKind", "make_dataset", "split_of",
    # oracle
    "UNKNOWN", "Detection", "detect", "label_components", "colour_name", "count", "ObjectMatch", "Verdict",
    "judge_caption", "BoxMatch", "match_boxes", "iou",
]
