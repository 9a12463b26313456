"""`evaluate()`: run one task on one model and save a typed, resumable result.

Steps: pick the task by name and check its options; load the model the task needs (a path loads a
`VisionLanguageModel` or an `ImageGenerator`; any object with the task's methods is used as is); read
the data (or build the shapes-world sample set); skip samples already in `samples.jsonl` (resume);
score this process's shard, appending each record as it is made; on the main process merge the shards,
aggregate, and write `result.json`, `summary.md` and plots. This module knows the loop and the files;
scoring is the tasks', file formats the readers'.
"""
from __future__ import annotations

import datetime
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

from mmkit.exceptions import UsageError
from mmkit.files import atomic_write_json, atomic_write_text

from .builtin_data import eval_cache_dir
from .identity import model_identity
from .report import summary_markdown, write_plots
from .results import EvalResult, RunConfig, RunTimings, SampleRecord
from .sample_log import (SAMPLES_FILE, ProcessInfo, append_record, current_process, merge_records, rank_file,
                         read_records, shard_range, write_records)
from .tasks import Task, get_task

__all__ = ["evaluate", "load_model"]


def load_model(kind: str, source: str | os.PathLike[str], *, device: str = "auto") -> Any:
    """Load the model a task needs: "vlm" -> `VisionLanguageModel`, "generator" -> `ImageGenerator`."""
    if kind == "vlm":
        from mmkit.understand.model import VisionLanguageModel

        return VisionLanguageModel.from_pretrained(source, device=device, progress=False)
    from mmkit.generate.generator import ImageGenerator

    return ImageGenerator.from_pretrained(source, device=device, progress=False)


def _samples(task: Task, data: Any, cache_dir: Path | None) -> tuple[list[Any], str]:
    if data is None:
        path = task.builtin_data(cache_dir if cache_dir is not None else eval_cache_dir())
        return task.read(path), f"builtin:{task.name}-v{task.version}"
    if isinstance(data, (str, os.PathLike)):
        return task.read(Path(data)), str(Path(data).resolve())
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return list(data), f"python:{len(data)} samples"
    raise UsageError("data must be None (built-in set), a file path, or a list of samples", received=type(data).__name__,
                     fix="pass data='refcoco_val.jsonl' or leave it out")


def _check_resume(run_file: Path, config: RunConfig, source: str, weights: dict[str, str]) -> None:
    previous = json.loads(run_file.read_text(encoding="utf-8"))
    old = RunConfig.model_validate(previous["config"]).model_dump(exclude={"limit"})
    new = config.model_dump(exclude={"limit"})
    changed = sorted(k for k in new if old.get(k) != new[k]) + (["model"] if previous.get("model") != source else [])
    # the same folder with retrained weights is another model: its earlier scores must not be reused
    if previous.get("weight_sha256", {}) != weights:
        changed.append("model weights (same source, different safetensors hashes)")
    if changed:
        raise UsageError(f"{run_file.parent} holds a run with a different {', '.join(changed)}", received=changed,
                         fix="use another output_dir, or resume=False to start over there")


def _start_files(out: Path, config: RunConfig, identity: Any, resume: bool, process: ProcessInfo) -> None:
    run_file = out / "run.json"
    source, weights = identity.source, dict(identity.weight_sha256)
    if process.is_main:
        if resume and run_file.is_file():
            _check_resume(run_file, config, source, weights)
        elif not resume:
            for stale in [out / SAMPLES_FILE, *out.glob("samples.rank*.jsonl")]:
                stale.unlink(missing_ok=True)
        atomic_write_json(run_file, {"config": config.model_dump(mode="json"), "model": source,
                                     "weight_sha256": weights})
    process.barrier()


def _score(task: Task, model: Any, todo: Sequence[Any], log: Path, seed: int, out: Path, progress: bool,
           show: bool) -> float:
    from tqdm.auto import tqdm

    start = time.perf_counter()
    for sample in tqdm(todo, desc=f"eval {task.name}", disable=not (progress and show), unit="sample"):
        record = task.score(model, sample, seed=seed, output_dir=out)
        append_record(log, record)
    return time.perf_counter() - start


def evaluate(task: str, model: Any, *, data: Any = None, limit: int | None = None,
             output_dir: str | os.PathLike[str] | None = None, resume: bool = True, seed: int = 0,
             options: dict[str, Any] | None = None, device: str = "auto", progress: bool = True,
             cache_dir: str | os.PathLike[str] | None = None, process: ProcessInfo | None = None) -> EvalResult | None:
    """Evaluate a model on a registered task.

    Args:
        task: a task name (`list_tasks()`); unknown names answer with the closest ones.
        model: a loaded model, or a hub id / path loaded as the task's model kind (VLM or generator).
        data: a data file in the task's public format, a list of samples, or None for the built-in
            shapes-world set (built on first use, offline).
        limit: score only the first `limit` samples (quick runs).
        output_dir: where `result.json`, `samples.jsonl`, `summary.md` and `plots/` go
            (default `eval-results/<task>`).
        resume: skip samples already scored in `output_dir` (the run config must match, `limit` aside);
            False deletes earlier sample files there first.
        seed: seed of every model call (generation: image k of a prompt uses seed + k).
        options: task options (e.g. grounding `{"box_format": "xywh"}`, geneval `{"judge": "vlm",
            "judge_model": ..., "steps": 30, "images_per_prompt": 4}`).
        device: device for models loaded from a path.
        progress: show a progress bar.
        cache_dir: where built-in sets are built (default `$MMKIT_EVAL_CACHE` or `~/.cache/mmkit/evals`).
        process: this process's rank (default: accelerate's when launched with several, else one process).

    Returns:
        The `EvalResult` (also saved as `result.json`); None on processes other than the main one.
    """
    t0 = time.perf_counter()
    runner = get_task(task).from_options(options)
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise UsageError("limit must be a positive integer or None", received=limit, fix="pass e.g. limit=20")
    process = process or current_process()
    out = Path(output_dir) if output_dir is not None else Path("eval-results") / runner.name
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(model, (str, os.PathLike)):
        model = load_model(runner.model_kind, model, device=device)
    identity = model_identity(model, runner.model_kind)
    load_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    samples, data_label = _samples(runner, data, Path(cache_dir) if cache_dir else None)
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids):
        raise UsageError("sample ids repeat", received=sorted({i for i in ids if ids.count(i) > 1})[:5],
                         fix="give every row a unique id / index")
    samples = samples[:limit] if limit else samples
    data_s = time.perf_counter() - t1
    config = RunConfig(task=runner.name, task_version=runner.version, data=data_label, limit=limit, seed=seed,
                       options=runner.options.for_config())
    _start_files(out, config, identity, resume, process)

    done = {r.id for r in read_records(out / SAMPLES_FILE)}
    resumed = len(done & set(ids[: len(samples)]))
    log = rank_file(out, process.index, process.count)
    if process.count > 1:
        done |= {r.id for r in read_records(log)}
    mine = [samples[i] for i in shard_range(len(samples), process.index, process.count)]
    todo = [s for s in mine if s.id not in done]
    if todo:
        runner.prepare(model, out)
    eval_s = _score(runner, model, todo, log, seed, out, progress, process.is_main) if todo else 0.0
    process.barrier()
    if not process.is_main:
        return None
    return _finish(runner, out, process, samples, config, identity, resumed, (load_s, data_s, eval_s, t0))


def _finish(runner: Task, out: Path, process: ProcessInfo, samples: Sequence[Any], config: RunConfig,
            identity: Any, resumed: int, times: tuple[float, float, float, float]) -> EvalResult:
    from mmkit import __version__

    main_file = out / SAMPLES_FILE
    order = [s.id for s in samples]
    if process.count > 1:  # merge the rank files into samples.jsonl, then remove them
        rank_files = [rank_file(out, i, process.count) for i in range(process.count)]
        groups = [read_records(main_file), *(read_records(f) for f in rank_files)]
        every = list(dict.fromkeys([*order, *(r.id for g in groups for r in g)]))  # data order, then the rest
        write_records(main_file, merge_records(groups, every))
        for f in rank_files:
            f.unlink(missing_ok=True)
    records: list[SampleRecord] = merge_records([read_records(main_file)], order)
    missing = len(order) - len(records)
    if missing:
        raise UsageError(f"{missing} samples have no record after the run", received=missing,
                         fix="a process failed: run again with resume=True to score the rest")
    metrics, categories = runner.summarize(records)
    load_s, data_s, eval_s, t0 = times
    model_s = sum(r.seconds for r in records)
    timings = RunTimings(load_s=load_s, data_s=data_s, eval_s=eval_s, model_s=model_s,
                         total_s=time.perf_counter() - t0, per_sample_s=model_s / len(records) if records else 0.0,
                         resumed_samples=resumed)
    result = EvalResult(config=config, model=identity, metrics=metrics, categories=categories,
                        n_samples=len(records), primary_metric=runner.primary_metric, mmkit_version=__version__,
                        timings=timings, output_dir=str(out),
                        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    files = {"samples": SAMPLES_FILE, "run": "run.json", **runner.finalize(records, out),
             **write_plots(result, records, out), "summary": "summary.md", "result": "result.json"}
    result = result.model_copy(update={"files": files})
    atomic_write_text(out / "summary.md", summary_markdown(result))
    result.save(out / "result.json")
    return result
