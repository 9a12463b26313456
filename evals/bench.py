"""`mmkit bench`: speed and memory of the SDK, and its overhead against the raw library calls.

Prints a table and writes the numbers as JSON (atomically). By default it runs the tiny checkpoints of
`mmkit.testing` (Qwen2.5-VL and SD 1.5) on the CPU: a check of the plumbing and of the SDK's fixed cost
per call, not of model speed.

    mmkit bench                                     # tiny models, device auto
    mmkit bench --vlm Qwen/Qwen2.5-VL-3B-Instruct --generator stable-diffusion-v1-5/stable-diffusion-v1-5
    mmkit bench --vlm tiny:qwen3_vl --generator tiny:sdxl --repeats 10 --output bench.json
    mmkit bench --only understanding --max-new-tokens 64 --batch-sizes 1,2,4,8

What is measured (see bench_understand.py and bench_generate.py):
- understanding: load time and memory; one `chat()` split into preprocess / generate / postprocess;
  tokens/s; `chat_batch` throughput per batch size; peak memory of a call; and `chat()` against the raw
  transformers recipe (processor + `model.generate`) on the same loaded model, same pixels, greedy, the
  same forced number of new tokens, timed interleaved: the ratio sdk/raw.
- generation: load time and memory; per-step and per-image latency, images/s, peak memory; and
  `text_to_image()` against the raw diffusers pipeline call with the same prompt, steps, size, guidance and
  seed, interleaved: the ratio sdk/raw. The JSON records whether both sides made identical tokens / pixels.
Load times exclude importing torch / transformers / diffusers (done before the clock starts). Timings are
medians of `--repeats` calls after `--warmup` calls; on a machine that is busy with other work they are
contended: the header shows the load average.

How to benchmark on a GPU (no download needed):

    mmkit bench --device cuda --random-full-size qwen2_5_vl_7b --random-full-size sd15
    mmkit bench --device cuda --random-full-size qwen3_vl_8b --random-full-size sdxl --max-new-tokens 128

`--random-full-size` builds the published full-size architecture (Qwen2.5-VL-7B, Qwen3-VL-8B, SD 1.5,
SDXL base; values in bench_full_size.py) with random weights directly on the device, in bfloat16 on CUDA
(dtype "auto"; `--dtype float16` on pre-Ampere GPUs). The tokenizers are the tiny ones (their ids are valid
in the real vocabularies, whose sizes the models keep), so prompts are shorter in tokens than with the
real tokenizers: the token counts are in the output. Random weights are as fast as trained ones, so the
step times, tokens/s, memory and SDK overhead are those of the real model at these lengths. With a
downloaded checkpoint, pass `--vlm` / `--generator` instead. On CUDA, peak memory is
`torch.cuda.max_memory_allocated`; on the CPU it is the resident-set high-water mark.

`main(argv)` is the command line; `mmkit/cli.py` forwards the arguments after `bench` to it. This module
owns the command line, the table and the JSON; it knows nothing about how each half measures.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

import torch

from mmkit.exceptions import UsageError
from mmkit.files import atomic_write_json

from .bench_full_size import FULL_SIZE_NAMES, full_size_kind
from .bench_generate import GenerationBench, GenerationSettings, bench_generation
from .bench_understand import UnderstandingBench, UnderstandingSettings, bench_understanding

__all__ = ["main", "build_parser", "BenchReport", "run_bench", "format_table"]

SCHEMA = "mmkit.bench/1"
_TINY_VLMS = ("qwen2_5_vl", "qwen3_vl", "qwen3_vl_thinking")
_TINY_GENERATORS = ("sd15", "sdxl")
_TINY_DEFAULTS = {"steps": 8, "size": 64}  # tiny UNets: 64 px, 8 steps (a plumbing check)
_FULL_DEFAULTS = {"steps": 20, "size": None}  # size None: 512 SD 1.5, 1024 SDXL


@dataclass(frozen=True)
class BenchReport:
    """One `mmkit bench` run: where it ran, with what settings, and what each half measured."""

    environment: dict[str, Any]
    settings: dict[str, Any]
    understanding: UnderstandingBench | None
    generation: GenerationBench | None

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **dataclasses.asdict(self)}


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"batch sizes are comma-separated ints, got {text!r}") from err
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be >= 1, got {text!r}")
    return sizes


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmkit bench", description="Speed, memory and SDK overhead vs raw library calls.")
    p.add_argument("--vlm", default="tiny:qwen2_5_vl",
                   help=f"VLM hub id or folder, or tiny:NAME ({', '.join(_TINY_VLMS)}); default tiny:qwen2_5_vl")
    p.add_argument("--generator", default="tiny:sd15",
                   help="generator hub id, folder or .safetensors, or tiny:sd15 / tiny:sdxl; default tiny:sd15")
    p.add_argument("--random-full-size", action="append", default=[], choices=FULL_SIZE_NAMES, metavar="NAME",
                   help=f"instead of --vlm / --generator: a full-size architecture with random weights "
                        f"({', '.join(FULL_SIZE_NAMES)}); repeat for both halves")
    p.add_argument("--only", choices=("understanding", "generation"), help="run one half only")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, npu, mps")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on recent GPUs, fp32 on CPU), float32, bfloat16, float16")
    p.add_argument("--repeats", type=_positive, default=5, help="measured calls per measurement (median)")
    p.add_argument("--warmup", type=_non_negative, default=1, help="warm-up calls before each measurement")
    p.add_argument("--max-new-tokens", type=_positive, default=32, help="new tokens per answer (forced)")
    p.add_argument("--batch-sizes", type=_batch_sizes, default=(1, 2, 4), help="chat_batch sizes, e.g. 1,2,4")
    p.add_argument("--image-side", type=_positive, default=224, help="test image side (rounded to the family's factor)")
    p.add_argument("--steps", type=_positive, help="denoising steps (default 8 tiny, 20 otherwise)")
    p.add_argument("--size", type=_positive, help="image side in px (default 64 tiny, else the family's 512 / 1024)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=_positive, help="torch CPU threads (default: torch's)")
    p.add_argument("--output", default="bench-results/bench.json", help="JSON file (written atomically)")
    return p


# ------------------------------------------------------------------------------------------------ loaders
def _tiny_name(source: str, allowed: tuple[str, ...], flag: str) -> str | None:
    if not source.startswith("tiny:"):
        return None
    name = source.removeprefix("tiny:")
    if name not in allowed:
        raise UsageError(f"Unknown tiny model for {flag}", received=source, fix=f"Use one of {[f'tiny:{n}' for n in allowed]}")
    return name


def _vlm_loader(args: argparse.Namespace, full_size: str | None) -> Callable[[], Any]:
    from transformers import AutoModelForImageTextToText, AutoProcessor  # noqa: F401  (imports outside the clock)

    from mmkit.devices import plan_device
    from mmkit.understand.model import VisionLanguageModel

    if full_size:
        from .bench_full_size import build_full_size_vlm

        plan = plan_device(args.device, args.dtype)
        return lambda: build_full_size_vlm(full_size, plan)
    tiny = _tiny_name(args.vlm, _TINY_VLMS, "--vlm")
    if tiny:
        from mmkit.testing import tiny_checkpoint

        source: Any = tiny_checkpoint(tiny)  # built (once) before the clock starts
    else:
        source = args.vlm
    return lambda: VisionLanguageModel.from_pretrained(source, device=args.device, dtype=args.dtype, progress=False)


def _generator_loader(args: argparse.Namespace, full_size: str | None) -> Callable[[], Any]:
    import diffusers

    from mmkit.devices import plan_device
    from mmkit.generate.generator import ImageGenerator

    _ = diffusers.StableDiffusionPipeline, diffusers.StableDiffusionXLPipeline  # import outside the clock
    if full_size:
        from .bench_full_size import build_full_size_generator

        plan = plan_device(args.device, args.dtype)
        return lambda: build_full_size_generator(full_size, plan)
    tiny = _tiny_name(args.generator, _TINY_GENERATORS, "--generator")
    if tiny:
        from mmkit.testing import tiny_diffusion_checkpoint

        source: Any = tiny_diffusion_checkpoint(tiny)  # type: ignore[arg-type]
    else:
        source = args.generator
    return lambda: ImageGenerator.from_pretrained(source, device=args.device, dtype=args.dtype, progress=False)


# -------------------------------------------------------------------------------------------------- run
def _environment(device: torch.device) -> dict[str, Any]:
    import diffusers
    import transformers

    env: dict[str, Any] = {
        "device": str(device), "torch": torch.__version__, "transformers": transformers.__version__,
        "diffusers": diffusers.__version__, "python": platform.python_version(), "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def _full_size_choice(names: Sequence[str]) -> dict[str, str]:
    chosen: dict[str, str] = {}
    for name in names:
        kind = full_size_kind(name)
        if kind in chosen:
            raise UsageError(f"Two full-size {kind} architectures given", received=[chosen[kind], name],
                             fix="Pass at most one Qwen-VL and one SD name")
        chosen[kind] = name
    return chosen


def run_bench(args: argparse.Namespace) -> BenchReport:
    """Run the halves the arguments ask for and return the report (nothing printed or written)."""
    from mmkit.devices import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    full = _full_size_choice(args.random_full_size)
    halves = [args.only] if args.only else ["understanding", "generation"]
    understanding = generation = None
    if "understanding" in halves:
        u = UnderstandingSettings(max_new_tokens=args.max_new_tokens, batch_sizes=args.batch_sizes,
                                  repeats=args.repeats, warmup=args.warmup, image_side=args.image_side)
        understanding = bench_understanding(_vlm_loader(args, full.get("understanding")), device, u)
    gen_settings = None
    if "generation" in halves:
        tiny = "generation" not in full and args.generator.startswith("tiny:")
        defaults = _TINY_DEFAULTS if tiny else _FULL_DEFAULTS
        gen_settings = GenerationSettings(steps=args.steps or defaults["steps"], size=args.size or defaults["size"],
                                          seed=args.seed, repeats=args.repeats, warmup=args.warmup)
        generation = bench_generation(_generator_loader(args, full.get("generation")), device, gen_settings)
    settings = {
        "halves": halves, "vlm": full.get("understanding", args.vlm), "generator": full.get("generation", args.generator),
        "random_full_size": sorted(full.values()), "dtype": args.dtype, "repeats": args.repeats, "warmup": args.warmup,
        "max_new_tokens": args.max_new_tokens, "batch_sizes": list(args.batch_sizes),
        "steps": gen_settings.steps if gen_settings else None, "seed": args.seed,
    }
    return BenchReport(_environment(device), settings, understanding, generation)


# ------------------------------------------------------------------------------------------------ table
def _params(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.1f} M"


def _ratio(timing: Any, same: str) -> str:
    return (f"{timing.ratio:.3f}x  ({timing.sdk_ms:.1f} vs {timing.raw_ms:.1f} ms, {timing.overhead_ms:+.1f} ms; "
            f"median of {timing.repeats}, interleaved; {same})")


def _understanding_rows(u: UnderstandingBench) -> list[tuple[str, str]]:
    c, m = u.call, u.like_for_like
    same = (f"tokens {m.sdk_completion_tokens} = {m.raw_completion_tokens}, prompt {m.sdk_prompt_tokens} = "
            f"{m.raw_prompt_tokens}, {'same' if m.same_text else 'DIFFERENT'} text")
    if not m.matched:
        same = "NOT LIKE-FOR-LIKE: " + same.replace(" = ", " vs ")
    rows = [
        ("model", f"{u.model} ({u.family}, {_params(u.parameters)} params, {u.device})"),
        ("load", f"{u.load_s:.2f} s, +{u.load_memory_mb:.0f} MB"),
        ("input", f"{u.image_size[0]}x{u.image_size[1]} image = {c.image_tokens} image tokens, {c.prompt_tokens} "
                  f"prompt tokens, {c.completion_tokens} new tokens"),
        ("chat: preprocess / generate / post", f"{c.preprocess_ms:.1f} / {c.generate_ms:.1f} / {c.postprocess_ms:.1f} ms"),
        ("chat: tokens/s (generate incl. prefill)", f"{c.tokens_per_s:.1f}"),
        ("chat: peak memory above the model", f"+{c.peak_memory_mb:.0f} MB"),
    ]
    for b in u.batches:
        rows.append((f"chat_batch x{b.batch_size}", f"{b.wall_ms:.1f} ms, {b.tokens_per_s:.1f} tokens/s, "
                                                   f"{b.answers_per_s:.2f} answers/s"))
    rows.append(("sdk / raw transformers", _ratio(u.overhead, same)))
    return rows


def _generation_rows(g: GenerationBench) -> list[tuple[str, str]]:
    i, m = g.image, g.like_for_like
    same = "identical pixels" if m.identical else f"PIXELS DIFFER (max |diff| {m.max_abs_diff})"
    return [
        ("model", f"{g.model} ({g.family}, {_params(g.parameters)} params, {g.device})"),
        ("load", f"{g.load_s:.2f} s, +{g.load_memory_mb:.0f} MB"),
        ("image", f"{g.size}x{g.size}, {g.steps} steps, 1 image per call"),
        ("per step (incl. VAE share) / per image", f"{i.per_step_ms:.1f} / {i.per_image_ms:.1f} ms "
                                                  f"(prompt encoding {i.prompt_ms:.1f} ms)"),
        ("images/s", f"{i.images_per_s:.2f}"),
        ("peak memory above the model", f"+{i.peak_memory_mb:.0f} MB"),
        ("sdk / raw diffusers", _ratio(g.overhead, same)),
    ]


def format_table(report: BenchReport) -> str:
    """The report as a Markdown table, with a header line saying where it ran."""
    env = report.environment
    where = env.get("gpu") or f"{env['cpu_count']} CPUs, torch threads: {env['torch_threads']}"
    load = env.get("load_average_1m")
    header = (f"mmkit bench on {env['device']} ({where}); torch {env['torch']}, transformers {env['transformers']}, "
              f"diffusers {env['diffusers']}" + (f"; load average {load:.2f}" if load is not None else ""))
    rows: list[tuple[str, str, str]] = []
    if report.understanding:
        rows += [("understanding", k, v) for k, v in _understanding_rows(report.understanding)]
    if report.generation:
        rows += [("generation", k, v) for k, v in _generation_rows(report.generation)]
    widths = [max(len(r[i]) for r in rows + [("part", "metric", "value")]) for i in range(3)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    table = [line(("part", "metric", "value")), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join([header, "", *table, *(line(r) for r in rows)])


def main(argv: Sequence[str] | None = None) -> int:
    """Run `mmkit bench`: print the table, write the JSON. Returns 0."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    report = run_bench(args)
    print(format_table(report))
    path = atomic_write_json(args.output, report.to_json())
    print(f"\nresult: {path}")
    return 0
