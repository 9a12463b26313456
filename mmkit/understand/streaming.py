"""Watch a generation as it happens: `ChatStream` (text deltas, then the `Answer`) and `FirstTokenClock`.

Both plug into transformers' `generate(streamer=...)` protocol (`put` once with the prompt ids, then once
per step; `end` at the end). This module knows nothing about prompts, media or post-processing: it is
handed a function that runs `generate` with a streamer and a function that turns the finished sequences
into an `Answer` (`VisionLanguageModel.stream` provides both).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

import torch

from .answer import Answer

__all__ = ["ChatStream", "FirstTokenClock"]

RunGenerate = Callable[[Any], torch.Tensor]
"""`run(streamer) -> sequences`: one `model.generate` call (seeded, no grad) reporting to `streamer`."""
Finish = Callable[[torch.Tensor, float, "float | None"], Answer]
"""`finish(sequences, generate_s, first_token_s) -> Answer`."""


class FirstTokenClock:
    """A minimal streamer: records when the first generated token arrives (the first `put` is the prompt)."""

    def __init__(self) -> None:
        self._puts = 0
        self.at: float | None = None

    def put(self, value: Any) -> None:
        self._puts += 1
        if self._puts == 2 and self.at is None:
            self.at = time.perf_counter()

    def end(self) -> None:
        pass

    def first_token_s(self, start: float) -> float | None:
        """Seconds from `start` (a `time.perf_counter()` value) to the first generated token, if one came."""
        return None if self.at is None else self.at - start


class ChatStream:
    """Text deltas of one `VisionLanguageModel.stream` call, as they are generated.

    Iterate it to get the deltas (`"".join(deltas) == answer.raw_text`); `.answer` gives the same `Answer`
    `chat` would give for the same arguments and seed (reading it first drains the stream). Generation runs
    in a background thread; an error there is raised in the iterating thread.

    Args:
        run: runs `generate` once with the streamer it is given and returns the sequences.
        finish: turns the sequences (with the seconds spent generating and to the first token) into an `Answer`.
        tokenizer: decodes the deltas (special tokens skipped, prompt not repeated).
    """

    def __init__(self, run: RunGenerate, finish: Finish, tokenizer: Any) -> None:
        from transformers import TextIteratorStreamer

        self._finish = finish
        self._streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._deltas: list[str] = []
        self._error: BaseException | None = None
        self._sequences: torch.Tensor | None = None
        self._answer: Answer | None = None
        self._first: float | None = None
        self._exhausted = False
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._generate, args=(run,), daemon=True)
        self._thread.start()

    def _generate(self, run: RunGenerate) -> None:
        try:
            self._sequences = run(self._streamer)
        except BaseException as err:  # re-raised in the caller's thread by __iter__
            self._error = err
            self._streamer.end()

    def __iter__(self) -> Iterator[str]:
        if self._exhausted:
            return
        for delta in self._streamer:
            if not delta:
                continue
            if self._first is None:
                self._first = time.perf_counter() - self._start
            self._deltas.append(delta)
            yield delta
        self._exhausted = True
        self._complete()

    def _complete(self) -> Answer:
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._answer is None:
            generate_s = time.perf_counter() - self._start
            self._answer = self._finish(self._sequences, generate_s, self._first)
        return self._answer

    @property
    def text(self) -> str:
        """The text streamed so far."""
        return "".join(self._deltas)

    @property
    def answer(self) -> Answer:
        """The parsed `Answer`; drains the stream first if it was not fully iterated."""
        for _ in self:
            pass
        return self._complete()
