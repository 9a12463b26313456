"""Understanding tasks scored on `VisionLanguageModel` answers: referring-expression grounding,
question answering, and video temporal grounding.

Boxes come from `Answer.boxes`, already in original-image pixels whatever the family emits, and spans
from `Answer.spans`, in seconds; so scoring here is geometry and string matching only. Prompts follow
the public toolkits (VLMEvalKit's multiple-choice suffix, lmms-eval's short-answer suffix). This module
knows tasks and prompts; reading files is `readers.py`, metrics `metrics.py`, the loop `runner.py`.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from mmkit.understand.answer import Box

from .builtin_data import build_grounding, build_temporal, build_vqa, builtin_dataset
from .matching import infer_choice, match_choice, match_open, vqa_soft_score
from .metrics import box_scores, span_scores
from .readers import (GroundingSample, TemporalSample, VQASample, read_grounding, read_temporal, read_vqa)
from .results import SampleRecord
from .tasks import Task, TaskOptions, register_task

__all__ = ["GroundingTask", "VQATask", "TemporalGroundingTask", "MC_SUFFIX", "OPEN_SUFFIX", "TEMPORAL_PROMPT"]

MC_SUFFIX = "Answer with the option's letter from the given choices directly."  # VLMEvalKit
OPEN_SUFFIX = "Answer the question using a single word or phrase."  # lmms-eval / LLaVA
TEMPORAL_PROMPT = ('Give the start and end time of this moment in the video: "{query}". '
                   'Answer with "start - end" in seconds.')


class GroundingOptions(TaskOptions):
    box_format: Literal["xyxy", "xywh"] = "xyxy"  # how the data file writes boxes (COCO: "xywh")
    image_root: str | None = None  # folder of relative image paths (default: the data file's)
    max_new_tokens: int = 128


@register_task
class GroundingTask(Task):
    """RefCOCO-style referring expressions: the first box of `model.ground(image, expression)`."""

    name = "grounding"
    version = "1.0"
    model_kind = "vlm"
    metrics = ("acc@0.5", "acc@0.3", "acc@0.7", "mean_iou", "centre_acc")
    primary_metric = "acc@0.5"
    description = "referring-expression grounding (RefCOCO-style): Acc@IoU, mean IoU, centre accuracy"
    Options = GroundingOptions

    def builtin_data(self, cache_dir: Path) -> Path:
        return builtin_dataset(self.name, self.version, lambda d: build_grounding(d), cache_dir)

    def read(self, path: Path) -> list[GroundingSample]:
        return read_grounding(path, box_format=self.options.box_format, image_root=self.options.image_root)

    def score(self, model: Any, sample: GroundingSample, *, seed: int, output_dir: Path) -> SampleRecord:
        start = time.perf_counter()
        answer = model.ground(sample.image, sample.expression, max_new_tokens=self.options.max_new_tokens, seed=seed)
        seconds = time.perf_counter() - start
        pred: Box | None = answer.boxes[0] if answer.boxes else None
        return SampleRecord(id=sample.id, category=sample.category, scores=box_scores(pred, sample.box),
                            prediction={"box": list(pred.as_tuple()) if pred else None, "text": answer.text},
                            target=list(sample.box.as_tuple()), seconds=seconds)


class VQAOptions(TaskOptions):
    image_root: str | None = None
    max_new_tokens: int = 16


@register_task
class VQATask(Task):
    """VLMEvalKit-style VQA: multiple choice when options are given, else open short answers."""

    name = "vqa"
    version = "1.0"
    model_kind = "vlm"
    metrics = ("accuracy", "vqa_soft")
    primary_metric = "accuracy"
    description = ("visual question answering (VLMEvalKit TSV): multiple-choice and open-answer accuracy; "
                   "VQAv2 soft score when annotator answers are given")
    Options = VQAOptions

    def builtin_data(self, cache_dir: Path) -> Path:
        return builtin_dataset(self.name, self.version, lambda d: build_vqa(d), cache_dir)

    def read(self, path: Path) -> list[VQASample]:
        return read_vqa(path, image_root=self.options.image_root)

    @staticmethod
    def prompt(sample: VQASample) -> str:
        """The question as asked: options listed as "A. text" lines, then the answer-format suffix."""
        if sample.options:
            lines = "\n".join(f"{k}. {v}" for k, v in sample.options.items())
            return f"{sample.question}\n{lines}\n{MC_SUFFIX}"
        return f"{sample.question}\n{OPEN_SUFFIX}"

    def score(self, model: Any, sample: VQASample, *, seed: int, output_dir: Path) -> SampleRecord:
        start = time.perf_counter()
        answer = model.chat(self.prompt(sample), images=[sample.image], max_new_tokens=self.options.max_new_tokens,
                            do_sample=False, seed=seed)
        seconds = time.perf_counter() - start
        if sample.options:
            right = match_choice(answer.text, sample.options, sample.answer)
            extra = {"choice": infer_choice(answer.text, sample.options), "format": "multiple_choice"}
        else:
            right, extra = match_open(answer.text, sample.answer), {"format": "open"}
        scores = {"accuracy": float(right)}
        if sample.answers and not sample.options:
            scores["vqa_soft"] = vqa_soft_score(answer.text, sample.answers)
        return SampleRecord(id=sample.id, category=sample.category, scores=scores,
                            prediction=answer.text, target=sample.answer, seconds=seconds, extra=extra)


class TemporalOptions(TaskOptions):
    video_root: str | None = None
    max_new_tokens: int = 32


@register_task
class TemporalGroundingTask(Task):
    """Charades-STA-style moment retrieval: the first span of the model's answer, in seconds."""

    name = "temporal_grounding"
    version = "1.0"
    model_kind = "vlm"
    metrics = ("r1@0.3", "r1@0.5", "r1@0.7", "mean_tiou")
    primary_metric = "r1@0.5"
    description = "video temporal grounding (Charades-STA): R@1 at IoU 0.3/0.5/0.7, mean temporal IoU"
    Options = TemporalOptions

    def builtin_data(self, cache_dir: Path) -> Path:
        return builtin_dataset(self.name, self.version, lambda d: build_temporal(d), cache_dir)

    def read(self, path: Path) -> list[TemporalSample]:
        return read_temporal(path, video_root=self.options.video_root)

    def score(self, model: Any, sample: TemporalSample, *, seed: int, output_dir: Path) -> SampleRecord:
        start = time.perf_counter()
        answer = model.chat(TEMPORAL_PROMPT.format(query=sample.query), videos=[sample.video],
                            max_new_tokens=self.options.max_new_tokens, do_sample=False, seed=seed)
        seconds = time.perf_counter() - start
        pred = answer.spans[0] if answer.spans else None
        return SampleRecord(id=sample.id, category=sample.category, scores=span_scores(pred, sample.span),
                            prediction={"span": [pred.start, pred.end] if pred else None, "text": answer.text},
                            target=[sample.span.start, sample.span.end], seconds=seconds)
