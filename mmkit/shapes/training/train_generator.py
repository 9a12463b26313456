"""Train mmkit's bundled shapes-world generator: an SD-1.5-architecture pipeline (AutoencoderKL,
UNet2DConditionModel, CLIPTextModel + CLIPTokenizer, DPM-Solver++ scheduler) that the SDK runs through the
same `StableDiffusionPipeline` / `ImageGenerator` code path as a real SD 1.5 checkpoint.

Stage 1 (`vae.py`) trains the autoencoder; stage 2 (here) encodes a pool of train-split scenes to latents
once and trains the text encoder and the UNet jointly with the DDPM objective (seed notes "Diffusion
Models": add noise with the forward process x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, train the UNet
to predict eps with an MSE loss), weighted by Min-SNR-5 (Hang et al. 2023) so the few thousand CPU steps
are not spent on near-clean timesteps. The caption is replaced by "" for 10% of examples: the
classifier-free-guidance dropout (seed notes on CFG: one network learns both eps(x_t, c) and eps(x_t, ∅);
sampling extrapolates eps_∅ + w (eps_c - eps_∅)). Weights are averaged with an EMA for sampling.

Run: `python -m mmkit.shapes.training.train_generator [--out DIR] [--steps N] [--vae-dir DIR]`
(seeded; prints the time per stage and the final oracle metrics).
This module knows the models and the training loop; scenes and captions come from `data`, scores from
`evaluate_generator`.
"""

from __future__ import annotations

import argparse
import sys
import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...exceptions import UsageError
from .data import build_shapes_tokenizer, scene_caption, to_tensor, tokenize, train_scenes
from .vae import VaeConfig, polish_decoder, train_vae

__all__ = ["GeneratorConfig", "train_generator", "build_text_encoder", "build_unet", "assemble_pipeline"]

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "weights" / "shapes-sd"


@dataclass(frozen=True)
class GeneratorConfig:
    seed: int = 0
    steps: int = 3500  # UNet + text encoder optimizer steps
    max_minutes: float | None = None  # stop stage 2 early when it runs longer (logged; breaks exact replay)
    stop_after: int | None = None  # stop stage 2 after this many steps, the lr schedule still spanning `steps`
    #                                (replays a run that max_minutes stopped: same weights, bit for bit)
    batch: int = 16
    lr: float = 8e-4  # peak, 200-step warm-up, cosine decay to 10%
    cfg_dropout: float = 0.1  # share of captions replaced by "" (classifier-free guidance)
    min_snr_gamma: float = 5.0
    # Lin et al. 2024 ("Common Diffusion Noise Schedules and Sample Steps are Flawed"): rescale the betas to
    # zero terminal SNR, predict v, sample from t = 999 ("trailing"). SD 1.5's schedule leaves SNR 0.0047 at
    # t = 999; on 16x16 latents that is enough of the image for the layout to be read off the noise, so the
    # model learned to place shapes where the starting noise suggests and ignored "on the left".
    zero_terminal_snr: bool = False
    ema_decay: float = 0.999
    pool: int = 8000  # train-split scenes encoded once to latents
    zh_share: float = 0.15  # share of Chinese captions
    text_hidden: int = 64
    text_layers: int = 2
    unet_channels: tuple[int, ...] = (32, 64, 64)  # latent 16x16 -> 8x8 -> 4x4
    eval_every: int = 500
    polish_steps: int = 600  # stage 3: decoder-only VAE training after the UNet (0 skips)
    log_every: int = 100
    vae: VaeConfig = field(default_factory=VaeConfig)


def build_text_encoder(config: GeneratorConfig, vocab_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(config.seed + 2)
    return CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=config.text_hidden, intermediate_size=2 * config.text_hidden,
        num_hidden_layers=config.text_layers, num_attention_heads=4, max_position_embeddings=77,
        projection_dim=config.text_hidden, hidden_act="quick_gelu",
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1))


def build_unet(config: GeneratorConfig):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(config.seed + 3)
    n = len(config.unet_channels)
    # Like SD 1.5 but with the attention moved off the finest level: on this CPU, self-attention over
    # 16x16 = 256 latent cells cost more than all convolutions, while the 3x3 layout of the prompt is
    # already resolved at 8x8 and 4x4, where the text is attended to.
    return UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, block_out_channels=config.unet_channels,
        layers_per_block=1, down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        cross_attention_dim=config.text_hidden, attention_head_dim=4, norm_num_groups=32)


def _schedule_kwargs(zero_terminal_snr: bool) -> dict:
    kwargs = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
    if zero_terminal_snr:
        return {**kwargs, "prediction_type": "v_prediction", "rescale_betas_zero_snr": True}
    return {**kwargs, "prediction_type": "epsilon"}


def sd_noise_schedule(zero_terminal_snr: bool = False):
    """SD 1.5's training schedule, as published (scaled-linear betas 0.00085 -> 0.012, 1000 steps), or with
    `zero_terminal_snr` the same betas rescaled to zero SNR at t = 999 and v-prediction."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(**_schedule_kwargs(zero_terminal_snr))


def sampling_scheduler(zero_terminal_snr: bool = False):
    from diffusers import DPMSolverMultistepScheduler

    # "trailing" starts sampling at t = 999, the zero-SNR step (steps_offset is then unused; set as SD 1.5's)
    spacing = {"timestep_spacing": "trailing"} if zero_terminal_snr else {}
    return DPMSolverMultistepScheduler(**_schedule_kwargs(zero_terminal_snr), algorithm_type="dpmsolver++",
                                       solver_order=2, steps_offset=1, **spacing)


def training_target(noise_sched, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """What the UNet is trained to output under `noise_sched`: the noise (epsilon) or the velocity (v)."""
    if noise_sched.config.prediction_type == "v_prediction":
        return noise_sched.get_velocity(x0, noise, t)
    return noise


def assemble_pipeline(vae, text_encoder, tokenizer, unet, *, zero_terminal_snr: bool = False):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=sampling_scheduler(zero_terminal_snr), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)


@torch.no_grad()
def encode_pool(vae, scenes, batch: int = 64) -> torch.Tensor:
    """Scaled latents (posterior mean x scaling_factor, as the SD pipelines scale) of the scenes."""
    out = []
    for i in range(0, len(scenes), batch):
        out.append(vae.encode(to_tensor(scenes[i:i + batch])).latent_dist.mean * vae.config.scaling_factor)
    return torch.cat(out)


def _lr(step: int, config: GeneratorConfig) -> float:
    warm = min(1.0, (step + 1) / 200)
    return config.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / config.steps)))


def _snr_weights(noise_sched, t: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-example loss weights. Epsilon: Min-SNR-gamma, min(SNR, gamma) / SNR. v: min(1, gamma / (SNR + 1)),
    the same cap at low noise but weight 1 at high noise; published Min-SNR for v, min(SNR, gamma) /
    (SNR + 1), gives the zero-SNR step weight 0, and that step is where the layout is decided."""
    abar = noise_sched.alphas_cumprod[t]
    snr = abar / (1 - abar)
    if noise_sched.config.prediction_type == "v_prediction":
        return torch.clamp(gamma / (snr + 1), max=1.0)
    return torch.clamp(snr, max=gamma) / snr


def _check_resumed_objective(resume: Path, config: GeneratorConfig) -> None:
    """Refuse to resume a zero-terminal-SNR (v) model on SD 1.5's epsilon schedule: it would silently retrain the
    objective back. The other way (epsilon -> v) is a deliberate switch (run 4 of shapes-sd)."""
    saved = json.loads((resume / "scheduler" / "scheduler_config.json").read_text())
    if saved.get("rescale_betas_zero_snr") and not config.zero_terminal_snr:
        raise UsageError("the resumed pipeline was trained with zero terminal SNR and v-prediction",
                         received=str(resume), fix="add --zero-terminal-snr (zero_terminal_snr=True)")


def loss_weight_label(prediction_type: str, gamma: float) -> str:
    """How `_snr_weights` weighs the loss for this objective, as model cards print it."""
    if prediction_type == "v_prediction":
        return f"loss weight min(1, {gamma} / (SNR + 1))"
    return f"Min-SNR-{gamma}"


class _Ema:
    """Exponential moving average of the trainable weights (warm-up decay (1 + n) / (10 + n))."""

    def __init__(self, modules, decay: float) -> None:
        self.modules = [copy.deepcopy(m).eval().requires_grad_(False) for m in modules]
        self.decay, self.n = decay, 0

    @torch.no_grad()
    def update(self, modules) -> None:
        self.n += 1
        d = min(self.decay, (1 + self.n) / (10 + self.n))
        for ema, live in zip(self.modules, modules):
            for pe, pl in zip(ema.parameters(), live.parameters()):
                pe.lerp_(pl, 1 - d)


def train_generator(config: GeneratorConfig = GeneratorConfig(), *, out: str | Path = DEFAULT_OUT,
                    vae_dir: str | Path | None = None, stage1_dir: str | Path | None = None,
                    resume: str | Path | None = None, log=print) -> dict:
    """Train (or, with `vae_dir`, reuse stage 1 from) the shapes generator and save it to `out`.

    Args:
        config: the seeded recipe.
        out: folder for the diffusers pipeline (fp16 safetensors) and its README.
        vae_dir: a saved stage-1 `AutoencoderKL` to reuse instead of training one.
        stage1_dir: where to save the freshly trained stage-1 VAE (fp32), if anywhere.
        resume: a saved pipeline whose text encoder and UNet stage 2 continues from (use with `vae_dir`).
        log: where progress lines go.

    Returns:
        {"seconds": {...per stage}, "vae": {...}, "metrics": {...}} (also written to `out`/training.json).
    """
    from diffusers import AutoencoderKL

    from .evaluate_generator import quick_scores

    if resume is not None:  # before any work
        _check_resumed_objective(Path(resume), config)
    torch.manual_seed(config.seed)
    times: dict[str, float] = {}
    started = time.perf_counter()
    if vae_dir is None:
        vae, vae_metrics = train_vae(config.vae, log=log)
        if stage1_dir is not None:  # an fp32 copy, so a rerun can start at stage 2 (--vae-dir)
            vae.save_pretrained(stage1_dir)
            (Path(stage1_dir) / "vae_metrics.json").write_text(json.dumps(vae_metrics))
    else:
        vae = AutoencoderKL.from_pretrained(vae_dir)
        vae_metrics = json.loads((Path(vae_dir) / "vae_metrics.json").read_text()) if (
            Path(vae_dir) / "vae_metrics.json").exists() else {}
    vae.eval().requires_grad_(False)
    times["vae"] = time.perf_counter() - started
    log(f"vae: {json.dumps(vae_metrics)}")

    t0 = time.perf_counter()
    rng = np.random.default_rng([config.seed, 3])
    scenes = train_scenes(rng, config.pool)
    latents = encode_pool(vae, scenes)
    times["encode_pool"] = time.perf_counter() - t0
    log(f"pool: {len(scenes)} scenes -> latents {tuple(latents.shape)}, std {latents.std():.3f}, "
        f"mean {latents.mean():.3f} ({times['encode_pool']:.0f}s)")

    if resume is None:
        tokenizer = build_shapes_tokenizer()
        text_encoder, unet = build_text_encoder(config, len(tokenizer)), build_unet(config)
    else:  # continue from a saved pipeline (fp16 weights, trained on in fp32) and keep its vocabulary: BPE
        # training breaks count ties in no fixed order, so a rebuilt tokenizer may number tokens differently
        from diffusers import UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        tokenizer = CLIPTokenizer.from_pretrained(Path(resume) / "tokenizer")
        text_encoder = CLIPTextModel.from_pretrained(Path(resume) / "text_encoder").float()
        unet = UNet2DConditionModel.from_pretrained(Path(resume) / "unet").float()
        log(f"resumed text encoder and UNet from {resume}")
    text_encoder.train()
    unet.train()
    modules = [text_encoder, unet]
    ema = _Ema(modules, config.ema_decay)
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=1e-2)
    zts = config.zero_terminal_snr
    noise_sched = sd_noise_schedule(zts)
    log(f"objective: {noise_sched.config.prediction_type}, SNR at t=999 "
        f"{float(noise_sched.alphas_cumprod[-1] / (1 - noise_sched.alphas_cumprod[-1])):.2g}")
    t0 = time.perf_counter()
    history = []
    for step in range(config.steps):
        for group in opt.param_groups:
            group["lr"] = _lr(step, config)
        idx = rng.integers(0, len(scenes), size=config.batch)
        texts = ["" if rng.random() < config.cfg_dropout else scene_caption(scenes[i], rng, zh_share=config.zh_share)
                 for i in idx]
        x0 = latents[torch.from_numpy(idx)]
        noise = torch.randn(x0.shape)
        t = torch.randint(0, 1000, (config.batch,))
        xt = noise_sched.add_noise(x0, noise, t)
        cond = text_encoder(tokenize(tokenizer, texts))[0]  # last hidden state, as the pipeline encodes
        pred = unet(xt, t, encoder_hidden_states=cond).sample
        target = training_target(noise_sched, x0, noise, t)
        per_example = F.mse_loss(pred, target, reduction="none").mean(dim=(1, 2, 3))
        loss = (per_example * _snr_weights(noise_sched, t, config.min_snr_gamma)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.update(modules)
        if step % config.log_every == 0:
            log(f"unet step {step:5d} loss {loss.item():.4f} lr {_lr(step, config):.2e} "
                f"{time.perf_counter() - t0:.0f}s")
        over_time = config.max_minutes is not None and time.perf_counter() - t0 > 60 * config.max_minutes
        stopped = over_time or (config.stop_after is not None and step + 1 >= config.stop_after)
        if stopped or (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            pipe = assemble_pipeline(vae, ema.modules[0], tokenizer, ema.modules[1], zero_terminal_snr=zts)
            scores = quick_scores(pipe, n=24, seed=1234)
            history.append({"step": step + 1, **scores})
            log(f"eval step {step + 1}: {json.dumps(scores)} ({time.perf_counter() - t0:.0f}s)")
        if stopped:
            why = f"over max_minutes={config.max_minutes}" if over_time else f"stop_after={config.stop_after}"
            log(f"stopping after {step + 1} of {config.steps} steps: {why}")
            break
    times["unet"] = time.perf_counter() - t0
    if config.polish_steps:
        t0 = time.perf_counter()
        vae_metrics = {**vae_metrics, "polished": polish_decoder(vae, steps=config.polish_steps, seed=config.seed,
                                                                 log=log)}
        times["polish_decoder"] = time.perf_counter() - t0
        log(f"polished decoder: {json.dumps(vae_metrics['polished'])}")
    pipe = assemble_pipeline(vae, ema.modules[0], tokenizer, ema.modules[1], zero_terminal_snr=zts)
    out = Path(out)
    save_pipeline(pipe, out)
    times["total"] = time.perf_counter() - started
    report = {"config": _jsonable(asdict(config)), "seconds": times, "vae": vae_metrics, "history": history}
    (out / "training.json").write_text(json.dumps(report, indent=1))
    log(f"saved {out}; seconds {json.dumps({k: round(v) for k, v in times.items()})}")
    return report


def _jsonable(value):
    return json.loads(json.dumps(value, default=list))


def save_pipeline(pipe, out: Path) -> None:
    """fp16 safetensors in the diffusers layout (fp32 training weights are cast once, here)."""
    out.mkdir(parents=True, exist_ok=True)
    pipe.to(torch.float16).save_pretrained(out, safe_serialization=True)
    pipe.to(torch.float32)


def write_model_card(out: Path, report: dict, *, argv=None) -> None:
    """README.md beside the weights: what it is, how it was trained, what the oracle measured."""
    final, sec = report.get("final", {}), report["seconds"]
    sizes = {p.parent.name: p.stat().st_size for p in out.glob("*/*.safetensors")}
    cfg = report["config"]
    lines = [
        "# shapes-sd: mmkit's bundled SD-1.5-architecture generator for the shapes world", "",
        "A `StableDiffusionPipeline` folder (diffusers layout, fp16 safetensors) trained from scratch on the",
        "synthetic shapes world (`mmkit.shapes`): 1-3 coloured circles / squares / triangles on white, 64x64 px.",
        "Load it like any SD 1.5 checkpoint: `ImageGenerator.from_pretrained(path).text_to_image(",
        "\"a red circle on the left and a blue square at the top right\", width=64, height=64, steps=20,",
        "guidance_scale=5.0, seed=0)`. Prompts are the world's captions (English; Chinese captions were 15% of",
        "training text).", "",
        "## Parts", "",
        "| part | architecture | file bytes |", "| --- | --- | --- |",
        f"| vae | AutoencoderKL, 3 blocks {cfg['vae']['channels']} (4x down-sampling, 16x16x4 latents) | {sizes.get('vae', 0)} |",
        f"| text_encoder | CLIPTextModel, hidden {cfg['text_hidden']}, {cfg['text_layers']} layers | {sizes.get('text_encoder', 0)} |",
        f"| unet | UNet2DConditionModel {cfg['unet_channels']}, cross-attention at 8x8 and 4x4 | {sizes.get('unet', 0)} |",
        "| tokenizer | CLIPTokenizer, 700-token BPE trained on the world's words | |",
        "| scheduler | DPMSolverMultistepScheduler (dpmsolver++, SD 1.5 betas" + (
            " rescaled to zero terminal SNR, v-prediction, trailing timesteps" if cfg.get("zero_terminal_snr")
            else "") + ") | |", "",
        "## Training (reproduce: `python -m mmkit.shapes.training.train_generator" + (
            " " + " ".join(argv) if argv else "") + "`)", "",
        f"- seed {cfg['seed']}; VAE {cfg['vae']['steps']} steps (L1+L2+1e-6 KL, 32 px crops, batch 16);",
        f"  UNet + text encoder {cfg['steps']} steps planned, batch {cfg['batch']}, AdamW lr {cfg['lr']} cosine,",
        ("  v-prediction on zero-terminal-SNR betas, " if cfg.get("zero_terminal_snr") else "  epsilon prediction, ")
        + loss_weight_label("v_prediction" if cfg.get("zero_terminal_snr") else "epsilon", cfg["min_snr_gamma"])
        + f", CFG dropout {cfg['cfg_dropout']}, EMA {cfg['ema_decay']},",
        f"  {cfg['pool']} train-split scenes encoded once.",
        f"- steps run: {report['history'][-1]['step'] if report['history'] else 0}; seconds: "
        + ", ".join(f"{k} {v:.0f}" for k, v in sec.items()) + " (CPU, 1 thread, machine shared).",
        f"- VAE round trip: {json.dumps({k: round(v, 3) for k, v in report['vae'].items() if isinstance(v, float)})}", "",
        "## Oracle evaluation (`mmkit.shapes.training.evaluate_generator`, test-split prompts, fixed seeds)", "",
        "| metric | value | bar |", "| --- | --- | --- |",
    ]
    for key, bar in (("single", "0.90"), ("pair", "0.70"), ("inpaint", "0.80"), ("inpaint_oracle", ""),
                     ("inpaint_psnr_db", "")):
        if key in final:
            lines.append(f"| {key} | {final[key]:.3f} | {bar} |")
    lines += ["", f"n = {final.get('n')} prompts per category, steps {final.get('steps')}, guidance "
              f"{final.get('guidance_scale')}; inpainting: {final.get('inpaint_n')} trials, success = oracle "
              "passes the new caption and the unmasked pixels keep PSNR >= 30 dB.", "",
              "Training progress (24 val prompts each, 15 steps):", ""]
    lines += [f"- step {h['step']}: " + ", ".join(f"{k} {v}" for k, v in h.items() if k != "step")
              for h in report["history"]]
    (out / "README.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--steps", type=int, default=GeneratorConfig.steps)
    parser.add_argument("--vae-steps", type=int, default=VaeConfig.steps)
    parser.add_argument("--vae-dir", default=None, help="reuse a saved stage-1 VAE (from --stage1-dir)")
    parser.add_argument("--resume", default=None, help="continue stage 2 from this saved pipeline")
    parser.add_argument("--stage1-dir", default=None, help="save the stage-1 VAE (fp32) here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-minutes", type=float, default=None, help="time guard for stage 2")
    parser.add_argument("--stop-after", type=int, default=None,
                        help="stop stage 2 after N steps (the lr schedule still spans --steps)")
    parser.add_argument("--lr", type=float, default=GeneratorConfig.lr)
    parser.add_argument("--polish-steps", type=int, default=GeneratorConfig.polish_steps)
    parser.add_argument("--pool", type=int, default=GeneratorConfig.pool)
    parser.add_argument("--zero-terminal-snr", action="store_true",
                        help="v-prediction on betas rescaled to zero SNR at t=999 (Lin et al. 2024)")
    parser.add_argument("--eval-every", type=int, default=GeneratorConfig.eval_every)
    parser.add_argument("--eval-n", type=int, default=200, help="final evaluation prompts per category")
    # One thread by default: on a 2-core machine shared with other jobs, two OpenMP threads spin-waited
    # on each other (measured 1.2 s/step with one thread vs 20 s/step with two under load).
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = GeneratorConfig(seed=args.seed, steps=args.steps, pool=args.pool, max_minutes=args.max_minutes,
                             stop_after=args.stop_after,
                             lr=args.lr, polish_steps=args.polish_steps, eval_every=args.eval_every,
                             zero_terminal_snr=args.zero_terminal_snr,
                             vae=VaeConfig(seed=args.seed, steps=args.vae_steps))
    report = train_generator(config, out=args.out, vae_dir=args.vae_dir, stage1_dir=args.stage1_dir,
                             resume=args.resume)
    from .evaluate_generator import evaluate_generator

    t0 = time.perf_counter()
    report["final"] = evaluate_generator(args.out, n=args.eval_n, seed=0)
    report["seconds"]["final_eval"] = time.perf_counter() - t0
    Path(args.out, "training.json").write_text(json.dumps(report, indent=1))
    write_model_card(Path(args.out), report, argv=sys.argv[1:] if argv is None else argv)
    print(json.dumps({"seconds": report["seconds"], "final": report["final"]}, indent=1))


if __name__ == "__main__":
    main()
