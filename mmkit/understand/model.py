"""`VisionLanguageModel`: load a Qwen-VL checkpoint and ask it about images and videos.

The call path, in order (each step one method):

1. `to_conversation` (messages.py) checks the input once.
2. `_prepare` loads each image with `mmkit.media.load_image` (its size is the *original* size every box
   is reported in), resizes media with `mmkit.media.process_vision_info` (qwen-vl-utils rules, the
   family's patch size), renders the chat template and runs the HF processor with `do_resize=False`
   (the images are already smart-resized, as in the Qwen3-VL cookbook), passing video metadata so
   Qwen3-VL's `<t seconds>` prompt text and Qwen2.5-VL's `second_per_grid_ts` follow the frames' real times.
3. `model.generate` (greedy or sampled; `seed=` makes sampling reproducible).
4. `build_answer` (postprocess.py) splits thinking, parses boxes / points / time spans, converts boxes
   from the family's convention to pixels of the original image, using `image_grid_thw * patch_size` (the
   size the model actually saw) as the input size, and puts spans on the un-trimmed video's clock.

`stream` hands the same steps to a `ChatStream` (streaming.py). This module owns the model call; it knows
nothing about how pixels are decoded or how text is parsed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from ..bundled import bundled_model_at, bundled_path, is_bundled_name
from ..devices import DevicePlan, plan_device
from ..exceptions import ModelLoadError, UsageError
from ..loading_bars import without_loading_bars
from .answer import Answer, Timings, Usage
from .call_arguments import batch_conversations, check_limits, grounding_call, run_arguments
from .families import Family, ThinkingMode, check_sampling, detect_family, sampling_preset, thinking_mode
from .messages import Conversation, to_conversation
from .postprocess import build_answer, time_offset
from .streaming import ChatStream, FirstTokenClock

__all__ = ["VisionLanguageModel"]


@dataclass
class _Batch:
    """Processor inputs for one or more conversations, plus what post-processing needs."""

    inputs: Any  # BatchFeature on the model's device
    original_sizes: list[list[tuple[int, int]]]  # per conversation, per image: (width, height)
    input_sizes: list[list[tuple[int, int]]]
    has_video: list[bool]
    time_offsets: list[float]  # per conversation: seconds to add to the spans the model writes
    prompt_opened_think: bool
    preprocess_s: float


def _load_error(source: str, err: Exception, local_files_only: bool | None) -> ModelLoadError:
    offline = local_files_only or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if Path(source).expanduser().exists():
        fix = "Check that the folder holds config.json, *.safetensors weights and the processor/tokenizer files"
    elif offline:
        fix = (
            f"The hub is offline (HF_HUB_OFFLINE=1 or local_files_only=True) and {source!r} is not in the cache: "
            f"run `hf download {source}` on a connected machine (same HF_HOME), or pass a local folder"
        )
    else:
        fix = "Check the model id / folder path, your network, and for gated models `hf auth login`"
    return ModelLoadError(f"Could not load {source!r}: {type(err).__name__}: {err}", received=source, fix=fix)


class VisionLanguageModel:
    """A Qwen-VL checkpoint (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, Qwen3-VL-MoE) behind one typed API.

    Create it with `VisionLanguageModel.from_pretrained(...)`. Every call returns an `Answer` whose boxes
    and points are absolute pixels on the images the caller passed.
    """

    def __init__(
        self,
        *,
        model: Any,
        processor: Any,
        family: Family,
        plan: DevicePlan,
        model_id: str,
        thinking: ThinkingMode,
        generation: dict[str, Any] | None = None,
        media_policy: Any = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        video_pixels: dict[str, int] | None = None,
        video_fps: float | None = None,
    ) -> None:
        self.model = model
        self.processor = processor
        self.family = family
        self.plan = plan
        self.model_id = model_id
        self.thinking = thinking
        self.generation = dict(generation or {})
        self.media_policy = media_policy
        self.min_pixels = min_pixels
        self.max_pixels = max_pixels
        self.video_pixels = _check_video_pixels(video_pixels)
        self.video_fps = _check_video_fps(video_fps)
        self.patch_size = int(getattr(processor.image_processor, "patch_size", family.image_patch_size))
        tokenizer = processor.tokenizer
        tokenizer.padding_side = "left"  # batched generation continues every row from the same position
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
        im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
            eos_ids.add(im_end)
        self._eos_ids = sorted(eos_ids)
        pad = tokenizer.pad_token_id
        self._pad_id = pad if pad is not None else self._eos_ids[0]
        self._image_token_id = getattr(processor, "image_token_id", None)
        self._video_token_id = getattr(processor, "video_token_id", None)

    # ------------------------------------------------------------------------------------------------ load
    @classmethod
    def from_pretrained(
        cls,
        model_id_or_path: str | os.PathLike,
        *,
        device: str = "auto",
        dtype: str | torch.dtype = "auto",
        attention: str = "auto",
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        revision: str | None = None,
        local_files_only: bool | None = None,
        media_policy: Any = None,
        generation: dict[str, Any] | None = None,
        progress: bool = True,
        video_pixels: dict[str, int] | None = None,
        video_fps: float | None = None,
    ) -> "VisionLanguageModel":
        """Load a Qwen-VL checkpoint from the hub or a local folder.

        Args:
            model_id_or_path: a hub id ("Qwen/Qwen2.5-VL-3B-Instruct") or a folder saved by `save_pretrained`.
            device: "auto" (CUDA -> NPU -> MPS -> CPU), "cpu", "cuda:0", "npu:0", "mps".
            dtype: "auto" (bf16 where native, fp32 on CPU), "float32", "bfloat16", "float16".
            attention: "auto" ("sdpa"), "sdpa", "eager" or "flash_attention_2".
            min_pixels / max_pixels: default pixel budget per image (default: the checkpoint's processor).
            revision: a hub branch, tag or commit.
            local_files_only: never reach the hub (default: transformers' rule, which honours HF_HUB_OFFLINE).
            media_policy: `mmkit.media.MediaPolicy` bounding URL / file / pixel access (default: the safe one).
            generation: sampling defaults for every call (`temperature`, `top_p`, `top_k`, `do_sample`,
                `repetition_penalty`), over the family's recommended preset.
            progress: show transformers' loading bar.
            video_pixels: default frame pixel budget of videos (`{"min_pixels": ..., "max_pixels": ...}`;
                a video part's own keys win). Default: qwen-vl-utils' video rules; for a bundled VLM whose clips
                were trained at its image pixel budget (`mmkit.bundled`), that budget.
            video_fps: default rate at which video files and URLs are sampled, frames per second (a part's own
                `fps` or `nframes` wins; frame lists are already sampled). Default: qwen-vl-utils' 2.0; for a
                bundled VLM whose clips were all sampled at one rate (`mmkit.bundled`), that rate.

        Raises:
            ModelLoadError: not found / not cached offline / not a supported family / no safetensors.
            DeviceError / UsageError: the device, dtype or attention backend cannot be used.
        """
        from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

        source = str(model_id_or_path)
        _check_video_pixels(video_pixels)
        _check_video_fps(video_fps)
        bundled = bundled_model_at(source)
        if is_bundled_name(source):  # "mmkit/shapes-qwen2.5-vl": shipped with mmkit, never fetched
            source = str(bundled_path(source))
        check_sampling(generation or {}, "generation")
        plan = plan_device(device, dtype, attention)
        hub = {"revision": revision, "local_files_only": local_files_only}
        hub = {k: v for k, v in hub.items() if v is not None}
        try:
            config = AutoConfig.from_pretrained(source, **hub)
        except (OSError, ValueError) as err:
            raise _load_error(source, err, local_files_only) from err
        family = detect_family(config, source=source)
        _register_video_processors()
        try:
            with without_loading_bars(not progress):
                processor = AutoProcessor.from_pretrained(source, **hub)
                model = AutoModelForImageTextToText.from_pretrained(
                    source, config=config, dtype=plan.dtype, attn_implementation=plan.attn_implementation,
                    device_map={"": str(plan.device)}, use_safetensors=True, **hub,
                )
        except (OSError, ValueError, ImportError) as err:
            raise _load_error(source, err, local_files_only) from err
        model.eval()
        if video_pixels is None and bundled is not None and bundled.videos_at_image_pixels:
            video_pixels = _processor_pixels(processor)  # the frame size its clips were trained at
        if video_fps is None and bundled is not None:
            video_fps = bundled.video_fps  # the rate its clips were trained at
        template = getattr(processor, "chat_template", None) or getattr(processor.tokenizer, "chat_template", None)

        def render(messages: list, **kwargs: Any) -> str:
            return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs)

        mode = thinking_mode(template if isinstance(template, str) else None, render, config=config, name=source)
        return cls(
            model=model, processor=processor, family=family, plan=plan, model_id=source, thinking=mode,
            generation=generation, media_policy=media_policy, min_pixels=min_pixels, max_pixels=max_pixels,
            video_pixels=video_pixels, video_fps=video_fps,
        )

    def __repr__(self) -> str:
        kind = "thinking" if self.thinking.default_on else "instruct"
        if self.thinking.switchable:
            kind += ", switchable"
        return (
            f"VisionLanguageModel(model={self.model_id!r}, family={self.family.name!r} ({kind}), "
            f"device={self.plan.describe()!r})"
        )

    def close(self) -> None:
        """Drop the model and processor so their memory can be freed."""
        self.model = None
        self.processor = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def __enter__(self) -> "VisionLanguageModel":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --------------------------------------------------------------------------------------------- prepare
    def _pixel_defaults(self, min_pixels: int | None, max_pixels: int | None) -> dict[str, int]:
        own = _processor_pixels(self.processor)
        out = {
            "min_pixels": min_pixels or self.min_pixels or own.get("min_pixels"),
            "max_pixels": max_pixels or self.max_pixels or own.get("max_pixels"),
        }
        return {k: int(v) for k, v in out.items() if v}

    def _vision_messages(self, conv: Conversation, pixels: dict[str, int]) -> tuple[list, list[tuple[int, int]]]:
        """qwen-vl-utils-format messages with images loaded (for their original size) and pixel defaults."""
        from ..media import DEFAULT_MEDIA_POLICY, load_image

        policy = self.media_policy or DEFAULT_MEDIA_POLICY
        sizes: list[tuple[int, int]] = []
        messages = []
        for message in conv.messages:
            parts = []
            for part in message["content"]:
                if part["type"] == "image":
                    image = load_image(part["image"], policy=policy)
                    sizes.append(image.size)
                    part = {**pixels, **part, "image": image}
                elif part["type"] == "video":
                    file = isinstance(part["video"], (str, bytes, os.PathLike))  # frame lists are sampled already
                    if self.video_fps and file and "fps" not in part and "nframes" not in part:
                        part = {**part, "fps": self.video_fps}
                    part = {**self.video_pixels, **part}
                parts.append(part)
            messages.append({"role": message["role"], "content": parts})
        return messages, sizes

    def _prepare(self, convs: Sequence[Conversation], *, thinking: bool | None, min_pixels: int | None,
                 max_pixels: int | None) -> _Batch:
        from ..media import process_vision_info

        start = time.perf_counter()
        template_kwargs = self.thinking.template_kwargs(thinking)
        pixels = self._pixel_defaults(min_pixels, max_pixels)
        texts, images, videos, metadata, originals, offsets = [], [], [], [], [], []
        for conv in convs:
            texts.append(self.processor.apply_chat_template(
                conv.template_messages(), tokenize=False, add_generation_prompt=True, **template_kwargs))
            vision_messages, sizes = self._vision_messages(conv, pixels)
            originals.append(sizes)
            conv_images, conv_videos, _ = process_vision_info(
                vision_messages, image_patch_size=self.patch_size, return_video_kwargs=True,
                return_video_metadata=True, **self._media_kwargs())
            images.extend(conv_images or [])
            for clip, meta in conv_videos or []:
                videos.append(clip)
                metadata.append(meta)
            offsets.append(time_offset(self.family, [meta for _, meta in conv_videos or []]))
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt", "do_resize": False}
        if images:
            kwargs["images"] = images
        if videos:
            kwargs.update(videos=videos, video_metadata=metadata, do_sample_frames=False)
        inputs = self.processor(**kwargs).to(self.plan.device)
        return _Batch(
            inputs=inputs, original_sizes=originals, input_sizes=self._input_sizes(inputs, originals),
            has_video=[bool(c.videos) for c in convs], time_offsets=offsets,
            prompt_opened_think=texts[0].rstrip().endswith("<think>"), preprocess_s=time.perf_counter() - start,
        )

    def _media_kwargs(self) -> dict[str, Any]:
        return {"policy": self.media_policy} if self.media_policy is not None else {}

    def _input_sizes(self, inputs: Any, originals: list[list[tuple[int, int]]]) -> list[list[tuple[int, int]]]:
        grids = inputs.get("image_grid_thw")
        flat = [] if grids is None else [(int(w) * self.patch_size, int(h) * self.patch_size) for _, h, w in grids.tolist()]
        out, i = [], 0
        for sizes in originals:
            out.append(flat[i : i + len(sizes)])
            i += len(sizes)
        return out

    # -------------------------------------------------------------------------------------------- generate
    def _generate_kwargs(self, *, max_new_tokens: int, thinking_on: bool, call: dict[str, Any]) -> dict[str, Any]:
        check_sampling(call, "chat")
        merged = {**sampling_preset(self.family, thinking_on), **self.generation, **{k: v for k, v in call.items() if v is not None}}
        if merged.get("temperature") == 0:  # OpenAI convention: temperature 0 means greedy
            merged.pop("temperature")
            merged["do_sample"] = False
        if "do_sample" not in merged:
            merged["do_sample"] = bool(getattr(self.model.generation_config, "do_sample", False))
        if not merged["do_sample"]:
            for key in ("temperature", "top_p", "top_k", "min_p"):
                merged[key] = None  # silence transformers' "sampling flag set but greedy" warnings
        return {"max_new_tokens": max_new_tokens, "eos_token_id": self._eos_ids, "pad_token_id": self._pad_id, **merged}

    def _thinking_on(self, thinking: bool | None) -> bool:
        return self.thinking.default_on if thinking is None else thinking

    def _finish(self, batch: _Batch, sequences: torch.Tensor, generate_s: float, first_token_s: float | None,
                *, bare_lists: bool = False) -> list[Answer]:
        start = time.perf_counter()
        input_ids = batch.inputs["input_ids"]
        new = sequences[:, input_ids.shape[1]:]
        mask = batch.inputs["attention_mask"]
        answers = []
        for row in range(new.shape[0]):
            ids = new[row].tolist()
            stop_at = next((i for i, t in enumerate(ids) if t in self._eos_ids), None)
            kept = ids if stop_at is None else ids[: stop_at + 1]
            text = self.processor.tokenizer.decode(kept, skip_special_tokens=True)
            row_ids = input_ids[row][mask[row].bool()]
            usage = Usage(
                prompt_tokens=int(row_ids.numel()), completion_tokens=len(kept),
                image_tokens=_count(row_ids, self._image_token_id), video_tokens=_count(row_ids, self._video_token_id),
            )
            timings = Timings(preprocess_s=batch.preprocess_s, generate_s=generate_s, first_token_s=first_token_s)
            answers.append(build_answer(
                text, family=self.family, prompt_opened_think=batch.prompt_opened_think,
                original_sizes=batch.original_sizes[row], input_sizes=batch.input_sizes[row], bare_lists=bare_lists,
                has_video=batch.has_video[row], time_offset_s=batch.time_offsets[row],
                finish_reason="stop" if stop_at is not None else "length", usage=usage, timings=timings,
                model=self.model_id,
            ))
        post = time.perf_counter() - start
        return [a.model_copy(update={"timings": a.timings.model_copy(update={"postprocess_s": post})}) for a in answers]

    def _start(self, convs: Sequence[Conversation], *, max_new_tokens: int, thinking: bool | None,
               seed: int | None, min_pixels: int | None, max_pixels: int | None,
               sampling: dict[str, Any]) -> tuple[_Batch, dict[str, Any]]:
        """Check a call's arguments, build its inputs and `generate` kwargs (shared by `_run` and `stream`)."""
        check_limits(max_new_tokens, seed)
        batch = self._prepare(convs, thinking=thinking, min_pixels=min_pixels, max_pixels=max_pixels)
        thinking_on = self._thinking_on(thinking)
        kwargs = self._generate_kwargs(max_new_tokens=max_new_tokens, thinking_on=thinking_on, call=sampling)
        return batch, kwargs

    def _generate(self, batch: _Batch, kwargs: dict[str, Any], seed: int | None, streamer: Any) -> torch.Tensor:
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            return self.model.generate(**batch.inputs, **kwargs, streamer=streamer)

    def _run(self, convs: Sequence[Conversation], *, bare_lists: bool = False, **call: Any) -> list[Answer]:
        batch, kwargs = self._start(convs, **call)
        clock = FirstTokenClock() if len(convs) == 1 else None
        start = time.perf_counter()
        sequences = self._generate(batch, kwargs, call["seed"], clock)
        generate_s = time.perf_counter() - start
        first = clock.first_token_s(start) if clock else None
        return self._finish(batch, sequences, generate_s, first, bare_lists=bare_lists)

    # --------------------------------------------------------------------------------------------- public
    def chat(
        self,
        messages_or_text: Any,
        *,
        images: Any = None,
        videos: Any = None,
        max_new_tokens: int = 512,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        do_sample: bool | None = None,
        seed: int | None = None,
        thinking: bool | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
    ) -> Answer:
        """Ask the model one question (or continue a multi-turn conversation) and return a parsed `Answer`.

        Args:
            messages_or_text: a string, or a list of messages (mmkit/HF, qwen-vl-utils or OpenAI-style parts;
                see `mmkit.understand.messages`). The last message must be the user's.
            images: image(s) placed before the text of the last user message (path, URL, PIL, array, bytes).
            videos: video(s) (path / URL / list of frames) placed after those images.
            max_new_tokens: generation budget; hitting it gives `finish_reason="length"`, `truncated=True`.
            temperature / top_p / top_k / do_sample: override the sampling preset for this call
                (temperature=0 means greedy).
            seed: seed torch's generator before generating, for reproducible sampling.
            thinking: True / False to switch thinking where the chat template allows it; None: the default.
            min_pixels / max_pixels: pixel budget per image for this call.

        Returns:
            `Answer` with text, thinking, boxes/points in original-image pixels, spans, usage and timings.
        """
        conv = to_conversation(messages_or_text, images=images, videos=videos)
        sampling = {"temperature": temperature, "top_p": top_p, "top_k": top_k, "do_sample": do_sample}
        return self._run([conv], max_new_tokens=max_new_tokens, thinking=thinking, seed=seed,
                         min_pixels=min_pixels, max_pixels=max_pixels, sampling=sampling)[0]

    def chat_batch(self, conversations: Sequence[Any], **kwargs: Any) -> list[Answer]:
        """Answer several conversations in one left-padded batch; same keyword arguments as `chat`.

        `images=` / `videos=` are not accepted here: put media inside each conversation's messages.
        Greedy output equals answering the conversations one by one.
        """
        convs, run = batch_conversations(conversations, kwargs)
        return self._run(convs, **run)

    def stream(self, messages_or_text: Any, **kwargs: Any) -> "ChatStream":
        """Like `chat`, but returns a `ChatStream`: iterate it for text deltas; `.answer` once exhausted."""
        images, videos = kwargs.pop("images", None), kwargs.pop("videos", None)
        conv = to_conversation(messages_or_text, images=images, videos=videos)
        call = run_arguments(kwargs)
        batch, generate_kwargs = self._start([conv], **call)
        return ChatStream(
            run=lambda streamer: self._generate(batch, generate_kwargs, call["seed"], streamer),
            finish=lambda sequences, generate_s, first_s: self._finish(batch, sequences, generate_s, first_s)[0],
            tokenizer=self.processor.tokenizer,
        )

    def ground(self, image: Any, query: str | Sequence[str], **kwargs: Any) -> Answer:
        """Find every instance of `query` in `image` with the family's grounding prompt.

        Args:
            image: one image (path, URL, PIL, array, bytes).
            query: what to find: a description or a list of category names.
            **kwargs: as for `chat`; sampling defaults to greedy unless `do_sample` / `temperature` is given.

        Returns:
            `Answer` whose `boxes` are in pixels of `image`.
        """
        return self._ask(self.family.ground_prompt, image, query, kwargs)

    def point(self, image: Any, query: str | Sequence[str], **kwargs: Any) -> Answer:
        """Point at every instance of `query` in `image`; `Answer.points` in pixels of `image`."""
        return self._ask(self.family.point_prompt, image, query, kwargs)

    def _ask(self, template: str, image: Any, query: Any, kwargs: dict[str, Any]) -> Answer:
        conv, run = grounding_call(template, image, query, kwargs)
        # The prompt asks for coordinates, so a bare "[x1, y1, x2, y2]" in the answer is one.
        return self._run([conv], bare_lists=True, **run)[0]


def _count(ids: torch.Tensor, token_id: int | None) -> int:
    return 0 if token_id is None else int((ids == token_id).sum())


def _register_video_processors() -> None:
    try:
        from .video_processors import register_video_processors
    except ImportError:  # the module is optional: with a working torchvision the upstream classes serve
        return
    register_video_processors()


def _processor_pixels(processor: Any) -> dict[str, int]:
    """The checkpoint's own image pixel budget (its image processor's `size`)."""
    size = getattr(processor.image_processor, "size", None) or {}
    out = {"min_pixels": size.get("shortest_edge"), "max_pixels": size.get("longest_edge")}
    return {k: int(v) for k, v in out.items() if v}


def _check_video_fps(video_fps: float | None) -> float | None:
    if video_fps is not None and (isinstance(video_fps, bool) or not isinstance(video_fps, (int, float))
                                  or not video_fps > 0):
        raise UsageError("video_fps takes a positive number of frames per second", received=video_fps,
                         fix="e.g. video_fps=4.0, or None for qwen-vl-utils' 2.0")
    return None if video_fps is None else float(video_fps)


def _check_video_pixels(video_pixels: dict[str, int] | None) -> dict[str, int]:
    if not video_pixels:
        return {}
    unknown = set(video_pixels) - {"min_pixels", "max_pixels", "total_pixels"}
    if unknown or not all(isinstance(v, int) and v > 0 for v in video_pixels.values()):
        raise UsageError("video_pixels takes positive integers for min_pixels / max_pixels / total_pixels",
                         received=video_pixels, fix='e.g. video_pixels={"min_pixels": 10000, "max_pixels": 12544}')
    return dict(video_pixels)
