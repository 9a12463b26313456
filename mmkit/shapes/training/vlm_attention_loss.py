"""Attention supervision for the shapes VLM's decoder, used only during training.

Why: after object supervision (`vlm_object_loss`) the image tokens of every shape state its class and box (linear
read-outs get both right), and the model grounds a lone shape 96% of the time, but with three shapes in the
picture only 36%: the answer names the right shape in its `label` and then copies some coordinates from another
shape's tokens (x from one, y from the other). Each digit of `[x1, y1, x2, y2]` is written by its own query,
and nothing asks those queries to look at the same, right, object.

This module does: on grounding and pointing answers with one target, every query that writes a digit (the "2"
of "bbox_2d" too) should put its attention, in chosen (layer, head) pairs of the decoder, on the image tokens the
target covers. The loss is -log(attention mass on those tokens), averaged over those queries; the query that
writes the first number can weigh more (`first_weight`): under teacher forcing every later digit can copy from
the digits already written, so that one query is where the object is chosen. The other heads stay free.
Questions can be supervised the same way: the query that writes the answer ("red", "yes", "2") attends to the
shapes the answer is about (`QA.about`), and for a "no" to none of the shapes in the picture
(`AttentionTarget.avoid`). The loss adds no weights and changes none's shape, so the shipped model is the plain
`Qwen2_5_VLForConditionalGeneration`; training needs the decoder's attention probabilities (`output_attentions`,
eager attention in the text model).

This module knows scenes, merged-token cells and attention maps; it knows nothing about the training loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..scene import Scene, ShapeSpec
from .vlm_data import IGNORE
from .vlm_patch_loss import cell_shares
from .vlm_tokenizer import DigitTokens

__all__ = ["DEFAULT_HEADS", "AttentionTarget", "target_cells", "answer_queries", "attention_loss",
           "attention_on_targets", "QueryHead", "query_loss"]

DEFAULT_HEADS = ((2, 1), (3, 3))
"""(decoder layer, head) pairs supervised by default (0-based layers): layers 2 and 3 read the hidden states in
which `vlm_object_loss` asks image tokens to hold their shape's box, and in the model trained before this loss
these two heads put the most attention on the target from digit queries (0.23 and 0.13 of it; the other heads of
those layers 0.04-0.11; 32 grounding samples, `attention_on_targets`)."""


@dataclass(frozen=True, eq=False)  # holds an array: compare the fields
class AttentionTarget:
    """Where one answer's queries should look: on the image tokens `cells` (row-major merged-token grid) or, with
    `avoid`, anywhere but on them (a "no": the shape asked about is not there, so no shape is what it reads)."""

    cells: np.ndarray  # (grid*grid,) bool
    avoid: bool = False


def target_cells(scene: Scene, shape: ShapeSpec, grid: int, *, min_share: float = 0.05) -> np.ndarray:
    """(grid*grid,) bool, row-major: the merged image tokens whose cell `shape` covers at least `min_share` of."""
    return (cell_shares(shape, scene.size, grid) >= min_share).reshape(-1)


def answer_queries(labels: torch.Tensor, digits: DigitTokens) -> tuple[torch.Tensor, int]:
    """The supervised queries of one row's answer and which of them writes its first number.

    The query at position q predicts the token at q + 1: the queries that write a digit (the "2" of "bbox_2d"
    too), or in answers without digits ("red", "yes") the one that writes the first token. The first number's
    query is the first of them that writes a number's leading digit (`DigitTokens.leading`; 0 if none).

    Returns:
        (positions (k,), index into them of the first number's query).
    """
    nxt = labels[1:]
    answer = (nxt != IGNORE).nonzero().squeeze(1)
    queries = answer[digits.is_digit(nxt[answer])]
    if queries.numel() == 0:
        queries = answer[:1]
    starts = digits.leading(labels)[1:][queries].nonzero()
    return queries, int(starts[0, 0]) if starts.numel() else 0


class QueryHead(torch.nn.Module):
    """Per hidden-state layer in `layers`: a linear read-out, at the query that writes a one-target answer's first
    number, of which shape the answer is about (its class: colour x kind, `vlm_patch_loss.shape_class`). Answers
    without numbers (questions) are read at the query writing their first token (`answer_queries`).

    Why: in run 8 the first number's query put only 0.58 of its attention on the target (0.87-0.99 for the
    numbers after it, which can copy from what is written) and wrote the right digit 69% of the time with two or
    three shapes in the picture: to look the target up, that query must first hold what the expression asks for
    (and, for "the shape on the left", which shape that is), gathered from the prompt by the layers before. The
    read-out asks its hidden state to state it, where the supervised heads form their queries.
    """

    def __init__(self, hidden: int, n_classes: int, layers: Sequence[int] = (2, 3)) -> None:
        super().__init__()
        self.layers = tuple(layers)
        self.cls = torch.nn.ModuleList(torch.nn.Linear(hidden, n_classes) for _ in self.layers)
        for layer in self.cls:  # uniform guesses at first, as ObjectHead
            torch.nn.init.zeros_(layer.weight)
            torch.nn.init.zeros_(layer.bias)

    def forward(self, hidden_states: Sequence[torch.Tensor], rows: torch.Tensor, positions: torch.Tensor,
                classes: torch.Tensor) -> torch.Tensor:
        """Mean over `layers` of the class cross-entropy at (`rows`, `positions`)."""
        return torch.stack([F.cross_entropy(cls(hidden_states[layer][rows, positions]), classes)
                            for cls, layer in zip(self.cls, self.layers)]).mean()


def query_loss(head: QueryHead, hidden_states: Sequence[torch.Tensor], labels: torch.Tensor,
               classes: Sequence[int | None], digits: DigitTokens) -> torch.Tensor | None:
    """`head`'s loss at each row's first-number query (rows whose class is None are skipped; None if all are)."""
    rows, positions, wanted = [], [], []
    for row, klass in enumerate(classes):
        if klass is None:
            continue
        queries, first = answer_queries(labels[row], digits)
        if queries.numel():
            rows.append(row), positions.append(int(queries[first])), wanted.append(klass)
    if not rows:
        return None
    return head(hidden_states, torch.tensor(rows), torch.tensor(positions), torch.tensor(wanted))


def _mass(attentions: Sequence[torch.Tensor], input_ids: torch.Tensor, labels: torch.Tensor, image_token_id: int,
          targets: Sequence[AttentionTarget | None], digits: DigitTokens,
          heads: Sequence[tuple[int, int]], first_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Attention mass where each target wants it (on its cells, or off them with `avoid`) and its weight (the
    query writing an answer's first number `first_weight`, the others 1), one value per ((layer, head),
    supervised query): two (n,) tensors, or None if no row has a target."""
    masses, weights = [], []
    for row, target in enumerate(targets):
        if target is None:
            continue
        image = (input_ids[row] == image_token_id).nonzero().squeeze(1)
        if image.numel() != target.cells.size:
            raise ValueError(f"row {row}: {image.numel()} image tokens but {target.cells.size} target cells")
        keys = image[torch.from_numpy(target.cells).to(image.device)]
        queries, first = answer_queries(labels[row], digits)
        if keys.numel() == 0 or queries.numel() == 0:
            continue
        for layer, head in heads:
            probs = attentions[layer][row, head]  # (seq, seq)
            mass = probs[queries][:, keys].sum(dim=-1)
            masses.append(1.0 - mass if target.avoid else mass)
            weights.append(torch.ones_like(mass))
            weights[-1][first] = first_weight
    return (torch.cat(masses), torch.cat(weights)) if masses else None


def attention_loss(attentions: Sequence[torch.Tensor], input_ids: torch.Tensor, labels: torch.Tensor,
                   image_token_id: int, targets: Sequence[AttentionTarget | None], digits: DigitTokens, *,
                   heads: Sequence[tuple[int, int]] = DEFAULT_HEADS, first_weight: float = 1.0) -> torch.Tensor | None:
    """-log(attention mass on the target's image tokens) (-log(1 - mass) for `avoid` targets), weighted mean over
    the supervised queries x `heads`.

    Args:
        attentions: the model's `attentions` (one (batch, heads, seq, seq) tensor per decoder layer).
        input_ids, labels: the batch (labels IGNORE outside answers).
        image_token_id: the model's image placeholder token.
        targets: per row, its `AttentionTarget`, or None (no supervision for that row).
        digits: the tokenizer's digits and the tokens after which a digit belongs to a word (`DigitTokens.of`).
        heads: the supervised (decoder layer, head) pairs.
        first_weight: weight of the query writing each answer's first number (the one that picks the object; the
            later digits can copy the rest from what is already written), the others weigh 1.

    Returns:
        the loss, or None when no row of the batch has a target.
    """
    found = _mass(attentions, input_ids, labels, image_token_id, targets, digits, heads, first_weight)
    if found is None:
        return None
    mass, weight = found
    return (weight * -torch.log(mass.clamp_min(1e-6))).sum() / weight.sum()


@torch.no_grad()
def attention_on_targets(attentions: Sequence[torch.Tensor], input_ids: torch.Tensor, labels: torch.Tensor,
                         image_token_id: int, targets: Sequence[AttentionTarget | None], digits: DigitTokens,
                         layer: int, head: int) -> float | None:
    """Mean attention mass one head puts where the targets want it from the supervised queries (a probe; None:
    no target)."""
    found = _mass(attentions, input_ids, labels, image_token_id, targets, digits, ((layer, head),))
    return None if found is None else float(found[0].mean())
