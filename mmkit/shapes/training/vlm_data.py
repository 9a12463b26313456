"""Training data for the shapes-world VLM: endless train-split samples, encoded exactly as inference encodes them.

A sample is one single-turn chat about one rendered scene, in English or Chinese:

- "ground": the SDK's grounding prompt (`Family.ground_prompt`, what `VisionLanguageModel.ground` sends) and the
  answer Qwen2.5-VL writes, boxes in pixels of the smart-resized input (its native convention):
  ```json\\n[\\n\\t{"bbox_2d": [x1, y1, x2, y2], "label": "red circle"}\\n]\\n```. Queries are the world's
  referring expressions (`grounding_targets`, one box) and category names matching several shapes (all boxes).
- "point": the SDK's pointing prompt, `{"point_2d": [x, y]}` at the box centre, same convention.
- "vqa": a question of `language.questions` and its short canonical answer.
- "caption": "Describe this image." / "描述这张图片。" and `language.caption(scene)`.
- "video": a clip of `shapes.video` and a temporal question ("When does the red circle appear?") answered
  "From 0.75 to 3.75 seconds." / "从0.75秒到3.75秒。". Clips go in as frame lists with the knobs of `video_part`
  (the image pixel budget per frame, `sample_fps` = the clip's fps): 16 tokens per 2 frames, and Qwen2.5-VL's
  time enters through `second_per_grid_ts` (2 / fps), as at inference when the caller passes the same part.

Encoding follows `VisionLanguageModel._prepare` step by step (`to_conversation`, the chat template with the
generation prompt, `mmkit.media.process_vision_info` with the processor's pixel budget, the processor with
`do_resize=False`), then appends the answer tokens and `<|im_end|>`; only those carry a loss. The parity with
the SDK's own preparation is tested (tests/test_shapes_vlm_training.py).

This module knows the shapes world, the prompts and the processor; it knows nothing about the training loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
import torch
from PIL import Image

from ...exceptions import UsageError
from ...media import process_vision_info
from ...media.resize import factor_for, image_target_size
from ...understand.answer import Box, TimeSpan
from ...understand.families import family_for_model_type
from ...understand.messages import to_conversation
from ..datasets import split_of
from ..language import caption, grounding_targets, sample_question, sample_yes_no
from ..render import render
from ..scene import Scene, sample_scene
from ..video import VideoScene, render_video, sample_video, temporal_queries
from ..vocab import BASE_KINDS, COLOURS, POSITIONS, SHAPES

__all__ = ["IGNORE", "CAPTION_PROMPTS", "TaskMix", "Sample", "sample_train", "samples_for", "video_sample",
           "instructed_yes_no", "box_in_input", "box_answer", "point_answer", "span_answer", "video_part", "world_corpus",
           "pixel_budget", "input_size_for", "encode_prompt", "encode_sample", "collate"]

IGNORE = -100
"""Label of tokens without a loss (transformers' `ignore_index`)."""

FAMILY = family_for_model_type("qwen2_5_vl")
CAPTION_PROMPTS = {"en": "Describe this image.", "zh": "描述这张图片。"}
Task = Literal["ground", "point", "vqa", "caption", "video"]
TASKS: tuple[str, ...] = ("ground", "point", "vqa", "caption", "video")


@dataclass(frozen=True)
class TaskMix:
    """How training samples are drawn."""

    ground: float = 0.4  # share of grounding samples
    point: float = 0.1  # share of pointing samples
    vqa: float = 0.35  # share of question/answer samples
    caption: float = 0.15  # share of caption samples
    video: float = 0.0  # share of clips mixed into image batches (they lengthen every row's padding: the
    # training loop rather gives clips batches of their own, see VlmTrainConfig.video_every)
    zh_share: float = 0.3  # share of Chinese prompts
    multi_share: float = 0.15  # grounding: share of category queries that match several shapes (when possible)
    bare_share: float = 0.3  # English grounding: share of queries without "the " ("red circle")
    instructed_share: float = 0.0  # VQA: share of yes/no questions in the instructed form VLM checkers ask
    # ("Is there a red circle in the image? Answer yes or no."; 0 draws nothing, keeping older runs replayable)
    yes_no_share: float = 0.0  # VQA: share of questions drawn by `language.sample_yes_no` (balanced "is there",
    # its "no" about any absent colour and kind) instead of uniformly from `language.questions`
    crowded_share: float = 0.0  # grounding and pointing: share of scenes drawn with 3 shapes (else 1-3)
    # (both: 0 draws nothing, keeping older runs replayable)

    def weights(self) -> np.ndarray:
        w = np.array([self.ground, self.point, self.vqa, self.caption, self.video], dtype=float)
        return w / w.sum()


@dataclass(frozen=True)
class Sample:
    """One chat turn about one image or clip; `boxes` (original pixels) / `span` (seconds) are the targets (for
    questions: the boxes of the shapes the answer is read from, none for a "no")."""

    image: Image.Image | None  # None for clips, and when built for text only (`world_corpus`)
    prompt: str
    answer: str
    task: Task
    lang: str
    scene: Scene | VideoScene
    boxes: tuple[Box, ...] = ()
    frames: np.ndarray | None = None  # clips: (T, H, W, 3) uint8
    span: TimeSpan | None = None
    asks: tuple[str, str] | None = None  # "is there" questions: the (colour, kind) asked about (`QA.asks`)


def _label(colour: str, kind: str, lang: str) -> str:
    return f"{COLOURS[colour].zh}的{SHAPES[kind].zh}" if lang == "zh" else f"{colour} {kind}"


def _fence(items: Sequence[dict]) -> str:
    # Qwen2.5-VL's own answer layout: a json code fence, one object per line, tab-indented.
    body = ",\n".join("\t" + json.dumps(item, ensure_ascii=False) for item in items)
    return f"```json\n[\n{body}\n]\n```"


def _scaled(value: float, scale: float) -> int:
    return int(round(value * scale))


def box_in_input(box: Box, input_size: tuple[int, int], image_size: tuple[int, int]) -> list[int]:
    """`box` (original pixels) as the grounding answer writes it: [x1, y1, x2, y2] in whole pixels of the resized
    input (`input_size`, (w, h))."""
    sx, sy = input_size[0] / image_size[0], input_size[1] / image_size[1]
    return [_scaled(box.x1, sx), _scaled(box.y1, sy), _scaled(box.x2, sx), _scaled(box.y2, sy)]


def box_answer(boxes: Sequence[Box], labels: Sequence[str], input_size: tuple[int, int],
               image_size: tuple[int, int]) -> str:
    """Qwen2.5-VL's grounding answer: `bbox_2d` in pixels of the resized input (`input_size`, (w, h))."""
    items = [{"bbox_2d": box_in_input(b, input_size, image_size), "label": label} for b, label in zip(boxes, labels)]
    return _fence(items)


def point_answer(boxes: Sequence[Box], labels: Sequence[str], input_size: tuple[int, int],
                 image_size: tuple[int, int]) -> str:
    """Qwen2.5-VL's pointing answer: `point_2d` at each box centre, pixels of the resized input."""
    sx, sy = input_size[0] / image_size[0], input_size[1] / image_size[1]
    items = [{"point_2d": [_scaled(b.center[0], sx), _scaled(b.center[1], sy)], "label": label}
             for b, label in zip(boxes, labels)]
    return _fence(items)


def _seconds(value: float) -> str:
    text = f"{value:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def span_answer(span: TimeSpan, lang: str) -> str:
    """"From 0.75 to 3.75 seconds." / "从0.75秒到3.75秒。" (what `parse_time_spans` reads back)."""
    a, b = _seconds(span.start), _seconds(span.end)
    return f"从{a}秒到{b}秒。" if lang == "zh" else f"From {a} to {b} seconds."


def video_part(frames: np.ndarray, fps: float, pixels: dict[str, int]) -> dict[str, Any]:
    """The video part a shapes clip is sent as, in training and to `VisionLanguageModel.chat(videos=[...])`:
    frames with the per-frame pixel budget of images (`pixel_budget(processor)`) and the clip's frame rate."""
    return {"video": list(frames), **pixels, "sample_fps": float(fps), "raw_fps": float(fps)}


def video_sample(video: VideoScene, lang: str, rng: np.random.Generator, *, with_frames: bool = True) -> Sample:
    """A temporal question about a clip and its span answer."""
    queries = temporal_queries(video, lang)  # type: ignore[arg-type]
    query = queries[int(rng.integers(len(queries)))]
    frames = render_video(video) if with_frames else None
    return Sample(None, query.question, span_answer(query.span, lang), "video", lang, video, frames=frames,
                  span=query.span)


def input_size_for(image_size: tuple[int, int], pixels: dict[str, int], patch_size: int) -> tuple[int, int]:
    """(w, h) the SDK resizes an image of `image_size` to (`process_vision_info`'s rule), as `box_answer` needs."""
    height, width = image_target_size(image_size[1], image_size[0], pixels, factor_for(patch_size))
    return width, height


def _multi_query(scene: Scene, rng: np.random.Generator, lang: str) -> tuple[str, list] | None:
    """A category name ("circle", "red shape") that matches two or more shapes, and those shapes."""
    options = []
    for kind in dict.fromkeys(s.kind for s in scene.shapes):
        hits = [s for s in scene.shapes if s.kind == kind]
        if len(hits) > 1:
            options.append((SHAPES[kind].zh if lang == "zh" else kind, hits))
    for colour in dict.fromkeys(s.colour for s in scene.shapes):
        hits = [s for s in scene.shapes if s.colour == colour]
        if len(hits) > 1:
            options.append((f"{COLOURS[colour].zh}的形状" if lang == "zh" else f"{colour} shape", hits))
    return options[int(rng.integers(len(options)))] if options else None


def _targets(scene: Scene, rng: np.random.Generator, lang: str, mix: TaskMix) -> tuple[str, list]:
    """A grounding / pointing query and the shapes it picks out."""
    if rng.random() < mix.multi_share:
        multi = _multi_query(scene, rng, lang)
        if multi is not None:
            return multi
    targets = grounding_targets(scene, lang)
    target = targets[int(rng.integers(len(targets)))]
    shape = next(s for s in scene.shapes if s.box.as_tuple() == target.box.as_tuple())
    query = target.expression
    if lang == "en" and query.startswith("the ") and rng.random() < mix.bare_share:
        query = query[4:]
    return query, [shape]


def samples_for(scene: Scene, task: str, lang: str, rng: np.random.Generator, *, mix: TaskMix = TaskMix(),
                input_size: tuple[int, int], with_image: bool = True) -> Sample:
    """One sample of `task` about `scene` (answers in the resized-input pixels of `input_size`)."""
    image = render(scene) if with_image else None
    size = (scene.size, scene.size)
    if task in ("ground", "point"):
        query, shapes = _targets(scene, rng, lang, mix)
        labels = [_label(s.colour, s.kind, lang) for s in shapes]
        boxes = tuple(s.box for s in shapes)
        if task == "ground":
            return Sample(image, FAMILY.ground_prompt.format(query=query),
                          box_answer(boxes, labels, input_size, size), task, lang, scene, boxes)
        return Sample(image, FAMILY.point_prompt.format(query=query),
                      point_answer(boxes, labels, input_size, size), task, lang, scene, boxes)
    if task == "vqa":
        if mix.yes_no_share > 0 and rng.random() < mix.yes_no_share:
            qa = sample_yes_no(scene, rng, lang)  # type: ignore[arg-type]
        else:
            qa = sample_question(scene, rng, lang)  # type: ignore[arg-type]
        question = qa.question
        if qa.kind == "exists" and mix.instructed_share > 0 and rng.random() < mix.instructed_share:
            question = instructed_yes_no(question, lang)
        return Sample(image, question, qa.answer, task, lang, scene, tuple(shape.box for shape in qa.about),
                      asks=qa.asks)
    return Sample(image, CAPTION_PROMPTS[lang], caption(scene, lang), task, lang, scene)  # type: ignore[arg-type]


def instructed_yes_no(question: str, lang: str) -> str:
    """A world yes/no question in the form general VLM checkers ask it (`agents.VlmChecker`):
    "Is there a red circle?" -> "Is there a red circle in the image? Answer yes or no.";
    "图中有红色的圆吗？" -> "图中有红色的圆吗？请回答有或没有。"."""
    if lang == "zh":
        return f"{question}请回答有或没有。"
    return f"{question.rstrip('?')} in the image? Answer yes or no."


def sample_train(rng: np.random.Generator, *, mix: TaskMix = TaskMix(), input_size: tuple[int, int],
                 size: int = 64, kinds: Sequence[str] = BASE_KINDS, task: str | None = None) -> Sample:
    """A fresh train-split sample (scenes of the val / test splits are rejected, as `make_dataset` does) of
    `task`, or of a task drawn from `mix`."""
    if task is None:
        task = TASKS[int(rng.choice(len(TASKS), p=mix.weights()))]
    lang = "zh" if rng.random() < mix.zh_share else "en"
    n_shapes: int | tuple[int, int] = (1, 3)
    if task in ("ground", "point") and mix.crowded_share > 0 and rng.random() < mix.crowded_share:
        n_shapes = 3
    while True:
        scene = sample_video(rng, size=size, kinds=kinds) if task == "video" else \
            sample_scene(rng, n_shapes=n_shapes, kinds=kinds, size=size)
        if split_of(scene) == "train":
            break
    if isinstance(scene, VideoScene):
        return video_sample(scene, lang, rng)
    return samples_for(scene, task, lang, rng, mix=mix, input_size=input_size)


def world_corpus(n: int = 2000, seed: int = 1234) -> list[str]:
    """Tokenizer training text: the system prompt and `n` training prompts and answers in each language."""
    rng = np.random.default_rng(seed)
    lines = ["You are a helpful assistant.", "system", "user", "assistant", "```json", "0 1 2 3 4 5 6 7 8 9"]
    lines += [p.en_phrase for p in POSITIONS.values()] + [p.zh for p in POSITIONS.values()]
    for lang in ("en", "zh"):
        for i in range(n):
            task = TASKS[i % len(TASKS)]
            if task == "video":
                sample = video_sample(sample_video(rng, kinds=tuple(SHAPES)), lang, rng, with_frames=False)
            else:
                scene = sample_scene(rng, n_shapes=(1, 3), size=64, kinds=tuple(SHAPES))
                sample = samples_for(scene, task, lang, rng, input_size=(112, 112), with_image=False)
            lines += [sample.prompt, sample.answer]
    return lines


# ---------------------------------------------------------------------------------------------------- encoding
def pixel_budget(processor: Any) -> dict[str, int]:
    """The processor's default min/max pixels, which the SDK applies to every image (`_pixel_defaults`)."""
    size = getattr(processor.image_processor, "size", None) or {}
    out = {"min_pixels": size.get("shortest_edge"), "max_pixels": size.get("longest_edge")}
    return {k: int(v) for k, v in out.items() if v}


def encode_prompt(processor: Any, prompt: str, image: Image.Image | None = None, *,
                  video: dict[str, Any] | None = None) -> Any:
    """Processor inputs for one question about one image or one clip (a `video_part`), built step by step as
    `VisionLanguageModel._prepare` builds them."""
    conv = to_conversation(prompt, images=None if image is None else [image], videos=None if video is None else [video])
    text = processor.apply_chat_template(conv.template_messages(), tokenize=False, add_generation_prompt=True)
    pixels = pixel_budget(processor)
    vision = [{"role": m["role"], "content": [{**pixels, **p} if p["type"] == "image" else p for p in m["content"]]}
              for m in conv.messages]
    patch = int(processor.image_processor.patch_size)
    images, videos, _ = process_vision_info(vision, image_patch_size=patch, return_video_kwargs=True,
                                            return_video_metadata=True)
    kwargs: dict[str, Any] = {"text": [text], "padding": True, "return_tensors": "pt", "do_resize": False}
    if images:
        kwargs["images"] = images
    if videos:
        kwargs.update(videos=[v for v, _ in videos], video_metadata=[m for _, m in videos], do_sample_frames=False)
    return processor(**kwargs)


def encode_sample(processor: Any, sample: Sample) -> dict[str, torch.Tensor]:
    """Prompt tokens (no loss) + answer tokens + `<|im_end|>` (loss): input_ids, labels, pixel_values, grid."""
    if sample.image is None and sample.frames is None:
        raise UsageError("this sample was built without its pixels", received=sample.prompt,
                         fix="build it with samples_for(..., with_image=True) / video_sample(..., with_frames=True)")
    video = None
    if sample.frames is not None:
        video = video_part(sample.frames, sample.scene.fps, pixel_budget(processor))  # type: ignore[union-attr]
    inputs = encode_prompt(processor, sample.prompt, sample.image, video=video)
    tokenizer = processor.tokenizer
    answer_ids = tokenizer(sample.answer, add_special_tokens=False)["input_ids"]
    answer = torch.tensor(answer_ids + [tokenizer.convert_tokens_to_ids("<|im_end|>")])
    prompt_ids = inputs["input_ids"][0]
    labels = torch.cat([torch.full_like(prompt_ids, IGNORE), answer])
    # mm_token_type_ids (1 image, 2 video) is what makes the model compute 3-D M-RoPE positions: without it the
    # forward silently falls back to 1-D positions, unlike generation from the processor's inputs.
    out = {"input_ids": torch.cat([prompt_ids, answer]), "labels": labels,
           "mm_token_type_ids": torch.cat([inputs["mm_token_type_ids"][0], torch.zeros_like(answer)])}
    out.update({k: inputs[k] for k in _VISION_KEYS if k in inputs})
    return out


_VISION_KEYS = ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw", "second_per_grid_ts")


def collate(encoded: Sequence[dict[str, torch.Tensor]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch (padding: `pad_id`, attention 0, label IGNORE, token type 0); concatenate the images'
    and clips' patches, grids and `second_per_grid_ts` in batch order (the order the model consumes them)."""
    longest = max(e["input_ids"].numel() for e in encoded)
    ids = torch.full((len(encoded), longest), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), longest), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(encoded), longest), dtype=torch.long)
    types = torch.zeros((len(encoded), longest), dtype=torch.long)
    for row, e in enumerate(encoded):
        n = e["input_ids"].numel()
        ids[row, :n], labels[row, :n], mask[row, :n], types[row, :n] = e["input_ids"], e["labels"], 1, e["mm_token_type_ids"]
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels, "mm_token_type_ids": types}
    for key in _VISION_KEYS:
        parts = [e[key] for e in encoded if key in e]
        if parts:
            batch[key] = torch.cat(parts)
    return batch
