"""The main job: one scripted session that exercises understanding and generation end to end.

Until the trained shapes-world models are bundled, it runs on the tiny built-in checkpoints (random
weights, real architectures): every step runs through the same public API the full-size models use, but
the pictures are noise and the answers are gibberish. The output says so.

Writes into the output folder: the generated image (with its parameters in PNG text chunks), the image
with the model's boxes drawn, `trace.json` (every step with its parameters and timings) and `README.txt`.
Knows only the public API.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_write_json, atomic_write_text

__all__ = ["run_demo"]

_BANNER = (
    "mmkit demo on TINY BUILT-IN CHECKPOINTS (random weights, real Qwen2.5-VL / Qwen3-VL / SD 1.5\n"
    "architectures): the whole pipeline runs, but images are noise and answers are gibberish.\n"
    "The trained shapes-world models are not bundled yet."
)


def _moving_square_video(frames: int = 8, size: int = 64) -> np.ndarray:
    video = np.full((frames, size, size, 3), 255, dtype=np.uint8)
    for t in range(frames):
        x = 4 + t * (size - 20) // max(frames - 1, 1)
        video[t, 24:40, x : x + 16] = (220, 30, 30)
    return video


def _quiet_library_logs() -> None:
    """The demo prints its own steps; library progress bars and info logs would bury them."""
    import diffusers
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()


class _Trace:
    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []

    def step(self, name: str, **fields: Any) -> None:
        self.steps.append({"step": name, **fields})
        shown = ", ".join(f"{k}={v}" for k, v in fields.items() if k not in ("params",))
        print(f"- {name}: {shown}")


def run_demo(output_dir: str | Path = "outputs/demo") -> dict[str, Any]:
    """Run the scripted session and write its outputs into `output_dir`. Returns the trace."""
    import torch

    from .generate.generator import ImageGenerator
    from .generate.result import read_generation_params
    from .testing.tiny_diffusion import tiny_diffusion_checkpoint
    from .testing.tiny_qwen import tiny_checkpoint
    from .understand.draw import draw_grounding
    from .understand.model import VisionLanguageModel

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    _quiet_library_logs()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(_BANNER)
    trace = _Trace()
    started = time.perf_counter()

    # 1. Generate an image and save it with its parameters embedded.
    t0 = time.perf_counter()
    generator = ImageGenerator.from_pretrained(tiny_diffusion_checkpoint("sd15"), progress=False)
    trace.step("load generator", model=generator.model_id, family=generator.family, seconds=round(time.perf_counter() - t0, 3))
    result = generator.text_to_image(
        "a red circle on the left", negative_prompt="blurry", steps=8, width=64, height=64, seed=7, scheduler="euler"
    )
    image_path = result.save(out, stem="generated")[0]
    trace.step("text_to_image", image=image_path.name, seeds=list(result.seeds), params=result.params.model_dump(mode="json"))

    # 2. Regenerate from the PNG's own metadata: the pixels must match exactly.
    again = generator.regenerate(image_path)
    identical = bool(np.array_equal(np.asarray(again.images[0]), np.asarray(result.images[0])))
    trace.step("regenerate from metadata", identical=identical, params_read=read_generation_params(image_path).prompt)

    # 3. Ask Qwen2.5-VL about the image, then ground an object (boxes in original-image pixels).
    t0 = time.perf_counter()
    vlm = VisionLanguageModel.from_pretrained(tiny_checkpoint("qwen2_5_vl"))
    trace.step("load Qwen2.5-VL", family=vlm.family.name, seconds=round(time.perf_counter() - t0, 3))
    answer = vlm.chat("Describe this image.", images=[image_path], max_new_tokens=16, seed=0)
    trace.step("describe", text=answer.text[:60], usage=answer.usage.model_dump(), seconds=round(answer.timings.total_s, 3))
    grounded = vlm.ground(image_path, "the red circle", max_new_tokens=24, seed=0)
    drawn = draw_grounding(result.images[0], boxes=grounded.boxes, points=grounded.points)
    drawn.save(out / "grounded.png")
    trace.step("ground", boxes=[b.as_tuple() for b in grounded.boxes], raw=grounded.raw_text[:60])

    # 4. Qwen3-VL Thinking: the answer comes back split from its reasoning.
    thinker = VisionLanguageModel.from_pretrained(tiny_checkpoint("qwen3_vl_thinking"))
    thought = thinker.chat("How many shapes are there?", images=[image_path], max_new_tokens=16, seed=0)
    trace.step("think", thinking=(thought.thinking or "")[:40], text=thought.text[:40], finish=thought.finish_reason)

    # 5. A question about a short video: frames are sampled with their real timestamps.
    clip = _moving_square_video()
    video_answer = thinker.chat(
        [{"role": "user", "content": [{"type": "video", "video": list(clip), "fps": 4.0}, {"type": "text", "text": "When does the square reach the right?"}]}],
        max_new_tokens=16,
        seed=0,
    )
    trace.step("video question", video_tokens=video_answer.usage.video_tokens, text=video_answer.text[:40])

    total = round(time.perf_counter() - started, 2)
    record = {"note": _BANNER, "seconds": total, "steps": trace.steps}
    atomic_write_json(out / "trace.json", record)
    atomic_write_text(out / "README.txt", _BANNER + f"\n\nFinished in {total} s. See trace.json.\n")
    print(f"done in {total} s -> {out.resolve()}")
    return record


if __name__ == "__main__":
    run_demo()
