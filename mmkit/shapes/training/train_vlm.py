"""Train the shapes-world VLM from scratch: a Qwen2.5-VL-architecture model that captions, answers questions,
grounds and points in its native convention (pixels of the smart-resized input), in English and Chinese.

    python -m mmkit.shapes.training.train_vlm --steps 6000 --out mmkit/shapes/weights/shapes-qwen2.5-vl

Every step draws a fresh batch from the train split (the batch of step k is a function of (seed, k) only, so a
resumed run sees exactly the batches an uninterrupted one would). AdamW with linear warmup and cosine decay, fp32
(bf16 autocast measured slower on this CPU). Every `checkpoint_every` steps the model and optimizer state go to
`--ckpt-dir` (resume with `--resume`); every `eval_every` steps the model is saved and scored through the public
SDK (`evaluate_vlm`, val split). Every `video_every`-th step is a batch of clips (temporal grounding), so clips
never stretch the padding of image batches. The final model is written in fp16 with a README.md model card.

This module owns the loop and the CLI; data, architecture and scoring live in vlm_data / vlm_model / vlm_evaluate.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ...exceptions import UsageError
from ..language import NO
from .vlm_attention_loss import DEFAULT_HEADS, AttentionTarget, QueryHead, attention_loss, query_loss, target_cells
from .vlm_data import IGNORE, TaskMix, collate, encode_sample, input_size_for, pixel_budget, sample_train, world_corpus
from .vlm_evaluate import evaluate_vlm
from .vlm_patch_loss import (N_CLASSES, PatchHead, captured_image_features, object_class, patch_labels,
                             patch_loss, shape_class)
from .vlm_object_loss import ObjectHead, object_loss, token_objects
from .vlm_position_loss import PositionHead, position_loss
from .vlm_model import DEFAULT_ARCH, TINY_ARCH, VlmArch, build_model, build_processor, count_parameters, save_folder
from .vlm_tokenizer import DigitTokens, build_world_tokenizer

__all__ = ["VlmTrainConfig", "train_vlm", "evaluate_vlm", "DEFAULT_OUT"]

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "weights" / "shapes-qwen2.5-vl"
_STATE = "training_state.pt"


@dataclass(frozen=True)
class VlmTrainConfig:
    """Everything that decides a run (saved beside the model as training.json)."""

    steps: int = 6000
    batch_size: int = 16
    video_every: int = 8  # every n-th step is a batch of clips (temporal grounding); 0: no video
    video_batch_size: int = 4  # a clip is 64-128 visual tokens; 4 clips cost ~1.5 batches of 16 images
    lr: float = 1e-3  # peak learning rate
    min_lr_ratio: float = 0.05  # cosine floor, as a fraction of lr
    warmup: int = 200
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    threads: int = 2
    checkpoint_every: int = 250
    eval_every: int = 1000  # 0: never during training
    eval_n: int = 40  # held-out examples per task for the periodic evaluation (val split)
    final_eval_n: int = 200  # for the model card (test split); 0: skip
    log_every: int = 10
    patch_loss_weight: float = 1.0  # dense patch supervision of the ViT (vlm_patch_loss); 0: language loss only
    position_loss_weight: float = 0.0  # row/column supervision of image tokens in the decoder (vlm_position_loss)
    object_loss_weight: float = 0.0  # covering shape's class and box on image tokens in the decoder (vlm_object_loss)
    loss_per_sample: bool = False  # language loss: mean over each sample's answer tokens, then over samples (every
    # answer counts the same: a 2-token VQA answer as much as a 40-token caption); False: mean over all tokens
    number_token_weight: float = 1.0  # weight of digit tokens (box coordinates, seconds) in the language loss
    leading_digit_weight: float | None = None  # weight of a number's first digit (None: number_token_weight): the
    # token that decides which object a coordinate comes from; the digits after it can copy the rest
    attention_loss_weight: float = 0.0  # digit queries of one-target grounding / pointing answers attend to the
    # target's image tokens (vlm_attention_loss; needs eager attention in the decoder while training)
    attention_heads: tuple[tuple[int, int], ...] = DEFAULT_HEADS  # the supervised (decoder layer, head) pairs
    attention_first_weight: float = 1.0  # weight of the query writing an answer's first number (the one that picks
    # the object: the later digits can copy the rest) against each of the others
    query_loss_weight: float = 0.0  # the query writing a one-target answer's first number states the target's class
    # (vlm_attention_loss.QueryHead)
    query_tasks: tuple[str, ...] = ("ground", "point")  # whose answers the query loss supervises; "vqa": questions
    # too, the first answer token's query stating the class asked about ("is there") or read from (one shape)
    attention_tasks: tuple[str, ...] = ("ground", "point")  # whose answers are supervised; "vqa": questions too,
    # the first answer token attending to the shapes the answer is about (`QA.about`), for a "no" to none
    init_from: str | None = None  # start from this saved shapes VLM folder (weights and processor), fresh optimizer
    corpus_n: int = 2000  # tokenizer corpus: samples per language
    arch: VlmArch = DEFAULT_ARCH
    mix: TaskMix = field(default_factory=TaskMix)


def _lr(step: int, config: VlmTrainConfig) -> float:
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    floor = config.min_lr_ratio
    return config.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _batch(step: int, config: VlmTrainConfig, processor, input_size) -> tuple[dict[str, torch.Tensor], dict | None]:
    """The batch of step `step` and, for image batches, the labels of the training-only heads (batch order):
    {"patch": ViT patch classes, "classes" / "boxes": per merged token, its covering shape (`token_objects`),
    "targets": per sample, where its answer is read from (`_attention_target`) or None, "target_classes": per
    sample, the class of its one grounding / pointing target or None}."""
    rng = np.random.default_rng([config.seed, step])
    clips = config.video_every > 0 and (step + 1) % config.video_every == 0
    task, size = ("video", config.video_batch_size) if clips else (None, config.batch_size)
    samples = [sample_train(rng, mix=config.mix, input_size=input_size, task=task) for _ in range(size)]
    batch = collate([encode_sample(processor, s) for s in samples], processor.tokenizer.pad_token_id)
    if clips:
        return batch, None
    grid = input_size[0] // 14  # patches per side of the resized input (patch_size 14)
    objects = [token_objects(s.scene, grid // 2, input_size[0]) for s in samples]
    return batch, {"patch": torch.from_numpy(np.concatenate([patch_labels(s.scene, grid) for s in samples])),
                   "classes": torch.from_numpy(np.concatenate([o[0] for o in objects])),
                   "boxes": torch.from_numpy(np.concatenate([o[1] for o in objects])),
                   "targets": [_attention_target(s, grid // 2, config.attention_tasks) for s in samples],
                   "target_classes": [_target_class(s, config.query_tasks) for s in samples]}


def _targets_of(sample) -> list:
    """The shapes of `sample`'s scene that its `boxes` name (a grounding target, the shapes a question is about)."""
    boxes = {box.as_tuple() for box in sample.boxes}
    return [s for s in sample.scene.shapes if s.box.as_tuple() in boxes]


def _target_class(sample, tasks: Sequence[str]) -> int | None:
    """The class its answer's query should state, for samples of `tasks`: a one-target grounding / pointing
    answer's shape; the colour and kind an "is there" question asks about (`Sample.asks`, also for a "no"), or
    the one shape another question's answer is read from. None otherwise."""
    if sample.task not in tasks:
        return None
    if sample.task == "vqa" and sample.asks is not None:
        return object_class(*sample.asks)
    if len(sample.boxes) != 1:
        return None
    return shape_class(_targets_of(sample)[0])


def _attention_target(sample, grid: int, tasks: Sequence[str]) -> AttentionTarget | None:
    """Where the answer of `sample` is read from, for samples of `tasks`: a one-target grounding / pointing
    answer's shape; the shapes a question's answer is about (`QA.about`), or for a "no" none of the shapes in the
    picture. None for several boxes written one by one, captions, clips and other tasks."""
    if sample.task not in tasks:
        return None
    if sample.task in ("ground", "point") and len(sample.boxes) == 1 or sample.task == "vqa" and sample.boxes:
        shapes, avoid = _targets_of(sample), False
    elif sample.task == "vqa" and sample.answer in NO.values():
        shapes, avoid = sample.scene.shapes, True
    else:
        return None
    return AttentionTarget(np.logical_or.reduce([target_cells(sample.scene, s, grid) for s in shapes]), avoid=avoid)


def answer_loss(logits: torch.Tensor, labels: torch.Tensor, *, per_sample: bool = False,
                digits: DigitTokens | None = None, number_weight: float = 1.0,
                leading_weight: float | None = None) -> torch.Tensor:
    """Next-token cross-entropy on the answer tokens (`labels` != IGNORE), weighted.

    With `per_sample=False` and `number_weight=1` this is transformers' own causal-LM loss (mean over all answer
    tokens of the batch). `number_weight` multiplies the weight of `digits`' digit tokens, `leading_weight` (when
    given) instead that of a number's first digit (`DigitTokens.leading`: the "2" of "bbox_2d" is no number);
    `per_sample` first
    averages (weighted) within each row, then over the rows that have answer tokens.
    """
    logits, target = logits[:, :-1].float(), labels[:, 1:]
    valid = target != IGNORE
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE,
                         reduction="none").view(target.shape)
    weight = valid.float()
    if digits is not None and (number_weight != 1.0 or leading_weight is not None):
        digit = digits.is_digit(target)
        leading = digits.leading(labels)[:, 1:]
        lead = number_weight if leading_weight is None else leading_weight
        weight = weight * torch.where(leading, lead, torch.where(digit, number_weight, 1.0))
    if not per_sample:
        return (weight * ce).sum() / weight.sum()
    rows = weight.sum(dim=1) > 0
    return ((weight * ce).sum(dim=1)[rows] / weight.sum(dim=1)[rows]).mean()


def _save_state(ckpt: Path, model, heads: torch.nn.ModuleDict, optimizer, step: int, history: list) -> None:
    ckpt.mkdir(parents=True, exist_ok=True)
    tmp = ckpt / (_STATE + ".tmp")
    torch.save({"model": model.state_dict(), "heads": heads.state_dict(), "optimizer": optimizer.state_dict(),
                "step": step, "history": json.dumps(history)}, tmp)
    os.replace(tmp, ckpt / _STATE)


def _load_state(ckpt: Path, model, heads: torch.nn.ModuleDict, optimizer) -> tuple[int, list]:
    state = torch.load(ckpt / _STATE, weights_only=True)  # our own file; tensors and plain values only
    model.load_state_dict(state["model"])
    heads.load_state_dict(state["heads"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"]), json.loads(state["history"])


def _setup(config: VlmTrainConfig, ckpt: Path, resume: bool, grid: int, input_size: int):
    """Tokenizer + processor (saved in the checkpoint folder, reloaded on resume), model, training-only heads,
    optimizer."""
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from ...understand.video_processors import register_video_processors

    register_video_processors()
    if resume and (ckpt / "processor" / "tokenizer.json").is_file():
        processor = AutoProcessor.from_pretrained(ckpt / "processor")
    elif config.init_from:
        processor = AutoProcessor.from_pretrained(config.init_from)
        processor.save_pretrained(ckpt / "processor")
    else:
        processor = build_processor(config.arch, build_world_tokenizer(world_corpus(config.corpus_n)))
        processor.save_pretrained(ckpt / "processor")
    if config.init_from:  # fp16 on disk, trained on in fp32
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(config.init_from, dtype=torch.float32)
    else:
        model = build_model(config.arch, processor.tokenizer, seed=config.seed)
    # training-only read-outs (vlm_patch_loss, vlm_position_loss); not shipped
    heads = torch.nn.ModuleDict({"patch": PatchHead(config.arch.text_hidden)})
    if config.position_loss_weight:
        heads["position"] = PositionHead(config.arch.text_hidden, grid,
                                         layers=tuple(range(1, min(2, config.arch.text_layers) + 1)))
    if config.object_loss_weight:  # after the position layers, before the last (which writes the answer)
        last = max(1, config.arch.text_layers - 1)
        heads["object"] = ObjectHead(config.arch.text_hidden, input_size, layers=tuple(range(min(2, last), last + 1)))
    if config.query_loss_weight:  # the hidden states the supervised attention heads form their queries from
        heads["query"] = QueryHead(config.arch.text_hidden, N_CLASSES,
                                   layers=tuple(sorted({min(layer, config.arch.text_layers)
                                                        for layer in (2, 3)})))
    named = [*model.named_parameters(), *(("heads." + n, p) for n, p in heads.named_parameters())]
    decay = [p for n, p in named if p.ndim >= 2 and "embed" not in n]
    rest = [p for n, p in named if not (p.ndim >= 2 and "embed" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": rest, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.98))
    return processor, model, heads, optimizer


def train_vlm(config: VlmTrainConfig = VlmTrainConfig(), *, out: str | os.PathLike = DEFAULT_OUT,
              ckpt_dir: str | os.PathLike | None = None, resume: bool = False) -> dict:
    """Train the shapes VLM and write it to `out` (fp16 safetensors, processor, README.md, training.json).

    Args:
        config: the run (steps, batch, schedule, architecture, task mix).
        out: final model folder, loadable with `VisionLanguageModel.from_pretrained`.
        ckpt_dir: checkpoints and periodic-eval models (default: `~/.cache/mmkit/training/<out name>`, outside
            the package, so the ~60 MB optimizer state never lands beside the shipped weights).
        resume: continue from the checkpoint in `ckpt_dir` (same config).

    Returns:
        {"history": [...], "scores": final test scores (or {}), "seconds": wall time, "params": count}.
    """
    if config.steps < 1 or config.batch_size < 1:
        raise UsageError("steps and batch_size must be >= 1", received=(config.steps, config.batch_size))
    if config.attention_loss_weight:
        bad = [(layer, head) for layer, head in config.attention_heads
               if not (0 <= layer < config.arch.text_layers and 0 <= head < config.arch.text_heads)]
        if bad or not config.attention_heads:
            raise UsageError("attention_heads must name (layer, head) pairs of the decoder", received=bad or "none",
                             fix=f"layers 0..{config.arch.text_layers - 1}, heads 0..{config.arch.text_heads - 1}")
    for name in ("attention_tasks", "query_tasks"):
        tasks = getattr(config, name)
        unknown = set(tasks) - {"ground", "point", "vqa"}
        if unknown or not tasks:
            raise UsageError(f"{name} must be some of ground, point, vqa", received=sorted(unknown) or "none",
                             fix=f"e.g. --{name.replace('_', '-')} ground,point,vqa")
    out = Path(out)
    ckpt = Path(ckpt_dir) if ckpt_dir else Path.home() / ".cache" / "mmkit" / "training" / out.name
    if resume and not (ckpt / _STATE).is_file():
        raise UsageError("nothing to resume from", received=str(ckpt), fix="drop --resume or pass the right --ckpt-dir")
    torch.set_num_threads(config.threads)
    grid = 112 // 28  # merged tokens per side of the 64 px world's resized input (checked below)
    processor, model, heads, optimizer = _setup(config, ckpt, resume, grid, grid * 28)
    start, history = _load_state(ckpt, model, heads, optimizer) if resume else (0, [])
    input_size = input_size_for((64, 64), pixel_budget(processor), 14)
    if input_size[0] // 28 != grid or input_size[0] != input_size[1]:
        raise UsageError("the shapes VLM is trained on square 112 px inputs", received=input_size,
                         fix="keep VlmArch's min_pixels / max_pixels")
    image_token = model.config.image_token_id
    if config.attention_loss_weight:  # attention probabilities: eager in the decoder (the ViT keeps sdpa)
        model.set_attn_implementation({"text_config": "eager"})
    weighted_lm = config.loss_per_sample or config.number_token_weight != 1.0 or \
        config.leading_digit_weight is not None
    uses_digits = config.number_token_weight != 1.0 or config.leading_digit_weight is not None or \
        config.attention_loss_weight or config.query_loss_weight
    try:
        digits = DigitTokens.of(processor.tokenizer) if uses_digits else DigitTokens((), ())
    except ValueError as error:
        raise UsageError("digit weights and --attention-loss-weight need a tokenizer with one token per digit",
                         received=str(error)) from None
    print(f"shapes VLM: {count_parameters(model) / 1e6:.2f} M params, vocab {len(processor.tokenizer)}, "
          f"input {input_size}, steps {start}->{config.steps}, batch {config.batch_size}", flush=True)
    began, window = time.perf_counter(), []
    model.train()
    for step in range(start, config.steps):
        tick = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, config)
        batch, labels = _batch(step, config, processor, input_size)
        positions = labels is not None and config.position_loss_weight > 0
        objects = labels is not None and config.object_loss_weight > 0
        attends = labels is not None and config.attention_loss_weight > 0
        queries = labels is not None and config.query_loss_weight > 0
        inputs = {k: v for k, v in batch.items() if k != "labels"} if weighted_lm else batch
        with captured_image_features(model) as features:
            output = model(**inputs, use_cache=False, output_hidden_states=positions or objects or queries,
                           output_attentions=attends)
        if weighted_lm:
            loss = answer_loss(output.logits, batch["labels"], per_sample=config.loss_per_sample,
                               digits=digits, number_weight=config.number_token_weight,
                               leading_weight=config.leading_digit_weight)
        else:
            loss = output.loss  # transformers' causal-LM loss: the mean over all answer tokens of the batch
        parts = {"lm": loss.item()}
        if labels is not None and config.patch_loss_weight:
            loss = loss + config.patch_loss_weight * patch_loss(heads["patch"], features, labels["patch"])
        if positions:
            loss = loss + config.position_loss_weight * position_loss(
                heads["position"], output.hidden_states, batch["input_ids"], image_token)
        if objects:
            parts["object"] = object_loss(heads["object"], output.hidden_states, batch["input_ids"], image_token,
                                          labels["classes"], labels["boxes"])
            loss = loss + config.object_loss_weight * parts["object"]
            parts["object"] = parts["object"].item()
        if attends:
            attention = attention_loss(output.attentions, batch["input_ids"], batch["labels"], image_token,
                                       labels["targets"], digits, heads=config.attention_heads,
                                       first_weight=config.attention_first_weight)
            if attention is not None:
                loss = loss + config.attention_loss_weight * attention
                parts["attention"] = attention.item()
        if queries:
            query = query_loss(heads["query"], output.hidden_states, batch["labels"], labels["target_classes"],
                               digits)
            if query is not None:
                loss = loss + config.query_loss_weight * query
                parts["query"] = query.item()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*model.parameters(), *heads.parameters()], config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        window.append((loss.item(), time.perf_counter() - tick, parts))
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            mean_loss, sec = np.mean([w[0] for w in window]), np.mean([w[1] for w in window])
            keys = sorted({k for w in window for k in w[2]})
            means = {k: round(float(np.mean([w[2][k] for w in window if k in w[2]])), 4) for k in keys}
            history.append({"step": done, "loss": round(float(mean_loss), 4), "s_per_step": round(float(sec), 3),
                            **{f"{k}_loss": v for k, v in means.items()}})
            shown = "".join(f"  {k} {v:.4f}" for k, v in means.items())
            print(f"step {done:>6}  loss {mean_loss:.4f}{shown}  lr {_lr(step, config):.2e}  {sec:.2f} s/step",
                  flush=True)
            window = []
        if config.eval_every and done % config.eval_every == 0 and done < config.steps:
            folder = save_folder(model, processor, ckpt / "eval_model")
            history.append({"step": done, "val": evaluate_vlm(folder, n=config.eval_n, seed=1, split="val")})
            model.train()
        if done % config.checkpoint_every == 0 or done == config.steps:
            _save_state(ckpt, model, heads, optimizer, done, history)
    seconds = time.perf_counter() - began
    return _finish(config, model, processor, out, history, seconds, start)


def _arch_of(folder: str) -> VlmArch:
    """The VlmArch a saved shapes VLM was built with (its training.json), so heads and card match it."""
    meta = Path(folder) / "training.json"
    if not meta.is_file():
        raise UsageError("--init-from needs a folder written by train_vlm (with training.json)", received=folder)
    arch = json.loads(meta.read_text())["config"]["arch"]
    return VlmArch(**arch)


def _finish(config, model, processor, out: Path, history: list, seconds: float, start: int) -> dict:
    model.eval()
    meta = {"config": asdict(config), "params": count_parameters(model), "seconds_this_run": round(seconds, 1),
            "resumed_from_step": start, "history": history}
    save_folder(model, processor, out, dtype=torch.float16, meta=meta)
    scores = evaluate_vlm(out, n=config.final_eval_n, seed=2, split="test") if config.final_eval_n else {}
    meta["test_scores"] = scores
    save_folder(model, processor, out, dtype=torch.float16, card=_card(config, meta, scores), meta=meta)
    return {"history": history, "scores": scores, "seconds": seconds, "params": meta["params"]}


def _card(config: VlmTrainConfig, meta: dict, scores: dict) -> str:
    losses = [h for h in meta["history"] if "loss" in h]
    rows = "\n".join(f"| {k} | {v:.3f} |" for k, v in scores.items() if k != "n") or "| (not evaluated) | |"
    a = config.arch
    return f"""# shapes-qwen2.5-vl

mmkit's bundled vision-language model for the synthetic shapes world (`mmkit.shapes`), trained from scratch on
CPU by `python -m mmkit.shapes.training.train_vlm`. Architecture: the real `Qwen2_5_VLForConditionalGeneration`
({meta['params'] / 1e6:.2f} M parameters; decoder {a.text_layers} x {a.text_hidden}, ViT depth {a.vision_depth} x
{a.vision_hidden}), tokenizer: byte-level BPE trained on the world's English and Chinese text with Qwen's special
tokens and the official Qwen2.5-VL-Instruct chat template. Weights fp16 safetensors.

It knows only the shapes world: {', '.join(('circle', 'square', 'triangle'))} in six colours on 64 px images.
Images are resized to 112 x 112 (min_pixels {a.min_pixels}, max_pixels {a.max_pixels}): 16 visual tokens.
Grounding answers follow Qwen2.5-VL's convention (JSON `bbox_2d` in pixels of the resized input); load it with
`VisionLanguageModel.from_pretrained(folder)` and `ground()` returns boxes in pixels of your image.
Clips (temporal questions) must be sent as trained: `videos=[mmkit.shapes.training.vlm_data.video_part(frames,
fps, {{"min_pixels": {a.min_pixels}, "max_pixels": {a.max_pixels}}})]` (16 tokens per 2 frames).

## Training
- steps {config.steps}, batch {config.batch_size} images (every {config.video_every}th step: {config.video_batch_size}
  clips for temporal grounding), AdamW lr {config.lr} (warmup {config.warmup}, cosine to
  {config.min_lr_ratio} x), weight decay {config.weight_decay}, seed {config.seed}, fp32, {config.threads} CPU threads
- image task mix: grounding {config.mix.ground}, pointing {config.mix.point}, VQA {config.mix.vqa}, caption
  {config.mix.caption}; Chinese share {config.mix.zh_share}; instructed yes/no share {config.mix.instructed_share};
  balanced yes/no share {config.mix.yes_no_share}; 3-shape grounding scenes share {config.mix.crowded_share};
  train split scenes only (content-hash split)
- training-only heads (discarded): ViT patch classes (weight {config.patch_loss_weight}), decoder image-token
  row/column (weight {config.position_loss_weight}), decoder image-token covering shape and box (weight
  {config.object_loss_weight}); answers' queries attend to their target's image tokens (weight
  {config.attention_loss_weight}, tasks {', '.join(config.attention_tasks)}); the first number's query states the
  target's class (weight {config.query_loss_weight}, tasks {', '.join(config.query_tasks)}); started from
  {config.init_from or 'random initialisation'}
- wall time of the last run: {meta['seconds_this_run'] / 60:.1f} min (resumed from step {meta['resumed_from_step']})
- final loss: {losses[-1]['loss'] if losses else 'n/a'}

## Test-split scores (`evaluate_vlm`, n={int(scores.get('n', 0))} per task, half English, half Chinese)
| metric | value |
| --- | --- |
{rows}
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=VlmTrainConfig.steps)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--ckpt-dir", default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--batch-size", type=int, default=VlmTrainConfig.batch_size)
    parser.add_argument("--lr", type=float, default=VlmTrainConfig.lr)
    parser.add_argument("--warmup", type=int, default=VlmTrainConfig.warmup)
    parser.add_argument("--seed", type=int, default=VlmTrainConfig.seed)
    parser.add_argument("--eval-every", type=int, default=VlmTrainConfig.eval_every)
    parser.add_argument("--eval-n", type=int, default=VlmTrainConfig.eval_n)
    parser.add_argument("--final-eval-n", type=int, default=VlmTrainConfig.final_eval_n)
    parser.add_argument("--video-every", type=int, default=VlmTrainConfig.video_every, help="0: no video")
    parser.add_argument("--checkpoint-every", type=int, default=VlmTrainConfig.checkpoint_every)
    parser.add_argument("--position-loss-weight", type=float, default=VlmTrainConfig.position_loss_weight)
    parser.add_argument("--object-loss-weight", type=float, default=VlmTrainConfig.object_loss_weight)
    parser.add_argument("--loss-per-sample", action="store_true",
                        help="language loss: every answer counts the same (mean per sample, then over samples)")
    parser.add_argument("--number-token-weight", type=float, default=VlmTrainConfig.number_token_weight,
                        help="weight of digit tokens (coordinates, seconds) in the language loss")
    parser.add_argument("--attention-loss-weight", type=float, default=VlmTrainConfig.attention_loss_weight,
                        help="digit queries of grounding answers attend to the target's image tokens")
    parser.add_argument("--attention-first-weight", type=float, default=VlmTrainConfig.attention_first_weight,
                        help="weight of the query writing an answer's first number (the one that picks the object)")
    parser.add_argument("--leading-digit-weight", type=float, default=None,
                        help="weight of a number's first digit in the language loss (default: --number-token-weight)")
    parser.add_argument("--query-loss-weight", type=float, default=VlmTrainConfig.query_loss_weight,
                        help="the query writing a grounding answer's first number states the target's class")
    parser.add_argument("--query-tasks", default=",".join(VlmTrainConfig.query_tasks),
                        help="comma-separated: whose answers --query-loss-weight supervises (ground,point,vqa)")
    parser.add_argument("--attention-tasks", default=",".join(VlmTrainConfig.attention_tasks),
                        help="comma-separated: whose answers --attention-loss-weight supervises (ground,point,vqa)")
    parser.add_argument("--instructed-share", type=float, default=TaskMix.instructed_share,
                        help="share of yes/no questions in the instructed form VLM checkers ask")
    parser.add_argument("--yes-no-share", type=float, default=TaskMix.yes_no_share,
                        help="share of VQA questions drawn as balanced 'is there' questions, the 'no' about any "
                             "absent colour and kind")
    parser.add_argument("--crowded-share", type=float, default=TaskMix.crowded_share,
                        help="share of grounding and pointing scenes drawn with 3 shapes")
    parser.add_argument("--init-from", default=None, help="start from this saved shapes VLM folder")
    parser.add_argument("--threads", type=int, default=VlmTrainConfig.threads)
    parser.add_argument("--tiny", action="store_true", help="the test-sized architecture (smoke runs)")
    args = parser.parse_args(argv)
    config = VlmTrainConfig(
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup=min(args.warmup, args.steps), seed=args.seed,
        eval_every=args.eval_every, eval_n=args.eval_n, final_eval_n=args.final_eval_n,
        checkpoint_every=args.checkpoint_every, video_every=args.video_every, threads=args.threads,
        position_loss_weight=args.position_loss_weight, object_loss_weight=args.object_loss_weight,
        loss_per_sample=args.loss_per_sample, number_token_weight=args.number_token_weight,
        attention_loss_weight=args.attention_loss_weight, attention_first_weight=args.attention_first_weight,
        leading_digit_weight=args.leading_digit_weight, query_loss_weight=args.query_loss_weight,
        attention_tasks=tuple(t.strip() for t in args.attention_tasks.split(",") if t.strip()),
        query_tasks=tuple(t.strip() for t in args.query_tasks.split(",") if t.strip()),
        init_from=args.init_from,
        mix=TaskMix(instructed_share=args.instructed_share, yes_no_share=args.yes_no_share,
                    crowded_share=args.crowded_share))
    if args.tiny:
        config = replace(config, arch=TINY_ARCH, corpus_n=300)
    if args.init_from:
        config = replace(config, arch=_arch_of(args.init_from))
    result = train_vlm(config, out=args.out, ckpt_dir=args.ckpt_dir, resume=args.resume)
    print(json.dumps({"seconds": round(result["seconds"], 1), "scores": result["scores"]}))


if __name__ == "__main__":
    main()
