"""Metrics: per-sample scores (box IoU, temporal IoU, thresholded hits) and their aggregation into a
mean with its standard error, overall and per category.

The standard error is lm-evaluation-harness's `mean_stderr`: sample standard deviation (ddof=1) over
sqrt(n). Metrics are registered by name in `METRICS`; a task lists the names it reports. This module knows
boxes and spans as numbers; it knows nothing about models, files or tasks.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mmkit.understand.answer import Box, TimeSpan
from mmkit.understand.grounding import box_center_inside, iou

from .registry import Registry
from .results import MetricValue, SampleRecord

__all__ = ["Metric", "METRICS", "register_metric", "get_metric", "mean_stderr", "mean_value",
           "combine_means", "box_scores", "temporal_iou", "span_scores", "aggregate"]


@dataclass(frozen=True)
class Metric:
    """A named per-sample metric, averaged over samples."""

    name: str
    description: str
    higher_is_better: bool = True


METRICS: Registry[Metric] = Registry("metric")


def register_metric(name: str, description: str, *, higher_is_better: bool = True) -> Metric:
    """Register a metric that tasks can report by `name`."""
    return METRICS.add(name, Metric(name, description, higher_is_better))


def get_metric(name: str) -> Metric:
    """The metric called `name` (unknown names answer with the closest matches)."""
    return METRICS.get(name)


for _t in (0.3, 0.5, 0.7):
    register_metric(f"acc@{_t}", f"fraction of referring expressions whose first box has IoU >= {_t}")
    register_metric(f"r1@{_t}", f"Recall@1: fraction of queries whose first span has temporal IoU >= {_t}")
register_metric("mean_iou", "mean IoU of the first predicted box with the target (0 when no box)")
register_metric("centre_acc", "fraction whose predicted box centre lies inside the target box")
register_metric("mean_tiou", "mean temporal IoU of the first predicted span with the target (0 when none)")
register_metric("accuracy", "fraction of answers matching the reference")
register_metric("vqa_soft", "VQAv2 accuracy: min(#annotators agreeing / 3, 1), averaged over leave-one-out subsets")
register_metric("image_accuracy", "fraction of generated images the judge accepts")
register_metric("prompt_accuracy", "fraction of prompts whose images the judge all accept")
register_metric("question_score", "fraction of yes/no judge questions answered yes (TIFA/DSG-style)")
register_metric("geneval_score", "GenEval's overall score: mean over tags of the per-tag image accuracy")


def mean_stderr(values: Sequence[float]) -> float | None:
    """Standard error of the mean: sample std (ddof=1) / sqrt(n); None for n < 2."""
    n = len(values)
    if n < 2:
        return None
    mu = sum(values) / n
    var = sum((v - mu) ** 2 for v in values) / (n - 1)
    return math.sqrt(var / n)


def mean_value(values: Sequence[float], *, higher_is_better: bool = True) -> MetricValue:
    """Mean and standard error of per-sample values."""
    n = len(values)
    return MetricValue(value=sum(values) / n if n else float("nan"), stderr=mean_stderr(values), n=n,
                       higher_is_better=higher_is_better)


def combine_means(parts: Sequence[MetricValue]) -> MetricValue:
    """The unweighted mean of independent means (GenEval's overall score); stderr sqrt(sum se^2) / k."""
    k = len(parts)
    if k == 0:
        return MetricValue(value=float("nan"), stderr=None, n=0)
    errors = [p.stderr for p in parts]
    stderr = None if any(e is None for e in errors) else math.sqrt(sum(e * e for e in errors)) / k
    return MetricValue(value=sum(p.value for p in parts) / k, stderr=stderr, n=sum(p.n for p in parts))


def box_scores(pred: Box | None, target: Box, thresholds: Iterable[float] = (0.3, 0.5, 0.7)) -> dict[str, float]:
    """Per-sample grounding scores: `acc@t` (0/1) for each threshold, `mean_iou`, `centre_acc`.

    Args:
        pred: the first predicted box (original-image pixels), or None when the model gave none.
        target: the reference box, same pixels.
        thresholds: IoU thresholds for the accuracy metrics.
    """
    value = iou(pred, target) if pred is not None else 0.0
    scores = {f"acc@{t}": float(value >= t) for t in thresholds}
    scores["mean_iou"] = value
    scores["centre_acc"] = float(pred is not None and box_center_inside(pred, target))
    return scores


def temporal_iou(a: TimeSpan, b: TimeSpan) -> float:
    """Intersection over union of two time spans (0 when both are empty)."""
    inter = max(0.0, min(a.end, b.end) - max(a.start, b.start))
    union = max(a.end, b.end) - min(a.start, b.start) if inter > 0 else a.duration + b.duration
    return inter / union if union > 0 else 0.0


def span_scores(pred: TimeSpan | None, target: TimeSpan,
                thresholds: Iterable[float] = (0.3, 0.5, 0.7)) -> dict[str, float]:
    """Per-query temporal grounding scores: `r1@t` (0/1) and `mean_tiou`, from the first predicted span."""
    value = temporal_iou(pred, target) if pred is not None else 0.0
    scores = {f"r1@{t}": float(value >= t) for t in thresholds}
    scores["mean_tiou"] = value
    return scores


def aggregate(records: Sequence[SampleRecord], metric_names: Sequence[str]
              ) -> tuple[dict[str, MetricValue], dict[str, dict[str, MetricValue]]]:
    """Mean and stderr of each metric over all records and per category.

    Returns:
        (overall, categories): metric -> value, and category -> metric -> value (categories sorted).
    """
    def over(rows: Sequence[SampleRecord]) -> dict[str, MetricValue]:
        out = {}
        for name in metric_names:
            values = [r.scores[name] for r in rows if name in r.scores]
            if values:
                out[name] = mean_value(values, higher_is_better=get_metric(name).higher_is_better)
        return out

    by_category: dict[str, list[SampleRecord]] = {}
    for record in records:
        by_category.setdefault(record.category, []).append(record)
    return over(records), {c: over(rows) for c, rows in sorted(by_category.items())}
