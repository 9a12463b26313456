"""mmkit.agents: an assistant that routes each request to understanding, generation or editing.

- `routing`: `RuleRouter` (deterministic, English + Chinese) -> `RouteDecision`.
- `model_router`: optional `ModelRouter` protocol, `LangChainRouter`, fallback to the rules.
- `checks`: `Checker` protocol, `OracleChecker` (shapes world), `VlmChecker`.
- `loops`: generate / edit / understand loops with budgets; every step recorded.
- `session`: media handles, turns and steps, persisted to a folder and resumable.
- `assistant`: `Assistant.ask(text, images=..., videos=...)`.
- `fakes`: `ShapesGenerator`, `ShapesVLM`, `ScriptedVLM` for tests.

This package sits above `mmkit.understand` and `mmkit.generate`; nothing below imports it.
"""

from .assistant import Assistant, TurnResult
from .checks import Checker, CheckItem, CheckVerdict, Expectation, OracleChecker, VlmChecker, expectation_from_prompt
from .loops import AgentSettings, box_mask
from .model_router import TOOLS, LangChainRouter, ModelRouter, ToolChoice, ToolSpec, decide_with_fallback
from .phrases import ObjectQuery, canonical_prompt, detect_language, parse_object
from .routing import Intent, Route, RouteDecision, RouteRequest, RuleRouter, find_references
from .session import Budget, MediaEntry, Session, Step, Turn

__all__ = [
    "Assistant", "TurnResult",
    "Route", "Intent", "RouteRequest", "RouteDecision", "RuleRouter", "find_references",
    "ModelRouter", "ToolChoice", "ToolSpec", "TOOLS", "LangChainRouter", "decide_with_fallback",
    "Checker", "Expectation", "CheckItem", "CheckVerdict", "OracleChecker", "VlmChecker", "expectation_from_prompt",
    "AgentSettings", "Budget", "box_mask",
    "Session", "MediaEntry", "Step", "Turn",
    "ObjectQuery", "parse_object", "detect_language", "canonical_prompt",
]
