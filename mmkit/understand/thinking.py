"""Split what a Qwen-VL model generated into its reasoning (`<think>...</think>`) and its answer.

Text in, plain values out; never raises on odd model output. Knows nothing about models, tokenizers or
what the answer contains (boxes, points and time spans are `parsing.py` and `time_spans.py`).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["ThinkingSplit", "split_thinking"]

_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"


class ThinkingSplit(NamedTuple):
    """The generated text split into reasoning and answer.

    Attributes:
        thinking: the text inside the think block(s), stripped. `None` when there was no think block at
            all; `""` when there was one and it was empty (`<think>\\n\\n</think>`), so callers can tell
            "the model was in thinking mode but wrote nothing" from "no thinking mode". Test truthiness
            (`if split.thinking:`) to treat both as "no reasoning".
        answer: the text outside think blocks, stripped; `""` when generation stopped while thinking.
        closed: False when a think block was opened and never closed (the model hit `max_new_tokens`
            while thinking: everything after the opening is thinking).
    """

    thinking: str | None
    answer: str
    closed: bool


def split_thinking(text: str, *, prompt_opened_think: bool = False) -> ThinkingSplit:
    """Split generated text into (thinking, answer, closed).

    Handles `<think>...</think>answer`, text that starts inside the block (Qwen3 "Thinking" chat templates
    end the prompt with `<think>`, so the generation has only `</think>`), empty blocks, several blocks
    (their texts are joined with a blank line), and a block never closed.

    Args:
        text: the generated text, special tokens removed (`<think>`/`</think>` are ordinary added tokens in
            Qwen tokenizers and survive `skip_special_tokens=True`).
        prompt_opened_think: set when the prompt itself ended with `<think>`; then text without any
            `</think>` is all thinking (cut at `max_new_tokens`) rather than all answer.

    Returns:
        `ThinkingSplit(thinking, answer, closed)`.
    """
    thoughts: list[str] = []
    answer_parts: list[str] = []
    closed = True
    rest = text
    first_close, first_open = rest.find(_THINK_CLOSE), rest.find(_THINK_OPEN)
    starts_inside = first_close != -1 and (first_open == -1 or first_close < first_open)
    if prompt_opened_think or starts_inside:
        rest = rest.lstrip()
        rest = rest[len(_THINK_OPEN):] if rest.startswith(_THINK_OPEN) else rest  # model repeated the tag
        close = rest.find(_THINK_CLOSE)
        if close == -1:
            return ThinkingSplit(rest.strip(), "", closed=False)
        thoughts.append(rest[:close])
        rest = rest[close + len(_THINK_CLOSE):]
    while (start := rest.find(_THINK_OPEN)) != -1:
        answer_parts.append(rest[:start])
        rest = rest[start + len(_THINK_OPEN):]
        close = rest.find(_THINK_CLOSE)
        if close == -1:
            thoughts.append(rest)
            rest, closed = "", False
            break
        thoughts.append(rest[:close])
        rest = rest[close + len(_THINK_CLOSE):]
    answer_parts.append(rest)
    thinking = "\n\n".join(t.strip() for t in thoughts if t.strip()) if thoughts else None
    return ThinkingSplit(thinking, "".join(answer_parts).strip(), closed)
