"""Understanding with mmkit: chat, grounding, thinking, video, streaming and batching.

Runs offline on the tiny built-in checkpoints (random weights: the answers are gibberish, the plumbing is
real). To run the same code on a real model, swap the two `from_pretrained` sources for the commented ones.

    python examples/understand_quickstart.py
"""
import numpy as np
from PIL import Image, ImageDraw

import mmkit
from mmkit.testing import tiny_checkpoint

# A photo-like input: a red disc on a 640x480 canvas. Any path, URL, data: URL, bytes, PIL or numpy works.
photo = Image.new("RGB", (640, 480), "white")
ImageDraw.Draw(photo).ellipse((380, 140, 560, 320), fill=(220, 30, 30))

vlm = mmkit.VisionLanguageModel.from_pretrained(tiny_checkpoint("qwen2_5_vl"))
# vlm = mmkit.VisionLanguageModel.from_pretrained("Qwen/Qwen2.5-VL-7B-Instruct")      # the real one
print(vlm)

# 1. Chat about an image; the answer is typed.
answer = vlm.chat("Describe this image.", images=[photo], max_new_tokens=16, seed=0)
print("text:", answer.text[:60], "| usage:", answer.usage, "| took", round(answer.timings.total_s, 3), "s")

# 2. Grounding: boxes in pixels of the ORIGINAL 640x480 photo, whatever convention the family emits.
grounded = vlm.ground(photo, "the red disc", max_new_tokens=32)
print("boxes:", [b.as_tuple() for b in grounded.boxes])
# The conversion on its own, for output you already have (Qwen2.5-VL: pixels on the resized input):
from mmkit.understand import boxes_from_text

result = boxes_from_text(
    '```json\n[{"bbox_2d": [266, 98, 392, 224], "label": "red disc"}]\n```',
    family="qwen2_5_vl", original_sizes=[(640, 480)], input_sizes=[(448, 336)],
)
print("converted:", [b.as_tuple() for b in result.boxes])  # -> (380, 140, 560, 320)
mmkit.draw_grounding(photo, boxes=result.boxes).save("grounded_example.png")

# 3. Qwen3-VL Thinking: reasoning split from the answer.
thinker = mmkit.VisionLanguageModel.from_pretrained(tiny_checkpoint("qwen3_vl_thinking"))
# thinker = mmkit.VisionLanguageModel.from_pretrained("Qwen/Qwen3-VL-8B-Thinking")
thought = thinker.chat("How many shapes?", images=[photo], max_new_tokens=24, seed=0)
print("thinking:", (thought.thinking or "")[:40], "| answer:", thought.text[:40], "| finish:", thought.finish_reason)

# 4. Video in the qwen-vl-utils message format: 8 frames at 4 fps, sampled with their real timestamps.
frames = np.full((8, 64, 64, 3), 255, dtype=np.uint8)
for t in range(8):
    frames[t, 24:40, 4 + 6 * t : 20 + 6 * t] = (220, 30, 30)
video_answer = thinker.chat(
    [{"role": "user", "content": [
        {"type": "video", "video": list(frames), "fps": 4.0},
        {"type": "text", "text": "When does the square reach the right edge?"},
    ]}],
    max_new_tokens=16, seed=0,
)
print("video tokens:", video_answer.usage.video_tokens, "| spans:", video_answer.spans)

# 5. Streaming and batching.
stream = vlm.stream("Say something.", max_new_tokens=8, seed=0)
print("stream:", "|".join(stream), "->", stream.answer.finish_reason)
batch = vlm.chat_batch(["Hello", [{"role": "user", "content": "Count to three."}]], max_new_tokens=6)
print("batch:", [a.usage.completion_tokens for a in batch])
