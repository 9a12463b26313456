"""Clocks and memory gauges for `mmkit bench`: medians, the interleaved SDK-vs-raw comparison, peak memory.

- `compare(sdk, raw, ...)` times two callables side by side in one process: warm-up calls of both, then
  `repeats` rounds that alternate the order (SDK first, raw first, SDK first, ...: every pair runs the
  same code in both positions, so a slow drift of the machine, or a cache the first call warms for the
  second, lands on both sides). The ratio is median(sdk) / median(raw).
- `PeakMemory` measures the peak memory of a block above what was in use when it started: on CUDA
  `torch.cuda.max_memory_allocated` (tensors only, after `reset_peak_memory_stats`); on the CPU the process's
  resident-set high-water mark (`VmHWM` in /proc/self/status, reset by writing 5 to /proc/self/clear_refs),
  which sees torch's allocations (tracemalloc does not). Where /proc cannot be reset, `ru_maxrss` is used and
  the figure is a lower bound (the high-water mark may predate the block); `source` says which was used.

Knows nothing about models: it times and measures callables.
"""
from __future__ import annotations

import re
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

__all__ = ["sync", "timed", "median_ms", "PairTiming", "compare", "PeakMemory"]

_MB = 1024 * 1024


def sync(device: torch.device | str) -> None:
    """Wait for queued accelerator work, so a clock read after it covers the work."""
    kind = torch.device(device).type
    if kind == "cuda":
        torch.cuda.synchronize()
    elif kind == "npu":
        torch.npu.synchronize()  # type: ignore[attr-defined]
    elif kind == "mps":
        torch.mps.synchronize()


def timed(fn: Callable[[], Any], device: torch.device | str) -> tuple[float, Any]:
    """(seconds, result) of one call, with the device synchronised before and after."""
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - start, result


def median_ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000.0


@dataclass(frozen=True)
class PairTiming:
    """The SDK and the raw library call timed side by side (milliseconds, medians over `repeats`).

    Attributes:
        sdk_ms / raw_ms: median wall time of one call.
        ratio: sdk_ms / raw_ms (1.0 = no overhead).
        overhead_ms: sdk_ms - raw_ms.
        pair_ratios: sdk / raw of each round, in order (spread at a glance).
        repeats / warmup: measured rounds / warm-up rounds (each round calls both sides once).
        order: how the calls were interleaved.
    """

    sdk_ms: float
    raw_ms: float
    ratio: float
    overhead_ms: float
    pair_ratios: tuple[float, ...]
    repeats: int
    warmup: int
    order: str = "alternating: sdk,raw then raw,sdk"


def compare(sdk: Callable[[], Any], raw: Callable[[], Any], *, repeats: int, warmup: int,
            device: torch.device | str) -> tuple[PairTiming, Any, Any]:
    """Time `sdk()` against `raw()` interleaved; returns the timing and the last output of each side."""
    sdk_out = raw_out = None
    for _ in range(warmup):
        sdk_out, raw_out = sdk(), raw()
    sdk_s: list[float] = []
    raw_s: list[float] = []
    for round_ in range(repeats):
        if round_ % 2 == 0:
            (a, sdk_out), (b, raw_out) = timed(sdk, device), timed(raw, device)
        else:
            (b, raw_out), (a, sdk_out) = timed(raw, device), timed(sdk, device)
        sdk_s.append(a)
        raw_s.append(b)
    sdk_ms, raw_ms = median_ms(sdk_s), median_ms(raw_s)
    timing = PairTiming(
        sdk_ms=sdk_ms, raw_ms=raw_ms, ratio=sdk_ms / raw_ms, overhead_ms=sdk_ms - raw_ms,
        pair_ratios=tuple(a / b for a, b in zip(sdk_s, raw_s)), repeats=repeats, warmup=warmup,
    )
    return timing, sdk_out, raw_out


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            found = re.search(rf"^{field}:\s+(\d+)\s+kB", handle.read(), re.MULTILINE)
    except OSError:
        return None
    return int(found.group(1)) if found else None


def _reset_rss_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # "5": reset the peak RSS (VmHWM) to the current RSS (Linux >= 4.0)
    except OSError:
        return False
    return True


def _maxrss_bytes() -> int:
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024  # bytes on macOS, kB on Linux


class PeakMemory:
    """`with PeakMemory(device) as peak: ...` then `peak.peak_mb` (above the start) and `peak.source`."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.peak_mb: float = 0.0
        self.source: str = ""
        self._base = 0

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            self.source = "torch.cuda.max_memory_allocated"
        elif _reset_rss_peak() and _status_kb("VmRSS") is not None:
            self._base = (_status_kb("VmRSS") or 0) * 1024
            self.source = "VmHWM (peak RSS, reset via /proc/self/clear_refs)"
        else:
            self._base = _maxrss_bytes()
            self.source = "ru_maxrss (not resettable: a lower bound)"
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self.source.startswith("VmHWM"):
            peak = (_status_kb("VmHWM") or 0) * 1024
        else:
            peak = _maxrss_bytes()
        self.peak_mb = max(0, peak - self._base) / _MB
