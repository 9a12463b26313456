"""Tiny, seeded Stable Diffusion checkpoints built offline with the real diffusers / transformers classes.

`build_tiny_sd15`, `build_tiny_sdxl` and `build_tiny_sd15_inpaint` write a folder in the upstream diffusers
layout (`model_index.json`, `unet/`, `vae/`, `text_encoder/`, `tokenizer/`, `scheduler/`, safetensors
weights) that `diffusers.DiffusionPipeline.from_pretrained` and `mmkit.generate` load like a hub model.
`mmkit.testing.single_file.save_single_file_checkpoint` converts such a folder into one original-layout
`.safetensors` file, for single-file loading tests. `tiny_diffusion_checkpoint` caches built folders under `~/.cache/mmkit/tiny/<name>` (or `$MMKIT_TINY_CACHE`).

Sizes: UNet block channels (32, 64), VAE 4 blocks (8x down-sampling like real SD, latents 8x8 for 64 px),
CLIP text encoders with hidden size 32 and a 1000-token CLIP BPE vocabulary trained here. The weights are
random: images are noise-like but deterministic, which is what tests of plumbing need.

This module knows nothing about mmkit's generation API; it only builds files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

__all__ = [
    "TinyDiffusionName",
    "build_tiny_clip_tokenizer",
    "build_tiny_sd15",
    "build_tiny_sd15_inpaint",
    "build_tiny_sdxl",
    "tiny_diffusion_checkpoint",
]

TinyDiffusionName = Literal["sd15", "sdxl", "sd15_inpaint"]

_TEXT_HIDDEN = 32
# SDXL's second encoder is wider than the first, as upstream (1280 vs 768); diffusers' single-file loader tells
# the two apart by width, so equal widths would break `from_single_file`.
_TEXT_HIDDEN_2 = 64
_VOCAB_SIZE = 1000
_CORPUS = (
    "a photo of a cat sitting on a red chair in the garden, highly detailed, sharp focus, 8k. "
    "a painting of a dog running on the beach at sunset, oil on canvas, warm light. "
    "portrait of a woman with long hair, studio lighting, blue background, bokeh. "
    "a castle on a hill under a starry night sky, fantasy art, trending on artstation. "
    "a bowl of fruit on a wooden table, still life, soft shadows, green apples and yellow bananas. "
    "city street in the rain at night, neon signs, reflections, cinematic, wide angle lens. "
    "blurry, low quality, worst quality, jpeg artifacts, watermark, text, deformed, ugly, bad anatomy. "
    "mountain lake with pine trees, morning fog, landscape photography, golden hour, white clouds. "
    "an astronaut riding a horse on mars, digital art, orange desert, small black and white robot. "
)


def build_tiny_clip_tokenizer(*, pad_token: str = "<|endoftext|>"):
    """A CLIP BPE tokenizer (`transformers.CLIPTokenizer`) with a tiny vocabulary trained here, offline.

    The vocabulary follows CLIP's layout: 256 byte symbols, the same 256 with the `</w>` end-of-word
    suffix, learned merges, then `<|startoftext|>` and `<|endoftext|>` last. `model_max_length` is 77.

    Args:
        pad_token: the padding token (`"<|endoftext|>"` for SD 1.5 and SDXL's first tokenizer, `"!"` for
            SDXL's second, as upstream).
    """
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer_tok = Tokenizer(models.BPE(end_of_word_suffix="</w>", unk_token="<|endoftext|>"))
    trainer_tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    trainer_tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
                behavior="removed",
                invert=True,
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB_SIZE, min_frequency=1, initial_alphabet=alphabet, end_of_word_suffix="</w>",
        show_progress=False,
    )
    trainer_tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in
              json.loads(trainer_tok.to_str())["model"]["merges"]]

    vocab: dict[str, int] = {}
    for symbol in sorted(alphabet, key=lambda s: ord(s)):
        vocab[symbol] = len(vocab)
    for symbol in sorted(alphabet, key=lambda s: ord(s)):
        vocab[symbol + "</w>"] = len(vocab)
    kept: list[tuple[str, str]] = []
    for left, right in merges:
        if len(vocab) >= _VOCAB_SIZE - 2:
            break
        merged = left + right
        if left in vocab and right in vocab and merged not in vocab:
            vocab[merged] = len(vocab)
            kept.append((left, right))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=kept, pad_token=pad_token, model_max_length=77)


def _text_config(vocab_size: int, *, hidden: int = _TEXT_HIDDEN):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=37,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=hidden,
        hidden_act="quick_gelu",
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )


def _tiny_vae(seed: int):
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    # four blocks -> 8x down-sampling, as in real SD; norm groups 8 keep the channel counts small.
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 16, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
        # SD's 0.18215 is 1 / std of its VAE's latents; this random VAE's latents have std ~0.3, so 3.0 gives
        # the UNet unit-variance latents as in SD (with 0.18215 the latents would drown in the noise).
        scaling_factor=3.0,
    )
    # A trained SD VAE encodes almost deterministically (tiny posterior variance); a random one has logvar ~0,
    # i.e. sampling noise of std 1 that swamps the mean. Pin the log-variance half of quant_conv to -12.
    with torch.no_grad():
        half = vae.quant_conv.out_channels // 2
        vae.quant_conv.weight[half:] = 0.0
        vae.quant_conv.bias[half:] = -12.0
    return vae


def _unet_kwargs() -> dict:
    return dict(
        sample_size=8,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=32,
    )


def _sd_scheduler():
    from diffusers import PNDMScheduler

    # SD 1.5's scheduler config, as published.
    return PNDMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False,
    )


def _sd15_pipeline(seed: int, *, inpaint: bool):
    import torch
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    tokenizer = build_tiny_clip_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        in_channels=9 if inpaint else 4, cross_attention_dim=_TEXT_HIDDEN, attention_head_dim=8, **_unet_kwargs()
    )
    vae = _tiny_vae(seed + 1)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(_text_config(len(tokenizer)))
    cls = StableDiffusionInpaintPipeline if inpaint else StableDiffusionPipeline
    return cls(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=_sd_scheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def _save(pipe, path: str | os.PathLike) -> Path:
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out, safe_serialization=True)
    return out


def build_tiny_sd15(path: str | os.PathLike, *, seed: int = 0) -> Path:
    """Build and save a tiny `StableDiffusionPipeline` (SD 1.5 architecture) to `path`.

    Args:
        path: the folder to write (created; existing files with the same names are overwritten).
        seed: seeds every weight initialisation; the same seed writes the same weights.

    Returns:
        The folder, in the upstream diffusers layout with safetensors weights.
    """
    return _save(_sd15_pipeline(seed, inpaint=False), path)


def build_tiny_sd15_inpaint(path: str | os.PathLike, *, seed: int = 0) -> Path:
    """Build and save a tiny `StableDiffusionInpaintPipeline` (UNet with 9 input channels) to `path`.

    Args:
        path: the folder to write.
        seed: seeds every weight initialisation.
    """
    return _save(_sd15_pipeline(seed, inpaint=True), path)


def build_tiny_sdxl(path: str | os.PathLike, *, seed: int = 0) -> Path:
    """Build and save a tiny `StableDiffusionXLPipeline` (two text encoders, text_time conditioning).

    Args:
        path: the folder to write.
        seed: seeds every weight initialisation.
    """
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = build_tiny_clip_tokenizer()
    tokenizer_2 = build_tiny_clip_tokenizer(pad_token="!")
    time_dim = 8
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        in_channels=4,
        cross_attention_dim=_TEXT_HIDDEN + _TEXT_HIDDEN_2,  # both encoders' hidden states, concatenated
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        transformer_layers_per_block=(1, 2),
        addition_embed_type="text_time",
        addition_time_embed_dim=time_dim,
        projection_class_embeddings_input_dim=6 * time_dim + _TEXT_HIDDEN_2,  # 6 size/crop values + pooled
        **_unet_kwargs(),
    )
    vae = _tiny_vae(seed + 1)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(_text_config(len(tokenizer)))
    torch.manual_seed(seed + 3)
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(len(tokenizer_2), hidden=_TEXT_HIDDEN_2))
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        steps_offset=1, timestep_spacing="leading", interpolation_type="linear", prediction_type="epsilon",
    )
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
        tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler, force_zeros_for_empty_prompt=True,
    )
    return _save(pipe, path)


# Bump when a builder changes, so cached folders from an older layout are rebuilt.
_BUILD_VERSION = "2"
_BUILDERS = {"sd15": build_tiny_sd15, "sdxl": build_tiny_sdxl, "sd15_inpaint": build_tiny_sd15_inpaint}


def tiny_diffusion_checkpoint(name: TinyDiffusionName, cache_dir: str | os.PathLike | None = None) -> Path:
    """A cached tiny checkpoint folder, built on first use (seed 0).

    Args:
        name: "sd15", "sdxl" or "sd15_inpaint".
        cache_dir: the cache root; default `$MMKIT_TINY_CACHE` or `~/.cache/mmkit/tiny`.

    Returns:
        `<cache_dir>/<name>`. It is built in a temporary sibling folder and renamed into place, so a
        half-written folder is never returned, and concurrent callers end up with one complete copy. A
        folder written by an older version of the builders is rebuilt.
    """
    from ..exceptions import UsageError

    if name not in _BUILDERS:
        raise UsageError("Unknown tiny diffusion checkpoint", received=name, fix=f"Use one of {sorted(_BUILDERS)}")
    root = Path(cache_dir or os.environ.get("MMKIT_TINY_CACHE") or Path.home() / ".cache" / "mmkit" / "tiny")
    target = root / name
    marker = "mmkit_tiny_version.txt"
    if (target / marker).is_file() and (target / marker).read_text().strip() == _BUILD_VERSION:
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        _BUILDERS[name](tmp)
        (tmp / marker).write_text(_BUILD_VERSION)
        if target.exists():  # built by an older version of this module: move it aside, then replace
            stale = Path(tempfile.mkdtemp(prefix=f".{name}-stale-", dir=root))
            try:
                os.replace(target, stale / name)
            except OSError:
                pass  # another process moved it first
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race (target exists and is not empty)
            if not (target / marker).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
