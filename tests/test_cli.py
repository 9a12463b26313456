"""The `mmkit` command line drives the same public API."""
import json

import numpy as np
from PIL import Image

from mmkit.cli import main
from mmkit.generate.result import read_generation_params
from mmkit.testing.tiny_diffusion import tiny_diffusion_checkpoint
from mmkit.testing.tiny_qwen import tiny_checkpoint


def test_generate_writes_pngs_with_parameters(tmp_path, capsys):
    model = tiny_diffusion_checkpoint("sd15", cache_dir=tmp_path / "tiny")
    code = main(["generate", "a red circle", "--model", str(model), "--steps", "2", "--width", "64",
                 "--height", "64", "--seed", "5", "--num-images", "2", "--output", str(tmp_path / "out")])
    assert code == 0
    printed = capsys.readouterr().out.split()
    assert len(printed) == 2
    first, second = (read_generation_params(path) for path in printed)
    assert first.prompt == "a red circle" and first.steps == 2
    assert list(first.seeds) == [5] and list(second.seeds) == [6]  # each PNG records its own seed


def test_ask_prints_the_answer(tmp_path, capsys):
    model = tiny_checkpoint("qwen2_5_vl", cache_dir=tmp_path / "tiny")
    image = tmp_path / "red.png"
    Image.fromarray(np.full((56, 56, 3), (200, 20, 20), dtype=np.uint8)).save(image)
    assert main(["ask", str(image), "What colour?", "--model", str(model), "--max-new-tokens", "3"]) == 0
    assert capsys.readouterr().out.strip() != ""


def test_demo_writes_trace(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMKIT_TINY_CACHE", str(tmp_path / "tiny"))
    assert main(["demo", "--output", str(tmp_path / "demo")]) == 0
    trace = json.loads((tmp_path / "demo" / "trace.json").read_text())
    steps = {step["step"]: step for step in trace["steps"]}
    assert steps["regenerate from metadata"]["identical"] is True
    assert steps["describe"]["usage"]["image_tokens"] > 0
    assert steps["video question"]["video_tokens"] > 0
    assert "TINY BUILT-IN CHECKPOINTS" in capsys.readouterr().out
