"""Train a Canny-edge ControlNet for mmkit's bundled shapes-world generator (`shapes-sd`), so that generated
shapes follow a layout: the SDK runs it as `ImageGenerator.add_controlnet(folder)` +
`text_to_image(caption, control=[Control(image=layout, preprocess="canny")])`.

The net is `diffusers.ControlNetModel.from_unet(unet)` (Zhang et al. 2023: a trainable copy of the UNet's
encoder and middle block, joined to the frozen UNet by zero-initialised 1x1 convolutions, so training starts
from exactly the base model). Its conditioning embedding downsamples 4x with channels (16, 32, 64): two
stride-2 convolutions take the 64 px edge map to the 16x16 latent grid of the 4x VAE (diffusers' default
(16, 32, 96, 256) downsamples 8x, for SD's 8x VAE). The base UNet, VAE and text encoder stay frozen; the net
learns the base's own objective, read from its scheduler config (x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps;
MSE on eps, or on v for a zero-terminal-SNR base), weighted as the base was (`train_generator._snr_weights`),
with the caption dropped to "" for 10% of examples (classifier-free guidance keeps working with the control on),
and an EMA of the weights is saved. Conditions are `mmkit.generate.preprocessors.canny` of the rendered
train-split scene with `Control`'s default thresholds: the very maps the SDK makes at inference.

Run: `python -m mmkit.shapes.training.train_controlnet [--base DIR] [--out DIR] [--steps N] [--threads 1]
[--eval-n N]` (seeded; prints the time per stage and the final oracle metrics, writes training.json and a
README.md model card beside the fp16 safetensors).
This module knows the models and the training loop; scenes and captions come from `data`, the noise
schedule, EMA and learning-rate rule from `train_generator`, scores from `evaluate_controlnet`.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...exceptions import ModelLoadError, UsageError
from ...generate.quiet_logs import without_empty_fp32_warning
from ..render import render
from .data import scene_caption, tokenize, train_scenes
from .train_generator import DEFAULT_OUT as BASE_DIR
from .train_generator import _Ema, _jsonable, _lr, _snr_weights, encode_pool, loss_weight_label, training_target

__all__ = ["ControlNetConfig", "train_controlnet", "edge_maps", "load_base", "DEFAULT_OUT"]

DEFAULT_OUT = BASE_DIR.parent / "shapes-controlnet-canny"


@dataclass(frozen=True)
class ControlNetConfig:
    seed: int = 0  # seeds the pool, captions, noise, timesteps and the conditioning embedding's init
    steps: int = 1500  # ControlNet optimizer steps (0.55 s each at batch 16, 1 CPU thread)
    max_minutes: float | None = None  # stop early when training runs longer (logged; breaks exact replay)
    batch: int = 16
    lr: float = 3e-4  # peak AdamW lr; train_generator's rule: 200-step warm-up, cosine decay to 10%
    cfg_dropout: float = 0.1  # share of captions replaced by "" (the control image is always kept)
    min_snr_gamma: float = 5.0  # Min-SNR loss weighting (Hang et al. 2023), as the base was trained
    ema_decay: float = 0.999  # EMA of the net's weights (warm-up decay (1 + n) / (10 + n)); the EMA is saved
    pool: int = 4000  # train-split scenes encoded once to latents and edge maps
    zh_share: float = 0.15  # share of Chinese captions, as the base was trained
    embed_channels: tuple[int, ...] = (16, 32, 64)  # conditioning embedding: 2**(len - 1) x downsampling
    eval_every: int = 250  # quick layout check of the EMA net every this many steps (0: only at the end)
    quick_eval_n: int = 16  # val layouts per quick check (one batched 15-step call)
    log_every: int = 50  # steps between loss lines

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "pool", "log_every", "quick_eval_n"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"ControlNetConfig.{name} must be a positive int", received=value)
        if not isinstance(self.eval_every, int) or self.eval_every < 0:
            raise UsageError("ControlNetConfig.eval_every must be an int >= 0", received=self.eval_every)
        if not 0.0 <= self.cfg_dropout < 1.0 or not 0.0 < self.ema_decay < 1.0 or not self.lr > 0:
            raise UsageError("need 0 <= cfg_dropout < 1, 0 < ema_decay < 1, lr > 0",
                             received=(self.cfg_dropout, self.ema_decay, self.lr))
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise UsageError("ControlNetConfig.max_minutes must be > 0 or None", received=self.max_minutes)
        if len(self.embed_channels) < 2:
            raise UsageError("embed_channels needs at least 2 entries (one stride-2 block per extra entry)",
                             received=self.embed_channels, fix="Use (16, 32, 64) for the 4x shapes VAE")


def load_base(base: str | Path):
    """The shapes-sd pipeline in fp32 (its weights are saved in fp16), every module frozen, in eval mode."""
    base = Path(base)
    if not (base / "model_index.json").is_file():
        raise ModelLoadError("No diffusers pipeline folder at the base path", received=str(base),
                             fix="Train it first: python -m mmkit.shapes.training.train_generator --out DIR")
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(base, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    for module in (pipe.vae, pipe.text_encoder, pipe.unet):
        module.eval().requires_grad_(False)
    return pipe


def edge_maps(images) -> torch.Tensor:
    """Canny maps of images as the ControlNet pipelines feed them: (N, 1, H, W) uint8 (0 / 255), made by
    the SDK's own preprocessor with `Control`'s default thresholds. Divide by 255 and repeat to 3 channels
    for the net (the pipelines' `control_image_processor` scales to [0, 1] without normalising)."""
    from ...generate.controlnet import Control
    from ...generate.preprocessors import canny

    low, high = Control.canny_low, Control.canny_high
    maps = [np.asarray(canny(img, low, high))[:, :, 0] for img in images]
    return torch.from_numpy(np.stack(maps))[:, None]


def _hint(maps: torch.Tensor) -> torch.Tensor:
    return (maps.float() / 255.0).expand(-1, 3, -1, -1)


def build_controlnet(unet, config: ControlNetConfig, vae_scale_factor: int):
    from diffusers import ControlNetModel

    if 2 ** (len(config.embed_channels) - 1) != vae_scale_factor:
        raise UsageError("The conditioning embedding must downsample as much as the VAE",
                         received={"embed_channels": config.embed_channels, "vae_scale_factor": vae_scale_factor},
                         fix=f"Give embed_channels {int(np.log2(vae_scale_factor)) + 1} entries")
    torch.manual_seed(config.seed + 5)  # the conditioning embedding's random init (the rest is copied / zero)
    return ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=config.embed_channels)


def _loss(net, pipe, noise_sched, x0, hint, texts, config: ControlNetConfig) -> torch.Tensor:
    noise = torch.randn(x0.shape)
    t = torch.randint(0, noise_sched.config.num_train_timesteps, (x0.shape[0],))
    xt = noise_sched.add_noise(x0, noise, t)
    with torch.no_grad():  # frozen text encoder: last hidden state, as the pipeline encodes
        cond = pipe.text_encoder(tokenize(pipe.tokenizer, texts))[0]
    down, mid = net(xt, t, encoder_hidden_states=cond, controlnet_cond=hint, return_dict=False)
    pred = pipe.unet(xt, t, encoder_hidden_states=cond, down_block_additional_residuals=down,
                     mid_block_additional_residual=mid).sample
    target = training_target(noise_sched, x0, noise, t)
    per_example = F.mse_loss(pred, target, reduction="none").mean(dim=(1, 2, 3))
    return (per_example * _snr_weights(noise_sched, t, config.min_snr_gamma)).mean()


def _quick_eval(pipe, net, config: ControlNetConfig) -> dict:
    from diffusers import StableDiffusionControlNetPipeline

    from .evaluate_controlnet import quick_layout_scores

    with without_empty_fp32_warning():
        control_pipe = StableDiffusionControlNetPipeline.from_pipe(pipe, controlnet=net, dtype=torch.float32)
    return quick_layout_scores(control_pipe, n=config.quick_eval_n, seed=1234)


def train_controlnet(config: ControlNetConfig = ControlNetConfig(), *, base: str | Path = BASE_DIR,
                     out: str | Path = DEFAULT_OUT, log=print) -> dict:
    """Train a Canny ControlNet on the frozen shapes-sd pipeline at `base` and save it (fp16) to `out`.

    Args:
        config: the seeded recipe.
        base: the shapes-sd pipeline folder (from `train_generator`).
        out: folder for the ControlNet (diffusers layout: config.json + diffusion_pytorch_model.safetensors).
        log: where progress lines go.

    Returns:
        {"config", "seconds": {...per stage}, "history": [...]} (also written to `out`/training.json).
    """
    from diffusers import DDPMScheduler

    torch.manual_seed(config.seed)
    times: dict[str, float] = {}
    started = time.perf_counter()
    pipe = load_base(base)
    net = build_controlnet(pipe.unet, config, pipe.vae_scale_factor).train()
    times["load"] = time.perf_counter() - started
    log(f"base {base}; controlnet {sum(p.numel() for p in net.parameters()) / 1e6:.2f}M parameters")

    t0 = time.perf_counter()
    rng = np.random.default_rng([config.seed, 5])
    scenes = train_scenes(rng, config.pool)
    latents = encode_pool(pipe.vae, scenes)
    maps = edge_maps([render(s) for s in scenes])
    times["encode_pool"] = time.perf_counter() - t0
    log(f"pool: {len(scenes)} scenes -> latents {tuple(latents.shape)}, edge maps {tuple(maps.shape)} "
        f"({maps.float().mean() / 255:.3f} edge share) ({times['encode_pool']:.0f}s)")

    ema = _Ema([net], config.ema_decay)
    params = list(net.parameters())
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=1e-2)
    # the base's own training schedule and objective (its sampling scheduler's betas and prediction type)
    noise_sched = DDPMScheduler.from_config(pipe.scheduler.config)
    log(f"objective: {noise_sched.config.prediction_type}")
    t0 = time.perf_counter()
    history: list[dict] = []
    eval_s = 0.0
    for step in range(config.steps):
        for group in opt.param_groups:
            group["lr"] = _lr(step, config)
        idx = rng.integers(0, len(scenes), size=config.batch)
        texts = ["" if rng.random() < config.cfg_dropout else scene_caption(scenes[i], rng, zh_share=config.zh_share)
                 for i in idx]
        picked = torch.from_numpy(idx)
        loss = _loss(net, pipe, noise_sched, latents[picked], _hint(maps[picked]), texts, config)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.update([net])
        if step % config.log_every == 0:
            log(f"controlnet step {step:5d} loss {loss.item():.4f} lr {_lr(step, config):.2e} "
                f"{time.perf_counter() - t0:.0f}s")
        over_time = config.max_minutes is not None and time.perf_counter() - t0 > 60 * config.max_minutes
        last = over_time or step + 1 == config.steps
        if last or (config.eval_every and (step + 1) % config.eval_every == 0):
            t_eval = time.perf_counter()
            scores = _quick_eval(pipe, ema.modules[0], config)
            eval_s += time.perf_counter() - t_eval
            history.append({"step": step + 1, "loss": round(loss.item(), 4), **scores})
            log(f"eval step {step + 1}: {json.dumps(scores)} ({time.perf_counter() - t0:.0f}s)")
        if over_time:
            log(f"stopping after {step + 1} of {config.steps} steps: over max_minutes={config.max_minutes}")
            break
    times["train"] = time.perf_counter() - t0
    times["quick_evals"] = eval_s
    times["seconds_per_step"] = (times["train"] - eval_s) / history[-1]["step"]  # the last step always evaluates

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with without_empty_fp32_warning():  # fp32 training weights are cast to fp16 once, here
        copy.deepcopy(ema.modules[0]).to(torch.float16).save_pretrained(out, safe_serialization=True)
    times["total"] = time.perf_counter() - started
    report = {"config": _jsonable(asdict(config)), "base": str(base),
              "objective": noise_sched.config.prediction_type, "seconds": times, "history": history}
    (out / "training.json").write_text(json.dumps(report, indent=1))
    log(f"saved {out}; seconds {json.dumps({k: round(v, 2) for k, v in times.items()})}")
    return report


def write_model_card(out: Path, report: dict, *, argv=None) -> None:
    """README.md beside the weights: what it is, how to reproduce it, what the oracle measured."""
    cfg, sec, final = report["config"], report["seconds"], report.get("final", {})
    objective = report.get("objective", "epsilon")  # reports from before the objective was recorded
    size = sum(p.stat().st_size for p in out.glob("*.safetensors"))
    steps_run = report["history"][-1]["step"] if report["history"] else 0
    seconds = ", ".join(f"{k} {v:.2f}" if k == "seconds_per_step" else f"{k} {v:.0f}" for k, v in sec.items())
    lines = [
        "# shapes-controlnet-canny: a Canny-edge ControlNet for mmkit's shapes-sd generator", "",
        f"A `diffusers.ControlNetModel` (fp16 safetensors, {size} bytes) made with `from_unet` from the shapes-sd",
        "UNet and trained on Canny edge maps of rendered shapes-world layouts (64x64 px, 16x16x4 latents;",
        f"conditioning embedding {tuple(cfg['embed_channels'])}, 4x down-sampling). Use it through the SDK:", "",
        "```python",
        "from mmkit.generate import Control, ImageGenerator",
        "from mmkit.shapes import render",
        "from mmkit.shapes.language import scene_from_prompt",
        "prompt = \"a red circle on the left and a blue square on the right\"",
        "layout = render(scene_from_prompt(prompt))  # or any image of the wanted shapes",
        "gen = ImageGenerator.from_pretrained(\"mmkit/shapes/weights/shapes-sd\")",
        "gen.add_controlnet(\"mmkit/shapes/weights/shapes-controlnet-canny\", name=\"canny\")",
        "result = gen.text_to_image(prompt, steps=20, guidance_scale=5.0, seed=0,",
        "                           control=[Control(image=layout, model=\"canny\", preprocess=\"canny\")])",
        "```", "",
        "## Training", "",
        "Reproduce: `python -m mmkit.shapes.training.train_controlnet" + (" " + " ".join(argv) if argv else "") + "`",
        "",
        f"- base `{report['base']}` (UNet, VAE, text encoder frozen); seed {cfg['seed']}; {cfg['steps']} steps "
        f"planned, batch {cfg['batch']},",
        f"  AdamW lr {cfg['lr']} (200-step warm-up, cosine to 10%), the base's {objective} objective, "
        f"{loss_weight_label(objective, cfg['min_snr_gamma'])},",
        f"  CFG caption dropout {cfg['cfg_dropout']}, EMA {cfg['ema_decay']}; {cfg['pool']} train-split scenes;",
        "  condition = `mmkit.generate.preprocessors.canny` (thresholds 100 / 200) of the render.",
        f"- steps run: {steps_run}; seconds: {seconds} (CPU, 1 thread, machine shared).", "",
        "## Oracle evaluation (`mmkit.shapes.training.evaluate_controlnet`, test-split layouts, fixed seeds)", "",
        "Success: every layout shape is matched one-to-one by an oracle detection with box IoU >= 0.7. The control",
        "is `Control(image=render(scene), preprocess=\"canny\")`; \"no control\" uses the same captions and seeds.", "",
        "| metric | control | no control | bar |", "| --- | --- | --- | --- |",
    ]
    for key in ("success", "mean_iou", "exact", "attributes"):
        if key in final:
            bar = "0.80" if key == "success" else ""
            lines.append(f"| {key} | {final[key]:.3f} | {final['no_control_' + key]:.3f} | {bar} |")
    if final:
        lines += ["", f"n = {final['n']} layouts, steps {final['steps']}, guidance {final['guidance_scale']}, "
                  f"scale {final['scale']}. exact: no extra shapes; attributes: also the caption's colour and kind."]
    lines += ["", f"Training progress (EMA net, {cfg['quick_eval_n']} val layouts, 15 steps):", ""]
    lines += [f"- step {h['step']}: success {h['success']}, mean IoU {h['mean_iou']}" for h in report["history"]]
    (out / "README.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default=str(BASE_DIR), help="the shapes-sd pipeline folder")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--steps", type=int, default=ControlNetConfig.steps)
    parser.add_argument("--batch", type=int, default=ControlNetConfig.batch)
    parser.add_argument("--lr", type=float, default=ControlNetConfig.lr)
    parser.add_argument("--pool", type=int, default=ControlNetConfig.pool)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-minutes", type=float, default=None, help="time guard for training")
    parser.add_argument("--eval-every", type=int, default=ControlNetConfig.eval_every)
    parser.add_argument("--eval-n", type=int, default=200, help="final evaluation layouts (0 skips it)")
    # One thread by default, as train_generator: two OpenMP threads on a shared 2-core machine spin-wait.
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = ControlNetConfig(seed=args.seed, steps=args.steps, batch=args.batch, lr=args.lr, pool=args.pool,
                              max_minutes=args.max_minutes, eval_every=args.eval_every)
    report = train_controlnet(config, base=args.base, out=args.out)
    if args.eval_n:
        from .evaluate_controlnet import evaluate_controlnet

        t0 = time.perf_counter()
        report["final"] = evaluate_controlnet(args.base, args.out, n=args.eval_n, seed=0)
        report["seconds"]["final_eval"] = time.perf_counter() - t0
        Path(args.out, "training.json").write_text(json.dumps(report, indent=1))
    write_model_card(Path(args.out), report, argv=sys.argv[1:] if argv is None else argv)
    print(json.dumps({"seconds": report["seconds"], "final": report.get("final")}, indent=1))


if __name__ == "__main__":
    main()
