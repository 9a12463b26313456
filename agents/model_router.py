"""The optional model router: a chat model picks the route as a tool call; bad picks fall back to rules.

A model router is any object with `choose(request, tools) -> ToolChoice` (`ModelRouter` protocol).
`LangChainRouter` adapts a LangChain `BaseChatModel` that supports `bind_tools`: the three routes are
offered as tools (`TOOLS`, pydantic argument schemas with a description per field) and the first tool
call of the reply is read back. `decide_with_fallback` turns a choice into a `RouteDecision`, and on any
failure (the router raised, named an unknown tool, gave arguments that do not validate, or picked a
route that needs an image the session does not have) returns the rule router's decision and the error,
so the turn goes on and the fallback is recorded.

This module knows LangChain message shapes (imported lazily) and routing types; nothing about models'
pixels or sessions.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mmkit.exceptions import ModelOutputError

from .routing import Intent, Route, RouteDecision, RouteRequest, RuleRouter

__all__ = ["ToolChoice", "ToolSpec", "TOOLS", "ModelRouter", "LangChainRouter", "decide_with_fallback"]


class ToolChoice(BaseModel):
    """A model router's pick: the route (tool name) and the arguments it filled in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    route: Route
    intent: Intent
    target: str | None = None
    replacement: str | None = None
    prompt: str | None = None
    reason: str = ""


class UnderstandArgs(BaseModel):
    """Answer about the session's images or videos: describe, answer a question, or locate an object."""

    intent: Intent = Field("answer", description="describe, answer, ground or video")
    target: str | None = Field(None, description="the object to locate (intent ground)")


class GenerateArgs(BaseModel):
    """Generate a new image from a text prompt."""

    prompt: str = Field(description="what to draw, e.g. 'a red circle on the left'")


class EditArgs(BaseModel):
    """Edit an existing image: replace or remove an object, or redraw it (img2img) following a prompt."""

    intent: Intent = Field("replace", description="replace, remove or img2img")
    target: str | None = Field(None, description="the object to change, e.g. 'the red circle'")
    replacement: str | None = Field(None, description="what it becomes, e.g. 'a blue square'")
    prompt: str | None = Field(None, description="the img2img instruction, e.g. 'make it darker'")


class ToolSpec(BaseModel):
    """One route offered to a model router."""

    model_config = ConfigDict(frozen=True)

    name: Route
    description: str
    args: type[BaseModel]


TOOLS: tuple[ToolSpec, ...] = tuple(ToolSpec(name=n, description=(a.__doc__ or "").strip(), args=a) for n, a in (
    ("understand", UnderstandArgs), ("generate", GenerateArgs), ("edit", EditArgs)))

_INTENTS: dict[str, set[str]] = {"understand": {"describe", "answer", "ground", "video"},
                                 "generate": {"text_to_image"}, "edit": {"replace", "remove", "img2img"}}


@runtime_checkable
class ModelRouter(Protocol):
    """Anything that picks a route for a request from the offered tools."""

    def choose(self, request: RouteRequest, tools: Sequence[ToolSpec]) -> ToolChoice: ...


_SYSTEM = ("You route requests of an image assistant. Call exactly one tool: understand (questions about "
           "images/videos), generate (a new image), or edit (change an existing image). The user has "
           "{images} image(s) and {videos} video(s) available.")


class LangChainRouter:
    """Route with a LangChain chat model that supports tool calling (`bind_tools`).

    Args:
        model: a `langchain_core.language_models.BaseChatModel`.
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    def choose(self, request: RouteRequest, tools: Sequence[ToolSpec]) -> ToolChoice:
        from langchain_core.messages import HumanMessage, SystemMessage
        from langchain_core.utils.function_calling import convert_to_openai_tool

        schemas = []
        for tool in tools:
            schema = convert_to_openai_tool(tool.args)
            schema["function"].update(name=tool.name, description=tool.description)
            schemas.append(schema)
        bound = self.model.bind_tools(schemas)
        system = _SYSTEM.format(images=request.attached_images + request.session_images,
                                videos=request.attached_videos + request.session_videos)
        reply = bound.invoke([SystemMessage(system), HumanMessage(request.text)])
        calls = getattr(reply, "tool_calls", None) or []
        if not calls:
            raise ModelOutputError("the routing model called no tool", received=getattr(reply, "content", reply))
        call = calls[0]
        spec = {t.name: t for t in tools}.get(call.get("name"))
        if spec is None:
            raise ModelOutputError("the routing model called an unknown tool", received=call.get("name"),
                                   fix=f"offer and call one of {[t.name for t in tools]}")
        try:
            args = spec.args.model_validate(call.get("args") or {})
        except ValidationError as err:
            raise ModelOutputError("the routing model's tool arguments do not validate", received=call.get("args"),
                                   fix=str(err).splitlines()[0]) from err
        values = args.model_dump()
        intent = values.pop("intent", "text_to_image")
        return ToolChoice(route=spec.name, intent=intent, reason=f"model tool call {spec.name}", **values)


def _check_choice(choice: ToolChoice, request: RouteRequest) -> None:
    if choice.intent not in _INTENTS[choice.route]:
        raise ModelOutputError("the chosen intent does not belong to the chosen route", received=choice.intent,
                               fix=f"{choice.route} takes {sorted(_INTENTS[choice.route])}")
    if choice.route == "edit" and not request.has_image:
        raise ModelOutputError("edit chosen but no image is available", received=choice.model_dump())
    if choice.intent in ("ground", "describe") and not request.has_image:
        raise ModelOutputError(f"{choice.intent} chosen but no image is available", received=choice.model_dump())
    if choice.intent in ("replace", "remove", "ground") and not choice.target:
        raise ModelOutputError(f"intent {choice.intent} needs a target", received=choice.model_dump())
    if choice.intent == "replace" and not choice.replacement:
        raise ModelOutputError("intent replace needs a replacement", received=choice.model_dump())
    if choice.route == "generate" and not choice.prompt:
        raise ModelOutputError("generate needs a prompt", received=choice.model_dump())


def decide_with_fallback(router: ModelRouter, request: RouteRequest, *, rules: RuleRouter | None = None,
                         tools: Sequence[ToolSpec] = TOOLS) -> tuple[RouteDecision, str | None]:
    """Ask `router`; return (decision, None), or (the rule decision, the error text) when the pick is unusable.

    Args:
        router: a `ModelRouter`.
        request: the request.
        rules: the fallback router (default `RuleRouter()`).
        tools: the routes offered.
    """
    fallback = (rules or RuleRouter()).decide(request)
    try:
        choice = router.choose(request, tools)
        if not isinstance(choice, ToolChoice):
            raise ModelOutputError("a model router must return a ToolChoice", received=type(choice).__name__)
        _check_choice(choice, request)
    except Exception as err:  # noqa: BLE001 - any router failure is recorded and routed by the rules instead
        return fallback, f"{type(err).__name__}: {err}"
    prompt = choice.prompt or (choice.replacement if choice.intent == "replace" else None)
    decision = RouteDecision(route=choice.route, intent=choice.intent, target=choice.target,
                             replacement=choice.replacement, prompt=prompt, reason=choice.reason or "model router",
                             language=fallback.language, references=fallback.references, source="model",
                             draw=fallback.draw)
    return decision, None
