"""Fake models for testing agents: real values, no weights.

- `ShapesGenerator`: draws what a shapes-world prompt asks for with `mmkit.shapes.render` (text_to_image),
  repaints a mask with the requested shape (inpaint), darkens / brightens (image_to_image), and returns
  real `GenerationResult`s. `faults=` makes chosen calls draw the wrong thing, to exercise retries.
- `ShapesVLM`: reads images with the pixel oracle and answers the shapes-world questions the agent asks
  ("Is there a red circle?", "what colour is the square?", how many, describe) and grounds phrases to
  the oracle's boxes, in English and Chinese.
- `ScriptedVLM`: returns the answers (texts or `Answer`s with boxes) it was given, in order.

They share the call shapes of `ImageGenerator` and `VisionLanguageModel`, so the agent code under test is
the code that runs with real models. This module knows the shapes world; it knows nothing about routing.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Literal, Sequence

import numpy as np
from PIL import Image

from mmkit.exceptions import ModelOutputError, UsageError
from mmkit.generate.result import GenerationParams, GenerationResult, GenerationTimings
from mmkit.shapes import COLOURS, SHAPES, caption, coverage, detect, parse_prompt, perturb, render, scene_from_prompt
from mmkit.shapes.scene import Scene
from mmkit.understand.answer import Answer

from .phrases import detect_language, parse_object

__all__ = ["Fault", "ShapesGenerator", "ShapesVLM", "ScriptedVLM"]

Fault = Literal["none", "wrong_colour", "wrong_kind", "missing"]


def _next(table: dict, name: str) -> str:
    names = list(table)
    return names[(names.index(name) + 1) % len(names)]


class ShapesGenerator:
    """A generator that draws the shapes world exactly (plus seeded blur/noise), with scripted faults.

    Args:
        size: default image side in pixels.
        faults: one entry per call, in call order (calls beyond the list are "none"): "wrong_colour" /
            "wrong_kind" draw the next palette colour / shape class, "missing" draws nothing.
        noise: degrade each output like a small diffusion model (`mmkit.shapes.perturb`, seeded).
    """

    family = "sd15"
    model_id = "fake-shapes-generator"

    def __init__(self, *, size: int = 64, faults: Sequence[Fault] = (), noise: bool = True) -> None:
        self.size, self.noise = size, noise
        self._faults = list(faults)
        self.calls: list[tuple[str, str, int]] = []  # (task, prompt, seed)

    def _fault(self) -> Fault:
        return self._faults.pop(0) if self._faults else "none"

    def _result(self, task: str, image: Image.Image, prompt: str, seed: int, start: float, **params: Any) -> GenerationResult:
        self.calls.append((task, prompt, seed))
        if self.noise:
            image = perturb(image, np.random.default_rng(seed), noise=(0.0, 3.0), jitter=4.0)
        elapsed = time.perf_counter() - start
        steps = int(params.pop("steps", 30))
        record = GenerationParams(task=task, prompt=prompt, steps=steps, width=image.width, height=image.height,
                                  seeds=(seed,), model=self.model_id, family="sd15",
                                  guidance_scale=float(params.pop("guidance_scale", None) or 7.5), **params)
        timings = GenerationTimings(prompt_s=0.0, pipeline_s=elapsed, total_s=elapsed, per_image_s=elapsed,
                                    per_step_s=elapsed / steps)
        return GenerationResult(images=[image], params=record, timings=timings)

    def _scene(self, prompt: str, size: int, fault: Fault) -> Scene:
        try:
            spec = parse_prompt(prompt)
        except UsageError:  # a prompt outside the world draws an empty canvas, like a confused model
            return Scene(size=size, shapes=())
        objects = list(spec.objects)
        if fault == "wrong_colour":
            objects[0] = objects[0].model_copy(update={"colour": _next(COLOURS, objects[0].colour)})
        elif fault == "wrong_kind":
            objects[0] = objects[0].model_copy(update={"kind": _next(SHAPES, objects[0].kind)})
        elif fault == "missing":
            return Scene(size=size, shapes=())
        return scene_from_prompt(spec.model_copy(update={"objects": tuple(objects)}), size=size)

    def text_to_image(self, prompt: str, *, seed: int | None = None, width: int | None = None,
                      height: int | None = None, steps: int = 30, guidance_scale: float | None = None,
                      **_: Any) -> GenerationResult:
        start = time.perf_counter()
        seed = int(np.random.default_rng().integers(2**31)) if seed is None else int(seed)
        image = render(self._scene(prompt, width or self.size, self._fault()))
        return self._result("text_to_image", image, prompt, seed, start, steps=steps, guidance_scale=guidance_scale)

    def image_to_image(self, image: Image.Image, prompt: str, *, strength: float = 0.8, seed: int | None = None,
                       steps: int = 30, guidance_scale: float | None = None, **_: Any) -> GenerationResult:
        start = time.perf_counter()
        seed = 0 if seed is None else int(seed)
        self._fault()
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
        if re.search(r"dark|暗", prompt):
            pixels = pixels * (1 - 0.5 * strength)
        elif re.search(r"bright|light|亮", prompt):
            pixels = pixels + (255 - pixels) * 0.5 * strength
        out = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
        return self._result("image_to_image", out, prompt, seed, start, steps=steps, guidance_scale=guidance_scale,
                            strength=strength)

    def inpaint(self, image: Image.Image, mask: Image.Image, prompt: str, *, mask_dilate: int = 0,
                seed: int | None = None, steps: int = 30, guidance_scale: float | None = None, strength: float = 1.0,
                **_: Any) -> GenerationResult:
        start = time.perf_counter()
        seed = 0 if seed is None else int(seed)
        fault = self._fault()
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32).copy()
        ys, xs = np.nonzero(np.asarray(mask.convert("L")) > 127)
        if len(ys):
            x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
            d = mask_dilate
            pixels[max(0, y1 - d):y2 + d, max(0, x1 - d):x2 + d] = np.median(border, axis=0)
            wanted = parse_object(prompt)
            if wanted is not None and wanted.complete and fault != "missing":
                colour = wanted.colour if fault != "wrong_colour" else _next(COLOURS, wanted.colour)
                kind = wanted.kind if fault != "wrong_kind" else _next(SHAPES, wanted.kind)
                side = min(x2 - x1, y2 - y1)
                cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
                box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
                alpha = coverage(kind, box, *pixels.shape[:2])[..., None]
                pixels = pixels * (1 - alpha) + np.asarray(COLOURS[colour].rgb, dtype=np.float32) * alpha
        out = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
        return self._result("inpaint", out, prompt, seed, start, steps=steps, guidance_scale=guidance_scale,
                            strength=strength, mask_dilate=mask_dilate)


def _last_user(messages: Any, images: Any, videos: Any = None) -> tuple[str, list[Any], list[Any]]:
    """The last user text, and every image and video of a plain-text or message-list request."""
    if isinstance(messages, str):
        return messages, list(images or []), list(videos or [])
    text, found, clips = "", list(images or []), list(videos or [])
    for message in messages:
        content = message["content"]
        parts = [content] if isinstance(content, str) else content
        for part in parts:
            if isinstance(part, str) or part.get("type") == "text":
                if message["role"] == "user":
                    text = part if isinstance(part, str) else part["text"]
            elif part.get("type") == "image":
                found.append(part["image"])
            elif part.get("type") == "video":
                clips.append(part["video"])
    return text, found, clips


class ShapesVLM:
    """A vision-language model that reads images with the shapes-world pixel oracle."""

    model_id = "fake-shapes-vlm"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []  # (method, text)

    def ground(self, image: Image.Image, query: str, **_: Any) -> Answer:
        self.calls.append(("ground", query))
        wanted = parse_object(query)
        boxes = tuple(d.box for d in detect(image) if wanted is not None
                      and (wanted.colour in (None, d.colour)) and (wanted.kind in (None, d.kind))
                      and (wanted.position in (None, d.position)))
        text = json.dumps([{"bbox_2d": [round(v) for v in b.as_tuple()], "label": b.label} for b in boxes])
        return Answer(text=text, raw_text=text, boxes=boxes, model=self.model_id)

    def chat(self, messages_or_text: Any, *, images: Any = None, videos: Any = None, **_: Any) -> Answer:
        text, seen, videos = _last_user(messages_or_text, images, videos)
        self.calls.append(("chat", text))
        zh = detect_language(text) == "zh"
        if videos:
            return Answer(text="视频里有形状在移动。" if zh else "Shapes move in the video.", model=self.model_id)
        if not seen:
            return Answer(text="我没有看到图片。" if zh else "I see no image.", model=self.model_id)
        found = detect(seen[-1])
        wanted = parse_object(text)
        lowered = text.lower()
        if re.search(r"is there|are there|吗", lowered) and wanted is not None:
            hit = any(wanted.colour in (None, d.colour) and wanted.kind in (None, d.kind) for d in found)
            reply = ("有" if hit else "没有") if zh else ("yes" if hit else "no")
        elif re.search(r"colou?r|颜色", lowered) and wanted is not None and wanted.kind:
            hits = [d for d in found if d.kind == wanted.kind]
            reply = (COLOURS[hits[0].colour].zh if zh else hits[0].colour) if hits else ("没有" if zh else "none")
        elif re.search(r"how many|几个", lowered):
            reply = str(sum(wanted is None or (wanted.colour in (None, d.colour) and wanted.kind in (None, d.kind))
                            for d in found))
        else:
            shapes = tuple(d for d in found if d.colour in COLOURS and d.kind in SHAPES)
            reply = (self._describe(shapes, seen[-1].width, "zh" if zh else "en") if shapes
                     else ("空白的图片" if zh else "an empty picture"))
        return Answer(text=reply, raw_text=reply, model=self.model_id)

    @staticmethod
    def _describe(found: tuple, size: int, lang: str) -> str:
        from mmkit.shapes import ShapeSpec

        scene = Scene(size=size, shapes=tuple(
            ShapeSpec(kind=d.kind, colour=d.colour, box=d.box.model_copy(update={
                "x1": max(0.0, d.box.x1), "y1": max(0.0, d.box.y1),
                "x2": min(float(size), d.box.x2), "y2": min(float(size), d.box.y2)}), position=d.position)
            for d in found))
        return caption(scene, lang)


class ScriptedVLM:
    """Answers from a script, in order, whatever is asked; `ModelOutputError` once the script runs out.

    Args:
        answers: texts or `Answer`s (give `Answer(text=..., boxes=(Box(...),))` for grounding replies).
    """

    model_id = "fake-scripted-vlm"

    def __init__(self, answers: Sequence[str | Answer]) -> None:
        self._answers = [a if isinstance(a, Answer) else Answer(text=a, raw_text=a) for a in answers]
        self.calls: list[tuple[str, str]] = []

    def _pop(self, method: str, text: str) -> Answer:
        self.calls.append((method, text))
        if not self._answers:
            raise ModelOutputError("the scripted VLM has no answers left", received=text,
                                   fix="give ScriptedVLM one answer per call the test makes")
        return self._answers.pop(0)

    def chat(self, messages_or_text: Any, *, images: Any = None, **_: Any) -> Answer:
        return self._pop("chat", _last_user(messages_or_text, images)[0])

    def ground(self, image: Any, query: str, **_: Any) -> Answer:
        return self._pop("ground", query)

