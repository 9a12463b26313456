"""Dense patch supervision for the shapes VLM's vision tower, used only during training.

Trained from scratch with the language loss alone, the ViT's merged tokens collapsed: after 3,000 steps every
visual token of every image was the same vector up to 0.3% (norm ~376, token-to-token spread ~0.03), so the
decoder answered from its text prior ("green circle" whatever the picture). Pre-trained encoders (CLIP, Qwen's
own ViT) never start there. This module gives the ViT a direct signal instead: a linear head reads each merged
visual token and predicts what fills each of its 2 x 2 patches (background, or colour x shape kind), a
cross-entropy added to the language loss. The head is thrown away after training; the shipped model is the
plain `Qwen2_5_VLForConditionalGeneration`.

Token order: the processor lays patches out merge-window by merge-window (row-major over the merged grid, then
the 2 x 2 patches of a window row-major), and the ViT returns merged tokens in that order (`pooler_output`,
after undoing its window permutation), so labels are built in the same order.
This module knows scenes, patches and the ViT's output; it knows nothing about the training loop.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..render import coverage
from ..scene import Scene, ShapeSpec
from ..vocab import COLOURS, SHAPES

__all__ = ["N_CLASSES", "object_class", "shape_class", "cell_shares", "patch_labels", "PatchHead",
           "captured_image_features", "patch_loss"]

_COLOURS, _KINDS = list(COLOURS), list(SHAPES)
N_CLASSES = 1 + len(_COLOURS) * len(_KINDS)
"""Background plus every (colour, kind)."""


def object_class(colour: str, kind: str) -> int:
    """The class of a colour and kind: 1 + its (colour, kind) index (0 is background)."""
    return 1 + _COLOURS.index(colour) * len(_KINDS) + _KINDS.index(kind)


def shape_class(shape: ShapeSpec) -> int:
    """The class of a shape (`object_class` of its colour and kind)."""
    return object_class(shape.colour, shape.kind)


def cell_shares(shape: ShapeSpec, size: int, grid: int) -> np.ndarray:
    """(grid, grid): the fraction of each cell of a `size`-sided image that `shape` covers (row-major)."""
    cover = coverage(shape.kind, shape.box.as_tuple(), size, size, supersample=2)
    edges = np.linspace(0, size, grid + 1).round().astype(int)
    return np.array([[cover[edges[r]:edges[r + 1], edges[c]:edges[c + 1]].mean() for c in range(grid)]
                     for r in range(grid)])


def patch_labels(scene: Scene, grid: int, *, merge: int = 2, min_share: float = 0.25) -> np.ndarray:
    """Class of each ViT patch of `scene` (grid x grid patches over the image), in merged-token order.

    A patch takes the class of the shape covering most of it when that shape covers at least `min_share` of
    it, else background (0).
    """
    best = np.zeros((grid, grid), dtype=np.float32)
    labels = np.zeros((grid, grid), dtype=np.int64)
    for shape in scene.shapes:
        share = cell_shares(shape, scene.size, grid)
        wins = (share >= min_share) & (share > best)
        labels[wins], best[wins] = shape_class(shape), share[wins]
    m = grid // merge
    return labels.reshape(m, merge, m, merge).transpose(0, 2, 1, 3).reshape(-1)


class PatchHead(torch.nn.Module):
    """Linear read-out of a merged visual token into its `merge**2` patch classes."""

    def __init__(self, hidden: int, merge: int = 2) -> None:
        super().__init__()
        self.per_token = merge * merge
        self.proj = torch.nn.Linear(hidden, self.per_token * N_CLASSES)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.proj(tokens).view(-1, N_CLASSES)  # (tokens * merge**2, classes), patch order


@contextmanager
def captured_image_features(model) -> Iterator[list]:
    """Collect the merged visual tokens (`pooler_output` of `model.model.visual`) of each forward pass."""
    seen: list = []
    handle = model.model.visual.register_forward_hook(lambda _m, _i, out: seen.append(out.pooler_output))
    try:
        yield seen
    finally:
        handle.remove()


def patch_loss(head: PatchHead, features: Sequence[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the head's patch classes against `labels` (concatenated in batch order)."""
    logits = head(torch.cat(list(features)))
    return F.cross_entropy(logits, labels)
