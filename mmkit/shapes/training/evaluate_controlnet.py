"""Score a shapes-world Canny ControlNet with the pixel oracle: do the generated shapes follow the layout?

A trial takes a held-out layout (a test-split scene, `split_of(scene) == "test"`), renders it, and generates
from its caption with `Control(image=render, preprocess="canny")`: the user's path, in which the SDK makes
the edge map (`mmkit.generate.preprocessors.canny`, the thresholds `Control` defaults to; the training uses
the same function and thresholds, so train and inference maps are identical). The trial succeeds when every
layout shape is matched one-to-one (greedy by IoU, `oracle.match_boxes`) by an oracle detection whose box
has IoU >= 0.7 with the shape's box. The same prompts and seeds without the control image give the
baseline, so the ControlNet's effect is visible.

`evaluate_controlnet` loads through `ImageGenerator.from_pretrained(...).add_controlnet(...)`, the SDK's own
path; `quick_layout_scores` runs an in-memory pipeline during training (val split).
This module knows the oracle and the generation API; it knows nothing about training.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from typing import Sequence

import torch
from PIL import Image

from ...exceptions import UsageError
from ...understand.answer import Box
from ..datasets import Split, make_dataset
from ..oracle import Detection, detect, match_boxes
from ..scene import Scene

__all__ = ["IOU_THRESHOLD", "LayoutScore", "layout_score", "layout_scenes", "layout_trial", "score_layouts",
           "quick_layout_scores", "evaluate_controlnet"]

SIZE = 64
STEPS = 20
GUIDANCE = 5.0
IOU_THRESHOLD = 0.7  # the bar: a layout shape is followed when an oracle box has IoU >= 0.7 with it


@dataclass(frozen=True)
class LayoutScore:
    """How one generated image follows its layout."""

    followed: bool  # every layout shape matched by a detection with IoU >= threshold
    ious: tuple[float, ...]  # per layout shape (layout order): IoU of its matched detection, 0.0 when none
    matched: tuple[int | None, ...]  # per layout shape: index of its matched detection, None when none
    extra: int  # detections no layout shape claimed (or claimed with IoU 0)


def layout_score(layout: Sequence[Box], detections: Sequence[Box], *,
                 threshold: float = IOU_THRESHOLD) -> LayoutScore:
    """Match layout boxes to detected boxes one-to-one (greedy by descending IoU) and judge the image.

    Args:
        layout: the wanted boxes (absolute pixels).
        detections: the boxes the oracle found.
        threshold: IoU a layout box needs from its match to count as followed.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold <= 1.0:
        raise UsageError("threshold must be in (0, 1]", received=threshold, fix="Use e.g. 0.7")
    # Greedy by descending IoU: the pairs at or above `threshold` are the same whatever lower cut-off is
    # used, so matching at 0 also yields each layout box's best available IoU for the mean.
    match = match_boxes(list(detections), list(layout), iou_threshold=0.0)
    ious: list[float] = [0.0] * len(layout)
    matched: list[int | None] = [None] * len(layout)
    for d, t, value in match.pairs:
        if value > 0.0:
            ious[t], matched[t] = value, d
    extra = len(detections) - sum(m is not None for m in matched)
    return LayoutScore(followed=all(v >= threshold for v in ious), ious=tuple(ious), matched=tuple(matched),
                       extra=extra)


def _score_image(image: Image.Image, scene: Scene, threshold: float) -> tuple[LayoutScore, bool]:
    """The layout score, and whether the layout is followed with every matched colour and kind right."""
    found: tuple[Detection, ...] = detect(image)
    score = layout_score([s.box for s in scene.shapes], [d.box for d in found], threshold=threshold)
    named = all(d is not None and (found[d].colour, found[d].kind) == (s.colour, s.kind)
                for d, s in zip(score.matched, scene.shapes))
    return score, score.followed and named


def score_layouts(images: Sequence[Image.Image], scenes: Sequence[Scene], *,
                  threshold: float = IOU_THRESHOLD) -> dict:
    """Aggregate `layout_score` over images and the scenes they should follow.

    Returns:
        {"success": share of images that follow their layout, "mean_iou": mean over all layout shapes,
        "exact": share that follow it with no extra shapes, "attributes": share that follow it with
        every matched shape's colour and kind right}
    """
    if len(images) != len(scenes):
        raise UsageError("score_layouts needs one scene per image", received=(len(images), len(scenes)))
    judged = [_score_image(img, scene, threshold) for img, scene in zip(images, scenes)]
    n, ious = max(1, len(judged)), [v for s, _ in judged for v in s.ious]
    return {"success": sum(s.followed for s, _ in judged) / n,
            "mean_iou": sum(ious) / max(1, len(ious)),
            "exact": sum(s.followed and s.extra == 0 for s, _ in judged) / n,
            "attributes": sum(named for _, named in judged) / n}


def layout_scenes(n: int, seed: int, split: Split = "test") -> list[tuple[Scene, str, Image.Image]]:
    """`n` layouts of a split (1-3 shapes, like training): (scene, English caption, rendered image)."""
    return [(e.scene, e.text, e.image) for e in make_dataset("caption", n, seed, split)]


@torch.no_grad()
def quick_layout_scores(pipe, *, n: int = 16, seed: int = 1234, steps: int = 15,
                        guidance_scale: float = GUIDANCE) -> dict:
    """Layout-following of an in-memory `StableDiffusionControlNetPipeline` on `n` val-split layouts (one
    batched call; used to watch training). Control maps are made exactly as the SDK makes them."""
    from ...generate.controlnet import Control
    from ...generate.preprocessors import prepare_control_image

    cases = layout_scenes(n, seed, "val")
    maps = [prepare_control_image(img, "canny", width=SIZE, height=SIZE,
                                  **Control(image=img, preprocess="canny").preprocessor_options())
            for _, _, img in cases]
    pipe.set_progress_bar_config(disable=True)
    gen = [torch.Generator("cpu").manual_seed(seed + i) for i in range(n)]
    images = pipe([text for _, text, _ in cases], image=maps, num_inference_steps=steps,
                  guidance_scale=guidance_scale, generator=gen, height=SIZE, width=SIZE).images
    return {k: round(v, 3) for k, v in score_layouts(images, [s for s, _, _ in cases]).items()}


def layout_trial(gen, scene: Scene, text: str, image: Image.Image, seed: int, *, model: str = "canny",
                 steps: int = STEPS, guidance_scale: float = GUIDANCE, scale: float = 1.0,
                 threshold: float = IOU_THRESHOLD) -> LayoutScore:
    """One layout through the SDK: `text` generated with `Control(image, preprocess="canny")` on the
    generator's ControlNet `model`, then judged against the scene's boxes."""
    from ...generate import Control

    result = gen.text_to_image(text, seed=seed, steps=steps, guidance_scale=guidance_scale, width=SIZE, height=SIZE,
                               control=[Control(image=image, model=model, scale=scale, preprocess="canny")]).image
    return _score_image(result, scene, threshold)[0]


def evaluate_controlnet(base_dir: str | os.PathLike, controlnet_dir: str | os.PathLike, n: int = 200,
                        seed: int = 0, *, steps: int = STEPS, guidance_scale: float = GUIDANCE,
                        scale: float = 1.0, threshold: float = IOU_THRESHOLD, show: bool = True) -> dict:
    """Score a saved ControlNet on held-out layouts, loading both folders through the SDK.

    Args:
        base_dir: the shapes-sd pipeline folder the net was trained on.
        controlnet_dir: the ControlNet folder (config.json + diffusion_pytorch_model.safetensors).
        n: layouts (test split); each is generated with and without the control, seed `seed + i`.
        seed: picks the layouts and the image seeds.
        steps, guidance_scale: sampling settings.
        scale: `Control.scale` (controlnet_conditioning_scale).
        threshold: box IoU a layout shape needs.
        show: print a table.

    Returns:
        {"success", "mean_iou", "exact", "attributes" (with the control), the same four prefixed
        "no_control_" (same prompts and seeds, no control image), "n", "steps", "guidance_scale", "scale"}
    """
    from ...generate import Control, ImageGenerator

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError("n must be a positive int", received=n, fix="Use e.g. n=200")
    gen = ImageGenerator.from_pretrained(base_dir, device="cpu", progress=False)
    name = gen.add_controlnet(controlnet_dir, name="canny")
    cases = layout_scenes(n, seed)
    common = dict(steps=steps, guidance_scale=guidance_scale, width=SIZE, height=SIZE)
    scenes = [s for s, _, _ in cases]
    with_control = [gen.text_to_image(text, seed=seed + i, **common,
                                      control=[Control(image=img, model=name, scale=scale, preprocess="canny")]).image
                    for i, (_, text, img) in enumerate(cases)]
    without = [gen.text_to_image(text, seed=seed + i, **common).image for i, (_, text, _) in enumerate(cases)]
    out: dict = {"n": n, "steps": steps, "guidance_scale": guidance_scale, "scale": scale, "threshold": threshold}
    out.update(score_layouts(with_control, scenes, threshold=threshold))
    out.update({f"no_control_{k}": v for k, v in score_layouts(without, scenes, threshold=threshold).items()})
    if show:
        print(f"{'metric':<14}{'control':>9}{'no control':>12}   (n={n}, steps={steps}, guidance={guidance_scale}, "
              f"scale={scale})")
        for key in ("success", "mean_iou", "exact", "attributes"):
            print(f"{key:<14}{out[key]:>9.3f}{out['no_control_' + key]:>12.3f}"
                  + (f"   bar {0.8} (box IoU >= {threshold})" if key == "success" else ""))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the shapes-sd pipeline folder")
    parser.add_argument("--controlnet", required=True, help="the ControlNet folder")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = evaluate_controlnet(args.base, args.controlnet, n=args.n, seed=args.seed, steps=args.steps,
                                 scale=args.scale)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
