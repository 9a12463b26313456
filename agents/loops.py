"""The three loops an assistant turn runs, each recording every step as it completes.

- generate: text_to_image -> check -> (new seed, more guidance) ... until the check passes or the budget
  (attempts, seconds) is spent; the best image is kept.
- edit: ground the target -> box -> mask -> inpaint (dilation grows on retries) -> check that the new
  object is there and the old one is gone; img2img when no target is named; remove = inpaint background.
- understand: multi-turn chat over the session's images/videos; grounding, drawn on request; clarify.

One helper (`_attempts`) runs the try-check-retry cycle for all three generator calls. Budgets: no new
attempt starts once `budget.seconds` have passed (an attempt in flight is not interrupted).
This module knows the model call shapes, checkers and sessions; it knows nothing about routing rules.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Literal

from PIL import Image, ImageDraw
from pydantic import BaseModel, ConfigDict, Field

from mmkit.shapes import position_word
from mmkit.shapes.language import object_phrase
from mmkit.understand.answer import Box
from mmkit.understand.draw import draw_grounding

from .checks import Checker, CheckVerdict, Expectation, expectation_from_prompt
from .phrases import ObjectQuery, parse_object
from .routing import RouteDecision
from .session import Budget, Session, Step, StepKind, Turn, TurnStatus

__all__ = ["AgentSettings", "LoopOutcome", "LoopContext", "run_generate", "run_edit", "run_understand", "box_mask"]


class AgentSettings(BaseModel):
    """Knobs of the loops (each field: what it changes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(0, description="seed of the first attempt; attempt k uses seed + k - 1")
    steps: int = Field(30, ge=1, description="denoising steps per generator call")
    guidance_scale: float = Field(7.5, description="classifier-free guidance of the first attempt")
    guidance_step: float = Field(1.5, description="added to the guidance on each retry")
    width: int | None = Field(None, description="text_to_image width (None: the generator's default)")
    height: int | None = None
    mask_dilate: int = Field(4, ge=0, description="pixels the grounded box's mask grows before inpainting")
    dilate_step: int = Field(2, ge=0, description="extra dilation on each edit retry")
    img2img_strength: float = Field(0.6, gt=0, le=1)
    remove_prompt: str = Field("empty plain background", description="inpaint prompt when removing an object")
    chat_tokens: int = Field(256, ge=1, description="max_new_tokens of understand answers")
    chat_history: int = Field(6, ge=0, description="earlier understand turns sent with a question (0: none, for "
                                                   "a model trained on single turns)")


@dataclass(frozen=True)
class LoopOutcome:
    """What a loop hands back to the assistant."""

    status: TurnStatus
    reply: str
    image: Image.Image | None = None  # the image to add to the session (generated, edited or annotated)
    origin: Literal["generated", "edited", "annotated"] | None = None
    verdict: CheckVerdict | None = None


@dataclass
class LoopContext:
    """Everything a loop needs for one turn."""

    session: Session
    turn: Turn
    vlm: Any
    generator: Any
    checker: Checker
    budget: Budget
    settings: AgentSettings

    def record(self, kind: StepKind, tool: str, start: float, images: dict[str, Image.Image] | None = None,
               **fields: Any) -> Step:
        step = Step(index=self.session.next_step_index(self.turn), kind=kind, tool=tool,
                    seconds=time.perf_counter() - start, **fields)
        return self.session.record(self.turn, step, images)


def _score(verdict: CheckVerdict) -> float:
    if verdict.passed is None or not verdict.items:
        return 0.0
    return sum(i.passed for i in verdict.items) / len(verdict.items)


def _attempts(ctx: LoopContext, kind: StepKind, tool: str, expectation: Expectation,
              call: Callable[[int, int], tuple[Any, dict[str, Any]]]) -> tuple[TurnStatus, Image.Image, CheckVerdict]:
    """Run `call(attempt, seed) -> (GenerationResult, params)` and check it, until a pass or the budget ends."""
    deadline = time.monotonic() + ctx.budget.seconds
    best: tuple[float, Image.Image, CheckVerdict] | None = None
    for attempt in range(1, ctx.budget.attempts + 1):
        if attempt > 1 and time.monotonic() >= deadline:
            break
        start = time.perf_counter()
        result, params = call(attempt, ctx.settings.seed + attempt - 1)
        image = result.images[0]
        ctx.record(kind, tool, start, {f"attempt{attempt}": image}, attempt=attempt, params=params,
                   seeds=tuple(result.seeds))
        start = time.perf_counter()
        verdict = ctx.checker.check(image, expectation)
        ctx.record("check", f"checker.{verdict.checker}", start, attempt=attempt, verdict=verdict,
                   text="; ".join(verdict.reasons) or None)
        if verdict.passed is not False:
            return "done", image, verdict
        if best is None or _score(verdict) > best[0]:
            best = (_score(verdict), image, verdict)
    assert best is not None  # the first attempt always runs (budget.attempts >= 1)
    return "budget_spent", best[1], best[2]


def _guidance(ctx: LoopContext, attempt: int) -> float:
    return ctx.settings.guidance_scale + (attempt - 1) * ctx.settings.guidance_step


def run_generate(ctx: LoopContext, prompt: str) -> LoopOutcome:
    """text_to_image, checked against the objects the prompt names, retried within the budget."""
    s = ctx.settings

    def call(attempt: int, seed: int) -> tuple[Any, dict[str, Any]]:
        params = {"prompt": prompt, "steps": s.steps, "guidance_scale": _guidance(ctx, attempt),
                  "width": s.width, "height": s.height}
        return ctx.generator.text_to_image(prompt, seed=seed, **_without(params, "prompt")), params

    status, image, verdict = _attempts(ctx, "generate", "generator.text_to_image", expectation_from_prompt(prompt), call)
    return LoopOutcome(status=status, reply=_reply(status, verdict, "generated"), image=image, origin="generated",
                       verdict=verdict)


def _without(params: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in names}


def _reply(status: TurnStatus, verdict: CheckVerdict, what: str) -> str:
    if status == "done":
        return f"Here is the {what} image." + ("" if verdict.passed is None else " It passed the checks.")
    return f"Budget spent; here is the best {what} image. Failed checks: " + "; ".join(verdict.reasons)


def box_mask(size: tuple[int, int], box: Box) -> Image.Image:
    """A mode "L" mask of `size`, white inside `box` (edges rounded outward), black elsewhere."""
    mask = Image.new("L", size, 0)
    x1, y1 = max(0, int(box.x1)), max(0, int(box.y1))
    x2, y2 = min(size[0], int(-(-box.x2 // 1))), min(size[1], int(-(-box.y2 // 1)))
    ImageDraw.Draw(mask).rectangle((x1, y1, x2 - 1, y2 - 1), fill=255)
    return mask


def _edit_expectation(target: ObjectQuery | None, replacement: ObjectQuery | None, lang: str) -> Expectation:
    present = (replacement,) if replacement is not None else ()
    same = target is not None and replacement is not None and target.colour in (None, replacement.colour) \
        and target.kind in (None, replacement.kind)
    absent = (target.model_copy(update={"position": None}),) if target is not None and not same else ()
    return Expectation(present=present, absent=absent, language=lang)


def run_edit(ctx: LoopContext, handle: str, decision: RouteDecision) -> LoopOutcome:
    """Edit the image under `handle`: img2img without a target, else ground -> mask -> inpaint -> check."""
    image, s = ctx.session.image(handle), ctx.settings
    if decision.intent == "img2img" or not decision.target:
        prompt = decision.prompt or ctx.turn.text

        def redraw(attempt: int, seed: int) -> tuple[Any, dict[str, Any]]:
            params = {"image": handle, "prompt": prompt, "strength": s.img2img_strength, "steps": s.steps,
                      "guidance_scale": _guidance(ctx, attempt)}
            return ctx.generator.image_to_image(image, prompt, seed=seed, **_without(params, "image", "prompt")), params

        status, out, verdict = _attempts(ctx, "img2img", "generator.image_to_image", _img2img_expectation(prompt), redraw)
        return LoopOutcome(status=status, reply=_reply(status, verdict, "edited"), image=out, origin="edited",
                           verdict=verdict)
    start = time.perf_counter()
    answer = ctx.vlm.ground(image, decision.target, max_new_tokens=ctx.settings.chat_tokens)
    drawn = draw_grounding(image, answer.boxes) if answer.boxes else None
    ctx.record("ground", "vlm.ground", start, {"ground": drawn} if drawn else None, params={"query": decision.target},
               text=answer.text, error=None if answer.boxes else "no box for the target")
    if not answer.boxes:
        return LoopOutcome(status="failed", reply=f"I could not find {decision.target} in {handle}.")
    start = time.perf_counter()
    mask = box_mask(image.size, answer.boxes[0])
    ctx.record("mask", "agents.box_mask", start, {"mask": mask},
               params={"box": list(answer.boxes[0].as_tuple()), "boxes_found": len(answer.boxes)})
    target, replacement = parse_object(decision.target), parse_object(decision.replacement or "")
    prompt = decision.prompt if decision.intent == "replace" and decision.prompt else s.remove_prompt
    if decision.intent == "replace" and replacement is not None and replacement.complete \
            and replacement.position is None:
        # say where: a generator that places objects by its prompt (the bundled one does) draws "a blue square"
        # anywhere, and outside the mask it is cut away (1 of 6 seeds kept it; "... at the bottom right": 6 of 6)
        prompt = object_phrase(replacement.colour, replacement.kind, decision.language,
                               position_word(answer.boxes[0], image.size))
    expectation = _edit_expectation(target, replacement if decision.intent == "replace" else None, decision.language)

    def repaint(attempt: int, seed: int) -> tuple[Any, dict[str, Any]]:
        params = {"image": handle, "prompt": prompt, "mask_dilate": s.mask_dilate + (attempt - 1) * s.dilate_step,
                  "steps": s.steps, "guidance_scale": _guidance(ctx, attempt)}
        return ctx.generator.inpaint(image, mask, prompt, seed=seed, **_without(params, "image", "prompt")), params

    status, out, verdict = _attempts(ctx, "inpaint", "generator.inpaint", expectation, repaint)
    return LoopOutcome(status=status, reply=_reply(status, verdict, "edited"), image=out, origin="edited", verdict=verdict)


def _img2img_expectation(prompt: str) -> Expectation:
    expectation = expectation_from_prompt(prompt)
    # only a prompt that names a complete object is checkable ("make it darker" names none)
    return expectation if all(q.complete for q in expectation.present) else Expectation()


_CLARIFY = {"en": "Which image do you mean? Attach one, or ask me to generate one first.",
            "zh": "你指的是哪张图？请先上传一张图片，或者让我先生成一张。"}


def run_understand(ctx: LoopContext, decision: RouteDecision, images: tuple[str, ...],
                   videos: tuple[str, ...]) -> LoopOutcome:
    """Answer from the VLM over the given image/video handles; ground (and draw) when asked; clarify."""
    start = time.perf_counter()
    if decision.intent == "clarify":
        reply = _CLARIFY[decision.language]
        ctx.record("clarify", "agents.clarify", start, text=reply, params={"reason": decision.reason})
        return LoopOutcome(status="clarify", reply=reply)
    if decision.intent == "ground" and images:
        image = ctx.session.image(images[-1])
        answer = ctx.vlm.ground(image, decision.target, max_new_tokens=ctx.settings.chat_tokens)
        drawn = draw_grounding(image, answer.boxes) if answer.boxes and decision.draw else None
        ctx.record("ground", "vlm.ground", start, params={"query": decision.target, "image": images[-1]},
                   text=answer.text)
        reply = "; ".join(f"{b.label or decision.target}: ({b.x1:.0f}, {b.y1:.0f}, {b.x2:.0f}, {b.y2:.0f})"
                          for b in answer.boxes) or f"I could not find {decision.target}."
        if drawn is not None:
            ctx.record("draw", "understand.draw_grounding", time.perf_counter(), params={"boxes": len(answer.boxes)})
        return LoopOutcome(status="done", reply=reply, image=drawn, origin="annotated" if drawn else None)
    messages: list[dict[str, Any]] = []
    for user, assistant in ctx.session.history(ctx.settings.chat_history):
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    parts: list[dict[str, Any]] = [{"type": "image", "image": ctx.session.image(h)} for h in images]
    parts += [{"type": "video", "video": ctx.session.video_path(h)} for h in videos]
    messages.append({"role": "user", "content": parts + [{"type": "text", "text": ctx.turn.text}]})
    answer = ctx.vlm.chat(messages, max_new_tokens=ctx.settings.chat_tokens)
    ctx.record("chat", "vlm.chat", start, params={"images": list(images), "videos": list(videos),
                                                   "history_turns": len(messages) // 2}, text=answer.text)
    return LoopOutcome(status="done", reply=answer.text)
