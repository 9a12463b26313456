"""The public API: every exported name resolves, and importing mmkit stays cheap."""
import importlib
import subprocess
import sys

import pytest

PACKAGES = [
    "mmkit",
    "mmkit.media",
    "mmkit.understand",
    "mmkit.generate",
    "mmkit.testing",
    "mmkit.shapes",
    "mmkit.agents",
    "mmkit.adapters",
    "mmkit.evals",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_resolves(name):
    module = importlib.import_module(name)
    assert module.__all__, f"{name} has an empty __all__"
    missing = [attr for attr in module.__all__ if not hasattr(module, attr)]
    assert missing == []


def test_import_mmkit_does_not_load_torch_or_transformers():
    code = "import sys, mmkit, mmkit.understand, mmkit.generate; print(sorted(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_top_level_names_are_the_documented_entry_points():
    import mmkit

    for name in ("VisionLanguageModel", "ImageGenerator", "Answer", "Box", "GenerationResult", "Control",
                 "train_lora", "MediaPolicy", "plan_device", "UsageError", "ServerError"):
        assert name in mmkit.__all__
