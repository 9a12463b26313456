"""LangChain tools over an Assistant: schemas, content + artifact, handles, errors, async, the standard
langchain-tests suites for each tool, and the agent example. Real images, judged by the shapes pixel oracle."""
import asyncio
import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import ToolException
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from mmkit.adapters import (EditImageTool, GenerateImageTool, GroundObjectTool, ToolArtifact, UnderstandImageTool,
                            make_tools)
from mmkit.agents import AgentSettings, Assistant, Budget, OracleChecker, Session
from mmkit.agents.fakes import ScriptedVLM, ShapesGenerator, ShapesVLM
from mmkit.generate.result import GenerationResult
from mmkit.shapes import detect, render, scene_from_prompt
from mmkit.shapes.language import parse_prompt
from mmkit.understand.answer import Answer


def bundled_models():
    """The (vlm, generator) the adapter tests run on: the shapes-world fakes, whose exact answers let these
    tests pin the adapter's behaviour. The standard suites also run on the trained bundled models
    (`_trained_models`, the `*Bundled` classes below)."""
    return ShapesVLM(), ShapesGenerator(size=64)


@functools.cache
def _trained_models():
    """The bundled `mmkit/shapes-qwen2.5-vl` and `mmkit/shapes-sd`, loaded once for the suites below."""
    from mmkit.generate.generator import ImageGenerator
    from mmkit.understand.model import VisionLanguageModel

    return (VisionLanguageModel.from_pretrained("mmkit/shapes-qwen2.5-vl", device="cpu"),
            ImageGenerator.from_pretrained("mmkit/shapes-sd", device="cpu", progress=False))


@pytest.fixture
def models():
    return bundled_models()


def _assistant(models=None, *, scene="a red circle on the left", session=None):
    """An assistant whose session holds one image ("image 1") drawn from `scene` (none when scene is None)."""
    vlm, generator = models or bundled_models()
    assistant = Assistant(vlm, generator, checker=OracleChecker(), session=session)
    if scene is not None:
        assistant.session.add_image(render(scene_from_prompt(parse_prompt(scene), size=64)))
    return assistant


def _call(tool, **args):
    return tool.invoke({"name": tool.name, "args": args, "id": "call-1", "type": "tool_call"})


def _shapes(image):
    return [(d.colour, d.kind, d.position) for d in detect(image)]


def _tools(assistant):
    return {t.name: t for t in make_tools(assistant)}


# ----------------------------------------------------------------------------------------------- schemas
def test_make_tools_names_and_contract(models):
    tools = make_tools(_assistant(models))
    assert [t.name for t in tools] == ["understand_image", "ground_object", "generate_image", "edit_image"]
    for tool in tools:
        assert tool.response_format == "content_and_artifact" and tool.handle_tool_error is True
        fields = tool.args_schema.model_fields
        assert fields and all(f.description and len(f.description) > 10 for f in fields.values()), tool.name
        schema = convert_to_openai_tool(tool)["function"]
        assert schema["name"] == tool.name and schema["description"] == tool.description
        assert all(p.get("description") for p in schema["parameters"]["properties"].values())
    assert convert_to_openai_tool(tools[3])["function"]["parameters"]["required"] == ["operation"]


def test_make_tools_wants_an_assistant(models):
    with pytest.raises(ValueError, match="make_tools takes an mmkit Assistant"):
        make_tools(models[0])


# ----------------------------------------------------------------------------------------------- each tool
def test_generate_content_artifact_and_session(models, tmp_path):
    assistant = _assistant(models, scene=None, session=Session(tmp_path / "s"))
    message = _call(_tools(assistant)["generate_image"], prompt="a green triangle on the right", seed=5)
    art = message.artifact
    assert isinstance(message, ToolMessage) and message.status == "success"
    assert message.content == "Saved as image 1 (64x64). Here is the generated image. It passed the checks."
    assert isinstance(art, ToolArtifact) and art.status == "done" and art.handles == ("image 1",)
    assert art.images[0] is assistant.session.image("image 1")
    assert _shapes(art.images[0]) == [("green", "triangle", "right")]
    assert isinstance(art.result, GenerationResult) and art.result.seeds == (5,)
    assert art.result.images[0] is not None and art.verdict.passed is True and art.boxes == ()
    assert [(s.kind, s.tool) for s in art.turn.steps] == [
        ("route", "langchain.generate_image"), ("generate", "generator.text_to_image"), ("check", "checker.oracle")]
    assert (tmp_path / "s" / "images" / "image-1.png").is_file()
    assert Session.resume(tmp_path / "s").turns[0].status == "done"


def test_ground_boxes_match_the_oracle_and_draw(models):
    assistant = _assistant(models)
    tool = _tools(assistant)["ground_object"]
    truth = detect(assistant.session.image("image 1"))[0].box
    message = _call(tool, query="the red circle", draw=True)
    (box,) = message.artifact.boxes
    assert box.as_tuple() == pytest.approx(truth.as_tuple(), abs=0.5)
    assert message.artifact.answer.boxes == (box,) and message.artifact.inputs == ("image 1",)
    expected = f"({box.x1:.0f}, {box.y1:.0f}, {box.x2:.0f}, {box.y2:.0f})"
    assert message.content == f"1 box in image 1 (x1, y1, x2, y2 pixels): red circle: {expected}. " \
                              "Boxes drawn in image 2."
    assert assistant.session.entry("image 2").origin == "annotated"
    # the drawn copy is not "the last image": grounding again reads image 1
    assert _call(tool, query="the red circle").artifact.inputs == ("image 1",)
    missing = _call(tool, query="the blue square")
    assert missing.content == "No the blue square found in image 1." and missing.artifact.boxes == ()


def test_understand_answers_from_the_image(models):
    assistant = _assistant(models, scene="a red circle on the left and a yellow square on the right")
    tool = _tools(assistant)["understand_image"]
    message = _call(tool, question="What colour is the square?")
    assert message.content == "yellow" and message.artifact.answer.text == "yellow"
    assert message.artifact.inputs == ("image 1",) and message.artifact.handles == ()
    assert _call(tool, question="How many shapes are there?", images=["image 1"]).content == "2"
    assert assistant.session.turns[-1].decision.intent == "answer"


def test_edit_replace_remove_img2img(models):
    assistant = _assistant(models)
    tool = _tools(assistant)["edit_image"]
    replaced = _call(tool, operation="replace", image="image 1", target="the red circle",
                     replacement="a blue square")
    assert replaced.content.startswith("Saved as image 2 (64x64, edited from image 1).")
    assert _shapes(replaced.artifact.images[0]) == [("blue", "square", "left")]
    assert replaced.artifact.boxes and replaced.artifact.result.params.task == "inpaint"
    removed = _call(tool, operation="remove", target="the blue square")  # default image: the last one (image 2)
    assert removed.artifact.inputs == ("image 2",) and _shapes(removed.artifact.images[0]) == []
    darker = _call(tool, operation="img2img", image="image 1", instruction="make it darker")
    before, after = (np.asarray(assistant.session.image(h), dtype=float).mean() for h in ("image 1", "image 4"))
    assert darker.artifact.handles == ("image 4",) and after < before * 0.8
    not_there = _call(tool, operation="remove", image="image 1", target="the green triangle")
    assert not_there.content == "I could not find the green triangle in image 1."
    assert not_there.artifact.status == "failed" and not_there.artifact.handles == ()


# ----------------------------------------------------------------------------------------------- handles
@pytest.mark.parametrize("reference, handle", [
    ("image 1", "image 1"), ("Image 2", "image 2"), ("2", "image 2"), ("image #1", "image 1"),
    ("the last image", "image 2"), ("last", "image 2"), ("图1", "image 1")])
def test_handles_resolve(models, reference, handle):
    assistant = _assistant(models)
    assistant.session.add_image(assistant.session.image("image 1"), origin="generated")
    message = _call(_tools(assistant)["ground_object"], query="the red circle", image=reference)
    assert message.artifact.inputs == (handle,)


@pytest.mark.parametrize("reference, text", [
    ("image 9", "no such media handle in this session (received: 'image 9'). use one of ['image 1']"),
    ("image 1 and image 2", "an image argument must name exactly one session image"),
    ("the circle picture", "an image argument must name exactly one session image"),
])
def test_bad_handles_become_tool_errors(models, reference, text):
    message = _call(_tools(_assistant(models))["ground_object"], query="the red circle", image=reference)
    assert message.status == "error" and text in message.content and message.artifact is None


# ----------------------------------------------------------------------------------------------- errors
def test_usage_errors_reach_the_model_as_text(models):
    assistant = _assistant(models, scene=None)
    tools = _tools(assistant)
    empty = _call(tools["understand_image"], question="what is this?")
    assert empty.status == "error"
    assert empty.content.startswith("the request refers to the last image, but the session has none")
    missing = _call(tools["edit_image"], operation="replace", target="the red circle")
    assert missing.content.startswith("edit_image operation 'replace' needs replacement")
    # a plain invoke (no ToolCall) returns the same text instead of raising
    assert tools["edit_image"].invoke({"operation": "img2img"}).startswith("edit_image operation 'img2img' needs")
    assert assistant.session.turns == ()  # argument errors are caught before a turn starts
    with pytest.raises(ToolException, match="needs instruction"):
        tools["edit_image"]._run(operation="img2img")


def test_other_errors_propagate_and_the_turn_is_marked_failed():
    class Broken(ShapesGenerator):
        def text_to_image(self, prompt, **kwargs):
            raise RuntimeError("CUDA out of memory")

    assistant = Assistant(ShapesVLM(), Broken(), checker=OracleChecker())
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        _call(_tools(assistant)["generate_image"], prompt="a red circle")
    turn = assistant.session.turns[-1]
    assert turn.status == "failed" and turn.reply == "RuntimeError: CUDA out of memory"

    scripted = Assistant(ScriptedVLM([]), ShapesGenerator(), checker=OracleChecker())
    scripted.session.add_image(render(scene_from_prompt(parse_prompt("a red circle"), size=64)))
    with pytest.raises(Exception, match="no answers left") as info:  # ModelOutputError is not a caller mistake
        _call(_tools(scripted)["understand_image"], question="what is it?")
    assert type(info.value).__name__ == "ModelOutputError"


def test_media_errors_become_tool_errors():
    from mmkit.exceptions import MediaError

    class Unreadable(ShapesVLM):
        def chat(self, *args, **kwargs):
            raise MediaError("the video could not be decoded", received="video 1", fix="re-encode it as H.264")

    assistant = _assistant((Unreadable(), ShapesGenerator()))
    message = _call(_tools(assistant)["understand_image"], question="what happens?")
    assert message.status == "error"
    assert message.content == "the video could not be decoded (received: 'video 1'). re-encode it as H.264"


# ----------------------------------------------------------------------------------------------- async
def test_async_calls_match_sync_and_serialise_on_one_assistant(models):
    assistant = _assistant(models, scene=None)
    tool = _tools(assistant)["generate_image"]

    async def both():
        return await asyncio.gather(*(tool.ainvoke({"name": tool.name, "args": {"prompt": p, "seed": 3},
                                                    "id": f"c{i}", "type": "tool_call"})
                                      for i, p in enumerate(["a red circle", "a blue square"])))

    first, second = asyncio.run(both())
    assert {first.artifact.handles[0], second.artifact.handles[0]} == {"image 1", "image 2"}
    for message in (first, second):  # each turn's steps are its own: no interleaving
        assert [s.kind for s in message.artifact.turn.steps] == ["route", "generate", "check"]
        assert message.artifact.result.seeds == (3,)
    assert sorted(_shapes(m.artifact.images[0])[0][:2] for m in (first, second)) == [
        ("blue", "square"), ("red", "circle")]


# ----------------------------------------------------------------------------------------------- example
def test_example_agent_runs_offline(tmp_path):
    script = Path(__file__).parent.parent / "examples" / "langchain_agent.py"
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "final image: [('blue', 'square', 'left')]" in out.stdout
    assert "[understand_image] blue" in out.stdout
    assert "turns: [(1, 'done'), (2, 'done'), (3, 'done'), (4, 'done')]" in out.stdout


def test_adapters_import_lazily():
    code = "import sys, mmkit.adapters; print('langchain_core' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


# ----------------------------------------------------------------------------------------------- standard suites
# langchain-tests' contract suites, once per tool. `tool_constructor_params` builds a fresh assistant on
# `bundled_models()` whose session already holds "image 1" (a red circle on the left).
class _Suite:
    tool_class: type
    example: dict

    @property
    def tool_constructor(self):
        return self.tool_class

    @property
    def tool_constructor_params(self):
        return {"assistant": _assistant()}

    @property
    def tool_invoke_params_example(self):
        return self.example


_EXAMPLES = {
    UnderstandImageTool: {"question": "What colour is the circle?", "images": ["image 1"]},
    GroundObjectTool: {"query": "the red circle", "image": "image 1"},
    GenerateImageTool: {"prompt": "a blue square on the right", "seed": 1},
    EditImageTool: {"operation": "replace", "image": "the last image", "target": "the red circle",
                    "replacement": "a green triangle"},
}

# pytest-asyncio runs in strict mode here: the suites' async tests need the mark (sync ones ignore it).
_ASYNC = [pytest.mark.asyncio, pytest.mark.filterwarnings("ignore:.*is marked with '@pytest.mark.asyncio'")]


class TestUnderstandUnit(_Suite, ToolsUnitTests):
    tool_class, example = UnderstandImageTool, _EXAMPLES[UnderstandImageTool]


class TestUnderstandIntegration(_Suite, ToolsIntegrationTests):
    pytestmark = _ASYNC
    tool_class, example = UnderstandImageTool, _EXAMPLES[UnderstandImageTool]


class TestGroundUnit(_Suite, ToolsUnitTests):
    tool_class, example = GroundObjectTool, _EXAMPLES[GroundObjectTool]


class TestGroundIntegration(_Suite, ToolsIntegrationTests):
    pytestmark = _ASYNC
    tool_class, example = GroundObjectTool, _EXAMPLES[GroundObjectTool]


class TestGenerateUnit(_Suite, ToolsUnitTests):
    tool_class, example = GenerateImageTool, _EXAMPLES[GenerateImageTool]


class TestGenerateIntegration(_Suite, ToolsIntegrationTests):
    pytestmark = _ASYNC
    tool_class, example = GenerateImageTool, _EXAMPLES[GenerateImageTool]


class TestEditUnit(_Suite, ToolsUnitTests):
    tool_class, example = EditImageTool, _EXAMPLES[EditImageTool]


class TestEditIntegration(_Suite, ToolsIntegrationTests):
    pytestmark = _ASYNC
    tool_class, example = EditImageTool, _EXAMPLES[EditImageTool]


class _BundledSuite(_Suite):
    """The same suites on the trained bundled models (short generator runs: the contract, not the quality)."""

    @property
    def tool_constructor_params(self):
        vlm, generator = _trained_models()
        assistant = Assistant(vlm, generator, checker=OracleChecker(), budget=Budget(attempts=1),
                              settings=AgentSettings(steps=8, width=64, height=64, chat_tokens=32))
        assistant.session.add_image(render(scene_from_prompt(parse_prompt("a red circle on the left"), size=64)))
        return {"assistant": assistant}


class TestUnderstandBundled(_BundledSuite, ToolsIntegrationTests):
    pytestmark = _ASYNC
    tool_class, example = UnderstandImageTool, _EXAMPLES[UnderstandImageTool]


class TestGroundBundled(_BundledSuite, ToolsIntegrationTests):
    pytestmark = _ASYNC
    tool_class, example = GroundObjectTool, _EXAMPLES[GroundObjectTool]


class TestGenerateBundled(_BundledSuite, ToolsIntegrationTests):
    pytestmark = _ASYNC
    tool_class, example = GenerateImageTool, _EXAMPLES[GenerateImageTool]


class TestEditBundled(_BundledSuite, ToolsIntegrationTests):
    pytestmark = _ASYNC
    tool_class, example = EditImageTool, _EXAMPLES[EditImageTool]


class TestGenerateUnitBundled(_BundledSuite, ToolsUnitTests):
    tool_class, example = GenerateImageTool, _EXAMPLES[GenerateImageTool]


def test_suite_examples_really_work():
    """The standard suites only check shapes; here the same examples give the right answers."""
    answers = {cls: _call(cls(assistant=_assistant()), **args) for cls, args in _EXAMPLES.items()}
    assert answers[UnderstandImageTool].content == "red"
    assert len(answers[GroundObjectTool].artifact.boxes) == 1
    assert _shapes(answers[GenerateImageTool].artifact.images[0]) == [("blue", "square", "right")]
    assert _shapes(answers[EditImageTool].artifact.images[0]) == [("green", "triangle", "left")]
    assert all(isinstance(m.artifact.answer, Answer) for c, m in answers.items() if c is not GenerateImageTool)
