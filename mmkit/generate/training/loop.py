"""The accelerate side of a LoRA run: precision and device choice, the loss of one micro-batch,
checkpoints (save / resume), validation images.

Owns the training step math (noise, timesteps, epsilon / v-prediction targets, offset noise, min-SNR
weighting, after diffusers' train_text_to_image_lora(_sdxl).py) and the checkpoint folder layout
(`output_dir/checkpoints/checkpoint_<i>/` from accelerate's automatic naming, plus `training_state.json`
with the optimizer step). Knows nothing about argument parsing or where images come from.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from ...devices import choose_dtype, probe_capabilities, resolve_device
from ...exceptions import DeviceError, UsageError
from .config import TrainLoraConfig
from .models import LoraModels, encode_captions, load_adapter_into, save_adapter

__all__ = ["choose_mixed_precision", "step_generator", "micro_batch_loss", "register_checkpoint_hooks",
           "save_checkpoint", "find_checkpoint", "read_checkpoint_step", "next_checkpoint_index",
           "render_validation", "write_json_atomic"]

STATE_FILE = "training_state.json"
WEIGHT_DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def choose_mixed_precision(requested: str, device: str) -> str:
    """accelerate's `mixed_precision` for this device.

    "auto" follows `mmkit.devices.choose_dtype`: bf16 on CUDA >= 8.0 and on Ascend NPUs that report
    bf16 (910B-class; torch_npu via accelerate), fp16 on older CUDA / NPU, "no" on CPU and MPS (the
    FIELD-NOTES measured fp16 on CPU 24-34x slower; MPS autocast support varies by torch build).
    """
    caps = probe_capabilities(resolve_device("cpu" if device == "cpu" else device))
    if requested == "auto":
        if caps.kind in ("cpu", "mps"):
            return "no"
        return "bf16" if choose_dtype(caps, "auto") == torch.bfloat16 else "fp16"
    if requested == "fp16" and caps.kind == "cpu":
        raise DeviceError("fp16 mixed precision needs a GPU or NPU", received="fp16",
                          fix="Use mixed_precision='bf16' or 'no' on CPU")
    if requested == "bf16":
        choose_dtype(caps, "bf16")  # raises DeviceError on CUDA < 8.0
    return requested


def step_generator(seed: int, micro_step: int, process_index: int) -> torch.Generator:
    """A CPU generator owned by one micro-batch: noise and timesteps depend on (seed, step, rank) only.

    Drawing on CPU makes them identical on CPU, CUDA and NPU, and a resumed run draws exactly what an
    uninterrupted one would (no global RNG state is involved).
    """
    digest = hashlib.sha256(f"mmkit-lora/{seed}/{micro_step}/{process_index}".encode()).digest()
    return torch.Generator("cpu").manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def _snr_weights(scheduler, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma loss weights (Hang et al. 2023, https://arxiv.org/abs/2303.09556, Eq. 8). On a
    zero-terminal-SNR schedule the epsilon weight min(SNR, gamma) / SNR at SNR = 0 is its limit, 1 (not 0/0)."""
    from diffusers.training_utils import compute_snr

    snr = compute_snr(scheduler, timesteps)
    weights = torch.clamp(snr, max=gamma)
    if scheduler.config.prediction_type == "epsilon":
        return torch.where(snr > 0, weights / snr.clamp(min=torch.finfo(snr.dtype).tiny), torch.ones_like(snr))
    if scheduler.config.prediction_type == "v_prediction":
        return weights / (snr + 1)
    return weights


def micro_batch_loss(models: LoraModels, batch: dict, config: TrainLoraConfig, *, generator: torch.Generator,
                     device: torch.device, weight_dtype: torch.dtype, unwrap=lambda m: m) -> torch.Tensor:
    """The diffusion loss of one micro-batch (a scalar, float32)."""
    from diffusers.utils.torch_utils import randn_tensor

    vae, scheduler = models.vae, models.noise_scheduler
    with torch.no_grad():
        pixels = batch["pixel_values"].to(device, dtype=vae.dtype)
        latents = vae.encode(pixels).latent_dist.sample(generator=generator) * vae.config.scaling_factor
    latents = latents.to(weight_dtype)
    noise = randn_tensor(latents.shape, generator=generator, device=device, dtype=latents.dtype)
    if config.noise_offset:  # https://www.crosslabs.org/blog/diffusion-with-offset-noise
        shape = (latents.shape[0], latents.shape[1], 1, 1)
        noise = noise + config.noise_offset * randn_tensor(shape, generator=generator, device=device, dtype=noise.dtype)
    count = scheduler.config.num_train_timesteps
    timesteps = torch.randint(0, count, (latents.shape[0],), generator=generator).to(device).long()
    noisy = scheduler.add_noise(latents, noise, timesteps)
    kind = scheduler.config.prediction_type
    target = {"epsilon": noise, "sample": latents}.get(kind)
    if target is None:
        target = scheduler.get_velocity(latents, noise, timesteps)
    with torch.set_grad_enabled(bool(models.trained_text_encoders)):
        hidden, pooled = encode_captions(models, batch["captions"], device, unwrap)
    extra = {}
    if models.family == "sdxl":
        extra["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": batch["time_ids"].to(device, dtype=hidden.dtype)}
    prediction = models.unet(noisy, timesteps, hidden, return_dict=False, **extra)[0]
    if config.snr_gamma is None:
        return F.mse_loss(prediction.float(), target.float(), reduction="mean")
    loss = F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=list(range(1, prediction.ndim)))
    return (loss * _snr_weights(scheduler, timesteps, config.snr_gamma)).mean()


# --- checkpoints -------------------------------------------------------------------------------------------


def write_json_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, default=str)
    os.replace(tmp, path)


def register_checkpoint_hooks(accelerator, models: LoraModels) -> None:
    """Checkpoints hold the LoRA weights only (diffusers format), not the frozen base model.

    accelerate would otherwise save every wrapped model's full state dict (gigabytes for SDXL); the save
    hook writes the adapter and empties `weights`, the load hook copies the adapter back in place.
    """

    def save_hook(wrapped_models, weights, output_dir):
        if accelerator.is_main_process:
            save_adapter(models, Path(output_dir), accelerator.unwrap_model)
        weights.clear()

    def load_hook(wrapped_models, input_dir):
        wrapped_models.clear()  # nothing left for accelerate to load; the optimizer still is
        load_adapter_into(models, Path(input_dir), accelerator.unwrap_model)

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


def save_checkpoint(accelerator, step: int, config: TrainLoraConfig) -> Path:
    """accelerate `save_state` (all processes) + `training_state.json` with the step (main process)."""
    location = Path(accelerator.save_state())
    if accelerator.is_main_process:
        write_json_atomic(location / STATE_FILE, {"step": step, "config": config.model_dump(mode="json")})
    accelerator.wait_for_everyone()
    return location


def _index(folder: Path) -> int:
    return int(folder.name.rsplit("_", 1)[-1])


def _checkpoints(output_dir: Path) -> list[Path]:
    root = output_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.rsplit("_", 1)[-1].isdigit()]
    return sorted(found, key=_index)


def next_checkpoint_index(output_dir: Path) -> int:
    existing = _checkpoints(output_dir)
    return _index(existing[-1]) + 1 if existing else 0


def find_checkpoint(resume_from: str, output_dir: Path) -> Path:
    """The checkpoint folder `resume_from` names ("latest" = newest under output_dir/checkpoints)."""
    if resume_from == "latest":
        done = [p for p in _checkpoints(output_dir) if (p / STATE_FILE).is_file()]
        if not done:
            raise UsageError("resume_from='latest' but there is no checkpoint yet", received=str(output_dir / "checkpoints"),
                             fix="Train with checkpointing_steps set first, or leave resume_from unset")
        return done[-1]
    folder = Path(resume_from).expanduser()
    if not (folder / STATE_FILE).is_file():
        raise UsageError("resume_from is not a checkpoint folder written by mmkit train_lora", received=resume_from,
                         fix=f"Pass 'latest' or a folder that holds {STATE_FILE}")
    return folder


def read_checkpoint_step(folder: Path) -> int:
    return int(json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))["step"])


# --- validation --------------------------------------------------------------------------------------------


def render_validation(models: LoraModels, config: TrainLoraConfig, accelerator, step: int,
                      weight_dtype: torch.dtype) -> list[Path]:
    """Render `num_validation_images` for `validation_prompt` into output_dir/validation/step_<N>_<k>.png."""
    unet = accelerator.unwrap_model(models.unet)
    parts = {"unet": unet, "vae": models.vae, "tokenizer": models.tokenizers[0],
             "text_encoder": accelerator.unwrap_model(models.text_encoders[0])}
    if models.family == "sdxl":
        parts.update(tokenizer_2=models.tokenizers[1], text_encoder_2=accelerator.unwrap_model(models.text_encoders[1]))
    else:
        parts.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe = models.pipeline_class.from_pretrained(config.base, dtype=weight_dtype, **parts)
    pipe.set_progress_bar_config(disable=True)
    was_training = unet.training
    unet.eval()
    out_dir = config.output_dir / "validation"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    try:
        for k in range(config.num_validation_images):
            generator = torch.Generator("cpu").manual_seed(config.seed + k)
            with torch.no_grad(), accelerator.autocast():
                image = pipe(config.validation_prompt, num_inference_steps=config.validation_inference_steps,
                             height=config.resolution, width=config.resolution, generator=generator).images[0]
            path = out_dir / f"step_{step}_{k}.png"
            fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".png", dir=out_dir)
            with os.fdopen(fd, "wb") as handle:
                image.save(handle, format="PNG")
            os.replace(tmp, path)
            paths.append(path)
    finally:
        unet.train(was_training)
        del pipe
    return paths
