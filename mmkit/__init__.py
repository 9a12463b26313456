"""mmkit: understand images and videos with Qwen-VL, generate and edit them with Stable Diffusion.

Importing mmkit is cheap: heavy modules (torch models, diffusers pipelines) load on first use.
"""
from . import _torchvision_guard  # noqa: F401  (must run before transformers is imported anywhere)

__version__ = "0.1.0"
