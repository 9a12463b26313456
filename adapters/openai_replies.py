"""What an OpenAI-compatible server answers, read back: a `chat.completion` body or a stream of chunks.

Owns `read_completion` (raw text, finish reason, usage of one body) and `RemoteChatStream` (text deltas of
a `stream: true` answer, then the `Answer`). A reasoning parser's separate field (vLLM >= 0.11 `reasoning`,
older vLLM and SGLang `reasoning_content`) is put back as `<think>\n...\n</think>\n\n` before the content,
so the text goes through the same `build_answer` thinking split as a local generation, and the streamed
deltas join to exactly that text. Knows nothing about HTTP, media or coordinates.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator

from mmkit.exceptions import ModelOutputError
from mmkit.understand.answer import Answer, Usage

__all__ = ["RemoteChatStream", "read_completion", "usage_from"]

_CLOSE_THINK = "\n</think>\n\n"


class RemoteChatStream:
    """Text deltas of one `RemoteVisionLanguageModel.stream` call, as the server sends them.

    Iterate it for the deltas (`"".join(deltas) == answer.raw_text`; a reasoning parser's separate field is
    streamed inside `<think>\\n ... \\n</think>\\n\\n`, as `chat` puts it back); `.answer` gives the parsed
    `Answer` (reading it first drains the stream); `.text` is what was streamed so far.
    """

    def __init__(self, events: Iterator[dict[str, Any]], *, finish: Callable[..., Answer], start: float) -> None:
        self._events = events
        self._finish = finish
        self._start = start
        self._deltas: list[str] = []
        self._reason: str | None = None
        self._usage: dict[str, Any] = {}
        self._first: float | None = None
        self._answer: Answer | None = None
        self._exhausted = False
        self._thinking = self._answering = False  # inside reasoning / answer text (kept across re-iteration)

    def __iter__(self) -> Iterator[str]:
        if self._exhausted:
            return
        for event in self._events:
            if not isinstance(event, dict):
                raise ModelOutputError("A streamed event is not a JSON object", received=event,
                                       fix="Check that base_url points at an OpenAI-compatible server")
            if isinstance(event.get("usage"), dict):
                self._usage = event["usage"]
            for choice in event.get("choices") or []:
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                self._reason = choice.get("finish_reason") or self._reason
                delta = choice.get("delta") or {}
                reasoning, content = _reasoning_of(delta), delta.get("content")
                pieces = []
                if reasoning and not self._answering:
                    pieces.append(reasoning if self._thinking else "<think>\n" + reasoning)
                    self._thinking = True
                if isinstance(content, str) and content:
                    pieces.append(content if self._answering or not self._thinking else _CLOSE_THINK + content)
                    self._answering = True
                for piece in pieces:
                    yield self._emit(piece)
        if self._thinking and not self._answering and self._reason != "length":
            yield self._emit(_CLOSE_THINK)
        self._exhausted = True

    def _emit(self, piece: str) -> str:
        if self._first is None:
            self._first = time.perf_counter() - self._start
        self._deltas.append(piece)
        return piece

    @property
    def text(self) -> str:
        """The text streamed so far."""
        return "".join(self._deltas)

    @property
    def answer(self) -> Answer:
        """The parsed `Answer`; drains the stream first if it was not fully iterated."""
        for _ in self:
            pass
        if self._answer is None:
            self._answer = self._finish(self.text, self._reason, self._usage, self._first)
        return self._answer


def _reasoning_of(message: dict[str, Any]) -> str | None:
    """The reasoning parser's text: vLLM >= 0.11 `reasoning` (may also fill `reasoning_content`), else the
    older `reasoning_content` (vLLM <= 0.10, SGLang). One of them, never both added together."""
    value = message.get("reasoning")
    value = value if isinstance(value, str) else message.get("reasoning_content")
    return value if isinstance(value, str) and value else None


def read_completion(data: Any) -> tuple[str, str | None, dict[str, Any]]:
    """(raw text with `<think>` put back, finish_reason, usage dict) of a chat.completion body."""
    choices = data.get("choices") if isinstance(data, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    content = message.get("content") if isinstance(message, dict) else False
    if not isinstance(message, dict) or not (content is None or isinstance(content, str)):
        raise ModelOutputError("The server's answer has no choices[0].message with string content", received=data,
                               fix="Check that base_url points at an OpenAI-compatible /v1/chat/completions")
    reason = choice.get("finish_reason")
    reasoning = _reasoning_of(message)
    if reasoning is None:
        raw = content or ""
    elif content is None and reason == "length":  # cut while thinking: the block was never closed
        raw = "<think>\n" + reasoning
    else:
        raw = "<think>\n" + reasoning + _CLOSE_THINK + (content or "")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return raw, reason if isinstance(reason, str) else None, usage


def usage_from(usage: dict[str, Any]) -> Usage:
    def count(key: str) -> int:
        value = usage.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

    # image/video token counts are not reported by OpenAI-compatible servers: left at 0
    return Usage(prompt_tokens=count("prompt_tokens"), completion_tokens=count("completion_tokens"))
