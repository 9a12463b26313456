"""Tiny, seeded LoRA files for the tiny SD 1.5 (and SDXL) checkpoints, written offline in both common layouts.

`build_tiny_lora` writes one `.safetensors` LoRA for the UNet attention projections (`to_q/k/v/out.0`) and
the text encoder(s) (`q/k/v/out_proj`, `fc1/fc2`) of a tiny folder built by `mmkit.testing.tiny_diffusion`
(kohya layout: SD 1.5 only, since SDXL kohya files name UNet blocks the sgm way):

- `format="diffusers"`: the layout `StableDiffusionPipeline.save_lora_weights` writes (peft names:
  `unet.<module>.lora_A.weight` / `.lora_B.weight`, `text_encoder.<module>.lora_A.weight` / ...), no alphas.
- `format="kohya"`: the layout kohya-ss sd-scripts writes (`lora_unet_<module_with_underscores>.lora_down.weight`,
  `.lora_up.weight`, `.alpha`; `lora_te_...` for the text encoder). Names follow the inverse of diffusers'
  `_convert_unet_lora_key` / `_convert_text_encoder_lora_key` (diffusers/loaders/lora_conversion_utils.py).

Both layouts hold the same low-rank update: the kohya file stores `alpha = rank / 2` (scaling 0.5, which diffusers
turns into peft's `alpha_pattern`), and the diffusers file stores `lora_B` pre-multiplied by 0.5, so the two load
to the same result (up to float rounding) and the test also checks that alphas are honoured.

`build_broken_lora` writes a diffusers-layout file whose keys partly match no module, for error tests.
Weights are random (A and B both non-zero, unlike peft's default init where B starts at zero), so an adapter
visibly changes the output. This module knows nothing about mmkit's generation API; it only builds files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import torch

__all__ = ["BROKEN_LORA_BAD_MODULES", "LoraFormat", "build_tiny_lora", "build_broken_lora"]

LoraFormat = Literal["diffusers", "kohya"]

_UNET_TARGETS = (".to_q", ".to_k", ".to_v", ".to_out.0")
_TEXT_TARGETS = (".q_proj", ".k_proj", ".v_proj", ".out_proj", ".fc1", ".fc2")
_KOHYA_SCALE = 0.5  # alpha / rank in the kohya file; folded into lora_B in the diffusers file
_INIT_STD = 0.3  # large enough that one adapter moves a 64 px, 4-step image by a few percent


def _linear_targets(model: torch.nn.Module, suffixes: tuple[str, ...]) -> list[tuple[str, torch.nn.Linear]]:
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and name.endswith(suffixes)
    ]


def _low_rank_pairs(
    base_pipe_dir: Path, *, seed: int, rank: int, text_encoder: bool
) -> dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """{component: {module name: (A [rank, in], B [out, rank])}} with seeded non-zero values."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    components: dict[str, torch.nn.Module] = {
        "unet": UNet2DConditionModel.from_pretrained(base_pipe_dir, subfolder="unet")
    }
    if text_encoder:
        components["text_encoder"] = CLIPTextModel.from_pretrained(base_pipe_dir, subfolder="text_encoder")
        if (base_pipe_dir / "text_encoder_2").is_dir():  # SDXL
            components["text_encoder_2"] = CLIPTextModelWithProjection.from_pretrained(
                base_pipe_dir, subfolder="text_encoder_2"
            )
    generator = torch.Generator("cpu").manual_seed(seed)
    pairs: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
    for component, model in components.items():
        suffixes = _UNET_TARGETS if component == "unet" else _TEXT_TARGETS
        pairs[component] = {}
        for name, linear in _linear_targets(model, suffixes):
            a = torch.randn(rank, linear.in_features, generator=generator) * _INIT_STD
            b = torch.randn(linear.out_features, rank, generator=generator) * _INIT_STD
            pairs[component][name] = (a, b)
    return pairs


def _diffusers_state_dict(pairs) -> dict[str, torch.Tensor]:
    state_dict: dict[str, torch.Tensor] = {}
    for component, modules in pairs.items():
        for name, (a, b) in modules.items():
            state_dict[f"{component}.{name}.lora_A.weight"] = a.contiguous()
            state_dict[f"{component}.{name}.lora_B.weight"] = (b * _KOHYA_SCALE).contiguous()
    return state_dict


def _kohya_state_dict(pairs) -> dict[str, torch.Tensor]:
    # kohya-ss names a module by its diffusers path with "." -> "_" (SD 1.x is trained on the diffusers UNet),
    # prefixed with lora_unet_ / lora_te_; diffusers' _convert_*_lora_key undoes exactly this.
    prefixes = {"unet": "lora_unet_", "text_encoder": "lora_te_", "text_encoder_2": "lora_te2_"}
    state_dict: dict[str, torch.Tensor] = {}
    for component, modules in pairs.items():
        for name, (a, b) in modules.items():
            key = prefixes[component] + name.replace(".", "_")
            rank = a.shape[0]
            state_dict[f"{key}.lora_down.weight"] = a.contiguous()
            state_dict[f"{key}.lora_up.weight"] = b.contiguous()
            state_dict[f"{key}.alpha"] = torch.tensor(float(rank) * _KOHYA_SCALE)
    return state_dict


def _checked_file(path: str | os.PathLike) -> Path:
    out = Path(path)
    if out.suffix != ".safetensors":
        raise ValueError(f"LoRA output path must end with .safetensors, got {str(out)!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def build_tiny_lora(
    path: str | os.PathLike,
    *,
    base_pipe_dir: str | os.PathLike,
    seed: int = 0,
    format: LoraFormat = "diffusers",
    rank: int = 4,
    text_encoder: bool = True,
) -> Path:
    """Write a seeded LoRA `.safetensors` file for a tiny SD 1.5 pipeline folder.

    Args:
        path: output file, ending with `.safetensors`.
        base_pipe_dir: a tiny SD 1.5 / SDXL folder (`mmkit.testing.tiny_diffusion`); only its module names and
            shapes are read.
        seed: the same seed gives the same low-rank update in both formats.
        format: `"diffusers"` (peft names) or `"kohya"` (`lora_unet_*`, `lora_down/lora_up/alpha`).
        rank: LoRA rank.
        text_encoder: also adapt the text encoder.

    Returns:
        The written file.
    """
    from safetensors.torch import save_file

    if format not in ("diffusers", "kohya"):
        raise ValueError(f"format must be 'diffusers' or 'kohya', got {format!r}")
    if format == "kohya" and (Path(base_pipe_dir) / "text_encoder_2").is_dir():
        raise ValueError("kohya format is written for SD 1.5 only (SDXL kohya files use sgm block names)")
    out = _checked_file(path)
    pairs = _low_rank_pairs(Path(base_pipe_dir), seed=seed, rank=rank, text_encoder=text_encoder)
    state_dict = _diffusers_state_dict(pairs) if format == "diffusers" else _kohya_state_dict(pairs)
    save_file(state_dict, str(out), metadata={"format": "pt"})
    return out


BROKEN_LORA_BAD_MODULES = ("unet.down_blocks.0.no_such_block.to_q", "unet.mid_block.attentions.0.proj_nowhere")


def build_broken_lora(
    path: str | os.PathLike, *, base_pipe_dir: str | os.PathLike, seed: int = 0, rank: int = 4
) -> Path:
    """Write a diffusers-layout LoRA whose UNet part is valid except for modules in `BROKEN_LORA_BAD_MODULES`.

    diffusers/peft load the valid part and only log a warning for the rest; mmkit must refuse it.
    """
    from safetensors.torch import save_file

    out = _checked_file(path)
    pairs = _low_rank_pairs(Path(base_pipe_dir), seed=seed, rank=rank, text_encoder=False)
    state_dict = _diffusers_state_dict(pairs)
    generator = torch.Generator("cpu").manual_seed(seed + 1)
    for module in BROKEN_LORA_BAD_MODULES:
        state_dict[f"{module}.lora_A.weight"] = torch.randn(rank, 32, generator=generator)
        state_dict[f"{module}.lora_B.weight"] = torch.randn(32, rank, generator=generator)
    save_file(state_dict, str(out), metadata={"format": "pt"})
    return out
