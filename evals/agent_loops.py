"""How often the assistant's loops succeed on a pair of models, with the pixel oracle as the referee.

`measure_agent_loops(vlm, generator, n)` runs `Assistant` turns on held-out shapes-world requests:

- generate: "draw a red circle" (test-split captions, English and Chinese), checked by the VLM (the default
  `VlmChecker`) and retried within the budget. Reported: share of turns the loop marked done, share whose final
  image the oracle passes, and how often the VLM's verdict agreed with the oracle's.
- edit: a rendered two-shape scene and "replace the red circle with a blue square" / "把红色的圆换成蓝色的正方形":
  ground -> mask -> inpaint -> VLM verify. Reported: share marked done, share where the oracle finds the new
  shape and no longer the old one, and verdict agreement.
Turn latencies are the turns' own wall times. This module knows the assistant and the oracle; not how tasks
are registered (the quality table is `quality.py`).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["LoopRates", "measure_agent_loops", "format_loop_rates"]


@dataclass(frozen=True)
class LoopRates:
    loop: str  # "generate" or "edit"
    n: int
    done: float  # share of turns the loop itself marked done (its checker passed)
    oracle_ok: float  # share whose final image the oracle accepts
    agreement: float  # share where the loop's final verdict equals the oracle's
    attempts: float  # mean generator calls per turn
    median_seconds: float
    max_seconds: float


def _rates(loop: str, rows: list[tuple[bool, bool, int, float]]) -> LoopRates:
    seconds = [r[3] for r in rows]
    return LoopRates(loop, len(rows), sum(r[0] for r in rows) / len(rows), sum(r[1] for r in rows) / len(rows),
                     sum(r[0] == r[1] for r in rows) / len(rows), sum(r[2] for r in rows) / len(rows),
                     statistics.median(seconds), max(seconds))


def _attempts(turn) -> int:
    return sum(s.kind in ("generate", "inpaint", "img2img") for s in turn.steps)


def measure_agent_loops(vlm: Any, generator: Any, n: int = 20, *, seed: int = 0, attempts: int = 3,
                        steps: int = 20, guidance_scale: float = 5.0) -> list[LoopRates]:
    """Run `n` generate turns and `n` edit turns (half English, half Chinese) and score them with the oracle.

    Args:
        vlm, generator: the models (e.g. the bundled `mmkit/shapes-qwen2.5-vl` and `mmkit/shapes-sd`).
        n: turns per loop.
        seed: picks the held-out requests; also the loops' first seed.
        attempts: the loops' attempt budget.
        steps, guidance_scale: generator settings of the loops.
    """
    from mmkit.agents import AgentSettings, Assistant, Budget
    from mmkit.shapes import detect, judge_caption, make_dataset
    from mmkit.shapes.vocab import BASE_KINDS, COLOURS, SHAPES

    settings = AgentSettings(seed=seed, steps=steps, guidance_scale=guidance_scale, guidance_step=1.0, width=64,
                             height=64, chat_tokens=64)
    budget = Budget(attempts=attempts, seconds=600)
    results = []

    rows = []
    for i, lang in enumerate(["en", "zh"] * (n // 2) + ["en"] * (n % 2)):
        ex = make_dataset("caption", 1, seed + i, "test", lang=lang, n_shapes=1)[0]
        text = f"draw {ex.text}" if lang == "en" else f"画{ex.text}"
        turn = Assistant(vlm, generator, budget=budget, settings=settings).ask(text)
        ok = bool(turn.images) and judge_caption(turn.images[0], ex.text).passed
        rows.append((turn.turn.status == "done", ok, _attempts(turn.turn), turn.turn.seconds))
    results.append(_rates("generate", rows))

    rows = []
    rng = np.random.default_rng([seed, 11])
    for i, lang in enumerate(["en", "zh"] * (n // 2) + ["en"] * (n % 2)):
        scene = make_dataset("caption", 1, seed + 100 + i, "test", n_shapes=2)[0]
        old = scene.scene.shapes[int(rng.integers(2))]
        colour = str(rng.choice([c for c in COLOURS if c != old.colour]))
        kind = str(rng.choice([k for k in BASE_KINDS if k != old.kind]))
        if lang == "en":
            text = f"replace the {old.colour} {old.kind} with a {colour} {kind}"
        else:
            text = (f"把{COLOURS[old.colour].zh}的{SHAPES[old.kind].zh}换成"
                    f"{COLOURS[colour].zh}的{SHAPES[kind].zh}")
        assistant = Assistant(vlm, generator, budget=budget, settings=settings)
        assistant.session.add_image(scene.image, origin="user")
        turn = assistant.ask(text)
        found = {(d.colour, d.kind) for d in detect(turn.images[0])} if turn.images else set()
        others = sum(1 for s in scene.scene.shapes if (s.colour, s.kind) == (old.colour, old.kind))
        ok = (colour, kind) in found and ((old.colour, old.kind) not in found or others > 1)
        rows.append((turn.turn.status == "done", ok, _attempts(turn.turn), turn.turn.seconds))
    results.append(_rates("edit", rows))
    return results


def format_loop_rates(rates: list[LoopRates]) -> str:
    """A markdown table of the rates."""
    lines = ["| loop | n | done (own check) | oracle agrees it worked | verdict = oracle | attempts | median s | max s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rates:
        lines.append(f"| {r.loop} | {r.n} | {r.done:.2f} | {r.oracle_ok:.2f} | {r.agreement:.2f} | {r.attempts:.2f} | "
                     f"{r.median_seconds:.1f} | {r.max_seconds:.1f} |")
    return "\n".join(lines) + "\n"
