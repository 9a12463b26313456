"""Typed settings (`TrainLoraConfig`) and outcome (`TrainResult`) of one LoRA training run.

Validation of user input happens here, once: every field is checked when the config is built, so the
training code below can trust it. This module knows nothing about torch devices or models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ...exceptions import UsageError

__all__ = ["TrainLoraConfig", "TrainResult", "make_config", "DEFAULT_TARGET_MODULES", "TEXT_ENCODER_TARGET_MODULES"]

DEFAULT_TARGET_MODULES: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")
TEXT_ENCODER_TARGET_MODULES: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "out_proj")

LrSchedulerName = Literal[
    "constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial"
]


class TrainLoraConfig(BaseModel):
    """Everything one LoRA training run needs. Frozen; saved next to the adapter as training_config.json."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base: str = Field(description="Base checkpoint: a hub id or a local diffusers folder (SD 1.5 or SDXL).")
    data_dir: Path = Field(
        description="Folder of images with captions: metadata.jsonl ({'file_name', 'text'}) or <stem>.txt files."
    )
    output_dir: Path = Field(description="Where the adapter, checkpoints/, validation/ and training_config.json go.")
    allow_pickle: bool = Field(
        False, description="Accept a base checkpoint whose weights are pickle files (.bin/.ckpt), which can run code "
        "when loaded. Off: only safetensors are read."
    )
    family: Literal["auto", "sd15", "sdxl"] = Field(
        "auto", description="Model family; 'auto' reads it from the checkpoint (text_encoder_2 / text_time => SDXL)."
    )
    rank: int = Field(4, ge=1, le=1024, description="LoRA rank r (size of the low-rank update).")
    alpha: float | None = Field(None, gt=0, description="LoRA alpha; the update is scaled by alpha / rank. None = rank.")
    target_modules: tuple[str, ...] = Field(
        DEFAULT_TARGET_MODULES, min_length=1, description="UNet module names (suffixes) that receive LoRA layers."
    )
    train_text_encoder: bool = Field(
        False, description="Also train LoRA layers on the text encoder(s) attention projections (q/k/v/out_proj)."
    )
    learning_rate: float = Field(1e-4, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(1e-2, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradients are clipped to this global norm.")
    lr_scheduler: LrSchedulerName = Field("constant", description="Learning-rate schedule (diffusers get_scheduler).")
    lr_warmup_steps: int = Field(0, ge=0, description="Warm-up steps of the learning-rate schedule.")
    max_steps: int = Field(1000, ge=1, description="Optimizer steps to train for (after gradient accumulation).")
    batch_size: int = Field(1, ge=1, description="Images per micro-batch on each process.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Micro-batches accumulated per optimizer step.")
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = Field(
        "auto",
        description="'auto': bf16 where the device runs it (CUDA >= 8.0, Ascend 910B), fp16 on older CUDA/NPU, "
        "'no' on CPU/MPS. LoRA weights stay fp32; fp16 uses loss scaling (accelerate's GradScaler).",
    )
    resolution: int = Field(512, ge=8, description="Training square size in pixels; a multiple of 8.")
    center_crop: bool = Field(False, description="Crop the centre after resizing; False = random crop.")
    random_flip: bool = Field(False, description="Flip images horizontally with probability 0.5.")
    caption_dropout: float = Field(
        0.0, ge=0, lt=1, description="Probability of training on an empty caption (keeps classifier-free guidance)."
    )
    seed: int = Field(0, ge=0, description="Seeds data order, augmentation, noise and timesteps: same seed, same run.")
    checkpointing_steps: int | None = Field(
        None, ge=1, description="Save a resumable checkpoint (accelerate save_state) every N steps; None = never."
    )
    checkpoints_total_limit: int | None = Field(
        None, ge=1, description="Keep at most this many checkpoints (the oldest are deleted); None = keep all."
    )
    resume_from: str | None = Field(
        None, description="'latest' (newest checkpoint in output_dir/checkpoints) or a checkpoint folder."
    )
    validation_prompt: str | None = Field(None, description="Prompt rendered during training to watch progress.")
    validation_steps: int = Field(100, ge=1, description="Render validation images every N steps (and at the end).")
    num_validation_images: int = Field(2, ge=1, description="Images per validation round.")
    validation_inference_steps: int = Field(25, ge=1, description="Denoising steps for each validation image.")
    noise_offset: float = Field(0.0, ge=0, description="Offset noise strength (0.05-0.1 helps very dark/bright images).")
    snr_gamma: float | None = Field(
        None, gt=0, description="Min-SNR loss weighting gamma (5.0 is the paper's value); None = plain MSE."
    )
    device: Literal["auto", "cpu", "cuda", "npu", "mps"] = Field(
        "auto", description="Accelerator device kind; 'auto' lets accelerate pick CUDA, Ascend NPU, MPS or CPU."
    )
    dataloader_num_workers: int = Field(0, ge=0, description="DataLoader worker processes (0 = load in the main one).")

    @field_validator("resolution")
    @classmethod
    def _multiple_of_8(cls, value: int) -> int:
        if value % 8:
            raise ValueError(f"resolution must be a multiple of 8 (the VAE downsamples by 8), e.g. {value // 8 * 8 or 8}")
        return value

    @field_validator("base")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("base must name a hub id or a local diffusers folder")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "TrainLoraConfig":
        if self.lr_warmup_steps > self.max_steps:
            raise ValueError("lr_warmup_steps must not exceed max_steps")
        return self

    @property
    def lora_alpha(self) -> float:
        return float(self.rank if self.alpha is None else self.alpha)


class TrainResult(BaseModel):
    """What a finished run produced."""

    model_config = ConfigDict(frozen=True)

    adapter_path: Path = Field(description="The diffusers-format adapter: output_dir/pytorch_lora_weights.safetensors.")
    config_path: Path = Field(description="output_dir/training_config.json, the config that made the adapter.")
    family: Literal["sd15", "sdxl"] = Field(description="The family the adapter was trained for.")
    steps: int = Field(description="Optimizer steps done in total, including those before a resume.")
    resumed_from_step: int = Field(0, description="The step the run resumed at (0 for a fresh run).")
    final_loss: float = Field(description="Loss of the last optimizer step (mean over its micro-batches).")
    loss_history: tuple[float, ...] = Field(description="Loss of each optimizer step run by this call.")
    seconds: float = Field(description="Wall-clock seconds of the training loop (loading excluded).")
    seconds_per_step: float = Field(description="seconds / optimizer steps run by this call.")
    checkpoints: tuple[Path, ...] = Field((), description="Checkpoint folders written by this call.")
    validation_images: tuple[Path, ...] = Field((), description="PNG files written under output_dir/validation.")


def make_config(**fields) -> TrainLoraConfig:
    """Build a `TrainLoraConfig`, turning pydantic's ValidationError into mmkit's `UsageError`."""
    try:
        return TrainLoraConfig(**fields)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        raise UsageError(
            f"Invalid training setting {where}: {first['msg']}",
            received=first.get("input"),
            fix="See TrainLoraConfig's field descriptions (or `--help`) for the accepted values",
        ) from err
