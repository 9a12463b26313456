"""Answer matching for question answering: multiple-choice (letter or option text) and open answers
after normalisation.

Normalisation follows the VQA evaluation script in spirit: lower-case, punctuation removed, English
articles dropped, number words 0-20 written as digits, whitespace collapsed. Multiple choice follows
VLMEvalKit's `can_infer`: a lone option letter ("B", "(B)", "B.", "Answer: B"), else exactly one option
text inside the answer. This module knows strings only; it knows nothing about models or files.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

__all__ = ["normalize_answer", "match_open", "vqa_soft_score", "infer_choice", "match_choice"]

_NUMBERS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_ARTICLES = {"a", "an", "the"}


def normalize_answer(text: str) -> str:
    """"The Two red circles." -> "2 red circles"; Chinese text keeps its characters (punctuation removed)."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    words = [_NUMBERS.get(w, w) for w in text.split() if w not in _ARTICLES]
    return " ".join(words)


def match_open(prediction: str, answers: str | Sequence[str]) -> bool:
    """Whether an open answer matches any reference after normalisation.

    A match is: equal, or the reference's words are the prediction's first or last words ("red, I think",
    "the answer is red"); the last-words rule does not apply after a negation ("not red").

    Args:
        prediction: the model's answer text.
        answers: one reference or several acceptable ones.
    """
    got = normalize_answer(prediction).split()
    for answer in [answers] if isinstance(answers, str) else answers:
        want = normalize_answer(answer).split()
        if not want or not got:
            continue
        if got == want or got[: len(want)] == want:
            return True
        if got[-len(want):] == want and not {"not", "no", "never"} & set(got[: -len(want)]):
            return True
    return False


def vqa_soft_score(prediction: str, answers: Sequence[str]) -> float:
    """VQAv2's accuracy: min(#annotators who gave the answer / 3, 1), averaged over the ten leave-one-out
    subsets of the annotators as the official evaluation does (so 3 matches of 10 score 0.9, not 1.0).
    Answers are compared after `normalize_answer` (lower case, articles and punctuation dropped, number words
    as digits).

    Args:
        prediction: the model's answer text.
        answers: every annotator's answer (ten in VQAv2).
    """
    got = normalize_answer(prediction)
    norm = [normalize_answer(a) for a in answers]
    if not norm:
        return 0.0
    scores = [min(1.0, sum(a == got for j, a in enumerate(norm) if j != i) / 3) for i in range(len(norm))]
    return sum(scores) / len(scores)


_LETTER_PATTERNS = (
    r"^\(?([A-Z])\)?[.:)]?$",  # "B", "(B)", "B.", "B)"
    r"^\(?([A-Z])[.:)]\s",  # "B. a red circle", "B) ..."
    r"(?:answer|option|choice)\s*(?:is|:)?\s*\(?([A-Z])\)?(?:[.\s,)]|$)",  # "The answer is B", "Answer: (B)"
)


def infer_choice(prediction: str, options: Mapping[str, str]) -> str | None:
    """The option letter an answer picks, or None when it picks none or several.

    Args:
        prediction: the model's answer text.
        options: letter -> option text (e.g. {"A": "red", "B": "blue"}).
    """
    text = str(prediction).strip()
    for pattern in _LETTER_PATTERNS:
        found = re.search(pattern, text, flags=0 if pattern.startswith("^") else re.IGNORECASE)
        if found and found.group(1).upper() in options:
            return found.group(1).upper()
    standalone = [letter for letter in options if re.search(rf"(?<![A-Za-z]){letter}(?![A-Za-z])", text)]
    if len(standalone) == 1 and len(text.split()) <= 3:
        return standalone[0]
    said = f" {normalize_answer(text)} "
    hits = [letter for letter, option in options.items()
            if normalize_answer(option) and f" {normalize_answer(option)} " in said]
    if len(hits) > 1:  # "dark red" and "red": keep the longest option if it contains the others
        longest = max(hits, key=lambda k: len(normalize_answer(options[k])))
        if all(normalize_answer(options[k]) in normalize_answer(options[longest]) for k in hits):
            hits = [longest]
    return hits[0] if len(hits) == 1 else None


def match_choice(prediction: str, options: Mapping[str, str], answer: str) -> bool:
    """Whether a multiple-choice answer picks the right option.

    Args:
        prediction: the model's answer text.
        options: letter -> option text.
        answer: the right letter, or the right option's text.
    """
    letter = answer.strip().upper() if answer.strip().upper() in options else next(
        (k for k, v in options.items() if normalize_answer(v) == normalize_answer(answer)), None)
    return letter is not None and infer_choice(prediction, options) == letter
