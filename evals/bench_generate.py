"""The generation half of `mmkit bench`: an `ImageGenerator` against the raw diffusers pipeline call.

Measured on one loaded checkpoint:
1. load time and the memory it took;
2. one `text_to_image()` image: per-step and per-image latency (medians of `GenerationResult.timings`),
   images/s, and the call's peak memory above the loaded pipeline;
3. the SDK's overhead: `text_to_image()` against `pipe(prompt=..., ...)` on the SAME pipeline object with the
   same prompt, steps, size, guidance scale and `torch.Generator("cpu").manual_seed(seed)`, interleaved, as a
   ratio.

Like-for-like: the result records whether both sides returned the identical image (pixel for pixel; mmkit's
prompt encoding equals diffusers' for prompts of at most 75 tokens, and both draw the same noise), and the
largest pixel difference if not.

Knows nothing about tables or files (bench.py prints and writes).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mmkit.generate.inputs import FAMILY_DEFAULTS

from .bench_measure import PairTiming, PeakMemory, compare, median_ms

__all__ = ["GenerationSettings", "ImageStats", "SameImage", "GenerationBench", "bench_generation"]

PROMPT = "a photo of a red cat sitting on a chair in the garden, highly detailed"


@dataclass(frozen=True)
class GenerationSettings:
    """How to run the generation benchmark.

    Attributes:
        steps: denoising steps per image.
        size: width and height in pixels (None: the family's default, 512 SD 1.5 / 1024 SDXL).
        seed: the generator seed of every call.
        repeats / warmup: measured / warm-up calls per measurement.
    """

    steps: int = 20
    size: int | None = None
    seed: int = 0
    repeats: int = 5
    warmup: int = 1


@dataclass(frozen=True)
class ImageStats:
    """Medians over `text_to_image()` calls of one image (milliseconds)."""

    prompt_ms: float
    per_step_ms: float
    per_image_ms: float
    images_per_s: float
    peak_memory_mb: float


@dataclass(frozen=True)
class SameImage:
    """Whether the SDK and the raw pipeline produced the same pixels."""

    identical: bool
    max_abs_diff: int
    size: tuple[int, int]


@dataclass(frozen=True)
class GenerationBench:
    """Everything the generation half measured."""

    model: str
    family: str
    device: str
    parameters: int
    load_s: float
    load_memory_mb: float
    memory_source: str
    steps: int
    size: int
    image: ImageStats
    overhead: PairTiming
    like_for_like: SameImage


def _image_stats(generator: Any, call: dict[str, Any], s: GenerationSettings) -> ImageStats:
    for _ in range(s.warmup):
        generator.text_to_image(PROMPT, **call)
    with PeakMemory(generator.device) as peak:
        timings = [generator.text_to_image(PROMPT, **call).timings for _ in range(s.repeats)]
    per_image_ms = median_ms([t.per_image_s for t in timings])
    return ImageStats(
        prompt_ms=median_ms([t.prompt_s for t in timings]), per_step_ms=median_ms([t.per_step_s for t in timings]),
        per_image_ms=per_image_ms, images_per_s=1000.0 / per_image_ms, peak_memory_mb=peak.peak_mb,
    )


def _same_image(a: Any, b: Any) -> SameImage:
    x, y = np.asarray(a, dtype=np.int16), np.asarray(b, dtype=np.int16)
    if x.shape != y.shape:
        return SameImage(identical=False, max_abs_diff=255, size=a.size)
    diff = int(np.abs(x - y).max())
    return SameImage(identical=diff == 0, max_abs_diff=diff, size=a.size)


def bench_generation(load: Any, device: torch.device, settings: GenerationSettings) -> GenerationBench:
    """Run the generation benchmark.

    Args:
        load: a zero-argument callable returning an `ImageGenerator` (timed as the load).
        device: the device `load` puts the pipeline on (where the load's memory is measured).
        settings: what to measure.
    """
    with PeakMemory(device) as loading:
        start = time.perf_counter()
        generator = load()
        load_s = time.perf_counter() - start
    family = generator.family
    size = settings.size or FAMILY_DEFAULTS[family]["size"]
    guidance = FAMILY_DEFAULTS[family]["guidance"]
    call = dict(steps=settings.steps, width=size, height=size, seed=settings.seed, guidance_scale=guidance)
    image = _image_stats(generator, call, settings)
    pipe = generator.pipeline

    def raw() -> Any:  # the diffusers recipe
        return pipe(prompt=PROMPT, num_inference_steps=settings.steps, width=size, height=size,
                    guidance_scale=guidance, generator=torch.Generator("cpu").manual_seed(settings.seed),
                    output_type="pil").images[0]

    overhead, result, raw_image = compare(lambda: generator.text_to_image(PROMPT, **call), raw,
                                          repeats=settings.repeats, warmup=settings.warmup, device=generator.device)
    parameters = sum(p.numel() for name in ("unet", "vae", "text_encoder", "text_encoder_2")
                     if getattr(pipe, name, None) is not None for p in getattr(pipe, name).parameters())
    return GenerationBench(
        model=generator.model_id, family=family, device=f"{generator.device} / {str(pipe.unet.dtype).removeprefix('torch.')}",
        parameters=parameters, load_s=load_s, load_memory_mb=loading.peak_mb, memory_source=loading.source,
        steps=settings.steps, size=size, image=image, overhead=overhead,
        like_for_like=_same_image(result.images[0], raw_image),
    )
