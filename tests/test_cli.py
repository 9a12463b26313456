"""The `mmkit` command line drives the same public API."""
import html
import json
import re

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
    import mmkit.demo

    monkeypatch.setenv("MMKIT_TINY_CACHE", str(tmp_path / "tiny"))
    # no trained models here, whatever the package folder holds by now: the run must fall back to tiny ones
    monkeypatch.setattr(mmkit.demo, "TRAINED_VLM", tmp_path / "none-vlm")
    monkeypatch.setattr(mmkit.demo, "TRAINED_GENERATOR", tmp_path / "none-sd")
    assert main(["demo", "--output", str(tmp_path / "demo")]) == 0
    out = tmp_path / "demo"
    trace = json.loads((out / "trace.json").read_text(encoding="utf-8"))
    turns = trace["turns"]
    routes = [(t["language"], t["route"], t["intent"]) for t in turns]
    assert routes == [(lang, route, intent) for lang in ("en", "zh") for route, intent in
                      (("generate", "text_to_image"), ("understand", "ground"), ("edit", "replace"),
                       ("understand", "video"))]
    assert turns[0]["request"].startswith("draw a red circle") and turns[6]["request"] == "把红色的圆换成绿色的三角形"
    assert trace["tiny"] == ["vlm", "generator"] and "TINY BUILT-IN CHECKPOINTS" in trace["note"]
    assert {m["kind"] for m in trace["models"].values()} == {"tiny"}
    for turn in turns:
        assert turn["seconds"] > 0 and all(step["seconds"] >= 0 for step in turn["steps"])
        assert turn["steps"][0]["tool"] == "router.rules"
    generate = turns[0]
    attempts = [s for s in generate["steps"] if s["kind"] == "generate"]
    assert attempts and all(s["seeds"] and s["params"]["steps"] > 0 and s["seconds"] > 0 for s in attempts)
    assert generate["verdict"] is not None and generate["verdict"]["checker"] == "vlm"
    assert turns[3]["inputs"] == ["video 1"] and (out / "session" / trace["media"]["video 1"]).is_file()
    assert any(s["tool"] == "vlm.chat" and s["params"]["videos"] == ["video 1"] for s in turns[3]["steps"])
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "THIS RUN USES TINY BUILT-IN CHECKPOINTS" in page and "Turn latencies" in page
    for turn in turns:
        assert html.escape(turn["request"]) in page
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) >= 6  # generated images, attempts, the clip's frames
    for src in images:
        assert (out / src).is_file(), src
    printed = capsys.readouterr().out
    assert "THIS RUN USES TINY BUILT-IN CHECKPOINTS" in printed and "done in" in printed
    assert len(re.findall(r"^\[\d\] (?:en|zh) ", printed, flags=re.M)) == 8
