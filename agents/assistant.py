"""`Assistant`: one understanding model + one generator behind a conversational API.

Each `ask()` is one turn: media attached to the request join the session under handles ("image 3"),
the request is routed (rule router by default; a model router if given, with recorded fallback), the
route's loop runs (see `loops.py`), its output image joins the session, and the turn is recorded. Every
step is written to the session folder as soon as it completes. `run_decision()` runs a turn whose route
was decided elsewhere (a LangChain tool call, a UI): the same loops and records, without the router.

This module wires parts together; routing rules, loops, checks and persistence live in their modules.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from PIL import Image

from mmkit.exceptions import UsageError
from mmkit.understand.answer import Answer

from .checks import Checker, CheckVerdict, VlmChecker
from .loops import AgentSettings, LoopContext, LoopOutcome, run_edit, run_generate, run_understand
from .model_router import ModelRouter, decide_with_fallback
from .routing import RouteDecision, RouteRequest, RuleRouter
from .session import Budget, Session, Step, Turn

__all__ = ["Assistant", "TurnResult"]


@dataclass(frozen=True)
class TurnResult:
    """What one `ask()` produced.

    Attributes:
        decision: the route taken (and why).
        reply: the text answer.
        images: the images this turn added (generated, edited, or annotated), in order.
        handles: their session handles.
        turn: the full record (steps, seeds, timings, verdicts).
        answer: the understanding model's last `Answer` this turn (understand, ground, edit's grounding step).
        result: the generator's result that produced the kept image (generate, edit), else None.
        verdict: the check verdict of the kept image (generate, edit), else None.
    """

    decision: RouteDecision
    reply: str
    images: tuple[Image.Image, ...]
    handles: tuple[str, ...]
    turn: Turn
    answer: Answer | None = None
    result: Any = None
    verdict: CheckVerdict | None = None

    @property
    def route(self) -> str:
        return self.decision.route


class Assistant:
    """Route requests to understanding, generation or editing, and run each with checks and retries.

    Args:
        vlm: a `VisionLanguageModel` (or anything with its `chat` / `ground` call shapes).
        generator: an `ImageGenerator` (or anything with `text_to_image` / `image_to_image` / `inpaint`).
        checker: judges generated/edited images; default `VlmChecker(vlm)`. Use `OracleChecker()` in the
            shapes world.
        router: an optional `ModelRouter`; unusable picks fall back to the rules and are recorded.
        session: a `Session` (default: a new in-memory one); pass `Session(folder)` to persist.
        budget: attempts and seconds per generate/edit loop.
        settings: loop knobs (seeds, guidance, dilation, ...).
    """

    def __init__(self, vlm: Any, generator: Any, *, checker: Checker | None = None, router: ModelRouter | None = None,
                 session: Session | None = None, budget: Budget | None = None,
                 settings: AgentSettings | None = None) -> None:
        self.vlm, self.generator = vlm, generator
        self.checker = checker if checker is not None else VlmChecker(vlm)
        self.router, self.rules = router, RuleRouter()
        self.session = session if session is not None else Session()
        self.budget = budget or Budget()
        self.settings = settings or AgentSettings()

    def ask(self, text: str, *, images: Sequence[Any] = (), videos: Sequence[str | Path] = ()) -> TurnResult:
        """Run one turn.

        Args:
            text: the request, English or Chinese ("draw a red circle", "把红色的圆换成蓝色的方块").
            images: images attached to this request (PIL images, paths, URLs, bytes, arrays).
            videos: video files attached to this request.

        Returns:
            A `TurnResult`. Errors from the models propagate; the steps completed before them stay saved.
        """
        turn = self.session.start_turn(text)
        attached = tuple(self.session.add_image(_load(i), origin="user", turn=turn.index) for i in images)
        attached_videos = tuple(self.session.add_video(v, turn=turn.index) for v in videos)
        decision = self._route(turn, text, attached, attached_videos)
        turn.decision = decision
        image_handles, video_handles = self._inputs(decision, attached, attached_videos)
        return self._play(turn, image_handles, video_handles, self.settings)

    def run_decision(self, text: str, decision: RouteDecision, *, images: Sequence[str] = (),
                     videos: Sequence[str] = (), seed: int | None = None,
                     decided_by: str = "caller") -> TurnResult:
        """Run one turn whose route is already decided, on session media named by handle (no router).

        Args:
            text: the request, as recorded in the turn.
            decision: the route to run (`route`, `intent`, `target`, `prompt`, ...).
            images: session image handles the turn reads ("image 2"); an edit reads the last one.
            videos: session video handles the turn reads ("video 1").
            seed: seed of the first generate/edit attempt (default: the assistant's `settings.seed`).
            decided_by: who decided the route, recorded as the tool of the turn's "route" step.

        Returns:
            A `TurnResult`. Errors from the models propagate; the steps completed before them stay saved.

        Raises:
            UsageError: an unknown handle, or an edit without an image.
        """
        images = tuple(self.session.resolve(h) for h in images)
        videos = tuple(self.session.resolve(h) for h in videos)
        if decision.route == "edit" and not images:
            raise UsageError("an edit needs the image to edit", received=images, fix="pass images=('image 1',)")
        settings = self.settings if seed is None else self.settings.model_copy(update={"seed": seed})
        turn = self.session.start_turn(text)
        turn.decision = decision
        self.session.record(turn, Step(index=self.session.next_step_index(turn), kind="route", tool=decided_by,
                                       text=decision.reason,
                                       params=decision.model_dump(mode="json", exclude={"reason"})))
        return self._play(turn, images, videos, settings)

    def _play(self, turn: Turn, images: tuple[str, ...], videos: tuple[str, ...],
              settings: AgentSettings) -> TurnResult:
        """Run the decided turn's loop, add its output image, finish the turn."""
        decision = turn.decision
        turn.inputs = images + videos
        vlm, generator = _Recording(self.vlm), _Recording(self.generator)
        ctx = LoopContext(self.session, turn, vlm, generator, self.checker, self.budget, settings)
        outcome = self._run(ctx, decision, images, videos)
        outputs: tuple[str, ...] = ()
        if outcome.image is not None and outcome.origin is not None:
            outputs = (self.session.add_image(outcome.image, origin=outcome.origin, turn=turn.index,
                                              prompt=decision.prompt),)
        self.session.finish_turn(turn, status=outcome.status, reply=outcome.reply, outputs=outputs)
        answers = [r for r in vlm.returned if isinstance(r, Answer)]
        kept = [r for r in generator.returned if any(i is outcome.image for i in getattr(r, "images", ()))]
        return TurnResult(decision=decision, reply=outcome.reply, handles=outputs, turn=turn,
                          images=tuple(self.session.image(h) for h in outputs),
                          answer=answers[-1] if answers else None, result=kept[-1] if kept else None,
                          verdict=outcome.verdict)

    def _route(self, turn: Turn, text: str, images: tuple[str, ...], videos: tuple[str, ...]) -> RouteDecision:
        start = time.perf_counter()
        request = RouteRequest(text=text, attached_images=len(images), attached_videos=len(videos),
                               session_images=len(self.session.handles("image")) - len(images),
                               session_videos=len(self.session.handles("video")) - len(videos))
        if self.router is None:
            decision, error = self.rules.decide(request), None
        else:
            decision, error = decide_with_fallback(self.router, request, rules=self.rules)
        kind = "fallback" if error else "route"
        tool = "router.rules" if decision.source == "rules" else "router.model"
        step = Step(index=self.session.next_step_index(turn), kind=kind, tool=tool, error=error,
                    seconds=time.perf_counter() - start, text=decision.reason,
                    params=decision.model_dump(mode="json", exclude={"reason"}))
        self.session.record(turn, step)
        return decision

    def _inputs(self, decision: RouteDecision, attached: tuple[str, ...],
                videos: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Which media the turn reads: named references, else what was attached, else the latest image that is
        not an annotated copy (boxes drawn by a grounding turn)."""
        if decision.intent == "clarify" or decision.route == "generate":
            return (), ()
        named = tuple(self.session.resolve(r) for r in decision.references)
        named_images = tuple(h for h in named if h.startswith("image"))
        named_videos = tuple(h for h in named if h.startswith("video")) or videos
        if decision.intent == "video":
            return (), named_videos or self.session.handles("video")[-1:]
        if named_images or attached:
            return named_images or attached, named_videos
        content = [m.handle for m in self.session.media if m.kind == "image" and m.origin != "annotated"]
        return tuple(content[-1:]) or self.session.handles("image")[-1:], named_videos

    def _run(self, ctx: LoopContext, decision: RouteDecision, images: tuple[str, ...],
             videos: tuple[str, ...]) -> LoopOutcome:
        if decision.route == "generate":
            return run_generate(ctx, decision.prompt or ctx.turn.text)
        if decision.route == "edit":
            return run_edit(ctx, images[-1], decision)
        return run_understand(ctx, decision, images, videos)


class _Recording:
    """Forwards every attribute to `target` and keeps what its model calls returned (Answers, generation
    results), so a `TurnResult` can carry them while the loops stay unaware of it."""

    _CALLS = frozenset({"chat", "ground", "text_to_image", "image_to_image", "inpaint"})

    def __init__(self, target: Any) -> None:
        self._target, self.returned = target, []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name not in self._CALLS:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            out = attr(*args, **kwargs)
            self.returned.append(out)
            return out

        return call


def _load(image: Any) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    from mmkit.media import load_image

    return load_image(image)
