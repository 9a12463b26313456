"""The understanding half of `mmkit bench`: a `VisionLanguageModel` against raw transformers on one image.

Measured on one loaded model:
1. load time and the memory it took;
2. one `chat()` call: preprocess / generate / postprocess from `Answer.timings` (medians), tokens/s, and
   the call's peak memory above the loaded model;
3. `chat_batch` throughput at each batch size (the same conversation repeated);
4. the SDK's overhead: `chat()` against the raw transformers call on the SAME model object (the processor's
   chat template + processor + `model.generate` + `batch_decode`), interleaved, as a ratio.

Like-for-like: the image's sides are multiples of the family's resize factor and inside its pixel budget,
so mmkit's smart-resize and the processor's both leave it as it is and both sides feed the same pixels;
both decode greedily with the same eos / pad ids and sampling switches; the number of new tokens is forced
on both sides by setting `min_new_tokens = max_new_tokens` on the model's generation config (what both
`generate` calls read) for the duration of the benchmark. The result records the prompt and completion
token counts of both sides and whether the generated token texts are identical.

Knows nothing about tables or files (bench.py prints and writes).
"""
from __future__ import annotations

import contextlib
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from .bench_measure import PairTiming, PeakMemory, compare, median_ms, timed

__all__ = ["UnderstandingSettings", "CallStats", "BatchStats", "LikeForLike", "UnderstandingBench",
           "bench_understanding", "bench_image"]

PROMPT = "Describe this image in detail."


@dataclass(frozen=True)
class UnderstandingSettings:
    """How to run the understanding benchmark.

    Attributes:
        max_new_tokens: new tokens per answer (forced: every call generates exactly this many).
        batch_sizes: `chat_batch` sizes to measure.
        repeats / warmup: measured / warm-up calls per measurement.
        image_side: the test image's side in pixels (rounded up to the family's resize factor and pixel budget).
    """

    max_new_tokens: int = 32
    batch_sizes: tuple[int, ...] = (1, 2, 4)
    repeats: int = 5
    warmup: int = 1
    image_side: int = 224


@dataclass(frozen=True)
class CallStats:
    """Medians of one `chat()` call (milliseconds) and its token counts."""

    preprocess_ms: float
    generate_ms: float
    postprocess_ms: float
    total_ms: float
    tokens_per_s: float
    prompt_tokens: int
    image_tokens: int
    completion_tokens: int
    peak_memory_mb: float


@dataclass(frozen=True)
class BatchStats:
    """`chat_batch` of `batch_size` copies of the conversation (median wall time)."""

    batch_size: int
    wall_ms: float
    tokens_per_s: float
    answers_per_s: float


@dataclass(frozen=True)
class LikeForLike:
    """What each side of the SDK-vs-raw comparison fed the model and got back."""

    sdk_prompt_tokens: int
    raw_prompt_tokens: int
    sdk_completion_tokens: int
    raw_completion_tokens: int
    same_text: bool

    @property
    def matched(self) -> bool:
        return (self.sdk_prompt_tokens == self.raw_prompt_tokens
                and self.sdk_completion_tokens == self.raw_completion_tokens and self.same_text)


@dataclass(frozen=True)
class UnderstandingBench:
    """Everything the understanding half measured."""

    model: str
    family: str
    device: str
    parameters: int
    load_s: float
    load_memory_mb: float
    memory_source: str
    image_size: tuple[int, int]
    call: CallStats
    batches: tuple[BatchStats, ...]
    overhead: PairTiming
    like_for_like: LikeForLike


def bench_image(factor: int, min_pixels: int, side: int) -> Any:
    """A deterministic RGB test picture whose sides are multiples of `factor`, with >= `min_pixels` pixels."""
    from PIL import Image

    side = factor * max(math.ceil(side / factor), math.ceil(math.sqrt(min_pixels) / factor))
    y, x = np.mgrid[0:side, 0:side]
    pixels = np.stack([(x * 255 // side), (y * 255 // side), ((x // 16 + y // 16) % 2) * 255], axis=-1)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


@contextlib.contextmanager
def _forced_length(model: Any, tokens: int) -> Iterator[None]:
    """Set `min_new_tokens` on the model's generation config (both sides' `generate` reads it), then restore."""
    config = model.generation_config
    before = config.min_new_tokens
    config.min_new_tokens = tokens
    try:
        yield
    finally:
        config.min_new_tokens = before


def _eos_and_pad(vlm: Any) -> tuple[list[int], int]:
    """The stop ids a careful raw caller passes: the generation config's eos plus `<|im_end|>` (Qwen's turn end)."""
    tokenizer = vlm.processor.tokenizer
    eos = vlm.model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])
    ids.add(tokenizer.convert_tokens_to_ids("<|im_end|>"))
    pad = tokenizer.pad_token_id
    return sorted(ids), pad if pad is not None else min(ids)


def _raw_call(vlm: Any, image: Any, max_new_tokens: int) -> Any:
    """The plain transformers recipe (model card): chat template, processor, generate, batch_decode."""
    processor, model = vlm.processor, vlm.model
    eos, pad = _eos_and_pad(vlm)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]

    def call() -> dict[str, Any]:
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = processor(text=[text], images=[image], return_tensors="pt").to(model.device)
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                                 do_sample=False, temperature=None, top_p=None, top_k=None,
                                 eos_token_id=eos, pad_token_id=pad)
        new = out[:, inputs["input_ids"].shape[1]:]
        return {"prompt_tokens": int(inputs["input_ids"].shape[1]), "completion_tokens": int(new.shape[1]),
                "text": processor.batch_decode(new, skip_special_tokens=True)[0]}

    return call


def _sdk_call(vlm: Any, image: Any, max_new_tokens: int) -> Any:
    return lambda: vlm.chat(PROMPT, images=[image], max_new_tokens=max_new_tokens, do_sample=False)


def _call_stats(vlm: Any, image: Any, s: UnderstandingSettings) -> CallStats:
    sdk = _sdk_call(vlm, image, s.max_new_tokens)
    for _ in range(s.warmup):
        sdk()
    with PeakMemory(vlm.plan.device) as peak:
        answers = [sdk() for _ in range(s.repeats)]
    t = [a.timings for a in answers]
    generate_ms = median_ms([x.generate_s for x in t])
    usage = answers[-1].usage
    return CallStats(
        preprocess_ms=median_ms([x.preprocess_s for x in t]), generate_ms=generate_ms,
        postprocess_ms=median_ms([x.postprocess_s for x in t]), total_ms=median_ms([x.total_s for x in t]),
        tokens_per_s=usage.completion_tokens / (generate_ms / 1000.0), prompt_tokens=usage.prompt_tokens,
        image_tokens=usage.image_tokens, completion_tokens=usage.completion_tokens, peak_memory_mb=peak.peak_mb,
    )


def _batch_stats(vlm: Any, image: Any, size: int, s: UnderstandingSettings) -> BatchStats:
    conversation = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": PROMPT}]}]
    call = lambda: vlm.chat_batch([conversation] * size, max_new_tokens=s.max_new_tokens, do_sample=False)  # noqa: E731
    for _ in range(s.warmup):
        call()
    runs = [timed(call, vlm.plan.device) for _ in range(s.repeats)]
    wall = statistics.median(seconds for seconds, _ in runs)
    tokens = sum(a.usage.completion_tokens for a in runs[-1][1])
    return BatchStats(batch_size=size, wall_ms=wall * 1000.0, tokens_per_s=tokens / wall, answers_per_s=size / wall)


def bench_understanding(load: Any, device: torch.device, settings: UnderstandingSettings) -> UnderstandingBench:
    """Run the understanding benchmark.

    Args:
        load: a zero-argument callable returning a `VisionLanguageModel` (timed as the load).
        device: the device `load` puts the model on (where the load's memory is measured).
        settings: what to measure.
    """
    with PeakMemory(device) as loading:
        start = time.perf_counter()
        vlm = load()
        load_s = time.perf_counter() - start
    size = vlm.processor.image_processor.size or {}
    image = bench_image(vlm.family.image_factor, int(size.get("shortest_edge") or 0), settings.image_side)
    with _forced_length(vlm.model, settings.max_new_tokens):
        call = _call_stats(vlm, image, settings)
        batches = tuple(_batch_stats(vlm, image, b, settings) for b in settings.batch_sizes)
        overhead, answer, raw = compare(
            _sdk_call(vlm, image, settings.max_new_tokens), _raw_call(vlm, image, settings.max_new_tokens),
            repeats=settings.repeats, warmup=settings.warmup, device=vlm.plan.device,
        )
    match = LikeForLike(
        sdk_prompt_tokens=answer.usage.prompt_tokens, raw_prompt_tokens=raw["prompt_tokens"],
        sdk_completion_tokens=answer.usage.completion_tokens, raw_completion_tokens=raw["completion_tokens"],
        same_text=answer.raw_text == raw["text"],
    )
    return UnderstandingBench(
        model=vlm.model_id, family=vlm.family.name, device=vlm.plan.describe(),
        parameters=sum(p.numel() for p in vlm.model.parameters()), load_s=load_s, load_memory_mb=loading.peak_mb,
        memory_source=loading.source, image_size=image.size, call=call, batches=batches, overhead=overhead,
        like_for_like=match,
    )
