"""mmkit.adapters: mmkit behind other frameworks' interfaces.

- `openai_backend`: `RemoteVisionLanguageModel`, the same API as `VisionLanguageModel` over an
  OpenAI-compatible server (vLLM, SGLang, LMDeploy).
- `langchain_tools`: LangChain tools (understand, ground, generate, edit) over an `Assistant`; `make_tools`.

Names are imported lazily (on first attribute access), so `import mmkit.adapters` pulls in no framework
until one of its adapters is used. This package sits above `mmkit.agents`; nothing below imports it.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the module (in this package) that defines it
_LAZY: dict[str, str] = {
    **{name: "langchain_tools" for name in (
        "make_tools", "ToolArtifact", "UnderstandImageTool", "GroundObjectTool", "GenerateImageTool",
        "EditImageTool", "UnderstandInput", "GroundInput", "GenerateInput", "EditInput")},
    "RemoteVisionLanguageModel": "openai_backend",
    "RemoteChatStream": "openai_replies",
    "ServerClient": "openai_http",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
