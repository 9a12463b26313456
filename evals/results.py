"""Typed evaluation results: per-sample records, metric values with standard errors, and the run
summary saved as JSON (config, model identity, seeds, versions, timings).

This module only defines data and reads/writes it; scoring lives in the tasks, running in `runner.py`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mmkit.files import atomic_write_json

__all__ = ["MetricValue", "SampleRecord", "ModelIdentity", "RunConfig", "RunTimings", "EvalResult",
           "load_result"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MetricValue(_Frozen):
    """One aggregated metric: the mean over samples and the standard error of that mean."""

    value: float = Field(description="the metric (a mean over samples, or a mean of category means)")
    stderr: float | None = Field(description="standard error of `value`; None with fewer than 2 samples")
    n: int = Field(ge=0, description="number of samples aggregated")
    higher_is_better: bool = True


class SampleRecord(_Frozen):
    """What one sample scored: written one per line to the per-sample JSONL, read back on resume."""

    id: str = Field(description="stable sample id (unique within the task's data)")
    category: str = Field(default="all", description="breakdown key (question type, GenEval tag, ...)")
    scores: dict[str, float] = Field(description="metric name -> this sample's value (0/1, IoU, ...)")
    prediction: Any = Field(default=None, description="what the model produced (text, box, span, file)")
    target: Any = Field(default=None, description="the reference answer")
    seconds: float = Field(default=0.0, ge=0, description="wall time of the model call(s) for this sample")
    extra: dict[str, Any] = Field(default_factory=dict, description="task-specific details (judge reasons)")


class ModelIdentity(_Frozen):
    """Which weights were evaluated."""

    kind: Literal["vlm", "generator", "other"]
    source: str = Field(description="hub id or local path the model was loaded from")
    family: str = ""
    weight_sha256: dict[str, str] = Field(default_factory=dict,
                                          description="safetensors file (relative path) -> sha256")
    note: str = Field(default="", description="why hashes are missing, when they are")


class RunConfig(_Frozen):
    """Everything that decides what a run computes; a resumed run must match it."""

    task: str
    task_version: str
    data: str = Field(description="data file, or 'builtin:<name>' for the shapes-world sample set")
    limit: int | None = None
    seed: int = 0
    options: dict[str, Any] = Field(default_factory=dict)


class RunTimings(_Frozen):
    """Seconds, measured with `time.perf_counter`."""

    load_s: float = 0.0
    data_s: float = 0.0
    eval_s: float = Field(default=0.0, description="wall time of this call's scoring loop")
    model_s: float = Field(default=0.0, description="sum of per-sample model time over all samples")
    total_s: float = 0.0
    per_sample_s: float = 0.0
    resumed_samples: int = Field(default=0, description="samples read back from a previous run, not re-scored")


class EvalResult(_Frozen):
    """The result of `evaluate`: saved as `result.json` beside `samples.jsonl`, `summary.md` and plots."""

    config: RunConfig
    model: ModelIdentity
    metrics: dict[str, MetricValue]
    categories: dict[str, dict[str, MetricValue]] = Field(default_factory=dict,
                                                         description="category -> metric -> value")
    n_samples: int
    primary_metric: str
    mmkit_version: str
    timings: RunTimings
    output_dir: str = ""
    files: dict[str, str] = Field(default_factory=dict, description="what -> file written")
    created: str = Field(default="", description="ISO time the result was written")

    @property
    def score(self) -> float:
        """The task's headline number."""
        return self.metrics[self.primary_metric].value

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the result as JSON atomically."""
        return atomic_write_json(path, self.model_dump(mode="json"))


def load_result(path: str | os.PathLike[str]) -> EvalResult:
    """Read a `result.json` written by `EvalResult.save`."""
    return EvalResult.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
