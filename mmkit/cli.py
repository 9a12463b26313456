"""The `mmkit` command line: thin wrappers over the Python API, one subcommand per job.

    mmkit demo                      the main job (what `make demo` runs)
    mmkit generate "a red circle"   text to image, PNG with its parameters embedded
    mmkit ask image.png "what is this?"
    mmkit train-lora --base DIR --data-dir DIR --output-dir DIR
    mmkit eval TASK --model PATH [--data FILE] [--limit N] [--output DIR]
    mmkit quality [--limit N] [--task NAME]
    mmkit bench [--vlm ...] [--generator ...] [--random-full-size NAME] [--device cuda]
    mmkit tiny DIR                  build the tiny test checkpoints into DIR

Knows nothing about models beyond the public API.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _generate(args: argparse.Namespace) -> int:
    from .generate.generator import ImageGenerator

    generator = ImageGenerator.from_pretrained(args.model, device=args.device, dtype=args.dtype)
    result = generator.text_to_image(
        args.prompt,
        negative_prompt=args.negative_prompt,
        steps=args.steps,
        guidance_scale=args.guidance_scale,
        scheduler=args.scheduler,
        width=args.width,
        height=args.height,
        seed=args.seed,
        num_images=args.num_images,
    )
    for path in result.save(args.output):
        print(path)
    return 0


def _ask(args: argparse.Namespace) -> int:
    from .understand.model import VisionLanguageModel

    model = VisionLanguageModel.from_pretrained(args.model, device=args.device, dtype=args.dtype)
    answer = model.chat(args.question, images=args.images, max_new_tokens=args.max_new_tokens)
    if answer.thinking:
        print(f"[thinking] {answer.thinking}")
    print(answer.text)
    for box in answer.boxes:
        print(f"box {box.label!r}: ({box.x1:.0f}, {box.y1:.0f}, {box.x2:.0f}, {box.y2:.0f})")
    return 0


def _tiny(args: argparse.Namespace) -> int:
    from .testing.tiny_diffusion import build_tiny_sd15, build_tiny_sdxl
    from .testing.tiny_qwen import build_tiny_qwen2_5_vl, build_tiny_qwen3_vl

    from pathlib import Path

    root = Path(args.folder)
    for name, build in [
        ("tiny-qwen2.5-vl", build_tiny_qwen2_5_vl),
        ("tiny-qwen3-vl", build_tiny_qwen3_vl),
        ("tiny-sd15", build_tiny_sd15),
        ("tiny-sdxl", build_tiny_sdxl),
    ]:
        print(build(root / name))
    return 0


def _train_lora(argv: Sequence[str]) -> int:
    from .generate.train_lora import main as train_main

    return train_main(list(argv))


def _eval(argv: Sequence[str]) -> int:
    from .evals.cli import main as eval_main

    return eval_main(list(argv))


def _quality(argv: Sequence[str]) -> int:
    from .evals.quality import main as quality_main

    return quality_main(list(argv))


def _bench(argv: Sequence[str]) -> int:
    from .evals.bench import main as bench_main

    return bench_main(list(argv))


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(output_dir=args.output, vlm=args.vlm, generator=args.generator)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmkit", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the main job on the bundled models")
    demo.add_argument("--output", default="outputs/demo", help="folder for images, trace and report")
    demo.add_argument("--vlm", help="hub id or folder of the vision-language model (default: the bundled "
                      "shapes-world model when trained, else a tiny random checkpoint)")
    demo.add_argument("--generator", help="hub id, folder or .safetensors of the diffusion model (default: the "
                      "bundled shapes-world model when trained, else a tiny random checkpoint)")
    demo.set_defaults(run=_demo)

    gen = sub.add_parser("generate", help="text to image")
    gen.add_argument("prompt")
    gen.add_argument("--model", required=True, help="hub id, diffusers folder or .safetensors file")
    gen.add_argument("--negative-prompt")
    gen.add_argument("--steps", type=int, default=30)
    gen.add_argument("--guidance-scale", type=float)
    gen.add_argument("--scheduler")
    gen.add_argument("--width", type=int)
    gen.add_argument("--height", type=int)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--num-images", type=int, default=1)
    gen.add_argument("--output", default="outputs")
    gen.add_argument("--device", default="auto")
    gen.add_argument("--dtype", default="auto")
    gen.set_defaults(run=_generate)

    ask = sub.add_parser("ask", help="ask a vision-language model about images")
    ask.add_argument("images", nargs="+", help="image paths or URLs, then the question last")
    ask.add_argument("--model", required=True, help="hub id or local folder")
    ask.add_argument("--max-new-tokens", type=int, default=512)
    ask.add_argument("--device", default="auto")
    ask.add_argument("--dtype", default="auto")
    ask.set_defaults(run=_ask)

    tiny = sub.add_parser("tiny", help="build the tiny test checkpoints")
    tiny.add_argument("folder")
    tiny.set_defaults(run=_tiny)

    sub.add_parser("train-lora", help="train a LoRA (see: mmkit train-lora --help)", add_help=False)
    sub.add_parser("eval", help="score a model on a task (see: mmkit eval --help)", add_help=False)
    sub.add_parser("quality", help="the shapes-world quality table of the bundled models (see: mmkit quality --help)",
                   add_help=False)
    sub.add_parser("bench", help="latency, throughput, memory and SDK overhead (see: mmkit bench --help)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    forwarded = {"train-lora": _train_lora, "eval": _eval, "quality": _quality, "bench": _bench}
    if argv and argv[0] in forwarded:
        return forwarded[argv[0]](argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "ask":
        *args.images, args.question = args.images
        if not args.images:
            _parser().error("ask needs at least one image before the question")
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
