"""A LangChain agent that draws, finds and edits images with mmkit's tools.

Runs offline in seconds: the chat model is langchain-core's fake that replays a scripted list of replies
(tool calls), and the image models are the shapes-world fakes (`ShapesVLM` reads images with the pixel
oracle, `ShapesGenerator` draws exactly what a shapes prompt asks for). The agent loop is plain
langchain-core: ask the model, run every tool call it makes, send the `ToolMessage`s back, until it
answers without tool calls.

    python examples/langchain_agent.py

For the real thing, change two lines:
- the chat model: any chat model with tool calling, e.g. a Qwen model served by vLLM
  (`vllm serve Qwen/Qwen2.5-7B-Instruct --enable-auto-tool-choice --tool-call-parser hermes`):
      from langchain_openai import ChatOpenAI
      chat = ChatOpenAI(base_url="http://localhost:8000/v1", api_key="EMPTY", model="Qwen/Qwen2.5-7B-Instruct")
- the image models:
      vlm = mmkit.VisionLanguageModel.from_pretrained("Qwen/Qwen2.5-VL-3B-Instruct")
      generator = mmkit.ImageGenerator.from_pretrained("stabilityai/stable-diffusion-xl-base-1.0")
  and `checker=VlmChecker(vlm)` (the default) instead of the shapes-world `OracleChecker()`.
"""
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from mmkit.adapters import make_tools
from mmkit.agents import Assistant, OracleChecker
from mmkit.agents.fakes import ShapesGenerator, ShapesVLM
from mmkit.shapes import detect


class ScriptedChatModel(GenericFakeChatModel):
    """The fake chat model, plus `bind_tools` (the fake ignores the tools; a real model reads their schemas)."""

    def bind_tools(self, tools, **kwargs):
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)


def call(name, id, **args):
    return {"name": name, "args": args, "id": id, "type": "tool_call"}


# What a tool-calling model would answer, turn by turn, to the request below.
script = [
    AIMessage("", tool_calls=[call("generate_image", "call-1", prompt="a red circle on the left")]),
    AIMessage("", tool_calls=[call("ground_object", "call-2", query="the red circle", image="image 1")]),
    AIMessage("", tool_calls=[call("edit_image", "call-3", operation="replace", image="image 1",
                                   target="the red circle", replacement="a blue square")]),
    AIMessage("", tool_calls=[call("understand_image", "call-4", question="What colour is the square?")]),
    AIMessage("Done: image 2 shows a blue square where the red circle was."),
]
chat = ScriptedChatModel(messages=iter(script))
# chat = ChatOpenAI(base_url="http://localhost:8000/v1", api_key="EMPTY", model="Qwen/Qwen2.5-7B-Instruct")

assistant = Assistant(ShapesVLM(), ShapesGenerator(size=64), checker=OracleChecker())
tools = {tool.name: tool for tool in make_tools(assistant)}
model = chat.bind_tools(list(tools.values()))

messages = [
    SystemMessage("You draw and edit images with tools. Refer to images by their handles ('image 1')."),
    HumanMessage("Draw a red circle on the left, find it, then replace it with a blue square."),
]
for _ in range(10):  # a step limit, as every agent loop should have
    reply = model.invoke(messages)
    messages.append(reply)
    if not reply.tool_calls:
        break
    for tool_call in reply.tool_calls:
        result: ToolMessage = tools[tool_call["name"]].invoke(tool_call)  # a ToolCall in -> a ToolMessage out
        messages.append(result)
        art = result.artifact  # None when the tool reported an error to the model (result.status == "error")
        print(f"[{tool_call['name']}] {result.content}")
        if art is not None:
            print(f"    artifact: status={art.status} new={list(art.handles)} "
                  f"boxes={[tuple(round(v) for v in b.as_tuple()) for b in art.boxes]} "
                  f"seeds={list(art.result.seeds) if art.result else []}")

print("assistant:", messages[-1].content)
final = assistant.session.image(assistant.session.handles("image")[-1])
print("final image:", [(d.colour, d.kind, d.position) for d in detect(final)])
print("turns:", [(t.index, t.status) for t in assistant.session.turns])
