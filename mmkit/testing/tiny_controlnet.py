"""Tiny, seeded ControlNets for the tiny SD 1.5 / SDXL checkpoints, built offline with the real diffusers class.

`build_tiny_controlnet` copies a tiny UNet into `ControlNetModel.from_unet` (SD 1.5 or SDXL: the SDXL
`text_time` additional embedding is copied too) with a conditioning embedding whose downsampling matches the
VAE's (len(channels) - 1 stride-2 convolutions = log2(vae_scale_factor)), and saves it with `save_pretrained`
(config.json + safetensors).

`from_unet` zero-initialises the "zero convolutions" (`controlnet_down_blocks`, `controlnet_mid_block`) and
`controlnet_cond_embedding.conv_out`, as the ControlNet paper prescribes for training; an untrained ControlNet
therefore has exactly no effect. Here those layers get seeded non-zero weights so that a control image changes
the output, which is what tests of the plumbing need. This module knows nothing about mmkit's generation API.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

__all__ = ["build_tiny_controlnet"]

_ZERO_CONV_STD = 0.05  # moves a 64 px, 4-step tiny-SD image by several percent at scale 1
_EMBED_CHANNEL = 8


def _vae_scale_factor(pipe_dir: Path) -> int:
    config = pipe_dir / "vae" / "config.json"
    if not config.is_file():
        return 8  # real SD 1.5 / SDXL
    return 2 ** (len(json.loads(config.read_text())["block_out_channels"]) - 1)


def _load_unet(unet_source: Path):
    from diffusers import UNet2DConditionModel

    if (unet_source / "unet" / "config.json").is_file():
        return UNet2DConditionModel.from_pretrained(unet_source, subfolder="unet")
    return UNet2DConditionModel.from_pretrained(unet_source)


def _randomise_zero_layers(controlnet, seed: int) -> None:
    generator = torch.Generator("cpu").manual_seed(seed)
    layers = [controlnet.controlnet_cond_embedding.conv_out, *controlnet.controlnet_down_blocks,
              controlnet.controlnet_mid_block]
    with torch.no_grad():
        for layer in layers:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * _ZERO_CONV_STD)
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=generator) * _ZERO_CONV_STD)


def build_tiny_controlnet(path: str | os.PathLike, *, unet_source: str | os.PathLike, seed: int = 0) -> Path:
    """Build a ControlNet from a tiny pipeline's UNet, give its zero layers seeded weights, save it.

    Args:
        path: output folder (diffusers layout: config.json + diffusion_pytorch_model.safetensors).
        unet_source: a tiny pipeline folder (`unet/` and `vae/` inside) or a UNet folder (then the VAE is assumed
            to downsample 8x, like real SD).
        seed: seeds the randomised zero layers; different seeds give different nets.

    Returns:
        The output folder.
    """
    from diffusers import ControlNetModel

    source = Path(unet_source)
    downsamples = int(math.log2(_vae_scale_factor(source)))
    channels = tuple(_EMBED_CHANNEL * 2 ** min(i, 2) for i in range(downsamples + 1))
    controlnet = ControlNetModel.from_unet(_load_unet(source), conditioning_embedding_out_channels=channels)
    _randomise_zero_layers(controlnet, seed)
    out = Path(path)
    controlnet.save_pretrained(out, safe_serialization=True)
    return out
