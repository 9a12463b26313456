"""`RemoteVisionLanguageModel`: a Qwen-VL served behind an OpenAI-compatible `/v1/chat/completions`.

Same call surface and the same `Answer` as `mmkit.understand.VisionLanguageModel` (`chat`, `stream`,
`chat_batch`, `ground`, `point`), for a model served by vLLM (`vllm serve Qwen/Qwen2.5-VL-7B-Instruct`),
SGLang or LMDeploy. The call path, in order:

1. `to_conversation` checks the input once (every message format the local model accepts).
2. Images are loaded here with `mmkit.media.load_image` (the `MediaPolicy` applies; the size is the
   *original* size boxes are reported in), smart-resized with the qwen-vl-utils rule (the family's
   factor, `min_pixels` / `max_pixels`) exactly as the local model does, and sent as PNG data URLs in
   OpenAI `image_url` parts. Why resize before sending: the server's processor applies the same
   `smart_resize` rule, and on an image whose sides are already multiples of the factor and whose pixel
   count lies inside the server's [min_pixels, max_pixels] that rule changes nothing, so the size sent IS
   the size the model saw: Qwen2.5-VL's pixel coordinates (on the resized input) convert exactly. This
   holds as long as the `min_pixels` / `max_pixels` passed here lie inside the server's own bounds
   (defaults: 4 and 16384 tokens per image, the official checkpoints' processor config); Qwen3-VL's 0-1000
   coordinates do not depend on it.
3. Videos are read here too (the policy applies; the server never fetches anything for us) and sent as
   `{"type": "video_url", "video_url": {"url": "data:video/mp4;base64,..."}}`, which vLLM and SGLang
   accept for Qwen2.5-VL / Qwen3-VL. A list of frames is sent as ONE `video_url` in vLLM's multi-frame form
   `data:video/jpeg;base64,<frame1>,<frame2>,...` (vLLM only; other engines need a file). The server
   samples frames with its own settings (vLLM: `--media-io-kwargs`, `--mm-processor-kwargs`), so the
   per-video knobs (`fps`, `nframes`, `video_start`, ...) are refused here rather than silently ignored.
4. Sampling: only what the caller sets is sent (`max_new_tokens` -> `max_tokens`, `temperature`, `top_p`,
   `top_k`, `seed`, `repetition_penalty`, `min_p`); the server's defaults (vLLM: the checkpoint's
   generation_config) fill the rest. `do_sample=False` sends `temperature: 0` (greedy). `thinking=` is sent
   as `chat_template_kwargs: {"enable_thinking": ...}` (vLLM, SGLang).
5. The answer goes through the same `build_answer` as a local call; reading the server's reply (and the
   streamed deltas) is `openai_replies.py`.

The HTTP rules (TLS always verified, bounded bytes and time, private addresses refused unless allowed, no
proxies, no redirects) live in `openai_http.py`. This module knows nothing about sockets.
"""

from __future__ import annotations

import base64
import io
import mimetypes
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Sequence

from mmkit.exceptions import ModelOutputError, UsageError
from mmkit.media import DEFAULT_MEDIA_POLICY, MediaPolicy, fetch_image, load_image, read_source
from mmkit.understand.answer import Answer, Timings
from mmkit.understand.call_arguments import batch_conversations, check_limits, grounding_call, run_arguments
from mmkit.understand.families import SUPPORTED_MODEL_TYPES, Family, check_sampling, family_for_model_type
from mmkit.understand.messages import Conversation, to_conversation
from mmkit.understand.postprocess import build_answer

from .openai_http import ServerClient
from .openai_replies import RemoteChatStream, read_completion, usage_from

__all__ = ["RemoteVisionLanguageModel", "RemoteChatStream", "API_KEY_ENV_VARS"]

API_KEY_ENV_VARS: tuple[str, ...] = ("MMKIT_OPENAI_API_KEY", "OPENAI_API_KEY")
"""Environment variables read, in order, when `connect(api_key=None)`."""

_WIRE_SAMPLING = ("temperature", "top_p", "top_k", "repetition_penalty", "min_p")


@dataclass(frozen=True)
class _Request:
    """One chat-completions body plus what post-processing needs."""

    body: dict[str, Any]
    original_sizes: list[tuple[int, int]]
    input_sizes: list[tuple[int, int]]
    has_video: bool
    preprocess_s: float


class RemoteVisionLanguageModel:
    """A Qwen-VL model served behind an OpenAI-compatible API, with `VisionLanguageModel`'s methods.

    Create it with `RemoteVisionLanguageModel.connect(...)`. Every call returns an `Answer` whose boxes and
    points are absolute pixels on the images the caller passed.
    """

    def __init__(self, *, client: ServerClient, model: str, family: Family, min_pixels: int | None = None,
                 max_pixels: int | None = None, media_policy: MediaPolicy | None = None,
                 generation: dict[str, Any] | None = None, max_concurrency: int = 8) -> None:
        self.client = client
        self.model_id = model
        self.family = family
        self.min_pixels = min_pixels
        self.max_pixels = max_pixels
        self.media_policy = media_policy or DEFAULT_MEDIA_POLICY
        self.generation = dict(generation or {})
        self.max_concurrency = max_concurrency

    # ------------------------------------------------------------------------------------------ connect
    @classmethod
    def connect(
        cls,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        family: str | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        timeout_s: float = 300.0,
        max_response_bytes: int = 16 * 1024 * 1024,
        allow_private_addresses: bool = False,
        ca_file: str | os.PathLike | None = None,
        media_policy: MediaPolicy | None = None,
        generation: dict[str, Any] | None = None,
        max_concurrency: int = 8,
    ) -> "RemoteVisionLanguageModel":
        """Point at a served model. Nothing is sent unless `family` must be read from `/v1/models`.

        Args:
            base_url: the server root or its `/v1` prefix ("http://localhost:8000/v1").
            model: the served model name (`--served-model-name`, else the path given to `vllm serve`).
            api_key: sent as a Bearer token; default: `$MMKIT_OPENAI_API_KEY`, then `$OPENAI_API_KEY`
                (only set these for a server you trust with that key).
            family: "qwen2_5_vl", "qwen2_vl", "qwen3_vl" or "qwen3_vl_moe": decides the coordinate convention.
                Never guessed from the name; when omitted, the `model_type` (or `family`) field of the model's
                `/v1/models` entry is used if the server reports one (vLLM and SGLang do not: pass it).
            min_pixels / max_pixels: the per-image pixel budget configured on the server (vLLM:
                `--mm-processor-kwargs '{"min_pixels": ..., "max_pixels": ...}'`); default: the official
                checkpoints' (4 and 16384 tokens of (patch*2)^2 pixels). Images are resized to it before sending.
            timeout_s: one deadline per request (connect, send, generate, read; streams too).
            max_response_bytes: the largest answer accepted.
            allow_private_addresses: allow loopback / private / link-local servers. Off by default; turn it
                on for a server you run yourself on localhost or your LAN (the usual vLLM setup).
            ca_file: PEM bundle of an extra CA for https servers; TLS verification is always on.
            media_policy: `MediaPolicy` bounding how images and videos are read (default: the safe one).
            generation: sampling defaults for every call (`temperature`, `top_p`, `top_k`, `do_sample`,
                `repetition_penalty`, `min_p`).
            max_concurrency: requests `chat_batch` keeps in flight at once (the server batches them).

        Raises:
            UsageError: a bad argument, or no family given and none reported by the server.
            UnsafeSourceError: the host is private / loopback and `allow_private_addresses` is False.
            ModelOutputError: `/v1/models` could not be read (only when `family` is omitted).
        """
        if not isinstance(model, str) or not model.strip():
            raise UsageError("model must be the served model name", received=model,
                             fix='Pass e.g. model="Qwen/Qwen2.5-VL-7B-Instruct" (GET /v1/models lists them)')
        check_sampling(generation or {}, "generation")
        for name, value in (("min_pixels", min_pixels), ("max_pixels", max_pixels)):
            _check_positive_int(name, value, optional=True)
        _check_positive_int("max_concurrency", max_concurrency)
        if media_policy is not None and not isinstance(media_policy, MediaPolicy):
            raise UsageError("media_policy must be a mmkit.media.MediaPolicy", received=media_policy)
        key = api_key if api_key is not None else next(
            (os.environ[v] for v in API_KEY_ENV_VARS if os.environ.get(v)), None)
        client = ServerClient(
            base_url=base_url, timeout_s=timeout_s, max_response_bytes=max_response_bytes,
            allow_private_addresses=bool(allow_private_addresses), api_key=key,
            ca_file=os.fspath(ca_file) if ca_file is not None else None,
        )
        client.check_address()  # refuse a private server now, with the message that says how to allow it
        resolved = _family_from_argument(family) if family is not None else _family_from_server(client, model)
        return cls(client=client, model=model, family=resolved, min_pixels=min_pixels, max_pixels=max_pixels,
                   media_policy=media_policy, generation=generation, max_concurrency=max_concurrency)

    def __repr__(self) -> str:
        return (f"RemoteVisionLanguageModel(model={self.model_id!r}, family={self.family.name!r}, "
                f"base_url={self.client.base_url!r})")

    def close(self) -> None:
        """Nothing to free: each request opens and closes its own connection."""

    def __enter__(self) -> "RemoteVisionLanguageModel":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------------- public
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
        """Ask the served model one question (or continue a conversation) and return a parsed `Answer`.

        Args: as `VisionLanguageModel.chat`. `max_new_tokens` is sent as `max_tokens`; `seed` as `seed`
            (reproducible where the engine supports it); `thinking` as `chat_template_kwargs.enable_thinking`;
            `min_pixels` / `max_pixels` resize the images before sending (keep them inside the server's bounds).

        Returns:
            `Answer` with text, thinking, boxes/points in original-image pixels, spans, usage and timings.
        """
        conv = to_conversation(messages_or_text, images=images, videos=videos)
        sampling = {"temperature": temperature, "top_p": top_p, "top_k": top_k, "do_sample": do_sample}
        return self._run(conv, max_new_tokens=max_new_tokens, thinking=thinking, seed=seed,
                         min_pixels=min_pixels, max_pixels=max_pixels, sampling=sampling)

    def chat_batch(self, conversations: Sequence[Any], **kwargs: Any) -> list[Answer]:
        """Answer several conversations, up to `max_concurrency` requests in flight; same kwargs as `chat`.

        `images=` / `videos=` are not accepted here: put media inside each conversation's messages. The
        answers come back in the order of `conversations`; the first failure is raised.
        """
        convs, run = batch_conversations(conversations, kwargs)
        workers = min(self.max_concurrency, len(convs))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mmkit-remote") as pool:
            return list(pool.map(lambda conv: self._run(conv, **run), convs))

    def stream(self, messages_or_text: Any, **kwargs: Any) -> "RemoteChatStream":
        """Like `chat`, but returns a `RemoteChatStream`: iterate it for text deltas; `.answer` once exhausted.

        The request is sent (`stream: true`, usage requested) when iteration starts.
        """
        images, videos = kwargs.pop("images", None), kwargs.pop("videos", None)
        conv = to_conversation(messages_or_text, images=images, videos=videos)
        run = run_arguments(kwargs)
        request = self._request(conv, stream=True, **run)
        start = time.perf_counter()
        return RemoteChatStream(
            self.client.stream("/chat/completions", request.body),
            finish=lambda raw, reason, usage, first_s: self._answer(
                request, raw, reason, usage, time.perf_counter() - start, first_s),
            start=start,
        )

    def ground(self, image: Any, query: str | Sequence[str], **kwargs: Any) -> Answer:
        """Find every instance of `query` in `image` with the family's grounding prompt (greedy by default).

        Args:
            image: one image (path, URL, PIL, array, bytes).
            query: a description or a list of category names.
            **kwargs: as for `chat`.

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
        return self._run(conv, bare_lists=True, **run)

    # -------------------------------------------------------------------------------------------- request
    def _run(self, conv: Conversation, *, bare_lists: bool = False, **run: Any) -> Answer:
        request = self._request(conv, stream=False, **run)
        start = time.perf_counter()
        data = self.client.post("/chat/completions", request.body)
        generate_s = time.perf_counter() - start
        raw, reason, usage = read_completion(data)
        return self._answer(request, raw, reason, usage, generate_s, None, bare_lists=bare_lists)

    def _request(self, conv: Conversation, *, max_new_tokens: int, thinking: bool | None, seed: int | None,
                 min_pixels: int | None, max_pixels: int | None, sampling: dict[str, Any],
                 stream: bool) -> _Request:
        start = time.perf_counter()
        body: dict[str, Any] = {"model": self.model_id, **self._sampling_body(max_new_tokens, seed, sampling)}
        if thinking is not None:
            if not isinstance(thinking, bool):
                raise UsageError("thinking must be True, False or None", received=thinking, fix="Pass a bool or None")
            body["chat_template_kwargs"] = {"enable_thinking": thinking}
        _check_positive_int("min_pixels", min_pixels, optional=True)
        _check_positive_int("max_pixels", max_pixels, optional=True)
        pixels = {"min_pixels": min_pixels or self.min_pixels, "max_pixels": max_pixels or self.max_pixels}
        originals: list[tuple[int, int]] = []
        inputs: list[tuple[int, int]] = []
        messages = [self._message(m, {k: v for k, v in pixels.items() if v}, originals, inputs) for m in conv.messages]
        body["messages"] = messages
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        return _Request(body=body, original_sizes=originals, input_sizes=inputs, has_video=bool(conv.videos),
                        preprocess_s=time.perf_counter() - start)

    def _sampling_body(self, max_new_tokens: int, seed: int | None, call: dict[str, Any]) -> dict[str, Any]:
        check_limits(max_new_tokens, seed)
        check_sampling(call, "chat")
        merged = {**self.generation, **{k: v for k, v in call.items() if v is not None}}
        body: dict[str, Any] = {"max_tokens": max_new_tokens}
        if merged.get("do_sample") is False or merged.get("temperature") == 0:
            body["temperature"] = 0  # greedy, in OpenAI's terms
        else:
            body.update({k: merged[k] for k in _WIRE_SAMPLING if merged.get(k) is not None})
        if "repetition_penalty" in merged and "repetition_penalty" not in body:
            body["repetition_penalty"] = merged["repetition_penalty"]  # also applies to greedy decoding
        if seed is not None:
            body["seed"] = seed
        return body

    def _message(self, message: dict[str, Any], pixels: dict[str, int], originals: list, inputs: list) -> dict[str, Any]:
        parts = message["content"]
        if all(p["type"] == "text" for p in parts):
            return {"role": message["role"], "content": "".join(p["text"] for p in parts)}
        out = []
        for part in parts:
            if part["type"] == "text":
                out.append({"type": "text", "text": part["text"]})
            elif part["type"] == "image":
                out.append(self._image_part(part, pixels, originals, inputs))
            else:
                out.append(self._video_part(part))
        return {"role": message["role"], "content": out}

    def _image_part(self, part: dict[str, Any], pixels: dict[str, int], originals: list, inputs: list) -> dict[str, Any]:
        image = load_image(part["image"], policy=self.media_policy)
        originals.append(image.size)
        resized = fetch_image({**pixels, **part, "image": image}, self.family.image_patch_size, policy=self.media_policy)
        inputs.append(resized.size)
        return {"type": "image_url", "image_url": {"url": _png_data_url(resized)}}

    def _video_part(self, part: dict[str, Any]) -> dict[str, Any]:
        knobs = sorted(set(part) - {"type", "video"})
        if knobs:
            raise UsageError(
                f"Per-video settings {knobs} cannot be sent to an OpenAI-compatible server", received=knobs,
                fix="Set frame sampling on the server (vLLM: --media-io-kwargs / --mm-processor-kwargs), or trim "
                    "the video yourself and pass the file or a list of frames")
        source = part["video"]
        if isinstance(source, list):  # vLLM's multi-frame data URL: JPEG frames, comma separated
            frames = [load_image(f, policy=self.media_policy) for f in source]
            url = "data:video/jpeg;base64," + ",".join(_b64(_encode(f, "JPEG")) for f in frames)
        else:
            fetched = read_source(source, policy=self.media_policy)
            with fetched.open() as handle:
                data = handle.read()
            mime = mimetypes.guess_type(fetched.name)[0] if fetched.path is not None else None
            url = f"data:{mime if mime and mime.startswith('video/') else 'video/mp4'};base64,{_b64(data)}"
        return {"type": "video_url", "video_url": {"url": url}}

    # --------------------------------------------------------------------------------------------- answer
    def _answer(self, request: _Request, raw: str, reason: str | None, usage: dict[str, Any], generate_s: float,
                first_token_s: float | None, *, bare_lists: bool = False) -> Answer:
        start = time.perf_counter()
        answer = build_answer(
            raw, family=self.family, original_sizes=request.original_sizes, input_sizes=request.input_sizes,
            bare_lists=bare_lists, has_video=request.has_video, finish_reason="length" if reason == "length" else "stop",
            usage=usage_from(usage), model=self.model_id,
        )
        timings = Timings(preprocess_s=request.preprocess_s, generate_s=generate_s, first_token_s=first_token_s,
                          postprocess_s=time.perf_counter() - start)
        return answer.model_copy(update={"timings": timings})


# ------------------------------------------------------------------------------------------------ helpers
def _family_from_argument(family: Any) -> Family:
    if family not in SUPPORTED_MODEL_TYPES:
        raise UsageError("family must name a supported Qwen-VL family", received=family,
                         fix=f"Pass family= one of {list(SUPPORTED_MODEL_TYPES)} (the checkpoint's config.json model_type)")
    return family_for_model_type(family)


def _family_from_server(client: ServerClient, model: str) -> Family:
    data = client.get("/models")
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ModelOutputError("The server's /models answer has no 'data' list", received=data,
                               fix="Pass family= to connect(...)")
    entry = next((e for e in entries if isinstance(e, dict) and e.get("id") == model), None)
    if entry is None:
        served = [e.get("id") for e in entries if isinstance(e, dict)]
        raise UsageError(f"The server does not serve a model named {model!r}", received=served,
                         fix="Pass one of the served names as model=")
    reported = entry.get("model_type") or entry.get("family")
    if reported is None:
        raise UsageError(
            "The server does not report the model's family, and mmkit does not guess it from the name",
            received=entry, fix=f"Pass family= one of {list(SUPPORTED_MODEL_TYPES)} (the checkpoint's config.json "
                                "model_type), e.g. family=\"qwen2_5_vl\"")
    return _family_from_argument(reported)


def _check_positive_int(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UsageError(f"{name} must be a positive int", received=value, fix=f"Pass {name}=<positive int>")


def _encode(image: Any, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _png_data_url(image: Any) -> str:
    return "data:image/png;base64," + _b64(_encode(image, "PNG"))
