"""Human-readable outputs of a run: `summary.md` and small SVG plots (per-category bars with stderr
whiskers, IoU histograms), written by hand so no plotting dependency is needed.

This module reads an `EvalResult` and its records; it knows nothing about models or tasks.
"""
from __future__ import annotations

import os
from html import escape
from pathlib import Path
from typing import Sequence

from mmkit.files import atomic_write_text

from .metrics import get_metric
from .results import EvalResult, MetricValue, SampleRecord

__all__ = ["bar_chart_svg", "histogram_svg", "write_plots", "summary_markdown"]

_W, _BAR_H, _LEFT, _PAD = 560, 22, 150, 30


def _fmt(v: MetricValue) -> str:
    return f"{v.value:.4f}" + (f" ± {v.stderr:.4f}" if v.stderr is not None else "")


def bar_chart_svg(title: str, bars: Sequence[tuple[str, MetricValue]], *, upper: float = 1.0) -> str:
    """Horizontal bars (value, with a ±stderr whisker) on a 0..`upper` axis."""
    height = _PAD * 2 + _BAR_H * len(bars) + 10
    span = _W - _LEFT - 80
    x = lambda v: _LEFT + span * max(0.0, min(upper, v)) / upper  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" font-family="sans-serif" '
             f'font-size="12">', f'<text x="{_W / 2}" y="18" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{_LEFT}" y1="{_PAD}" x2="{_LEFT}" y2="{height - _PAD}" stroke="#333"/>']
    for i, (label, value) in enumerate(bars):
        y = _PAD + 5 + i * _BAR_H
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 14}" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{_LEFT}" y="{y + 2}" width="{x(value.value) - _LEFT:.1f}" height="{_BAR_H - 6}" '
                     f'fill="#4c78a8"><title>{escape(label)}: {_fmt(value)} (n={value.n})</title></rect>')
        if value.stderr is not None:
            lo, hi, mid = x(value.value - value.stderr), x(value.value + value.stderr), y + _BAR_H / 2 - 1
            parts.append(f'<line x1="{lo:.1f}" y1="{mid}" x2="{hi:.1f}" y2="{mid}" stroke="#000"/>')
        parts.append(f'<text x="{x(value.value) + 6:.1f}" y="{y + 14}">{value.value:.3f}</text>')
    for tick in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{x(tick * upper):.1f}" y="{height - 10}" text-anchor="middle">{tick * upper:g}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def histogram_svg(title: str, values: Sequence[float], *, bins: int = 10) -> str:
    """Histogram of values in [0, 1] (`bins` equal bins, 1.0 falls in the last)."""
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int(v * bins)))] += 1
    top = max(counts) or 1
    width, height, base = 440, 240, 200
    step = (width - 60) / bins
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11">', f'<text x="{width / 2}" y="16" text-anchor="middle" font-weight="bold">'
             f'{escape(title)} (n={len(values)})</text>']
    for i, c in enumerate(counts):
        h = (base - 30) * c / top
        x = 40 + i * step
        parts.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{step - 2:.1f}" height="{h:.1f}" fill="#f58518">'
                     f'<title>[{i / bins:.1f}, {(i + 1) / bins:.1f}): {c}</title></rect>')
        if c:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{base - h - 3:.1f}" text-anchor="middle">{c}</text>')
    for i in range(0, bins + 1, max(1, bins // 5)):
        parts.append(f'<text x="{40 + i * step:.1f}" y="{base + 15}" text-anchor="middle">{i / bins:g}</text>')
    parts.append(f'<line x1="40" y1="{base}" x2="{width - 20}" y2="{base}" stroke="#333"/></svg>')
    return "\n".join(parts) + "\n"


def write_plots(result: EvalResult, records: Sequence[SampleRecord], output_dir: Path) -> dict[str, str]:
    """Per-category bars of the primary metric (when there are categories) and IoU histograms."""
    files: dict[str, str] = {}
    metric = result.primary_metric
    bars = [(c, m[metric]) for c, m in result.categories.items() if metric in m]
    if metric == "geneval_score":  # per tag, GenEval reports image accuracy
        bars = [(c, m["image_accuracy"]) for c, m in result.categories.items() if "image_accuracy" in m]
        metric = "image_accuracy"
    if bars:
        path = atomic_write_text(output_dir / "plots" / f"categories_{metric}.svg",
                                 bar_chart_svg(f"{result.config.task}: {metric} by category", bars))
        files["plot_categories"] = os.path.relpath(path, output_dir)
    for key in ("mean_iou", "mean_tiou"):
        values = [r.scores[key] for r in records if key in r.scores]
        if values:
            name = "IoU" if key == "mean_iou" else "temporal IoU"
            path = atomic_write_text(output_dir / "plots" / f"histogram_{key.removeprefix('mean_')}.svg",
                                     histogram_svg(f"{result.config.task}: {name}", values))
            files[f"plot_{key.removeprefix('mean_')}_histogram"] = os.path.relpath(path, output_dir)
    return files


def summary_markdown(result: EvalResult) -> str:
    """The run as markdown: headline metrics with stderr, per-category table, model, config, timings."""
    cfg, t = result.config, result.timings
    lines = [f"# {cfg.task} v{cfg.task_version}: {result.primary_metric} = {result.score:.4f}", "",
             f"- model: `{result.model.source}` ({result.model.kind}{', ' + result.model.family if result.model.family else ''})",
             f"- data: `{cfg.data}`, samples: {result.n_samples}" + (f" (limit {cfg.limit})" if cfg.limit else ""),
             f"- seed: {cfg.seed}, mmkit {result.mmkit_version}, written {result.created}",
             f"- time: {t.total_s:.1f} s total, {t.per_sample_s:.3f} s per sample"
             + (f", {t.resumed_samples} samples resumed" if t.resumed_samples else ""), "",
             "| metric | value | stderr | n |", "| --- | --- | --- | --- |"]
    for name, v in result.metrics.items():
        arrow = "↑" if get_metric(name).higher_is_better else "↓"
        lines.append(f"| {name} {arrow} | {v.value:.4f} | {'' if v.stderr is None else f'{v.stderr:.4f}'} | {v.n} |")
    if len(result.categories) > 1:
        names = [m for m in result.metrics if any(m in c for c in result.categories.values())]
        lines += ["", "## By category", "", "| category | n | " + " | ".join(names) + " |",
                  "| --- | --- |" + " --- |" * len(names)]
        for cat, values in result.categories.items():
            n = max((v.n for v in values.values()), default=0)
            cells = [_fmt(values[m]) if m in values else "" for m in names]
            lines.append(f"| {cat} | {n} | " + " | ".join(cells) + " |")
    if result.model.weight_sha256:
        lines += ["", "## Weights", ""] + [f"- `{f}`: `{h}`" for f, h in result.model.weight_sha256.items()]
    elif result.model.note:
        lines += ["", f"Weights: {result.model.note}"]
    plots = [f for k, f in result.files.items() if k.startswith("plot_")]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(lines) + "\n"
