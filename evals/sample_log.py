"""Per-sample records on disk, and how samples are split across processes and merged back.

Each process appends one JSON line per scored sample to its own file, flushed and fsynced before the
next sample starts, so a killed run loses at most the sample in flight; on resume the file is read
back, a torn last line (no newline) is cut off, and samples already scored are skipped. Splitting is
accelerate's `split_between_processes` rule (contiguous slices, the first `n % world` processes take
one extra), so a run under `accelerate launch` shards the same way; the main process merges the rank
files in data order. This module knows files and ranks; it knows nothing about tasks or models.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mmkit.exceptions import UsageError
from mmkit.files import atomic_write_text

from .results import SampleRecord

__all__ = ["ProcessInfo", "shard_range", "read_records", "append_record", "rank_file", "merge_records",
           "current_process"]

SAMPLES_FILE = "samples.jsonl"


@dataclass(frozen=True)
class ProcessInfo:
    """Which process this is. `barrier` blocks until every process reaches it (no-op for one process)."""

    index: int = 0
    count: int = 1
    barrier: Callable[[], None] = field(default=lambda: None, compare=False)

    @property
    def is_main(self) -> bool:
        return self.index == 0


def current_process() -> ProcessInfo:
    """This process under `accelerate launch` / torchrun (WORLD_SIZE > 1), else a single process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return ProcessInfo()
    from accelerate import PartialState

    state = PartialState()
    return ProcessInfo(state.process_index, state.num_processes, state.wait_for_everyone)


def shard_range(n: int, index: int, count: int) -> range:
    """Indices of `n` samples that process `index` of `count` scores (accelerate's split rule)."""
    if count < 1 or not 0 <= index < count:
        raise UsageError("bad process index", received=(index, count), fix="need 0 <= index < count")
    per, extra = divmod(n, count)
    start = index * per + min(index, extra)
    return range(start, start + per + (1 if index < extra else 0))


def rank_file(output_dir: Path, index: int, count: int) -> Path:
    """`samples.jsonl` for one process, `samples.rank<i>.jsonl` for each of several."""
    return Path(output_dir) / (SAMPLES_FILE if count == 1 else f"samples.rank{index}.jsonl")


def read_records(path: Path) -> list[SampleRecord]:
    """Records of a samples file; a torn last line (a run killed mid-write) is cut off the file."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with open(path, "r+b") as handle:
            handle.truncate(keep)
        data = data[:keep]
    out = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if line.strip():
            try:
                out.append(SampleRecord.model_validate_json(line))
            except ValueError as err:
                raise UsageError(f"{path.name} line {number} is not a sample record", received=line[:80],
                                 fix="delete the file or run with resume=False") from err
    return out


def append_record(path: Path, record: SampleRecord) -> None:
    """Append one record as a JSON line, flushed and fsynced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(record.model_dump_json() + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def merge_records(groups: Iterable[Sequence[SampleRecord]], order: Sequence[str]) -> list[SampleRecord]:
    """One record per sample id, in data `order` (later groups win on duplicates); unknown ids dropped."""
    by_id: dict[str, SampleRecord] = {}
    for group in groups:
        by_id.update((r.id, r) for r in group)
    return [by_id[i] for i in order if i in by_id]


def write_records(path: Path, records: Sequence[SampleRecord]) -> Path:
    """Rewrite a samples file atomically (after a merge)."""
    return atomic_write_text(path, "".join(r.model_dump_json() + "\n" for r in records))
