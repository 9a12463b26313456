"""Stage 1 of the bundled shapes generator: a small `diffusers.AutoencoderKL` trained on rendered scenes.

Latent diffusion (see the project's seed notes on LDM: diffuse in a compressed latent space, not in
pixels) needs an autoencoder whose round trip is near-exact, colours included. Three blocks give 4x
down-sampling (16x16x4 latents for 64 px), enough for flat-coloured shapes. The loss is L1 + L2 on pixels
plus a very small KL term (the "KL-reg" of the LDM paper, weight ~1e-6) so the posterior stays almost
deterministic, which matters when inpainting encodes the input with `latent_dist.sample()`.
`scaling_factor` is set to 1 / std of the latents, as SD's 0.18215 was.

This module knows the VAE and the scene pixels; it knows nothing about text, the UNet or schedulers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..vocab import BACKGROUNDS, SHAPES
from .data import to_tensor, train_scenes

__all__ = ["VaeConfig", "build_vae", "train_vae", "polish_decoder", "psnr"]


@dataclass(frozen=True)
class VaeConfig:
    seed: int = 0
    steps: int = 1200  # optimizer steps
    batch: int = 16
    lr: float = 1e-3  # peak, cosine decay to 5% after a 50-step warm-up
    kl_weight: float = 1e-6
    channels: tuple[int, ...] = (16, 32, 64)  # 3 blocks -> 4x down-sampling
    crop: int = 32  # train on random crops: the VAE is convolutional, and a 32 px crop costs 1/4 of 64 px
    log_every: int = 100


def build_vae(config: VaeConfig):
    from diffusers import AutoencoderKL

    torch.manual_seed(config.seed)
    n = len(config.channels)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=config.channels, layers_per_block=1, norm_num_groups=8,
        # no attention in the mid block: the model stays fully convolutional, so crops train it exactly
        # as full images use it, and CPU time goes to the convolutions
        mid_block_add_attention=False,
    ).to(memory_format=torch.channels_last)
    # A random encoder's log-variance is ~0: posterior noise of std 1 on latents of std ~0.3, which the
    # decoder cannot see through (measured: PSNR stuck near 21 dB). Start the log-variance half of
    # quant_conv at -8 (std 0.02); the KL term may raise it again if it wants to.
    with torch.no_grad():
        half = vae.quant_conv.out_channels // 2
        vae.quant_conv.weight[half:] *= 0.01
        vae.quant_conv.bias[half:] = -8.0
    return vae


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two [-1, 1] batches, on the 0-255 scale."""
    mse = F.mse_loss((a.clamp(-1, 1) + 1) * 127.5, (b.clamp(-1, 1) + 1) * 127.5).item()
    return 10 * math.log10(255 ** 2 / max(mse, 1e-10))


def _lr(step: int, config: VaeConfig) -> float:
    warm = min(1.0, (step + 1) / 50)
    return config.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / config.steps)))


def _crops(x: torch.Tensor, rng: np.random.Generator, crop: int) -> torch.Tensor:
    """One random crop per image, its corner on the 4-px latent grid."""
    size = x.shape[-1]
    corners = rng.integers(0, (size - crop) // 4 + 1, size=(len(x), 2)) * 4
    out = torch.stack([img[:, r:r + crop, c:c + crop] for img, (r, c) in zip(x, corners)])
    return out.contiguous(memory_format=torch.channels_last)


def train_vae(config: VaeConfig = VaeConfig(), log=print):
    """Train the autoencoder on fresh train-split scenes (all shape kinds, all backgrounds, so LoRA and
    ControlNet runs on new concepts reuse it), then set `scaling_factor`. Returns (vae, metrics)."""
    rng = np.random.default_rng([config.seed, 1])
    vae = build_vae(config)
    opt = torch.optim.AdamW(vae.parameters(), lr=config.lr, weight_decay=0.0)
    kinds, backgrounds = tuple(SHAPES), tuple(BACKGROUNDS)
    started = time.perf_counter()
    for step in range(config.steps):
        for group in opt.param_groups:
            group["lr"] = _lr(step, config)
        x = _crops(to_tensor(train_scenes(rng, config.batch, kinds=kinds, backgrounds=backgrounds)), rng, config.crop)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        rec = F.l1_loss(recon, x) + F.mse_loss(recon, x)
        loss = rec + config.kl_weight * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if step % config.log_every == 0 or step == config.steps - 1:
            log(f"vae step {step:5d} loss {loss.item():.4f} psnr {psnr(recon.detach(), x):.1f} dB "
                f"{time.perf_counter() - started:.0f}s")
    vae.eval()
    metrics = _measure(vae, np.random.default_rng([config.seed, 2]))
    vae.register_to_config(scaling_factor=metrics["scaling_factor"])
    metrics["seconds"] = time.perf_counter() - started
    return vae, metrics


@torch.no_grad()
def _measure(vae, rng: np.random.Generator, n: int = 128) -> dict:
    """Round-trip PSNR and oracle agreement on fresh scenes, and the latent std for `scaling_factor`."""
    from ..oracle import detect
    from ..render import render

    scenes = train_scenes(rng, n)
    x = to_tensor(scenes)
    posterior = vae.encode(x).latent_dist
    recon = vae.decode(posterior.mean).sample
    images = ((recon.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    same = 0
    for scene, image in zip(scenes, images):
        want = sorted((d.colour, d.kind, d.position) for d in detect(render(scene)))
        same += want == sorted((d.colour, d.kind, d.position) for d in detect(image))
    return {"psnr_db": psnr(recon, x), "oracle_agreement": same / n,
            "latent_mean": float(posterior.mean.mean()), "latent_std": float(posterior.mean.std()),
            "posterior_std": float(posterior.std.mean()),
            "scaling_factor": round(1.0 / float(posterior.mean.std()), 5)}


def polish_decoder(vae, *, steps: int, seed: int = 0, batch: int = 16, lr: float = 2e-4, crop: int = 32,
                   log=print) -> dict:
    """Train only the decoder further (encoder frozen, so the latents a trained UNet relies on do not
    move): sharper edges and a higher round-trip PSNR, which inpainting needs for the pixels it keeps.
    Returns the round-trip metrics after polishing."""
    rng = np.random.default_rng([seed, 4])
    vae.requires_grad_(False)
    vae.decoder.requires_grad_(True)
    vae.decoder.train()
    params = list(vae.decoder.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    kinds, backgrounds = tuple(SHAPES), tuple(BACKGROUNDS)
    started = time.perf_counter()
    for step in range(steps):
        for group in opt.param_groups:  # cosine to zero
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        x = _crops(to_tensor(train_scenes(rng, batch, kinds=kinds, backgrounds=backgrounds)), rng, crop)
        with torch.no_grad():
            z = vae.encode(x).latent_dist.sample()
        recon = vae.decode(z).sample
        loss = F.l1_loss(recon, x) + F.mse_loss(recon, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"decoder step {step:5d} loss {loss.item():.4f} psnr {psnr(recon.detach(), x):.1f} dB "
                f"{time.perf_counter() - started:.0f}s")
    vae.eval().requires_grad_(False)
    metrics = _measure(vae, np.random.default_rng([seed, 2]))
    metrics.pop("scaling_factor")  # the encoder did not change, nor must the scaling
    metrics["seconds"] = time.perf_counter() - started
    return metrics
