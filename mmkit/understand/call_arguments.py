"""Check the arguments of a `chat_batch` / `stream` / `ground` / `point` call, once, for every backend.

The local `VisionLanguageModel` and the remote `RemoteVisionLanguageModel` take the same keyword arguments
and the same grounding questions; this module turns a call's `**kwargs` into the checked pieces both
run on (`run_arguments`), builds the one-image grounding / pointing conversation (`grounding_call`) and
the conversations of a batch (`batch_conversations`).

Torch-free on purpose (the remote adapter must not import torch): it knows nothing about tensors,
processors, HTTP or how an answer is parsed.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..exceptions import UsageError
from .messages import Conversation, to_conversation

__all__ = ["RUN_KEYS", "CALL_SAMPLING", "run_arguments", "check_limits", "batch_conversations", "grounding_call"]

RUN_KEYS: tuple[str, ...] = ("max_new_tokens", "thinking", "seed", "min_pixels", "max_pixels")
"""Per-call settings that are not sampling settings."""
CALL_SAMPLING: tuple[str, ...] = ("temperature", "top_p", "top_k", "do_sample")
"""Sampling settings a call may lay over the model's defaults."""


def run_arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Sort a call's `**kwargs` into the run's keyword arguments: `RUN_KEYS` plus `sampling` (a dict).

    Raises:
        UsageError: an argument that is neither a run key nor a sampling key.
    """
    unknown = sorted(set(kwargs) - set(RUN_KEYS) - set(CALL_SAMPLING))
    if unknown:
        raise UsageError(f"Unknown argument(s) {unknown}", received=unknown,
                         fix=f"Use {sorted(RUN_KEYS + CALL_SAMPLING)}")
    run = {k: kwargs.get(k) for k in RUN_KEYS}
    run["max_new_tokens"] = kwargs.get("max_new_tokens", 512)
    run["sampling"] = {k: kwargs.get(k) for k in CALL_SAMPLING}
    return run


def check_limits(max_new_tokens: Any, seed: Any) -> None:
    """Check a call's generation budget and seed.

    Raises:
        UsageError: `max_new_tokens` is not a positive int, or `seed` is neither None nor an int.
    """
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 1:
        raise UsageError("max_new_tokens must be a positive int", received=max_new_tokens, fix="Pass e.g. 512")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise UsageError("seed must be an int", received=seed)


def batch_conversations(conversations: Sequence[Any],
                        kwargs: dict[str, Any]) -> tuple[list[Conversation], dict[str, Any]]:
    """The checked conversations of a `chat_batch` call and its run arguments (`run_arguments`).

    Raises:
        UsageError: `conversations` is not a non-empty list, or `images=` / `videos=` were passed.
    """
    if not isinstance(conversations, (list, tuple)) or not conversations:
        raise UsageError("chat_batch takes a non-empty list of conversations", received=conversations)
    if "images" in kwargs or "videos" in kwargs:
        raise UsageError("chat_batch takes media inside each conversation", received=sorted(kwargs),
                         fix='Use [{"role": "user", "content": [{"type": "image", "image": ...}, ...]}] per item')
    run = run_arguments(kwargs)
    return [to_conversation(c) for c in conversations], run


def grounding_call(template: str, image: Any, query: Any,
                   kwargs: dict[str, Any]) -> tuple[Conversation, dict[str, Any]]:
    """The conversation and run arguments of a `ground` / `point` call (greedy unless sampling is asked for).

    Args:
        template: the family's grounding or pointing prompt, with a `{query}` field.
        image: the one image to look at.
        query: a description, or a list of category names (joined with ", ").
        kwargs: the call's other keyword arguments (as for `chat`, without `images` / `videos`).

    Raises:
        UsageError: an empty query, `images=` / `videos=` passed, or an unknown argument.
    """
    if isinstance(query, (list, tuple)) and query and all(isinstance(q, str) and q.strip() for q in query):
        query = ", ".join(q.strip() for q in query)
    if not isinstance(query, str) or not query.strip():
        raise UsageError("query must be a non-empty string or list of strings", received=query,
                         fix='Pass e.g. "red car"')
    if "images" in kwargs or "videos" in kwargs:
        raise UsageError("ground()/point() take exactly one image as their first argument", received=sorted(kwargs))
    kwargs = dict(kwargs)
    if kwargs.get("do_sample") is None and kwargs.get("temperature") is None:
        kwargs["do_sample"] = False
    conv = to_conversation(template.format(query=query.strip()), images=[image])
    return conv, run_arguments(kwargs)
