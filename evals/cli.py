"""`mmkit eval TASK --model PATH [--data FILE] [--limit N] [--output DIR]`: the command line of
`evaluate()`. `mmkit/cli.py` forwards the arguments after `eval` to `main`. Knows only the public API.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

__all__ = ["main", "build_parser"]


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"options are KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmkit eval", description="Evaluate a model on a registered task.")
    parser.add_argument("task", nargs="?", help="task name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the tasks and exit")
    parser.add_argument("--model", help="hub id or local path (a VLM or a generator, as the task needs)")
    parser.add_argument("--data", help="data file in the task's format (default: the built-in shapes-world set)")
    parser.add_argument("--limit", type=int, help="score only the first N samples")
    parser.add_argument("--output", help="output folder (default eval-results/TASK)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-resume", action="store_true", help="start over instead of skipping scored samples")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--option", "-o", action="append", type=_option, default=[], metavar="KEY=VALUE",
                        help="task option (JSON values), e.g. -o box_format=xywh -o steps=20")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `mmkit eval`; prints the headline metrics and where the result was written. Returns 0."""
    from .runner import evaluate
    from .tasks import get_task, list_tasks

    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.list:
        for name in list_tasks():
            cls = get_task(name)
            print(f"{name} v{cls.version} [{cls.model_kind}]: {cls.description}")
        return 0
    if not args.task or not args.model:
        parser.error("TASK and --model are required (or --list)")
    result = evaluate(args.task, args.model, data=args.data, limit=args.limit, output_dir=args.output,
                      resume=not args.no_resume, seed=args.seed, options=dict(args.option), device=args.device,
                      progress=not args.no_progress)
    if result is None:  # not the main process
        return 0
    for name, value in result.metrics.items():
        err = f" ± {value.stderr:.4f}" if value.stderr is not None else ""
        print(f"{name}: {value.value:.4f}{err} (n={value.n})")
    print(f"result: {result.output_dir}/result.json")
    return 0
