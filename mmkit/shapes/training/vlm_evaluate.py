"""Scores of a saved shapes-world VLM, measured through the public SDK path on held-out images.

`evaluate_vlm(folder)` loads the folder with `VisionLanguageModel.from_pretrained` and, on scenes of the val or
test split (`make_dataset`, content-disjoint from training), measures:

- grounding Acc@IoU0.5: `vlm.ground(image, expression)` -> the SDK's parser and coordinate conversion -> the first
  box in original pixels, compared with the true box by `mmkit.understand.grounding.iou`; also the mean IoU;
- VQA exact match: `vlm.chat(question, images=[image])` text == the canonical short answer;
- caption exact match: `vlm.chat("Describe this image.")` text == `language.caption(scene)`;
- temporal mIoU on clips: `vlm.chat(question, videos=[video_part(...)])` -> `Answer.spans[0]` vs the true span
  (interval IoU, 0 when no span was written); also the share with IoU >= 0.5.
Half of each task's examples are English, half Chinese. Greedy decoding throughout.

This module knows the SDK's public API and the shapes datasets; it knows nothing about training.
"""

from __future__ import annotations

import os
from typing import Literal

from ..datasets import make_dataset

__all__ = ["evaluate_vlm", "halves", "grounding_iou", "exact_answer", "temporal_iou"]


def _span_iou(a, b) -> float:
    inter = max(0.0, min(a.end, b.end) - max(a.start, b.start))
    union = (a.end - a.start) + (b.end - b.start) - inter
    return inter / union if union > 0 else 0.0


def grounding_iou(vlm, example) -> tuple[float, object]:
    """IoU of the first box `vlm.ground` returns for a grounding example (0 without a box), and the answer."""
    from ...understand.grounding import iou

    answer = vlm.ground(example.image, example.text, max_new_tokens=64)
    return (iou(answer.boxes[0], example.box) if answer.boxes else 0.0), answer


def exact_answer(vlm, example, *, caption: bool = False) -> tuple[bool, object]:
    """Whether the greedy answer to a VQA example (or, with `caption`, "Describe this image.") is exactly
    the canonical answer (caption), and the answer."""
    from .vlm_data import CAPTION_PROMPTS

    prompt, want = (CAPTION_PROMPTS[example.lang], example.text) if caption else (example.text, example.answer)
    answer = vlm.chat(prompt, images=[example.image], max_new_tokens=48 if caption else 16, do_sample=False)
    return answer.text.strip() == want, answer


def temporal_iou(vlm, example) -> tuple[float, object]:
    """Interval IoU of the first span answered about a clip example (0 without a span), and the answer."""
    from .vlm_data import pixel_budget, video_part

    part = video_part(example.frames, example.scene.fps, pixel_budget(vlm.processor))
    answer = vlm.chat(example.text, videos=[part], max_new_tokens=24, do_sample=False)
    return (_span_iou(answer.spans[0], example.span) if answer.spans else 0.0), answer


def _grounding(vlm, examples) -> dict[str, float]:
    ious = [grounding_iou(vlm, ex)[0] for ex in examples]
    return {"grounding_acc50": sum(v >= 0.5 for v in ious) / len(ious), "grounding_miou": sum(ious) / len(ious)}


def _exact(vlm, examples, *, caption: bool) -> float:
    return sum(exact_answer(vlm, ex, caption=caption)[0] for ex in examples) / len(examples)


def _temporal(vlm, examples) -> dict[str, float]:
    ious = [temporal_iou(vlm, ex)[0] for ex in examples]
    return {"temporal_miou": sum(ious) / len(ious), "temporal_acc50": sum(v >= 0.5 for v in ious) / len(ious)}


def halves(kind: str, n: int, seed: int, split: str) -> list:
    """`n` examples of `kind`: the first half English, the second Chinese (the evaluation sets)."""
    en = make_dataset(kind, n - n // 2, seed, split, lang="en")  # type: ignore[arg-type]
    zh = make_dataset(kind, n // 2, seed + 1, split, lang="zh")  # type: ignore[arg-type]
    return en + zh


def evaluate_vlm(model_dir: str | os.PathLike, *, n: int = 100, seed: int = 0,
                 split: Literal["val", "test"] = "test", video: bool = True, verbose: bool = True) -> dict[str, float]:
    """Evaluate a saved shapes VLM folder on `n` held-out examples per task.

    Args:
        model_dir: a folder written by `train_vlm` (or any Qwen-VL folder the SDK loads).
        n: examples per task (half English, half Chinese).
        seed: dataset seed.
        split: "val" (used during training) or "test" (the final report).
        video: also score temporal grounding on `n` clips.
        verbose: print a table.

    Returns:
        {"grounding_acc50", "grounding_miou", "vqa_acc", "caption_em", "n"} and, with `video`,
        {"temporal_miou", "temporal_acc50"}; all in [0, 1].
    """
    from ...understand.model import VisionLanguageModel

    vlm = VisionLanguageModel.from_pretrained(model_dir, device="cpu", dtype="float32", progress=False)
    scores = _grounding(vlm, halves("grounding", n, seed, split))
    scores["vqa_acc"] = _exact(vlm, halves("vqa", n, seed, split), caption=False)
    scores["caption_em"] = _exact(vlm, halves("caption", n, seed, split), caption=True)
    if video:
        scores.update(_temporal(vlm, halves("video", n, seed, split)))
    scores["n"] = float(n)
    if verbose:
        print(f"{'metric':<22}{'value':>8}   ({split} split, n={n} per task, seed={seed})")
        for key in (k for k in scores if k != "n"):
            print(f"{key:<22}{scores[key]:>8.3f}")
    return scores
