"""LangChain tools over an mmkit `Assistant`: understand, ground, generate and edit session images.

Each tool is a langchain-core `BaseTool` with a pydantic `...Input` schema (a description per field) and
`response_format="content_and_artifact"`: the chat model reads a short text ("Saved as image 2. ..."), the
caller gets a `ToolArtifact` (the new images and their handles, boxes, the mmkit `Answer` or
`GenerationResult`, the check verdict and the recorded `Turn`). Images live in the assistant's `Session`
and tools name them by handle ("image 2", "the last image"), so a chat model never handles pixels.

Every call is one recorded turn of the session, run by `Assistant.run_decision`: the assistant's own loops,
with the same checks, retries, budgets and step records as `Assistant.ask`, and the route given by the tool
call instead of the router. A caller's mistake (`UsageError`: unknown handle,
missing argument) and unreadable media (`MediaError`) become a `ToolException` carrying mmkit's message,
shown to the chat model (`handle_tool_error=True`) so it can correct the call; anything else propagates.
Calls on one assistant are serialised (a lock per assistant): parallel tool calls cannot interleave turns.

This module knows LangChain's tool contract and the agent layer's public pieces; nothing about pixels or
model internals.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Literal

from langchain_core.tools import BaseTool, ToolException
from PIL import Image
from pydantic import BaseModel, Field

from mmkit.agents import Assistant, RouteDecision, Turn, detect_language, find_references
from mmkit.agents.checks import CheckVerdict
from mmkit.agents.phrases import canonical_prompt
from mmkit.agents.session import TurnStatus
from mmkit.exceptions import MediaError, UsageError
from mmkit.generate.result import GenerationResult
from mmkit.understand.answer import Answer, Box

__all__ = [
    "ToolArtifact", "UnderstandInput", "GroundInput", "GenerateInput", "EditInput",
    "UnderstandImageTool", "GroundObjectTool", "GenerateImageTool", "EditImageTool", "make_tools",
]

_IMAGE_HANDLE = "which session image: 'image 2', 'the last image', or 'last' (the default: the latest image)"


# ------------------------------------------------------------------------------------------------ schemas
class UnderstandInput(BaseModel):
    """Arguments of `understand_image`."""

    question: str = Field(min_length=1, description="the question or instruction about the image(s), e.g. "
                                                    "'what colour is the square?' or 'describe the image'")
    images: list[str] = Field(default_factory=list, description="session image handles to look at, e.g. "
                                                                "['image 1', 'image 2']; empty: the latest image")
    videos: list[str] = Field(default_factory=list, description="session video handles to look at, e.g. ['video 1']")


class GroundInput(BaseModel):
    """Arguments of `ground_object`."""

    query: str = Field(min_length=1, description="the object to locate, e.g. 'the red circle'")
    image: str = Field("last", description=_IMAGE_HANDLE)
    draw: bool = Field(False, description="also add a copy of the image with the boxes drawn to the session")


class GenerateInput(BaseModel):
    """Arguments of `generate_image`."""

    prompt: str = Field(min_length=1, description="what to draw, e.g. 'a red circle on the left'")
    seed: int | None = Field(None, ge=0, description="seed of the first attempt (default: the assistant's)")


class EditInput(BaseModel):
    """Arguments of `edit_image`."""

    operation: Literal["replace", "remove", "img2img"] = Field(
        description="replace an object, remove an object, or redraw the whole image following `instruction`")
    image: str = Field("last", description=_IMAGE_HANDLE)
    target: str | None = Field(None, description="the object to replace or remove, e.g. 'the red circle'")
    replacement: str | None = Field(None, description="what the target becomes (replace), e.g. 'a blue square'")
    instruction: str | None = Field(None, description="how to redraw the image (img2img), e.g. 'make it darker'")
    seed: int | None = Field(None, ge=0, description="seed of the first attempt (default: the assistant's)")


# ------------------------------------------------------------------------------------------------ artifact
@dataclass(frozen=True)
class ToolArtifact:
    """What a tool call produced, for the program driving the agent (the chat model sees only the text).

    Attributes:
        tool: the tool's name.
        status: the turn's status ("done", "failed", "budget_spent").
        inputs: session handles the call read.
        handles: session handles of the images the call added (generated, edited, or boxes drawn).
        images: those images, in the same order.
        boxes: grounded boxes, pixels of the input image (ground, and the target found by replace/remove).
        answer: the model's last `Answer` (understand, ground, edit's grounding step).
        result: the `GenerationResult` of the kept image (generate, edit).
        verdict: the check verdict of the kept image (generate, edit).
        turn: the full record of the call in the session (steps, seeds, timings).
    """

    tool: str
    status: TurnStatus
    inputs: tuple[str, ...]
    handles: tuple[str, ...]
    images: tuple[Image.Image, ...]
    turn: Turn
    boxes: tuple[Box, ...] = ()
    answer: Answer | None = None
    result: GenerationResult | None = None
    verdict: CheckVerdict | None = None


_LOCKS: "weakref.WeakKeyDictionary[Assistant, threading.Lock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _lock(assistant: Assistant) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(assistant, threading.Lock())


# ------------------------------------------------------------------------------------------------ base tool
class _SessionTool(BaseTool):
    """Shared plumbing: arguments with their defaults, error mapping, the lock, async in a worker thread."""

    assistant: Assistant = Field(description="the assistant whose models, settings and session the tool uses")
    args_schema: type[BaseModel]
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool | str | Callable[[ToolException], str] | None = True

    def _run(self, **kwargs: Any) -> tuple[str, ToolArtifact]:
        # BaseTool passes only the arguments the caller gave; validating again fills in the defaults
        args = self.args_schema.model_validate(kwargs)
        try:
            with _lock(self.assistant):
                return self._act(args)
        except (UsageError, MediaError) as err:  # the chat model can fix these: show it mmkit's message
            raise ToolException(str(err)) from err

    async def _arun(self, **kwargs: Any) -> tuple[str, ToolArtifact]:
        return await asyncio.to_thread(self._run, **kwargs)

    def _act(self, args: Any) -> tuple[str, ToolArtifact]:  # pragma: no cover - every tool overrides it
        raise NotImplementedError

    # -------------------------------------------------------------------------------- session helpers
    def _image_handle(self, reference: str) -> str:
        """'image 2' / 'Image 2' / '2' / 'the last image' / 'last' -> an existing image handle."""
        session, text = self.assistant.session, reference.strip()
        if text.lower() in ("last", "latest", "previous", ""):
            refs: tuple[str, ...] = ("last",)
        elif text.isdigit():
            refs = (f"image {int(text)}",)
        else:
            refs = tuple(r for r in find_references(text) if not r.startswith("video"))
        if len(refs) != 1:
            known = list(session.handles("image")) or "nothing yet: generate an image first"
            raise UsageError("an image argument must name exactly one session image", received=reference,
                             fix=f"use one of {known} or 'last'")
        handle = session.resolve(refs[0])
        session.image(handle)  # raises UsageError for a handle that is not an image
        return handle

    def _video_handle(self, reference: str) -> str:
        refs = [r for r in find_references(reference) if r.startswith("video")]
        handle = self.assistant.session.resolve(refs[0] if len(refs) == 1 else reference.strip())
        self.assistant.session.video_path(handle)  # raises UsageError for a handle that is not a video
        return handle

    def _turn(self, text: str, decision: RouteDecision, images: tuple[str, ...], videos: tuple[str, ...],
              seed: int | None) -> tuple[str, ToolArtifact]:
        """Run `decision` as one recorded turn (`Assistant.run_decision`): (the reply, the artifact). A failure
        marks the turn "failed" and propagates."""
        session, started = self.assistant.session, len(self.assistant.session.turns)
        try:
            result = self.assistant.run_decision(text, decision, images=images, videos=videos, seed=seed,
                                                 decided_by=f"langchain.{self.name}")
        except BaseException as err:
            if len(session.turns) > started:  # the turn had started: record why it ended
                session.finish_turn(session.turns[-1], status="failed", reply=f"{type(err).__name__}: {err}")
            raise
        turn = result.turn
        artifact = ToolArtifact(tool=self.name, status=turn.status, inputs=images + videos, handles=result.handles,
                                images=result.images, turn=turn,
                                boxes=result.answer.boxes if result.answer and decision.target else (),
                                answer=result.answer, result=result.result, verdict=result.verdict)
        return result.reply, artifact


def _decision(tool: str, route: Literal["understand", "generate", "edit"], intent: Any, text: str,
              **fields: Any) -> RouteDecision:
    return RouteDecision(route=route, intent=intent, reason=f"LangChain tool call {tool}", source="model",
                         language=detect_language(text), **fields)


# ------------------------------------------------------------------------------------------------ tools
class UnderstandImageTool(_SessionTool):
    """Answer a question about session images or videos (`VisionLanguageModel.chat`, with the session's
    earlier understanding turns as history)."""

    name: str = "understand_image"
    description: str = ("Answer a question about images or videos of this conversation, or describe them. "
                        "Refer to images by handle ('image 1', 'the last image').")
    args_schema: type[BaseModel] = UnderstandInput

    def _act(self, args: UnderstandInput) -> tuple[str, ToolArtifact]:
        images = tuple(self._image_handle(r) for r in args.images)
        videos = tuple(self._video_handle(r) for r in args.videos)
        if not images and not videos:
            images = (self._image_handle("last"),)
        decision = _decision(self.name, "understand", "answer", args.question)
        reply, artifact = self._turn(args.question, decision, images, videos, None)
        return reply, artifact


class GroundObjectTool(_SessionTool):
    """Locate an object in a session image (`VisionLanguageModel.ground`); boxes in the image's pixels."""

    name: str = "ground_object"
    description: str = ("Find an object in an image of this conversation and return its bounding boxes "
                        "(x1, y1, x2, y2 in pixels). Optionally add a copy with the boxes drawn.")
    args_schema: type[BaseModel] = GroundInput

    def _act(self, args: GroundInput) -> tuple[str, ToolArtifact]:
        handle = self._image_handle(args.image)
        text = f"Where is {args.query} in {handle}?"
        decision = _decision(self.name, "understand", "ground", text, target=args.query, draw=args.draw)
        reply, artifact = self._turn(text, decision, (handle,), (), None)
        if not artifact.boxes:
            return f"No {args.query} found in {handle}.", artifact
        drawn = f" Boxes drawn in {artifact.handles[0]}." if artifact.handles else ""
        count = f"{len(artifact.boxes)} box{'es' if len(artifact.boxes) > 1 else ''}"
        return f"{count} in {handle} (x1, y1, x2, y2 pixels): {reply}.{drawn}", artifact


class GenerateImageTool(_SessionTool):
    """Generate a new image from a prompt (`ImageGenerator.text_to_image`), checked and retried within the
    assistant's budget; the kept image joins the session."""

    name: str = "generate_image"
    description: str = ("Generate a new image from a text prompt. The image joins this conversation under a "
                        "new handle ('image 3'), which the answer names.")
    args_schema: type[BaseModel] = GenerateInput

    def _act(self, args: GenerateInput) -> tuple[str, ToolArtifact]:
        decision = _decision(self.name, "generate", "text_to_image", args.prompt, prompt=args.prompt)
        reply, artifact = self._turn(args.prompt, decision, (), (), args.seed)
        return _saved(artifact, reply), artifact


class EditImageTool(_SessionTool):
    """Edit a session image: replace or remove an object (ground -> mask -> `inpaint`), or redraw the image
    (`image_to_image`); checked and retried within the budget; the result joins the session."""

    name: str = "edit_image"
    description: str = ("Edit an image of this conversation: replace an object with another, remove an object, "
                        "or redraw the whole image following an instruction. The result joins the conversation "
                        "under a new handle, which the answer names.")
    args_schema: type[BaseModel] = EditInput

    def _act(self, args: EditInput) -> tuple[str, ToolArtifact]:
        _check_edit(args)
        handle = self._image_handle(args.image)
        if args.operation == "img2img":
            text = f"{args.instruction} ({handle})"
            decision = _decision(self.name, "edit", "img2img", text, prompt=args.instruction)
        elif args.operation == "replace":
            text = f"replace {args.target} with {args.replacement} in {handle}"
            lang = detect_language(text)
            decision = _decision(self.name, "edit", "replace", text, target=args.target,
                                 replacement=args.replacement, prompt=canonical_prompt(args.replacement, lang))
        else:
            text = f"remove {args.target} from {handle}"
            decision = _decision(self.name, "edit", "remove", text, target=args.target)
        reply, artifact = self._turn(text, decision, (handle,), (), args.seed)
        return _saved(artifact, reply, source=handle), artifact


def _check_edit(args: EditInput) -> None:
    needed = {"replace": ("target", "replacement"), "remove": ("target",), "img2img": ("instruction",)}
    missing = [name for name in needed[args.operation] if not (getattr(args, name) or "").strip()]
    if missing:
        raise UsageError(f"edit_image operation {args.operation!r} needs {' and '.join(missing)}",
                         received=args.model_dump(exclude_none=True),
                         fix=f"pass {', '.join(needed[args.operation])}")


def _saved(artifact: ToolArtifact, reply: str, source: str | None = None) -> str:
    if not artifact.handles:
        return reply
    image = artifact.images[0]
    origin = f", edited from {source}" if source else ""
    return f"Saved as {artifact.handles[0]} ({image.width}x{image.height}{origin}). {reply}"


def make_tools(assistant: Assistant) -> list[BaseTool]:
    """The four tools over one assistant, sharing its models, settings and session.

    Args:
        assistant: an `Assistant`; for a bare model pair use `make_tools(Assistant(vlm, generator))`.

    Returns:
        `[understand_image, ground_object, generate_image, edit_image]`, ready for `chat_model.bind_tools(...)`.
    """
    if not isinstance(assistant, Assistant):
        raise UsageError("make_tools takes an mmkit Assistant", received=type(assistant).__name__,
                         fix="wrap your models: make_tools(Assistant(vlm, generator))")
    return [tool(assistant=assistant) for tool in (UnderstandImageTool, GroundObjectTool, GenerateImageTool,
                                                   EditImageTool)]

