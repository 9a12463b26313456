"""The model router: LangChain tool calls become decisions; bad calls fall back to the rules, recorded."""
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage

from mmkit.agents import (TOOLS, Assistant, LangChainRouter, OracleChecker, RouteRequest, ToolChoice,
                          decide_with_fallback)
from mmkit.agents.fakes import ShapesGenerator, ShapesVLM


class ToolCallingFake(FakeMessagesListChatModel):
    """langchain-core's fake chat model, plus `bind_tools` (recorded) so it can stand in for a tool caller."""

    bound: list = []

    def bind_tools(self, tools, **kwargs):
        self.bound.append(tools)
        return self


def _model(*calls):
    return ToolCallingFake(responses=[AIMessage(content="", tool_calls=[c]) if c else AIMessage(content="hello")
                                      for c in calls])


def _call(name, args):
    return {"name": name, "args": args, "id": "call_1", "type": "tool_call"}


def test_good_tool_call_is_used():
    model = _model(_call("edit", {"intent": "replace", "target": "the red circle", "replacement": "a blue square"}))
    decision, error = decide_with_fallback(LangChainRouter(model), RouteRequest(text="swap it", session_images=1))
    assert error is None and decision.source == "model"
    assert (decision.route, decision.intent, decision.target, decision.prompt) == (
        "edit", "replace", "the red circle", "a blue square")
    names = [t["function"]["name"] for t in model.bound[-1]]
    assert names == ["understand", "generate", "edit"]
    assert "target" in model.bound[-1][2]["function"]["parameters"]["properties"]


def test_unknown_tool_falls_back_to_rules():
    model = _model(_call("paint_everything", {"prompt": "x"}))
    decision, error = decide_with_fallback(LangChainRouter(model), RouteRequest(text="draw a red circle"))
    assert decision.source == "rules" and decision.route == "generate" and decision.prompt == "a red circle"
    assert error.startswith("ModelOutputError: the routing model called an unknown tool")


def test_invalid_arguments_and_missing_call_fall_back():
    bad_args = _model(_call("generate", {"prompt": 42}))
    decision, error = decide_with_fallback(LangChainRouter(bad_args), RouteRequest(text="画一个红色的圆"))
    assert decision.source == "rules" and "do not validate" in error
    no_call = _model(None)
    decision, error = decide_with_fallback(LangChainRouter(no_call), RouteRequest(text="where is the circle?",
                                                                                  attached_images=1))
    assert decision.intent == "ground" and "called no tool" in error


def test_edit_without_image_is_rejected():
    model = _model(_call("edit", {"intent": "img2img", "prompt": "darker"}))
    decision, error = decide_with_fallback(LangChainRouter(model), RouteRequest(text="make it darker"))
    assert "no image is available" in error and decision.source == "rules"


def test_any_router_object_and_exceptions():
    class Picks:
        def choose(self, request, tools):
            assert [t.name for t in tools] == [t.name for t in TOOLS]
            return ToolChoice(route="generate", intent="text_to_image", prompt="a green star", reason="test pick")

    class Raises:
        def choose(self, request, tools):
            raise TimeoutError("model server timed out")

    decision, error = decide_with_fallback(Picks(), RouteRequest(text="anything"))
    assert (decision.prompt, decision.reason, error) == ("a green star", "test pick", None)
    decision, error = decide_with_fallback(Raises(), RouteRequest(text="draw a red circle"))
    assert error == "TimeoutError: model server timed out" and decision.route == "generate"


def test_fallback_is_recorded_in_the_turn():
    model = _model(_call("nonsense", {}))
    assistant = Assistant(ShapesVLM(), ShapesGenerator(), checker=OracleChecker(), router=LangChainRouter(model))
    result = assistant.ask("draw a red circle")
    first = result.turn.steps[0]
    assert first.kind == "fallback" and first.tool == "router.rules" and "unknown tool" in first.error
    assert result.turn.status == "done" and result.images
