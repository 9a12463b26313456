"""Tiny, seeded, architecture-faithful Qwen2.5-VL and Qwen3-VL checkpoints, built offline in about a second.

Owns: `build_tiny_qwen2_5_vl`, `build_tiny_qwen3_vl` and `tiny_checkpoint`. Each builder instantiates the real
transformers class (`Qwen2_5_VLForConditionalGeneration` / `Qwen3VLForConditionalGeneration`) from a tiny config
(text hidden 128, 2 layers; vision depth 2), seeds its weights, and saves it with `save_pretrained` beside the
real processor (`Qwen2_5_VLProcessor` / `Qwen3VLProcessor` with the PIL image processor and the torch-only video
processor of `mmkit.understand.video_processors`), so the folder has the upstream layout: config.json,
generation_config.json (the family's published defaults, ids remapped to the tiny vocabulary),
model.safetensors, tokenizer.json + tokenizer_config.json, processor_config.json, chat_template.jinja.

The weights are random: the models produce gibberish, but every shape, token count, position id and code path is
the real one. This module knows nothing about mmkit's model wrapper.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from ..exceptions import UsageError
from .tokenizer import build_qwen_tokenizer

__all__ = ["build_tiny_qwen2_5_vl", "build_tiny_qwen3_vl", "tiny_checkpoint", "TINY_QWEN_NAMES"]

BUILDER_VERSION = 1
_MARKER = "mmkit_tiny.json"
_VOCAB_SIZE = 768  # > len(tokenizer) (~726) like the real checkpoints (151936 > 151665 tokens)

Layout = Literal["hub", "save_pretrained"]
TinyQwenName = Literal["qwen2_5_vl", "qwen3_vl", "qwen3_vl_thinking"]
TINY_QWEN_NAMES: tuple[str, ...] = ("qwen2_5_vl", "qwen3_vl", "qwen3_vl_thinking")


def _is_built(path: Path, expected: dict) -> bool:
    marker = path / _MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()) == expected and (path / "model.safetensors").is_file()
    except (OSError, ValueError):
        return False


def _save_atomically(path: Path, write, marker: dict) -> Path:
    """Write into a sibling temp folder, then swap it in, so a crash never leaves a half-built checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        write(tmp)
        (tmp / _MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True))
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def _write_processor(folder: Path, processor, layout: Layout, hub_files: dict[str, dict]) -> None:
    """Save the processor as transformers 5.23 does (`layout="save_pretrained"`: processor_config.json +
    chat_template.jinja) or as the published hub folders are (`layout="hub"`: one JSON per sub-processor with
    exactly the published keys, chat_template.json, tokenizer files)."""
    processor.save_pretrained(folder)
    if layout == "save_pretrained":
        return
    (folder / "processor_config.json").unlink()
    template = (folder / "chat_template.jinja").read_text()
    (folder / "chat_template.jinja").unlink()
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": template}, indent=2, ensure_ascii=False))
    for name, content in hub_files.items():
        (folder / name).write_text(json.dumps(content, indent=2))


def _token_ids(tokenizer) -> dict[str, int]:
    names = {
        "pad": "<|endoftext|>",
        "im_end": "<|im_end|>",
        "image": "<|image_pad|>",
        "video": "<|video_pad|>",
        "vision_start": "<|vision_start|>",
        "vision_end": "<|vision_end|>",
    }
    return {key: tokenizer.convert_tokens_to_ids(tok) for key, tok in names.items()}


def _seeded(model_class, config, seed: int):
    import torch

    torch.manual_seed(seed)
    model = model_class(config)  # _init_weights draws from the seeded global generator
    model.eval()
    return model


def _save_generation_config(model, ids: dict[str, int], sampling: dict) -> None:
    from transformers import GenerationConfig

    # Published defaults: bos = pad = <|endoftext|>, eos = [<|im_end|>, <|endoftext|>], do_sample=True + sampling.
    model.generation_config = GenerationConfig(
        bos_token_id=ids["pad"],
        pad_token_id=ids["pad"],
        eos_token_id=[ids["im_end"], ids["pad"]],
        do_sample=True,
        **sampling,
    )


def build_tiny_qwen2_5_vl(path: str | os.PathLike, *, seed: int = 0, layout: Layout = "hub") -> Path:
    """Build (or reuse) a tiny Qwen2.5-VL-Instruct checkpoint folder.

    Args:
        path: target folder. If it already holds a checkpoint from this builder version and seed, it is reused.
        seed: torch seed for the weights; the same seed gives bit-identical weights.
        layout: `"hub"` writes the processor files as the published Qwen/Qwen2.5-VL-*-Instruct folders have
            them (preprocessor_config.json + chat_template.json, no video config: transformers derives the video
            processor from `image_processor_type` and uses min/max_pixels for video too); `"save_pretrained"`
            writes what `Qwen2_5_VLProcessor.save_pretrained` writes in transformers 5.23 (processor_config.json
            with image + video sections, chat_template.jinja).

    Returns:
        The folder, loadable with `AutoProcessor.from_pretrained` (after
        `mmkit.understand.video_processors.register_video_processors()`) and
        `AutoModelForImageTextToText.from_pretrained`.
    """
    path = Path(path)
    _check_layout(layout)
    marker = {"builder": "qwen2_5_vl", "version": BUILDER_VERSION, "seed": seed, "layout": layout}
    if _is_built(path, marker):
        return path

    def write(folder: Path) -> None:
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        from ..understand.video_processors import Qwen2VLVideoProcessor, register_video_processors

        register_video_processors()  # without torchvision, processors cannot even be constructed otherwise

        tokenizer = build_qwen_tokenizer("qwen2_5_vl")
        ids = _token_ids(tokenizer)
        config = Qwen2_5_VLConfig(
            text_config=dict(
                vocab_size=_VOCAB_SIZE, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128000,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [4, 6, 6]},
                bos_token_id=ids["pad"], eos_token_id=ids["im_end"], pad_token_id=ids["pad"],
                tie_word_embeddings=False,
            ),
            vision_config=dict(
                depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=128, patch_size=14,
                spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[1],
                tokens_per_second=2,
            ),
            image_token_id=ids["image"], video_token_id=ids["video"],
            vision_start_token_id=ids["vision_start"], vision_end_token_id=ids["vision_end"],
        )  # fmt: skip
        model = _seeded(Qwen2_5_VLForConditionalGeneration, config, seed)
        # Qwen/Qwen2.5-VL-*-Instruct generation_config.json: repetition_penalty 1.05, temperature 1e-06.
        _save_generation_config(model, ids, {"repetition_penalty": 1.05, "temperature": 1e-06})
        model.save_pretrained(folder)
        processor = Qwen2_5_VLProcessor(
            # Qwen2.5-VL preprocessor_config.json: min_pixels 3136, max_pixels 12845056, CLIP mean/std.
            image_processor=Qwen2VLImageProcessorPil(min_pixels=3136, max_pixels=12845056),
            video_processor=Qwen2VLVideoProcessor(min_pixels=3136, max_pixels=12845056),  # as a hub folder loads
            tokenizer=tokenizer,
            chat_template=tokenizer.chat_template,
        )
        hub_preprocessor = {
            "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2,
            "merge_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711], "image_processor_type": "Qwen2VLImageProcessor",
            "processor_class": "Qwen2_5_VLProcessor",
        }  # fmt: skip
        _write_processor(folder, processor, layout, {"preprocessor_config.json": hub_preprocessor})

    return _save_atomically(path, write, marker)


def build_tiny_qwen3_vl(
    path: str | os.PathLike,
    *,
    seed: int = 0,
    variant: Literal["instruct", "thinking"] = "instruct",
    layout: Layout = "hub",
) -> Path:
    """Build (or reuse) a tiny Qwen3-VL checkpoint folder.

    Args:
        path: target folder. If it already holds a checkpoint from this builder version, seed and variant, it
            is reused.
        seed: torch seed for the weights; the same seed gives bit-identical weights.
        variant: `"instruct"` (Qwen3-VL-*-Instruct chat template and sampling defaults) or `"thinking"`
            (Qwen3-VL-*-Thinking: the template opens the answer with `<think>\\n`).
        layout: `"hub"` (preprocessor_config.json, video_preprocessor_config.json, chat_template.json with the
            published keys) or `"save_pretrained"` (transformers 5.23's processor_config.json + chat_template.jinja).

    Returns:
        The folder, loadable like `build_tiny_qwen2_5_vl`'s.
    """
    if variant not in ("instruct", "thinking"):
        raise UsageError("unknown Qwen3-VL variant", received=variant, fix='use "instruct" or "thinking"')
    path = Path(path)
    _check_layout(layout)
    marker = {"builder": "qwen3_vl", "version": BUILDER_VERSION, "seed": seed, "variant": variant, "layout": layout}
    if _is_built(path, marker):
        return path

    def write(folder: Path) -> None:
        from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        from ..understand.video_processors import Qwen3VLVideoProcessor, register_video_processors

        register_video_processors()

        tokenizer = build_qwen_tokenizer(f"qwen3_vl_{variant}")  # type: ignore[arg-type]
        ids = _token_ids(tokenizer)
        config = Qwen3VLConfig(
            text_config=dict(
                vocab_size=_VOCAB_SIZE, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=262144,
                rope_parameters={
                    "rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [6, 5, 5],
                    "mrope_interleaved": True,
                },
                bos_token_id=ids["pad"], eos_token_id=ids["im_end"], pad_token_id=ids["pad"],
            ),
            vision_config=dict(
                depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=128, patch_size=16,
                spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=144,
                deepstack_visual_indexes=[0, 1],
            ),
            image_token_id=ids["image"], video_token_id=ids["video"],
            vision_start_token_id=ids["vision_start"], vision_end_token_id=ids["vision_end"],
            tie_word_embeddings=False,
        )  # fmt: skip
        model = _seeded(Qwen3VLForConditionalGeneration, config, seed)
        # Qwen/Qwen3-VL-*-{Instruct,Thinking} generation_config.json sampling defaults.
        sampling = (
            {"top_k": 20, "top_p": 0.8, "temperature": 0.7, "repetition_penalty": 1.0}
            if variant == "instruct"
            else {"top_k": 20, "top_p": 0.95, "temperature": 1.0, "repetition_penalty": 1.0}
        )
        _save_generation_config(model, ids, sampling)
        model.save_pretrained(folder)
        processor = Qwen3VLProcessor(
            # Qwen3-VL preprocessor_config.json: size {longest_edge 16777216, shortest_edge 65536}, mean/std 0.5;
            # video_preprocessor_config.json: size {longest_edge 25165824, shortest_edge 4096}.
            image_processor=Qwen2VLImageProcessorPil(
                size={"longest_edge": 16777216, "shortest_edge": 65536}, patch_size=16,
                image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
            ),
            video_processor=Qwen3VLVideoProcessor(size={"longest_edge": 25165824, "shortest_edge": 4096}),
            tokenizer=tokenizer,
            chat_template=tokenizer.chat_template,
        )  # fmt: skip
        common = {"patch_size": 16, "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5, 0.5, 0.5],
                  "image_std": [0.5, 0.5, 0.5], "processor_class": "Qwen3VLProcessor"}  # fmt: skip
        hub_files = {
            "preprocessor_config.json": {
                "size": {"longest_edge": 16777216, "shortest_edge": 65536}, **common,
                "image_processor_type": "Qwen2VLImageProcessorFast",
            },
            "video_preprocessor_config.json": {
                "size": {"longest_edge": 25165824, "shortest_edge": 4096}, **common,
                "video_processor_type": "Qwen3VLVideoProcessor",
            },
        }  # fmt: skip
        _write_processor(folder, processor, layout, hub_files)

    return _save_atomically(path, write, marker)


def _check_layout(layout: str) -> None:
    if layout not in ("hub", "save_pretrained"):
        raise UsageError("unknown checkpoint layout", received=layout, fix='use "hub" or "save_pretrained"')


def tiny_checkpoint(name: TinyQwenName | str, cache_dir: str | os.PathLike | None = None, *, seed: int = 0) -> Path:
    """Return a tiny checkpoint folder by name, building it on first use.

    Args:
        name: `"qwen2_5_vl"`, `"qwen3_vl"` (Instruct) or `"qwen3_vl_thinking"`.
        cache_dir: parent folder; defaults to `$MMKIT_TINY_CACHE` or `~/.cache/mmkit/tiny`.
        seed: weight seed (part of the folder name when not 0).

    Returns:
        `<cache_dir>/<name>` (or `<name>-seed<seed>`), ready to load.
    """
    builders = {
        "qwen2_5_vl": lambda p: build_tiny_qwen2_5_vl(p, seed=seed),
        "qwen3_vl": lambda p: build_tiny_qwen3_vl(p, seed=seed, variant="instruct"),
        "qwen3_vl_thinking": lambda p: build_tiny_qwen3_vl(p, seed=seed, variant="thinking"),
    }
    if name not in builders:
        raise UsageError("unknown tiny checkpoint name", received=name, fix=f"use one of {sorted(builders)}")
    root = Path(cache_dir or os.environ.get("MMKIT_TINY_CACHE") or Path.home() / ".cache" / "mmkit" / "tiny")
    folder = root / (name if seed == 0 else f"{name}-seed{seed}")
    return builders[name](folder)
