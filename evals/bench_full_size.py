"""Full-size architectures with random weights, for speed and memory benchmarks without a download.

`--random-full-size NAME` builds the published architecture of a real checkpoint from its config values,
written out below, and fills it with random weights on the chosen device:

| name            | what                                   | parameters (published)        |
| --------------- | -------------------------------------- | ----------------------------- |
| `qwen2_5_vl_7b` | Qwen/Qwen2.5-VL-7B-Instruct            | ~8.29 B (ViT 0.68 B)          |
| `qwen3_vl_8b`   | Qwen/Qwen3-VL-8B-Instruct              | ~8.77 B (ViT 0.58 B)          |
| `sd15`          | SD 1.5: UNet, VAE, CLIP ViT-L/14 text  | UNet ~860 M                   |
| `sdxl`          | SDXL base: UNet, VAE, CLIP-L + bigG    | UNet ~2.57 B                  |

Speed and memory depend on the shapes, not on the weights' values, with one caveat: the *tokenizers* are the
tiny ones from `mmkit.testing` (their ids are valid in the real vocabularies; `vocab_size` is the real one,
so the embedding and LM-head matrices have their real sizes). A prompt therefore tokenizes into a
different number of tokens than with the real tokenizer; the benchmark reports the token counts it used.
Random weights generate gibberish: the number of new tokens is forced (`min_new_tokens`), so that does not
change what is measured.

`full_size_parameter_counts(name)` builds the modules on the `meta` device (shapes only, no memory) and
counts their parameters; the tests check those counts against the published ones. This module knows
nothing about timing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from mmkit.devices import DevicePlan
from mmkit.exceptions import UsageError

__all__ = [
    "FULL_SIZE_NAMES", "FullSizeName", "full_size_kind", "qwen_full_size_config", "diffusion_full_size_configs",
    "full_size_parameter_counts", "build_full_size_vlm", "build_full_size_generator",
]

FullSizeName = Literal["qwen2_5_vl_7b", "qwen3_vl_8b", "sd15", "sdxl"]
FULL_SIZE_NAMES: tuple[str, ...] = ("qwen2_5_vl_7b", "qwen3_vl_8b", "sd15", "sdxl")
_TINY_OF = {"qwen2_5_vl_7b": "qwen2_5_vl", "qwen3_vl_8b": "qwen3_vl", "sd15": "sd15", "sdxl": "sdxl"}

# The published token ids (Qwen's tokenizer); the benchmark replaces them with the tiny tokenizer's.
_QWEN_IDS = {"bos": 151643, "eos": 151645, "pad": 151643, "image": 151655, "video": 151656,
             "vision_start": 151652, "vision_end": 151653}
_CLIP_IDS = {"bos": 49406, "eos": 49407, "pad": 49407}
_CLIP_VOCAB = 49408


def full_size_kind(name: str) -> Literal["understanding", "generation"]:
    """Which half of the benchmark a full-size name belongs to."""
    if name not in FULL_SIZE_NAMES:
        raise UsageError("Unknown full-size architecture", received=name, fix=f"Use one of {list(FULL_SIZE_NAMES)}")
    return "understanding" if name.startswith("qwen") else "generation"


# ---------------------------------------------------------------------------------------------- configs
def qwen_full_size_config(name: str, token_ids: dict[str, int] | None = None) -> Any:
    """The transformers config of a full-size Qwen-VL checkpoint (values of its published config.json).

    Args:
        name: "qwen2_5_vl_7b" or "qwen3_vl_8b".
        token_ids: bos / eos / pad / image / video / vision_start / vision_end ids (default: Qwen's own).
    """
    ids = {**_QWEN_IDS, **(token_ids or {})}
    special = dict(image_token_id=ids["image"], video_token_id=ids["video"],
                   vision_start_token_id=ids["vision_start"], vision_end_token_id=ids["vision_end"])
    text_ids = dict(bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=ids["pad"])
    if name == "qwen2_5_vl_7b":
        from transformers import Qwen2_5_VLConfig

        return Qwen2_5_VLConfig(
            text_config=dict(
                vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000, rms_norm_eps=1e-6,
                hidden_act="silu", tie_word_embeddings=False, **text_ids,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
            ),
            vision_config=dict(
                depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2, hidden_act="silu",
            ),
            **special,
        )  # fmt: skip
    if name == "qwen3_vl_8b":
        from transformers import Qwen3VLConfig

        return Qwen3VLConfig(
            text_config=dict(
                vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=262144,
                rms_norm_eps=1e-6, hidden_act="silu", **text_ids,
                rope_parameters={"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [24, 20, 20],
                                 "mrope_interleaved": True},
            ),
            vision_config=dict(
                depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16, out_hidden_size=4096,
                patch_size=16, spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=2304,
                deepstack_visual_indexes=[8, 16, 24], hidden_act="gelu_pytorch_tanh",
            ),
            tie_word_embeddings=False, **special,
        )  # fmt: skip
    raise UsageError("Not a full-size Qwen-VL name", received=name, fix="Use 'qwen2_5_vl_7b' or 'qwen3_vl_8b'")


def _clip_text(hidden: int, intermediate: int, layers: int, heads: int, act: str, ids: dict[str, int]) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=_CLIP_VOCAB, hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
        num_attention_heads=heads, max_position_embeddings=77, hidden_act=act, projection_dim=hidden,
        bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=ids["pad"],
    )


def _vae_config(family: str) -> dict[str, Any]:
    return dict(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
        latent_channels=4, norm_num_groups=32, act_fn="silu",
        sample_size=512 if family == "sd15" else 1024, scaling_factor=0.18215 if family == "sd15" else 0.13025,
    )  # fmt: skip


def diffusion_full_size_configs(name: str, token_ids: dict[str, int] | None = None) -> dict[str, Any]:
    """The module configs of SD 1.5 or SDXL base: {"unet": dict, "vae": dict, "text_encoder": CLIPTextConfig,
    and for SDXL "text_encoder_2": CLIPTextConfig} (values of the published `config.json` files).

    Args:
        name: "sd15" or "sdxl".
        token_ids: bos / eos / pad ids of the CLIP tokenizer (default: CLIP's own).
    """
    ids = {**_CLIP_IDS, **(token_ids or {})}
    clip_l = _clip_text(768, 3072, 12, 12, "quick_gelu", ids)  # openai/clip-vit-large-patch14
    if name == "sd15":
        unet = dict(
            sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
        )  # fmt: skip
        return {"unet": unet, "vae": _vae_config("sd15"), "text_encoder": clip_l}
    if name == "sdxl":
        unet = dict(
            sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
            use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816, norm_num_groups=32,
        )  # fmt: skip
        big_g = _clip_text(1280, 5120, 32, 20, "gelu", {**ids, "pad": ids.get("pad_2", ids["pad"])})  # OpenCLIP bigG
        return {"unet": unet, "vae": _vae_config("sdxl"), "text_encoder": clip_l, "text_encoder_2": big_g}
    raise UsageError("Not a full-size diffusion name", received=name, fix="Use 'sd15' or 'sdxl'")


# ------------------------------------------------------------------------------------------------ build
def _diffusion_modules(name: str, token_ids: dict[str, int] | None) -> dict[str, torch.nn.Module]:
    """Instantiate the modules (on the current default device: call inside `with torch.device(...)`)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    configs = diffusion_full_size_configs(name, token_ids)
    modules: dict[str, torch.nn.Module] = {
        "unet": UNet2DConditionModel(**configs["unet"]),
        "vae": AutoencoderKL(**configs["vae"]),
        "text_encoder": CLIPTextModel(configs["text_encoder"]),
    }
    if "text_encoder_2" in configs:
        modules["text_encoder_2"] = CLIPTextModelWithProjection(configs["text_encoder_2"])
    return modules


def _qwen_class(name: str) -> Any:
    import transformers

    return getattr(transformers, {"qwen2_5_vl_7b": "Qwen2_5_VLForConditionalGeneration",
                                  "qwen3_vl_8b": "Qwen3VLForConditionalGeneration"}[name])


def full_size_parameter_counts(name: str) -> dict[str, int]:
    """Parameter count per module of a full-size architecture, built on the `meta` device (no memory).

    Returns:
        {"total": n, "vision": n_vit, "language": n_rest} for the Qwen-VL names;
        {"unet": n, "vae": n, "text_encoder": n[, "text_encoder_2": n]} for "sd15" / "sdxl".
    """
    with torch.device("meta"):
        if full_size_kind(name) == "generation":
            return {key: _count(module) for key, module in _diffusion_modules(name, None).items()}
        model = _qwen_class(name)._from_config(qwen_full_size_config(name))
    vision = _count(model.model.visual)
    total = _count(model)
    return {"total": total, "vision": vision, "language": total - vision}


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclass(frozen=True)
class _TinyParts:
    folder: Any
    token_ids: dict[str, int]


def _tiny_qwen_parts(name: str) -> _TinyParts:
    from transformers import AutoConfig

    from mmkit.testing import tiny_checkpoint

    folder = tiny_checkpoint(_TINY_OF[name])
    tiny = AutoConfig.from_pretrained(folder)
    text = tiny.text_config
    ids = {"bos": text.bos_token_id, "eos": text.eos_token_id, "pad": text.pad_token_id,
           "image": tiny.image_token_id, "video": tiny.video_token_id,
           "vision_start": tiny.vision_start_token_id, "vision_end": tiny.vision_end_token_id}
    return _TinyParts(folder, ids)


def build_full_size_vlm(name: str, plan: DevicePlan) -> Any:
    """A `VisionLanguageModel` with the full-size architecture `name`, random weights, the tiny processor.

    Args:
        name: "qwen2_5_vl_7b" or "qwen3_vl_8b".
        plan: device, dtype and attention backend (bf16 + sdpa on a recent GPU: `plan_device("cuda")`).
    """
    from transformers import AutoProcessor, GenerationConfig

    from mmkit.understand.families import detect_family, thinking_mode
    from mmkit.understand.model import VisionLanguageModel
    from mmkit.understand.video_processors import register_video_processors

    parts = _tiny_qwen_parts(name)
    config = qwen_full_size_config(name, parts.token_ids)
    register_video_processors()
    processor = AutoProcessor.from_pretrained(parts.folder)
    with torch.device(plan.device):
        model = _qwen_class(name)._from_config(config, dtype=plan.dtype, attn_implementation=plan.attn_implementation)
    model.eval()
    model.generation_config = GenerationConfig.from_pretrained(parts.folder)  # ids of the tiny tokenizer

    # The same thinking-mode probe `VisionLanguageModel.from_pretrained` runs.
    def render(messages: list, **kwargs: Any) -> str:
        return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs)

    template = processor.chat_template if isinstance(processor.chat_template, str) else None
    return VisionLanguageModel(
        model=model, processor=processor, family=detect_family(config), plan=plan,
        model_id=f"random-full-size:{name}", thinking=thinking_mode(template, render, config=config, name=name),
    )


def build_full_size_generator(name: str, plan: DevicePlan) -> Any:
    """An `ImageGenerator` with the full-size SD 1.5 / SDXL architecture, random weights, tiny tokenizers.

    The scheduler is the published one (the tiny checkpoints carry SD 1.5's and SDXL's scheduler configs).
    """
    import diffusers
    from transformers import CLIPTokenizer

    from mmkit.generate.generator import ImageGenerator
    from mmkit.generate.loading import CheckpointInfo, LoadedCheckpoint
    from mmkit.testing import tiny_diffusion_checkpoint

    folder = tiny_diffusion_checkpoint(name)  # type: ignore[arg-type]
    tokenizers = {"tokenizer": CLIPTokenizer.from_pretrained(folder / "tokenizer")}
    if name == "sdxl":
        tokenizers["tokenizer_2"] = CLIPTokenizer.from_pretrained(folder / "tokenizer_2")
    first = tokenizers["tokenizer"]
    ids = {"bos": first.bos_token_id, "eos": first.eos_token_id, "pad": first.pad_token_id}
    if "tokenizer_2" in tokenizers:
        ids["pad_2"] = tokenizers["tokenizer_2"].pad_token_id
    with torch.device(plan.device):
        modules = _diffusion_modules(name, ids)
    modules = {key: module.to(dtype=plan.dtype).eval() for key, module in modules.items()}
    scheduler = getattr(diffusers, _scheduler_class_name(folder)).from_pretrained(folder, subfolder="scheduler")
    if name == "sd15":
        pipe = diffusers.StableDiffusionPipeline(**modules, **tokenizers, scheduler=scheduler, safety_checker=None,
                                                 feature_extractor=None, requires_safety_checker=False)
    else:
        pipe = diffusers.StableDiffusionXLPipeline(**modules, **tokenizers, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    loaded = LoadedCheckpoint(pipe, CheckpointInfo(name, False, ()), f"random-full-size:{name}", "folder", plan)  # type: ignore[arg-type]
    return ImageGenerator(loaded, progress=False)


def _scheduler_class_name(folder: Any) -> str:
    import json

    return json.loads((folder / "model_index.json").read_text())["scheduler"][1]
