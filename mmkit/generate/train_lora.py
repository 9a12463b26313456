"""LoRA training for SD 1.5 and SDXL on a folder of captioned images, built on accelerate.

Python: `train_lora(TrainLoraConfig(base=..., data_dir=..., output_dir=...))`. Command line (one process
or many): `accelerate launch -m mmkit.generate.train_lora --base ... --data-dir ... --output-dir ...`.
The adapter lands in `output_dir/pytorch_lora_weights.safetensors` (diffusers LoRA format, read by
`load_lora_weights` and `mmkit.generate.lora`) next to `training_config.json`.

This module wires the run together (validate, load, prepare, loop, save); the pieces live in
`mmkit.generate.training` (config, data, models, loop). It knows nothing about inference.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Literal, Union, get_args, get_origin

import torch

from ..exceptions import DeviceError, MmkitError, ModelOutputError, UsageError
from .training.config import TrainLoraConfig, TrainResult, make_config
from .training.data import CaptionedImageFolder, TrainingOrder, collate, find_captioned_images
from .training.loop import (
    WEIGHT_DTYPES, choose_mixed_precision, find_checkpoint, micro_batch_loss, next_checkpoint_index,
    read_checkpoint_step, register_checkpoint_hooks, render_validation, save_checkpoint, step_generator,
    write_json_atomic,
)
from .training.models import LoraModels, attach_lora, detect_family, load_models, save_adapter

__all__ = ["TrainLoraConfig", "TrainResult", "train_lora", "build_parser", "main"]


@dataclass
class _Run:
    """Everything the step loop touches, after `accelerator.prepare`."""

    config: TrainLoraConfig
    accelerator: object
    models: LoraModels
    params: list
    optimizer: object
    lr_scheduler: object
    dataloader: object
    weight_dtype: torch.dtype
    start_step: int


def _make_accelerator(config: TrainLoraConfig, family: str):
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration

    mixed = choose_mixed_precision(config.mixed_precision, config.device)
    project = ProjectConfiguration(project_dir=str(config.output_dir), automatic_checkpoint_naming=True,
                                   total_limit=config.checkpoints_total_limit)
    # SDXL conditions on text encoder 1's penultimate layer: the LoRA on its last layer gets no gradient,
    # which multi-process DDP refuses unless told to look for unused parameters (measured with torchrun).
    unused = family == "sdxl" and config.train_text_encoder
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)] if unused else []
    accelerator = Accelerator(mixed_precision=mixed, gradient_accumulation_steps=config.gradient_accumulation_steps,
                              cpu=config.device == "cpu", project_config=project, kwargs_handlers=handlers)
    if config.device != "auto" and accelerator.device.type != config.device:
        raise DeviceError(f"accelerate placed the run on {accelerator.device}, not {config.device}",
                          received=config.device, fix="Use device='auto' or check the accelerate config")
    return accelerator


def _release(accelerator) -> None:
    """End the run; in a single process, forget accelerate's global state so the next call can differ."""
    from accelerate.state import AcceleratorState, GradientState

    accelerator.end_training()
    if accelerator.num_processes == 1:
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()


def _prepare(config: TrainLoraConfig, accelerator, family, items, resume_dir: Path | None) -> _Run:
    from accelerate.utils import set_seed
    from diffusers.optimization import get_scheduler

    weight_dtype = WEIGHT_DTYPES[accelerator.mixed_precision]
    models = load_models(config.base, family, weight_dtype, allow_pickle=config.allow_pickle)
    set_seed(config.seed)  # the LoRA A matrices' gaussian init draws from the global RNG
    params = attach_lora(models, config, accelerator.device)
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    dataset = CaptionedImageFolder(items, resolution=config.resolution, center_crop=config.center_crop,
                                   random_flip=config.random_flip, caption_dropout=config.caption_dropout, seed=config.seed)
    micro_batches = config.max_steps * config.gradient_accumulation_steps * accelerator.num_processes
    order = TrainingOrder(len(items), total=micro_batches * config.batch_size, seed=config.seed)
    dataloader = torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, sampler=order, collate_fn=collate,
                                             num_workers=config.dataloader_num_workers)
    # AcceleratedScheduler steps once per process per optimizer step, hence the num_processes factor.
    lr_scheduler = get_scheduler(config.lr_scheduler, optimizer,
                                 num_warmup_steps=config.lr_warmup_steps * accelerator.num_processes,
                                 num_training_steps=config.max_steps * accelerator.num_processes)
    trained = [models.unet] + [models.text_encoders[i] for i in models.trained_text_encoders]
    prepared = accelerator.prepare(*trained, optimizer, dataloader, lr_scheduler)
    models.unet = prepared[0]
    for slot, index in enumerate(models.trained_text_encoders, start=1):
        models.text_encoders[index] = prepared[slot]
    optimizer, dataloader, lr_scheduler = prepared[len(trained):]
    register_checkpoint_hooks(accelerator, models)
    start_step = 0
    if resume_dir is not None:
        accelerator.load_state(str(resume_dir))
        start_step = read_checkpoint_step(resume_dir)
    accelerator.project_configuration.iteration = next_checkpoint_index(config.output_dir)
    return _Run(config, accelerator, models, params, optimizer, lr_scheduler, dataloader, weight_dtype, start_step)


def _micro_step(run: _Run, batch: dict, micro: int) -> float:
    accelerator, models = run.accelerator, run.models
    generator = step_generator(run.config.seed, micro, accelerator.process_index)
    trained = [models.unet] + [models.text_encoders[i] for i in models.trained_text_encoders]
    with accelerator.accumulate(*trained):
        loss = micro_batch_loss(models, batch, run.config, generator=generator, device=accelerator.device,
                                weight_dtype=run.weight_dtype, unwrap=accelerator.unwrap_model)
        accelerator.backward(loss)
        if accelerator.sync_gradients:
            accelerator.clip_grad_norm_(run.params, run.config.max_grad_norm)
        run.optimizer.step()
        run.lr_scheduler.step()
        run.optimizer.zero_grad()
    return accelerator.gather(loss.detach().reshape(1)).mean().item()


def _loop(run: _Run, progress: bool) -> tuple[list[float], list[Path], list[Path]]:
    from tqdm.auto import tqdm

    config, accelerator = run.config, run.accelerator
    accumulation = config.gradient_accumulation_steps
    batches = accelerator.skip_first_batches(run.dataloader, run.start_step * accumulation) if run.start_step else run.dataloader
    bar = tqdm(total=config.max_steps, initial=run.start_step, desc="LoRA", unit="step",
               disable=not (progress and accelerator.is_local_main_process))
    step, micro, pending = run.start_step, run.start_step * accumulation, []
    history, checkpoints, images = [], [], []
    for batch in batches:
        pending.append(_micro_step(run, batch, micro))
        micro += 1
        if not accelerator.sync_gradients:
            continue
        step, loss, pending = step + 1, sum(pending) / len(pending), []
        if not math.isfinite(loss):
            raise ModelOutputError(f"The training loss became {loss} at step {step}", received=loss,
                                   fix="Lower learning_rate, or use mixed_precision='bf16' / 'no' instead of fp16")
        history.append(loss)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{run.lr_scheduler.get_last_lr()[0]:.2e}")
        if config.checkpointing_steps and step % config.checkpointing_steps == 0:
            checkpoints.append(save_checkpoint(accelerator, step, config))
        if config.validation_prompt and (step % config.validation_steps == 0 or step == config.max_steps):
            if accelerator.is_main_process:
                images += render_validation(run.models, config, accelerator, step, run.weight_dtype)
        if step >= config.max_steps:
            break
    bar.close()
    return history, checkpoints, images


def train_lora(config: TrainLoraConfig, *, progress: bool = True) -> TrainResult:
    """Train a LoRA adapter on `config.data_dir` and save it to `config.output_dir`.

    Args:
        config: the run's settings (see `TrainLoraConfig`; build it with keyword arguments).
        progress: show a tqdm bar with the loss (main process only).

    Returns:
        A `TrainResult`: adapter path, steps, final loss, loss history, timings, checkpoints, validation images.

    Raises:
        UsageError: bad data folder, captions missing, bad resume_from, settings that do not fit the model.
        MediaError: an image cannot be read (the file is named).
        ModelLoadError: the base checkpoint cannot be read. DeviceError: device / precision not available.
        ModelOutputError: the loss became NaN or infinite.
    """
    if not isinstance(config, TrainLoraConfig):
        raise UsageError("train_lora needs a TrainLoraConfig", received=type(config).__name__,
                         fix="Build one: TrainLoraConfig(base=..., data_dir=..., output_dir=...)")
    items = find_captioned_images(config.data_dir)  # data and checkpoint errors surface before any model loads
    family = detect_family(config.base, config.family, allow_pickle=config.allow_pickle)
    resume_dir = find_checkpoint(config.resume_from, config.output_dir) if config.resume_from else None
    if resume_dir is not None and read_checkpoint_step(resume_dir) >= config.max_steps:
        raise UsageError(f"The checkpoint is already at step {read_checkpoint_step(resume_dir)}", received=config.max_steps,
                         fix="Raise max_steps above the checkpoint's step to train further")
    accelerator = _make_accelerator(config, family)
    try:
        run = _prepare(config, accelerator, family, items, resume_dir)
        started = time.perf_counter()
        history, checkpoints, images = _loop(run, progress)
        seconds = time.perf_counter() - started
        accelerator.wait_for_everyone()
        adapter = config.output_dir / "pytorch_lora_weights.safetensors"
        config_path = config.output_dir / "training_config.json"
        if accelerator.is_main_process:
            adapter = save_adapter(run.models, config.output_dir, accelerator.unwrap_model)
            write_json_atomic(config_path, config.model_dump(mode="json"))
        accelerator.wait_for_everyone()
    finally:
        _release(accelerator)
    return TrainResult(
        adapter_path=adapter, config_path=config_path, family=family, steps=run.start_step + len(history),
        resumed_from_step=run.start_step, final_loss=history[-1], loss_history=tuple(history), seconds=seconds,
        seconds_per_step=seconds / len(history), checkpoints=tuple(checkpoints), validation_images=tuple(images),
    )


# --- command line ------------------------------------------------------------------------------------------


def _argument_kind(annotation) -> dict:
    if get_origin(annotation) in (Union, UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is Literal:
        return {"choices": list(get_args(annotation))}
    if get_origin(annotation) is tuple:
        return {"nargs": "+"}
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction}
    return {"type": annotation if annotation in (int, float) else str}


def build_parser() -> argparse.ArgumentParser:
    """One `--flag-name` per `TrainLoraConfig` field (help = the field's description)."""
    parser = argparse.ArgumentParser(
        prog="mmkit train-lora", description="Train a LoRA adapter for SD 1.5 / SDXL on a folder of captioned images.")
    for name, field in TrainLoraConfig.model_fields.items():
        required = field.is_required()
        default = "" if required else f" (default: {field.default!r})"
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, required=required, default=argparse.SUPPRESS,
                            help=f"{field.description}{default}", **_argument_kind(field.annotation))
    parser.add_argument("--no-progress", dest="_no_progress", action="store_true", help="Hide the progress bar.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (`python -m mmkit.generate.train_lora`, `accelerate launch -m ...`).

    Returns 0 on success, 2 for a usage error, 1 for any other mmkit error.
    """
    args = vars(build_parser().parse_args(argv))
    progress = not args.pop("_no_progress")
    try:
        result = train_lora(make_config(**args), progress=progress)
    except MmkitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2 if isinstance(err, UsageError) else 1
    print(f"adapter: {result.adapter_path}\nsteps: {result.steps}  final loss: {result.final_loss:.5f}  "
          f"{result.seconds_per_step:.3f} s/step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
