"""mmkit.evals: the evaluation harness (installed from the repository's `evals/` folder).

    >>> from mmkit.evals import evaluate, list_tasks
    >>> list_tasks()
    ['geneval', 'grounding', 'temporal_grounding', 'vqa']
    >>> result = evaluate("grounding", "Qwen/Qwen2.5-VL-3B-Instruct", limit=20, output_dir="runs/g")
    >>> result.metrics["acc@0.5"].value, result.metrics["acc@0.5"].stderr

Layout (data flows top to bottom):
    registry.py           name -> object tables with "did you mean"
    readers.py            public formats (RefCOCO JSONL/TSV, VLMEvalKit TSV, Charades-STA, GenEval) -> samples
    builtin_data.py       the shapes-world sample set of each task, built offline on first use
    tasks.py              the Task contract and the task registry
    task_understanding.py grounding, vqa, temporal_grounding (VisionLanguageModel)
    task_geneval.py       geneval (ImageGenerator) + GenEval's output layout; judges.py: oracle / VLM judges
    matching.py, metrics.py  answer matching; per-sample scores, mean and stderr, metric registry
    sample_log.py         append-only per-sample JSONL, resume, rank split / merge
    runner.py             evaluate(); identity.py model identity; report.py summary.md + SVG plots
    cli.py                `mmkit eval`
    bench.py              `mmkit bench`: latency, throughput, memory, SDK/raw ratios measured side by side
    bench_measure.py, bench_understand.py, bench_generate.py, bench_full_size.py (published full-size configs)
"""
from __future__ import annotations

from .metrics import METRICS, get_metric, register_metric
from .results import EvalResult, MetricValue, ModelIdentity, RunConfig, RunTimings, SampleRecord, load_result
from .runner import evaluate
from .tasks import TASKS, Task, TaskOptions, get_task, list_tasks, register_task

__all__ = [
    "evaluate", "list_tasks", "get_task", "register_task", "Task", "TaskOptions", "TASKS",
    "METRICS", "get_metric", "register_metric",
    "EvalResult", "MetricValue", "SampleRecord", "ModelIdentity", "RunConfig", "RunTimings", "load_result",
]
