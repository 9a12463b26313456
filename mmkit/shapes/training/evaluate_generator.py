"""Score a shapes-world generator with the pixel oracle: single-object fidelity, two objects with positions,
and inpainting (a masked shape replaced by the requested one, the rest of the image kept).

Prompts come from the test split (`make_dataset(..., split="test")`), whose scenes the training never
saw; every image has a fixed seed, so a score is a deterministic function of (weights, n, seed,
sampling settings). `evaluate_generator` loads through `ImageGenerator.from_pretrained`, the SDK's own
path; `quick_scores` runs an in-memory pipeline during training.
This module knows the oracle and the generation API; it knows nothing about training.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..datasets import make_dataset
from ..oracle import judge_caption
from ..language import caption
from ..scene import Scene, ShapeSpec
from ..vocab import BASE_KINDS, COLOURS

__all__ = ["evaluate_generator", "single_prompts", "pair_prompts", "inpaint_cases", "InpaintCase",
           "prompt_trial", "inpaint_trial", "quick_scores", "masked_psnr", "SIZE", "STEPS", "GUIDANCE"]

SIZE = 64
STEPS = 20
GUIDANCE = 5.0


@dataclass(frozen=True)
class InpaintCase:
    image: Image.Image  # the input scene
    mask: Image.Image  # white = repaint: the replaced shape's box, grown 2 px, on the 4-px latent grid
    prompt: str  # caption of the wanted result (the other shape unchanged)
    keep: np.ndarray  # bool (H, W): pixels outside the mask


def single_prompts(n: int, seed: int) -> list[str]:
    """`n` single-object test-split captions ("a red circle")."""
    return [e.text for e in make_dataset("caption", n, seed, "test", n_shapes=1)]


def pair_prompts(n: int, seed: int) -> list[str]:
    """`n` two-object test-split captions with positions ("a red circle on the left and ...")."""
    return [e.text for e in make_dataset("caption", n, seed, "test", n_shapes=2)]


def _grid_mask(box, grow: int = 2, grid: int = 4) -> tuple[int, int, int, int]:
    x1, y1 = (max(0, int(box.x1) - grow) // grid) * grid, (max(0, int(box.y1) - grow) // grid) * grid
    x2 = min(SIZE, -(-(int(math.ceil(box.x2)) + grow) // grid) * grid)
    y2 = min(SIZE, -(-(int(math.ceil(box.y2)) + grow) // grid) * grid)
    return x1, y1, x2, y2


def _overlaps(a, b) -> bool:
    return a[0] < b.x2 and b.x1 < a[2] and a[1] < b.y2 and b.y1 < a[3]


def inpaint_cases(n: int, seed: int) -> list[InpaintCase]:
    """`n` test-split two-shape scenes; in each, one shape is asked to become another colour and class.
    Scenes whose grown mask would touch the other shape are skipped (deterministically)."""
    from ..render import render

    rng = np.random.default_rng([seed, 7])
    out: list[InpaintCase] = []
    examples = iter(make_dataset("caption", 4 * n + 8, seed + 1, "test", n_shapes=2))
    while len(out) < n:
        scene = next(examples).scene
        which = int(rng.integers(2))
        old, other = scene.shapes[which], scene.shapes[1 - which]
        rect = _grid_mask(old.box)
        if _overlaps(rect, other.box):
            continue
        colour = str(rng.choice([c for c in COLOURS if c != old.colour]))
        kind = str(rng.choice([k for k in BASE_KINDS if k != old.kind]))
        new = ShapeSpec(kind=kind, colour=colour, box=old.box, position=old.position)
        shapes = tuple(new if s is old else s for s in scene.shapes)
        wanted = Scene(size=scene.size, background=scene.background, shapes=shapes)
        mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
        mask[rect[1]:rect[3], rect[0]:rect[2]] = 255
        out.append(InpaintCase(render(scene), Image.fromarray(mask), caption(wanted), mask == 0))
    return out


def masked_psnr(a: Image.Image, b: Image.Image, keep: np.ndarray) -> float:
    """PSNR (dB, 0-255 scale) of two images over the pixels where `keep` is True."""
    diff = np.asarray(a, dtype=np.float64)[keep] - np.asarray(b, dtype=np.float64)[keep]
    mse = float((diff ** 2).mean())
    return 10 * math.log10(255 ** 2 / max(mse, 1e-10))


def _rate(images, prompts) -> float:
    return sum(judge_caption(img, p).passed for img, p in zip(images, prompts)) / max(1, len(prompts))


@torch.no_grad()
def quick_scores(pipe, *, n: int = 24, seed: int = 1234, steps: int = 15, guidance_scale: float = GUIDANCE) -> dict:
    """Text-to-image pass rates of an in-memory pipeline on `n` val-split prompts per category, one batched
    call each (used to watch training): "single" ("a red circle"), "placed" (one object with its position,
    "a red circle at the top left") and "pair" (two objects with positions)."""
    pipe.set_progress_bar_config(disable=True)
    scores = {}
    for name, kw, positions in (("single", 1, None), ("placed", 1, True), ("pair", 2, None)):
        scenes = [e.scene for e in make_dataset("caption", n, seed, "val", n_shapes=kw)]
        prompts = [caption(s, positions=positions) for s in scenes]
        gen = [torch.Generator("cpu").manual_seed(seed + i) for i in range(n)]
        images = pipe(prompts, num_inference_steps=steps, guidance_scale=guidance_scale, generator=gen,
                      height=SIZE, width=SIZE).images
        scores[name] = round(_rate(images, prompts), 3)
    return scores


def prompt_trial(gen, prompt: str, seed: int, *, steps: int = STEPS, guidance_scale: float = GUIDANCE):
    """One text-to-image trial through the SDK: (the oracle passes the image for `prompt`, the image)."""
    image = gen.text_to_image(prompt, seed=seed, steps=steps, guidance_scale=guidance_scale, width=SIZE,
                              height=SIZE).images[0]
    return judge_caption(image, prompt).passed, image


def inpaint_trial(gen, case: InpaintCase, seed: int, *, steps: int = STEPS, guidance_scale: float = GUIDANCE):
    """One inpainting trial: (oracle passes the wanted caption, PSNR of the unmasked pixels in dB, the image).
    A trial succeeds when the oracle passes and the PSNR is >= 30 dB."""
    result = gen.inpaint(case.image, case.mask, case.prompt, seed=seed, steps=steps,
                         guidance_scale=guidance_scale).images[0]
    return judge_caption(result, case.prompt).passed, masked_psnr(result, case.image, case.keep), result


def evaluate_generator(pipeline_dir: str | os.PathLike, n: int = 200, seed: int = 0, *, steps: int = STEPS,
                       guidance_scale: float = GUIDANCE, inpaint_n: int | None = None,
                       show: bool = True) -> dict:
    """Score a saved pipeline with the oracle, loading it through `ImageGenerator.from_pretrained`.

    Args:
        pipeline_dir: a diffusers folder (e.g. `mmkit/shapes/weights/shapes-sd`).
        n: prompts per text-to-image category (single object; two objects with positions).
        seed: picks the test-split prompts; image i is generated with seed `seed + i`.
        steps, guidance_scale: sampling settings.
        inpaint_n: inpainting trials (default n // 2).
        show: print a table.

    Returns:
        {"single": pass rate, "pair": pass rate, "inpaint": success rate (oracle passes and unmasked PSNR
        >= 30 dB), "inpaint_oracle": oracle pass rate, "inpaint_psnr_db": median unmasked PSNR, "n": ...}
    """
    from ...generate import ImageGenerator

    gen = ImageGenerator.from_pretrained(pipeline_dir, device="cpu", progress=False)
    common = dict(steps=steps, guidance_scale=guidance_scale)
    out: dict = {"n": n, "steps": steps, "guidance_scale": guidance_scale}
    for name, prompts in (("single", single_prompts(n, seed)), ("pair", pair_prompts(n, seed))):
        out[name] = sum(prompt_trial(gen, p, seed + i, **common)[0] for i, p in enumerate(prompts)) / max(1, n)
    cases = inpaint_cases(n // 2 if inpaint_n is None else inpaint_n, seed)
    oracle_ok, psnrs = [], []
    for i, case in enumerate(cases):
        ok, psnr, _ = inpaint_trial(gen, case, seed + i, **common)
        oracle_ok.append(ok)
        psnrs.append(psnr)
    out["inpaint"] = sum(ok and p >= 30 for ok, p in zip(oracle_ok, psnrs)) / max(1, len(cases))
    out["inpaint_oracle"] = sum(oracle_ok) / max(1, len(cases))
    out["inpaint_psnr_db"] = float(np.median(psnrs)) if psnrs else float("nan")
    out["inpaint_n"] = len(cases)
    if show:
        print(f"{'metric':<28}{'value':>8}   (n={n}, steps={steps}, guidance={guidance_scale})")
        for key, bar in (("single", 0.9), ("pair", 0.7), ("inpaint", 0.8)):
            print(f"{key:<28}{out[key]:>8.3f}   bar {bar}")
        print(f"{'inpaint_oracle':<28}{out['inpaint_oracle']:>8.3f}")
        print(f"{'inpaint_psnr_db (median)':<28}{out['inpaint_psnr_db']:>8.1f}")
    return out
