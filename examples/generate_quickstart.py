"""Generation with mmkit: text to image, image to image, inpainting, ControlNet and LoRA.

Runs offline on the tiny built-in checkpoints (random weights: the images are noise, the plumbing is real).
For the real thing, swap the sources for the commented ones (SDXL base, a canny ControlNet, your LoRA).

    python examples/generate_quickstart.py
"""
from pathlib import Path
import tempfile

import numpy as np
from PIL import Image, ImageDraw

import mmkit
from mmkit.testing import build_tiny_controlnet, build_tiny_lora, tiny_diffusion_checkpoint

out = Path("outputs/generate_example")
base = tiny_diffusion_checkpoint("sd15")
generator = mmkit.ImageGenerator.from_pretrained(base, progress=False)
# generator = mmkit.ImageGenerator.from_pretrained("stabilityai/stable-diffusion-xl-base-1.0")
print(generator.family, generator.model_id)

# 1. Text to image: CFG, negative prompt, a scheduler by name, one seed per image.
result = generator.text_to_image(
    "a red circle on the left", negative_prompt="blurry", guidance_scale=7.5,
    steps=8, scheduler="dpmpp_2m_karras", seed=42, num_images=2, width=64, height=64,
)
paths = result.save(out)           # PNGs with an A1111 `parameters` chunk + full mmkit metadata
print("saved:", [p.name for p in paths], "seeds:", result.seeds)
again = generator.regenerate(paths[1])   # the same pixels from the PNG's own metadata
print("regenerated identical:", np.array_equal(np.asarray(again.images[0]), np.asarray(result.images[1])))

# 2. Image to image and inpainting.
varied = generator.image_to_image(result.images[0], "a blue circle", strength=0.6, steps=8, seed=1)
mask = Image.new("L", (64, 64), 0)
ImageDraw.Draw(mask).rectangle((8, 16, 40, 48), fill=255)     # white = repaint
inpainted = generator.inpaint(result.images[0], mask, "a green square", steps=8, seed=1, mask_dilate=2)
print("img2img strength:", varied.params.strength, "| inpaint size:", inpainted.images[0].size)

# 3. ControlNet: a canny edge map of a layout steers the composition.
work = Path(tempfile.mkdtemp())
controlnet_dir = build_tiny_controlnet(work / "controlnet", unet_source=base)
generator.add_controlnet(controlnet_dir, name="canny")
# generator.add_controlnet("diffusers/controlnet-canny-sdxl-1.0", name="canny")
layout = Image.new("RGB", (64, 64), "white")
ImageDraw.Draw(layout).rectangle((12, 12, 40, 40), outline="black", width=2)
controlled = generator.text_to_image(
    "a square", steps=8, seed=3, width=64, height=64,
    control=[mmkit.Control(image=layout, model="canny", preprocess="canny", scale=0.9, end=0.8)],
)
print("controls recorded:", controlled.params.controls)

# 4. LoRA: load under a name, weight, fuse / unfuse, unload.
lora_file = build_tiny_lora(work / "style.safetensors", base_pipe_dir=base)
generator.loras.load(lora_file, name="style", weight=0.8)
# generator.loras.load("path/to/your_lora.safetensors", name="style", weight=0.8)
styled = generator.text_to_image("a red circle on the left", steps=8, seed=42, width=64, height=64)
print("loras:", generator.loras.list(), "| recorded:", styled.params.loras)
generator.loras.fuse(); generator.loras.unfuse(); generator.loras.unload()
print("after unload:", generator.loras.list())
