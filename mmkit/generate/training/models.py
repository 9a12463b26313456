"""The models of a LoRA run: load the frozen SD 1.5 / SDXL parts, attach LoRA layers, encode captions, and
save / restore the adapter in the diffusers LoRA format.

Owns: which parts are frozen and in which dtype, the peft `LoraConfig`s,
SDXL's two-encoder prompt embedding, and the adapter file (`pytorch_lora_weights.safetensors`, written by
the pipeline class's `save_lora_weights`, so `load_lora_weights` and `mmkit.generate.lora` read it back).
The family is read by `mmkit.generate.loading.inspect_folder` and the source rules are `mmkit.generate.sources`'.
Knows nothing about data folders, the training loop or accelerate.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
import torch

from ...exceptions import ModelLoadError, UsageError
from ..loading import Family, inspect_folder
from ..sources import resolve_source, unavailable, use_safetensors
from .config import TEXT_ENCODER_TARGET_MODULES, TrainLoraConfig

__all__ = ["ADAPTER_FILE", "LoraModels", "detect_family", "load_models", "attach_lora", "encode_captions",
           "adapter_layers", "save_adapter", "load_adapter_into"]

ADAPTER_FILE = "pytorch_lora_weights.safetensors"


@dataclass
class LoraModels:
    """The parts of one pipeline a LoRA run uses (unet / text encoders may be accelerate-wrapped later)."""

    family: Family
    tokenizers: list
    text_encoders: list
    vae: torch.nn.Module
    unet: torch.nn.Module
    noise_scheduler: object
    trained_text_encoders: list[int] = field(default_factory=list)  # indices into text_encoders

    @property
    def pipeline_class(self):
        from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

        return StableDiffusionXLPipeline if self.family == "sdxl" else StableDiffusionPipeline


def _config_folder(base: str, allow_pickle: bool) -> Path:
    """A local folder with the base checkpoint's `model_index.json` and `unet/config.json` (hub: configs only)."""
    found = resolve_source(base, allow_pickle=allow_pickle, what="Base checkpoint")
    if found.kind == "file":
        raise UsageError("Training needs a diffusers folder, not a single checkpoint file", received=base,
                         fix="Convert it once: StableDiffusion(XL)Pipeline.from_single_file(...).save_pretrained(dir)")
    if found.kind == "folder":
        return found.path
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(base, allow_patterns=["model_index.json", "*/config.json"]))
    except Exception as err:  # huggingface_hub raises many OSError / ValueError subclasses here
        raise unavailable(err, source=found, what="base checkpoint") from err


def detect_family(base: str, requested: str = "auto", *, allow_pickle: bool = False) -> Family:
    """The family of a diffusers checkpoint, read by `mmkit.generate.loading.inspect_folder` (UNet config); a
    local folder whose weights are only pickle files raises `UnsafeSourceError` unless `allow_pickle`."""
    detected = inspect_folder(_config_folder(base, allow_pickle), allow_pickle=allow_pickle).family
    if requested not in ("auto", detected):
        raise UsageError(f"family={requested!r} does not match the checkpoint, which is {detected}",
                         received=requested, fix="Use family='auto'")
    return detected


def load_models(base: str, family: Family, weight_dtype: torch.dtype = torch.float32, *,
                allow_pickle: bool = False) -> LoraModels:
    """Load tokenizers, text encoders, VAE and UNet in their training dtypes, plus a DDPM noise scheduler.

    Loading with `dtype=` (rather than casting afterwards) lets diffusers / transformers keep the modules
    a model marks as float32-only in float32. Weights are read from safetensors only unless `allow_pickle`.
    """
    safe = {"use_safetensors": use_safetensors(allow_pickle)}
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextModel, CLIPTextModelWithProjection

    try:
        tokenizers = [AutoTokenizer.from_pretrained(base, subfolder="tokenizer")]
        text_encoders = [CLIPTextModel.from_pretrained(base, subfolder="text_encoder", dtype=weight_dtype, **safe)]
        if family == "sdxl":
            tokenizers.append(AutoTokenizer.from_pretrained(base, subfolder="tokenizer_2"))
            text_encoders.append(
                CLIPTextModelWithProjection.from_pretrained(base, subfolder="text_encoder_2", dtype=weight_dtype,
                                                            **safe))
        vae = AutoencoderKL.from_pretrained(base, subfolder="vae", dtype=_vae_dtype(family, base, weight_dtype),
                                            **safe)
        unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet", dtype=weight_dtype, **safe)
        noise_scheduler = DDPMScheduler.from_pretrained(base, subfolder="scheduler")
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"Cannot load the base checkpoint's parts: {err}", received=base) from err
    if noise_scheduler.config.prediction_type not in ("epsilon", "v_prediction", "sample"):
        raise ModelLoadError("Unsupported scheduler prediction_type", received=noise_scheduler.config.prediction_type)
    return LoraModels(family, tokenizers, text_encoders, vae, unet, noise_scheduler)


def _vae_dtype(family: Family, base: str, weight_dtype: torch.dtype) -> torch.dtype:
    # The SDXL VAE overflows to NaN in float16 (its config sets force_upcast); diffusers' SDXL LoRA
    # example keeps it in float32 for the same reason. bf16 has fp32's range, so it is used as is.
    if family == "sdxl" and weight_dtype == torch.float16:
        from diffusers import AutoencoderKL

        if AutoencoderKL.load_config(base, subfolder="vae").get("force_upcast", True):
            return torch.float32
    return weight_dtype


def attach_lora(models: LoraModels, config: TrainLoraConfig, device: torch.device) -> list:
    """Freeze everything, move it to `device`, add LoRA layers; return the trainable params.

    LoRA parameters are kept in float32 whatever the frozen weights' dtype is: fp16 weights cannot take small Adam
    updates, and fp16 training needs fp32 master params for loss scaling (see diffusers' examples).
    """
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    for module in [models.vae, models.unet, *models.text_encoders]:
        module.requires_grad_(False)
        module.to(device)

    def lora(targets) -> LoraConfig:
        return LoraConfig(r=config.rank, lora_alpha=config.lora_alpha, init_lora_weights="gaussian",
                          target_modules=list(targets))

    try:
        models.unet.add_adapter(lora(config.target_modules))
    except ValueError as err:  # peft: "Target modules {...} not found in the base model"
        raise UsageError(f"LoRA target_modules do not match the UNet: {err}", received=config.target_modules,
                         fix="Use attention projection names such as to_q, to_k, to_v, to_out.0") from err
    trained = [models.unet]
    if config.train_text_encoder:
        for index, encoder in enumerate(models.text_encoders):
            encoder.add_adapter(lora(TEXT_ENCODER_TARGET_MODULES))
            models.trained_text_encoders.append(index)
            trained.append(encoder)
    cast_training_params(trained, dtype=torch.float32)
    return [p for module in trained for p in module.parameters() if p.requires_grad]


def encode_captions(models: LoraModels, captions: list[str], device: torch.device, unwrap=lambda m: m):
    """Caption embeddings: (hidden states, pooled) where pooled is None for SD 1.5.

    SDXL concatenates the penultimate hidden states of both encoders and pools with the second one, as
    `StableDiffusionXLPipeline.encode_prompt` does.
    """
    hidden, pooled = [], None
    for tokenizer, encoder in zip(models.tokenizers, models.text_encoders):
        limit = min(tokenizer.model_max_length, unwrap(encoder).config.max_position_embeddings)
        ids = tokenizer(captions, padding="max_length", max_length=limit, truncation=True, return_tensors="pt").input_ids
        if models.family == "sd15":
            return encoder(ids.to(device), return_dict=False)[0], None
        out = encoder(ids.to(device), output_hidden_states=True, return_dict=True)
        hidden.append(out.hidden_states[-2])
        pooled = out[0]  # CLIPTextModelWithProjection: text_embeds (the last encoder's counts)
    return torch.cat(hidden, dim=-1), pooled


def adapter_layers(models: LoraModels, unwrap=lambda m: m) -> dict:
    """`save_lora_weights` keyword arguments: diffusers-format LoRA state dicts plus their peft metadata."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    def layers(module, *, convert: bool) -> tuple[dict, dict]:
        module = unwrap(module)
        # save_embedding_layers=False: no embeddings are trained, and "auto" would look for a hub config.
        state = get_peft_model_state_dict(module, save_embedding_layers=False)
        return (convert_state_dict_to_diffusers(state) if convert else state), module.peft_config["default"].to_dict()

    kwargs = {}
    # The UNet stays in peft's key layout: diffusers' conversion renames only attention projections, so a
    # LoRA that also targets convolutions or feed-forward layers would mix two layouts, and diffusers (which
    # reads the layout off the first key) would then silently drop half of the layers when loading.
    kwargs["unet_lora_layers"], kwargs["unet_lora_adapter_metadata"] = layers(models.unet, convert=False)
    for index in models.trained_text_encoders:
        name = "text_encoder" if index == 0 else "text_encoder_2"
        kwargs[f"{name}_lora_layers"], kwargs[f"{name}_lora_adapter_metadata"] = layers(models.text_encoders[index], convert=True)
    return kwargs


def save_adapter(models: LoraModels, directory: Path, unwrap=lambda m: m) -> Path:
    """Write `directory/pytorch_lora_weights.safetensors` atomically (temp folder + rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".adapter-", dir=directory))
    try:
        models.pipeline_class.save_lora_weights(tmp, safe_serialization=True, **adapter_layers(models, unwrap))
        os.replace(tmp / ADAPTER_FILE, directory / ADAPTER_FILE)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory / ADAPTER_FILE


def load_adapter_into(models: LoraModels, directory: Path, unwrap=lambda m: m) -> None:
    """Copy the LoRA weights saved by `save_adapter` back into the (already adapted) models, in place."""
    from diffusers.training_utils import _set_state_dict_into_text_encoder
    from diffusers.utils import convert_unet_state_dict_to_peft
    from peft.utils import set_peft_model_state_dict

    state = models.pipeline_class.lora_state_dict(directory, weight_name=ADAPTER_FILE)[0]
    unet_state = convert_unet_state_dict_to_peft({k[len("unet."):]: v for k, v in state.items() if k.startswith("unet.")})
    result = set_peft_model_state_dict(unwrap(models.unet), unet_state, adapter_name="default")
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise ModelLoadError("The checkpoint's LoRA does not fit this UNet", received=unexpected[:3],
                             fix="Resume with the rank / target_modules the checkpoint was trained with")
    for index in models.trained_text_encoders:
        prefix = "text_encoder." if index == 0 else "text_encoder_2."
        _set_state_dict_into_text_encoder(state, prefix=prefix, text_encoder=unwrap(models.text_encoders[index]))
