"""Object supervision for the shapes VLM's decoder, used only during training.

Why: with patch classes in the ViT (`vlm_patch_loss`) and cell row / column in the decoder (`vlm_position_loss`),
the model after 6,700 steps still grounded only 44% of held-out expressions (Acc@0.5), and 74% even with a single
shape in the picture: to write `[x1, y1, x2, y2]` an answer token must find the shape's tokens and *compute* its
edges from the cells it spans and what the ViT saw inside them, across four decoder layers of width 256. With
three shapes it picked the wrong one 3 times in 4.

This module asks the decoder to hold the answer where the answer is read from: a linear head reads the hidden state
of each image token after a few decoder layers and classifies (a) which shape covers the token most (background,
or colour x kind) and (b) that shape's box edges, each one of the 0..input_size pixel values that the grounding
answer writes (`box_answer`'s rounding, pixels of the resized input). Every token of a shape then carries the same
box, so an answer token that attends to any of them can copy it; and "is there a red circle?" becomes a lookup of
a class the tokens state outright. The head is thrown away after training; the shipped model is the plain
`Qwen2_5_VLForConditionalGeneration`.

This module knows scenes, merged-token cells and hidden states; it knows nothing about the training loop.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..scene import Scene
from .vlm_data import box_in_input
from .vlm_patch_loss import N_CLASSES, cell_shares, shape_class

__all__ = ["N_CLASSES", "token_objects", "ObjectHead", "object_loss"]

NO_BOX = -100
"""Box label of background tokens (`F.cross_entropy`'s ignore_index)."""


def token_objects(scene: Scene, grid: int, input_size: int, *, min_share: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Per merged image token of `scene` (`grid` x `grid`, row-major): the class of the shape covering most of its
    cell (0 when none covers `min_share` of it) and that shape's box in pixels of the `input_size`-sided resized
    input, rounded as `vlm_data.box_answer` writes it (`NO_BOX` for background tokens).

    Returns:
        classes (grid*grid,) int64, boxes (grid*grid, 4) int64.
    """
    best = np.zeros((grid, grid), dtype=np.float32)
    classes = np.zeros((grid, grid), dtype=np.int64)
    boxes = np.full((grid, grid, 4), NO_BOX, dtype=np.int64)
    for shape in scene.shapes:
        share = cell_shares(shape, scene.size, grid)
        wins = (share >= min_share) & (share > best)
        classes[wins], best[wins] = shape_class(shape), share[wins]
        boxes[wins] = box_in_input(shape.box, (input_size, input_size), (scene.size, scene.size))
    return classes.reshape(-1), boxes.reshape(-1, 4)


class ObjectHead(torch.nn.Module):
    """Per decoder layer in `layers`: linear read-outs of an image token's covering-shape class and its four box
    edges (each one of `input_size + 1` pixel values)."""

    def __init__(self, hidden: int, input_size: int, layers: Sequence[int] = (2, 3)) -> None:
        super().__init__()
        self.values, self.layers = input_size + 1, tuple(layers)
        self.cls = torch.nn.ModuleList(torch.nn.Linear(hidden, N_CLASSES) for _ in self.layers)
        self.box = torch.nn.ModuleList(torch.nn.Linear(hidden, 4 * self.values) for _ in self.layers)
        for layer in (*self.cls, *self.box):  # start at uniform guesses: decoder hidden states have large norms,
            torch.nn.init.zeros_(layer.weight)  # and a random read-out's first gradients would swamp the language loss
            torch.nn.init.zeros_(layer.bias)

    def forward(self, hidden_states: Sequence[torch.Tensor], image_mask: torch.Tensor, classes: torch.Tensor,
                boxes: torch.Tensor) -> torch.Tensor:
        """Mean over `layers` of (class cross-entropy + mean box-edge cross-entropy on covered tokens).

        Args:
            hidden_states: the model's `hidden_states` (embeddings first, then one per decoder layer).
            image_mask: (batch, seq) bool, True at image tokens, in the order `classes` / `boxes` list them.
            classes: (n_image_tokens,) from `token_objects`, concatenated in batch order.
            boxes: (n_image_tokens, 4), likewise.
        """
        n_tokens = int(image_mask.sum())
        if n_tokens != classes.shape[0] or boxes.shape != (n_tokens, 4):
            raise ValueError(f"{n_tokens} image tokens but labels for {classes.shape[0]} / {tuple(boxes.shape)}")
        losses = []
        for cls, box, layer in zip(self.cls, self.box, self.layers):
            hidden = hidden_states[layer][image_mask]
            loss = F.cross_entropy(cls(hidden), classes)
            if bool((classes > 0).any()):
                edges = box(hidden).view(-1, self.values)  # (tokens * 4, values)
                loss = loss + F.cross_entropy(edges, boxes.reshape(-1), ignore_index=NO_BOX)
            losses.append(loss)
        return torch.stack(losses).mean()


def object_loss(head: ObjectHead, hidden_states: Sequence[torch.Tensor], input_ids: torch.Tensor,
                image_token_id: int, classes: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """`head`'s loss on the image tokens of `input_ids` (one image per row)."""
    return head(hidden_states, input_ids == image_token_id, classes, boxes)
