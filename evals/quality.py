"""`mmkit quality`: the shapes-world quality table of the bundled models, measured by the eval harness.

Each row is one metric of one named task (`task_shapes`) run through `evaluate()` on the committed weights,
next to the bar the project holds it to. Results land in `<output>/<task>/` like any eval run (resumable, with
the model identity and weight hashes) and the table in `<output>/quality.md`. A bundled model that is not in
this installation makes its rows say so instead of failing the others. Knows the rows; not how tasks score.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mmkit.exceptions import ModelLoadError
from mmkit.files import atomic_write_text

__all__ = ["QualityRow", "QUALITY_ROWS", "quality_table", "main"]


@dataclass(frozen=True)
class QualityRow:
    label: str
    task: str
    model: str
    metric: str
    category: str | None  # None: the task's overall value
    bar: str  # the target, as written in the issue ("≥ 0.90")
    minimum: float | None = None  # passes when value >= minimum (None: maximum applies)
    maximum: float | None = None


QUALITY_ROWS: tuple[QualityRow, ...] = (
    QualityRow("generator: single object", "shapes_text_to_image", "mmkit/shapes-sd", "pass", "single", "≥ 0.90", 0.90),
    QualityRow("generator: two objects + positions", "shapes_text_to_image", "mmkit/shapes-sd", "pass", "pair",
               "≥ 0.70", 0.70),
    QualityRow("inpainting: success", "shapes_inpaint", "mmkit/shapes-sd", "success", None, "≥ 0.80", 0.80),
    QualityRow("inpainting: unmasked PSNR (dB)", "shapes_inpaint", "mmkit/shapes-sd", "psnr_db", None, "≥ 30", 30.0),
    QualityRow("ControlNet canny: layout IoU ≥ 0.7", "shapes_controlnet", "mmkit/shapes-sd", "layout_match", None,
               "≥ 0.80", 0.80),
    QualityRow("LoRA star: with adapter", "shapes_lora", "mmkit/shapes-sd", "with_lora", None, "≥ 0.80", 0.80),
    QualityRow("LoRA star: without adapter", "shapes_lora", "mmkit/shapes-sd", "without_lora", None, "≤ 0.20",
               maximum=0.20),
    QualityRow("VLM grounding Acc@0.5", "shapes_grounding", "mmkit/shapes-qwen2.5-vl", "acc@0.5", None, "≥ 0.90", 0.90),
    QualityRow("VLM VQA accuracy", "shapes_vqa", "mmkit/shapes-qwen2.5-vl", "accuracy", None, "≥ 0.90", 0.90),
    QualityRow("VLM video temporal mIoU", "shapes_temporal", "mmkit/shapes-qwen2.5-vl", "mean_tiou", None,
               "≥ 0.5 (stretch)", 0.5),
)


def _passes(row: QualityRow, value: float) -> bool:
    if row.minimum is not None and value < row.minimum:
        return False
    return row.maximum is None or value <= row.maximum


def quality_table(*, limit: int | None = None, output_dir: str | Path = "eval-results/quality", device: str = "cpu",
                  tasks: Sequence[str] | None = None, progress: bool = True, fresh: bool = False) -> list[dict]:
    """Run the shapes-world tasks on the bundled models and return one dict per row.

    Args:
        limit: samples per task (default: the full held-out sets, 200 per generator category, 100 otherwise).
        output_dir: where each task's results and `quality.md` go.
        device: device of the models.
        tasks: only these task names (default: all rows).
        progress: progress bars.
        fresh: score every sample again instead of resuming earlier results in `output_dir` (a resume refuses
            results of other weights, e.g. after a retrain: pass `fresh=True` then).

    Returns:
        [{"label", "task", "value", "stderr", "n", "bar", "passes"}], value None when the model is missing.
    """
    from .runner import evaluate

    out = Path(output_dir)
    rows, results, missing = [], {}, {}
    for row in QUALITY_ROWS:
        if tasks is not None and row.task not in tasks:
            continue
        if row.task not in results and row.task not in missing:
            try:
                results[row.task] = evaluate(row.task, row.model, limit=limit, output_dir=out / row.task,
                                             device=device, progress=progress, resume=not fresh)
            except ModelLoadError as err:
                missing[row.task] = f"{err} ({err.fix})" if getattr(err, "fix", None) else str(err)
        result = results.get(row.task)
        value = None if result is None else (
            result.metrics if row.category is None else result.categories[row.category])[row.metric]
        rows.append({"label": row.label, "task": row.task, "value": None if value is None else value.value,
                     "stderr": None if value is None else value.stderr, "n": None if value is None else value.n,
                     "bar": row.bar, "passes": None if value is None else _passes(row, value.value),
                     "missing": missing.get(row.task)})
    atomic_write_text(out / "quality.md", format_table(rows))
    return rows


def format_table(rows: Sequence[dict]) -> str:
    """The rows as a markdown table."""
    lines = ["| quality | value | ± stderr | n | bar | meets bar |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if r["value"] is None:
            lines.append(f"| {r['label']} | missing | | | {r['bar']} | model not installed |")
            continue
        err = f"{r['stderr']:.3f}" if r["stderr"] is not None else ""
        lines.append(f"| {r['label']} | {r['value']:.3f} | {err} | {r['n']} | {r['bar']} | "
                     f"{'yes' if r['passes'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """`mmkit quality [--limit N] [--output DIR] [--task NAME ...]`; prints the table. Returns 0."""
    parser = argparse.ArgumentParser(prog="mmkit quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, help="samples per task (default: the full held-out sets)")
    parser.add_argument("--output", default="eval-results/quality")
    parser.add_argument("--task", action="append", help="only this task (repeatable)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="score again instead of resuming earlier results")
    parser.add_argument("--agents", type=int, default=0, metavar="N",
                        help="also run N generate and N edit assistant turns on the bundled models (agent_loops)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    rows = quality_table(limit=args.limit, output_dir=args.output, tasks=args.task, progress=not args.no_progress,
                         fresh=args.fresh)
    print(format_table(rows), end="")
    if args.agents:
        from mmkit.generate.generator import ImageGenerator
        from mmkit.understand.model import VisionLanguageModel

        from .agent_loops import format_loop_rates, measure_agent_loops

        vlm = VisionLanguageModel.from_pretrained("mmkit/shapes-qwen2.5-vl", device="cpu", progress=False)
        generator = ImageGenerator.from_pretrained("mmkit/shapes-sd", device="cpu", progress=False)
        table = format_loop_rates(measure_agent_loops(vlm, generator, args.agents))
        atomic_write_text(Path(args.output) / "agent_loops.md", table)
        print(table, end="")
    for r in rows:
        if r.get("missing"):
            print(f"{r['task']}: {r['missing']}")
    print(f"results: {args.output}/")
    return 0
