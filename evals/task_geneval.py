"""Text-to-image alignment, GenEval style: generate images for each metadata prompt, judge each image,
and write GenEval's folder layout so results compare with its tables.

Layout under `<output_dir>/geneval/`: `outputs/<index:05d>/metadata.jsonl` (the prompt's metadata line),
`outputs/<index:05d>/samples/<k:04d>.png` (image k, seed = run seed + k), and `results.jsonl` (one line
per image: filename, tag, prompt, correct, reason, metadata — what GenEval's `summary_scores.py` reads).
The overall `geneval_score` is GenEval's: the mean over tags of per-tag image accuracy. This module
knows the layout and the task; judging is `judges.py`.
"""
from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Any, Literal, Sequence

from pydantic import field_serializer, field_validator

from mmkit.exceptions import UsageError
from mmkit.files import atomic_write_bytes, atomic_write_text

from .builtin_data import build_geneval, builtin_dataset
from .judges import Judgement, OracleJudge, VLMJudge
from .metrics import aggregate, combine_means
from .readers import GenEvalPrompt, read_geneval
from .results import MetricValue, SampleRecord
from .tasks import Task, TaskOptions, register_task

__all__ = ["TextToImageTask", "write_geneval_sample", "geneval_folder"]


class GenEvalOptions(TaskOptions):
    judge: Any = "oracle"  # "oracle", "vlm" (needs judge_model), or a judge object (callable)
    judge_model: str | None = None  # VLM judge checkpoint (hub id or folder)
    images_per_prompt: int = 4  # GenEval's default
    steps: int = 30
    guidance_scale: float | None = None
    size: int | None = None  # width = height; None: the generator family's default

    @field_validator("judge")
    @classmethod
    def _judge(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in ("oracle", "vlm") or not (isinstance(value, str) or callable(value)):
            raise ValueError("judge must be 'oracle', 'vlm' or a callable judge(image, prompt) -> Judgement")
        return value

    @field_serializer("judge")
    def _judge_name(self, value: Any) -> str:
        return value if isinstance(value, str) else str(getattr(value, "name", type(value).__name__))


def geneval_folder(output_dir: Path, prompt_id: str) -> Path:
    """`<output_dir>/geneval/outputs/<index:05d>`."""
    return Path(output_dir) / "geneval" / "outputs" / prompt_id


def write_geneval_sample(output_dir: Path, prompt: GenEvalPrompt, images: Sequence[Any]) -> list[Path]:
    """Write one prompt's folder in GenEval's layout; returns the image paths (samples/<k:04d>.png)."""
    folder = geneval_folder(output_dir, prompt.id)
    atomic_write_text(folder / "metadata.jsonl", json.dumps(prompt.metadata()) + "\n")
    paths = []
    for k, image in enumerate(images):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        paths.append(atomic_write_bytes(folder / "samples" / f"{k:04d}.png", buffer.getvalue()))
    return paths


@register_task
class TextToImageTask(Task):
    """GenEval-style compositional alignment of an `ImageGenerator`, judged per image."""

    name = "geneval"
    version = "1.0"
    model_kind = "generator"
    metrics = ("image_accuracy", "prompt_accuracy", "question_score", "geneval_score")
    primary_metric = "geneval_score"
    description = "text-to-image alignment (GenEval metadata), oracle or VLM yes/no judge"
    Options = GenEvalOptions

    def __init__(self, options: GenEvalOptions | None = None) -> None:
        super().__init__(options)
        self._judge: Any = None

    def builtin_data(self, cache_dir: Path) -> Path:
        return builtin_dataset(self.name, self.version, lambda d: build_geneval(d), cache_dir)

    def read(self, path: Path) -> list[GenEvalPrompt]:
        return read_geneval(path)

    def prepare(self, model: Any, output_dir: Path) -> None:
        judge = self.options.judge
        if judge == "oracle":
            self._judge = OracleJudge()
        elif judge == "vlm":
            if not self.options.judge_model:
                raise UsageError("the VLM judge needs a model", received=self.options.judge_model,
                                 fix="pass options={'judge': 'vlm', 'judge_model': PATH_OR_HUB_ID}")
            from mmkit.understand.model import VisionLanguageModel

            self._judge = VLMJudge(VisionLanguageModel.from_pretrained(self.options.judge_model))
        else:
            self._judge = judge

    def score(self, model: Any, sample: GenEvalPrompt, *, seed: int, output_dir: Path) -> SampleRecord:
        start = time.perf_counter()
        size = {"width": self.options.size, "height": self.options.size} if self.options.size else {}
        result = model.text_to_image(sample.prompt, seed=seed, num_images=self.options.images_per_prompt,
                                     steps=self.options.steps, guidance_scale=self.options.guidance_scale, **size)
        seconds = time.perf_counter() - start
        paths = write_geneval_sample(output_dir, sample, result.images)
        verdicts: list[Judgement] = [self._judge(image, sample) for image in result.images]
        scores = {"image_accuracy": sum(v.correct for v in verdicts) / len(verdicts),
                  "prompt_accuracy": float(all(v.correct for v in verdicts))}
        if all(v.score is not None for v in verdicts):
            scores["question_score"] = sum(v.score for v in verdicts) / len(verdicts)
        files = [os.path.relpath(p, output_dir) for p in paths]
        return SampleRecord(id=sample.id, category=sample.tag, scores=scores, prediction=files,
                            target=sample.prompt, seconds=seconds,
                            extra={"correct": [v.correct for v in verdicts], "reasons": [v.reason for v in verdicts],
                                   "seeds": list(result.seeds), "metadata": sample.metadata()})

    def summarize(self, records: Sequence[SampleRecord]
                  ) -> tuple[dict[str, MetricValue], dict[str, dict[str, MetricValue]]]:
        overall, categories = aggregate(records, self.metrics)
        overall["geneval_score"] = combine_means([c["image_accuracy"] for c in categories.values()])
        return overall, categories

    def finalize(self, records: Sequence[SampleRecord], output_dir: Path) -> dict[str, str]:
        lines = []
        for record in records:
            for file, correct, reason in zip(record.prediction, record.extra["correct"], record.extra["reasons"]):
                lines.append({"filename": file, "tag": record.category, "prompt": record.target,
                              "correct": correct, "reason": reason, "metadata": json.dumps(record.extra["metadata"])})
        path = atomic_write_text(Path(output_dir) / "geneval" / "results.jsonl",
                                 "".join(json.dumps(line) + "\n" for line in lines))
        return {"geneval_results": os.path.relpath(path, output_dir)}
