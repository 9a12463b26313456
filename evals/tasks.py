"""What an evaluation task is, and the registry of tasks by name.

A task says which model kind it needs ("vlm" or "generator"), reads its data into typed samples, builds
its small shapes-world sample set, scores one sample with one model call, and aggregates records into
metrics. Tasks are classes registered in `TASKS` under a name, each with a version that changes whenever
its prompts, data or scoring change (results of different versions are not comparable). This module
knows the contract; the tasks live in `task_*.py`, the loop in `runner.py`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, Sequence

from pydantic import BaseModel, ConfigDict, ValidationError

from mmkit.exceptions import UsageError

from .metrics import aggregate
from .registry import Registry
from .results import MetricValue, SampleRecord

__all__ = ["TaskOptions", "Task", "TASKS", "register_task", "get_task", "list_tasks", "ModelKind"]

ModelKind = Literal["vlm", "generator"]


class TaskOptions(BaseModel):
    """Base of each task's options (typed, unknown keys refused)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    def for_config(self) -> dict[str, Any]:
        """The options as JSON values, for the saved run config."""
        return self.model_dump(mode="json")


class Task:
    """Base class of evaluation tasks. Subclasses set the class attributes and implement the methods.

    Attributes:
        name: registry name.
        version: bumped whenever prompts, data or scoring change.
        model_kind: "vlm" (loads `VisionLanguageModel`) or "generator" (loads `ImageGenerator`).
        metrics: metric names (see `metrics.METRICS`) reported overall and per category.
        primary_metric: the headline metric.
        Options: the task's typed options.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    model_kind: ClassVar[ModelKind]
    metrics: ClassVar[tuple[str, ...]]
    primary_metric: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type[TaskOptions]] = TaskOptions

    def __init__(self, options: TaskOptions | None = None) -> None:
        self.options = options if options is not None else self.Options()

    @classmethod
    def from_options(cls, options: dict[str, Any] | None) -> "Task":
        """Build the task with options checked against `Options` (a bad key or value is a `UsageError`)."""
        try:
            return cls(cls.Options(**(options or {})))
        except ValidationError as err:
            raise UsageError(f"bad options for task {cls.name!r}", received=options,
                             fix=f"valid options: {sorted(cls.Options.model_fields)} ({err.errors()[0]['msg']})") from err

    def builtin_data(self, cache_dir: Path) -> Path:
        """Build (once, deterministically) the shapes-world sample set under `cache_dir`; return its file."""
        raise NotImplementedError

    def read(self, path: Path) -> list[Any]:
        """Read a data file into samples (each has a unique `id` and a `category`)."""
        raise NotImplementedError

    def prepare(self, model: Any, output_dir: Path) -> None:
        """Called once before scoring (e.g. to set up a judge)."""

    def score(self, model: Any, sample: Any, *, seed: int, output_dir: Path) -> SampleRecord:
        """Run the model on one sample and score it."""
        raise NotImplementedError

    def summarize(self, records: Sequence[SampleRecord]
                  ) -> tuple[dict[str, MetricValue], dict[str, dict[str, MetricValue]]]:
        """Overall and per-category metrics (default: mean and stderr of each per-sample score)."""
        return aggregate(records, self.metrics)

    def finalize(self, records: Sequence[SampleRecord], output_dir: Path) -> dict[str, str]:
        """Write task-specific outputs after aggregation; return {what: file}."""
        return {}


TASKS: Registry[type[Task]] = Registry("task")


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register a task under `cls.name`."""
    for attr in ("name", "version", "model_kind", "metrics", "primary_metric"):
        if not hasattr(cls, attr):
            raise UsageError(f"task class {cls.__name__} lacks {attr!r}", received=cls.__name__,
                             fix="set name, version, model_kind, metrics and primary_metric")
    if cls.primary_metric not in cls.metrics:
        raise UsageError("primary_metric must be one of metrics", received=cls.primary_metric, fix=f"one of {cls.metrics}")
    TASKS.add(cls.name, cls)
    return cls


def get_task(name: str) -> type[Task]:
    """The task class called `name` (unknown names answer with the closest matches)."""
    _load_builtin_tasks()
    return TASKS.get(name)


def list_tasks() -> list[str]:
    """Names of the registered tasks."""
    _load_builtin_tasks()
    return TASKS.names()


def _load_builtin_tasks() -> None:
    from . import task_geneval, task_shapes, task_understanding  # noqa: F401  (registers on import)
