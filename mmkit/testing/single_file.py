"""diffusers SD 1.5 / SDXL folder -> one original-layout (CompVis / SGM) `.safetensors` checkpoint, for tests.

Owns `save_single_file_checkpoint` and the key renaming behind it (UNet -> `model.diffusion_model.*`, VAE ->
`first_stage_model.*`, CLIP -> `cond_stage_model.transformer.*` or SDXL's `conditioner.embedders.{0,1}.*`, the
second encoder in OpenCLIP layout): the inverse of diffusers' `convert_ldm_*` single-file loaders, so tests can
load tiny checkpoints with `from_single_file` offline. Knows nothing about building models or mmkit's loaders.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

__all__ = ["save_single_file_checkpoint"]


def save_single_file_checkpoint(pipeline_dir: str | os.PathLike, out_file: str | os.PathLike) -> Path:
    """Write a diffusers SD 1.5 / SDXL folder as one original-layout (CompVis / SGM) `.safetensors` file.

    Keys follow the published single-file checkpoints (`model.diffusion_model.*`, `first_stage_model.*`,
    `cond_stage_model.transformer.*` for SD 1.5; `conditioner.embedders.{0,1}.*` for SDXL, the second
    encoder in OpenCLIP layout). The inverse of diffusers' `convert_ldm_*` functions, written for any
    number of blocks (diffusers' own `scripts/convert_diffusers_to_original_*` hard-code SD's sizes).

    Args:
        pipeline_dir: a diffusers folder with safetensors weights (for example from `build_tiny_sd15`).
        out_file: the `.safetensors` file to write.
    """
    from safetensors.torch import load_file, save_file

    root = Path(pipeline_dir)
    unet_cfg = json.loads((root / "unet" / "config.json").read_text())
    vae_cfg = json.loads((root / "vae" / "config.json").read_text())
    unet = load_file(root / "unet" / "diffusion_pytorch_model.safetensors")
    vae = load_file(root / "vae" / "diffusion_pytorch_model.safetensors")
    state = {"model.diffusion_model." + k: v for k, v in _unet_to_ldm(unet, unet_cfg["layers_per_block"]).items()}
    state.update({"first_stage_model." + k: v for k, v in _vae_to_ldm(vae, len(vae_cfg["up_block_types"])).items()})
    text = load_file(root / "text_encoder" / "model.safetensors")
    text = {(k if k.startswith(("text_model.", "text_projection")) else "text_model." + k): v for k, v in text.items()}
    if (root / "text_encoder_2").is_dir():
        state.update({"conditioner.embedders.0.transformer." + k: v for k, v in text.items()})
        text_2 = load_file(root / "text_encoder_2" / "model.safetensors")
        state.update({"conditioner.embedders.1.model." + k: v for k, v in _clip_to_open_clip(text_2).items()})
    else:
        state.update({"cond_stage_model.transformer." + k: v for k, v in text.items()})
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out))
    return out


_RESNET_TO_LDM = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
                  ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection")]
_UNET_TOP_TO_LDM = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
                    "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
                    "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}


def _resnet_rest(rest: str) -> str:
    for old, new in _RESNET_TO_LDM:
        rest = rest.replace(old, new)
    return rest


def _unet_to_ldm(sd: dict, layers: int) -> dict:
    up_with_attn = {int(m.group(1)) for k in sd if (m := re.match(r"up_blocks\.(\d+)\.attentions\.", k))}
    out = {}
    for key, value in sd.items():
        head, _, leaf = key.rpartition(".")
        if head in _UNET_TOP_TO_LDM:
            out[f"{_UNET_TOP_TO_LDM[head]}.{leaf}"] = value
        elif m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
            i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
            idx = 1 + i * (layers + 1) + j
            out[f"input_blocks.{idx}.0.{_resnet_rest(rest)}" if kind == "resnets" else f"input_blocks.{idx}.1.{rest}"] = value
        elif m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
            out[f"input_blocks.{(int(m[1]) + 1) * (layers + 1)}.0.op.{m[2]}"] = value
        elif m := re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)", key):
            out[f"middle_block.{2 * int(m[2])}.{_resnet_rest(m[3])}" if m[1] == "resnets" else f"middle_block.1.{m[3]}"] = value
        elif m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
            i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
            idx = i * (layers + 1) + j
            out[f"output_blocks.{idx}.0.{_resnet_rest(rest)}" if kind == "resnets" else f"output_blocks.{idx}.1.{rest}"] = value
        elif m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
            i = int(m[1])
            out[f"output_blocks.{i * (layers + 1) + layers}.{2 if i in up_with_attn else 1}.conv.{m[2]}"] = value
        else:
            raise ValueError(f"no original-layout name for UNet key {key!r}")
    return out


def _vae_to_ldm(sd: dict, num_blocks: int) -> dict:
    attn = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
    out = {}
    for key, value in sd.items():
        new = key.replace("conv_norm_out", "norm_out")
        if m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)\.(weight|bias)", key):
            new = f"{m[1]}.mid.attn_1.{attn[m[2]]}.{m[3]}"
            value = value[:, :, None, None] if m[3] == "weight" and value.ndim == 2 else value
        elif m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", key):
            new = f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
        elif m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            new = f"encoder.down.{m[1]}.block.{m[2]}.{m[3]}"
        elif m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.*)", key):
            new = f"encoder.down.{m[1]}.downsample.{m[2]}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            new = f"decoder.up.{num_blocks - 1 - int(m[1])}.block.{m[2]}.{m[3]}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.*)", key):
            new = f"decoder.up.{num_blocks - 1 - int(m[1])}.upsample.{m[2]}"
        out[new.replace("conv_shortcut", "nin_shortcut")] = value
    return out


def _clip_to_open_clip(sd: dict) -> dict:
    """transformers CLIPTextModelWithProjection -> OpenCLIP text tower names (q/k/v fused to in_proj)."""
    import torch

    top = {"text_model.embeddings.position_embedding.weight": "positional_embedding",
           "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
           "text_model.final_layer_norm.weight": "ln_final.weight", "text_model.final_layer_norm.bias": "ln_final.bias"}
    out, fused = {}, {}
    for key, value in sd.items():
        if key in top:
            out[top[key]] = value
        elif key == "text_projection.weight":
            out["text_projection"] = value.T
        elif ".self_attn." in key and key.rsplit(".", 2)[-2] in ("q_proj", "k_proj", "v_proj"):
            prefix, proj, leaf = key.rsplit(".", 2)
            fused.setdefault((prefix, leaf), {})[proj[0]] = value
        else:
            new = key.replace("text_model.encoder.layers.", "transformer.resblocks.").replace("layer_norm1", "ln_1")
            new = new.replace("layer_norm2", "ln_2").replace(".fc1.", ".c_fc.").replace(".fc2.", ".c_proj.")
            out[new.replace(".self_attn.", ".attn.")] = value
    for (prefix, leaf), parts in fused.items():
        name = prefix.replace("text_model.encoder.layers.", "transformer.resblocks.").replace(".self_attn", ".attn")
        out[f"{name}.in_proj_{leaf}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out
