"""The demo's script, trace and report with models that see (the shapes-world fakes), and its model choice."""
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import mmkit.demo as demo
from mmkit.agents.fakes import ShapesGenerator, ShapesVLM
from mmkit.demo_report import render_report


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a" and not attrs["href"].startswith("#"):
            self.links.append(attrs["href"])


def referenced(report: Path) -> _Links:
    parser = _Links()
    parser.feed(report.read_text(encoding="utf-8"))
    return parser


@pytest.fixture
def seeing_models(monkeypatch):
    """run_demo with the pixel-oracle fakes in place of real models: the pipeline gets real boxes and verdicts."""
    chosen = (demo.DemoModel("vlm", "fake-shapes-vlm", "override"),
              demo.DemoModel("generator", "fake-shapes-generator", "override"))
    monkeypatch.setattr(demo, "pick_models", lambda vlm=None, generator=None: chosen)
    info = {role: {"source": m.source, "kind": m.kind, "family": "fake", "load_s": 0.0} for role, m in
            zip(("vlm", "generator"), chosen)}
    monkeypatch.setattr(demo, "_load", lambda vlm, generator: (ShapesVLM(), ShapesGenerator(noise=False), info))


def test_demo_runs_the_whole_pipeline_with_models_that_see(tmp_path, seeing_models, capsys):
    trace = demo.run_demo(tmp_path / "demo")
    out = tmp_path / "demo"
    turns = trace["turns"]
    assert [(t["language"], t["route"], t["intent"]) for t in turns] == [
        (lang, route, intent) for lang in ("en", "zh") for route, intent in
        (("generate", "text_to_image"), ("understand", "ground"), ("edit", "replace"), ("understand", "video"))]
    for t in turns:
        assert t["status"] == "done", t
    generated, grounded, edited, video = turns[:4]
    assert generated["verdict"]["passed"] is True and len(generated["verdict"]["items"]) == 4  # 2 objects x (present, where)
    assert trace["media"][grounded["outputs"][0]].startswith("images/")  # the boxes were drawn on a new image
    assert grounded["reply"].startswith("red circle: (")
    kinds = [s["kind"] for s in edited["steps"]]
    assert kinds == ["route", "ground", "mask", "inpaint", "check"]
    assert edited["verdict"]["passed"] is True  # the edit loop's verdict: the triangle is there, the circle gone
    assert {i["expected"] for i in edited["verdict"]["items"]} == {"yes", "no"}
    assert video["inputs"] == ["video 1"] and turns[7]["inputs"] == ["video 2"]
    assert video["truth"] and re.fullmatch(r"[\d.]+-[\d.]+ s", video["truth"])
    assert trace["note"] is None
    on_disk = json.loads((out / "trace.json").read_text(encoding="utf-8"))
    assert on_disk["turns"][2]["steps"][2]["params"]["box"] == edited["steps"][2]["params"]["box"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "THIS RUN USES TINY" not in page
    assert page.count('<span class="pass">pass</span>') >= 4
    links = referenced(out / "report.html")
    assert any("mask" in src for src in links.images) and any("ground" in src for src in links.images)
    for src in links.images + links.links:
        assert (out / src).is_file(), src
    printed = capsys.readouterr().out
    assert printed.count("verdict=pass") == 4 and "done in" in printed


def test_report_escapes_requests_and_replies():
    turn = {"index": 1, "language": "en", "request": "<script>alert(1)</script>", "route": "understand",
            "intent": "answer", "reason": "question form", "target": None, "replacement": None, "prompt": None,
            "status": "done", "reply": "a & b", "truth": None, "seconds": 0.5, "inputs": [], "outputs": [],
            "verdict": None, "steps": []}
    trace = {"note": "tiny <models>", "models": {}, "settings": {}, "budget": {}, "session": "session",
             "media": {}, "video": {}, "turns": [turn], "seconds": 1.0}
    page = render_report(trace)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a &amp; b" in page and "tiny &lt;models&gt;" in page


def _fill(folder: Path, *files: str) -> Path:
    for file in files:
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        (folder / file).write_text("{}")
    return folder


def test_pick_models_prefers_complete_trained_folders_and_overrides(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "TRAINED_VLM", tmp_path / "shapes-qwen2.5-vl")
    monkeypatch.setattr(demo, "TRAINED_GENERATOR", tmp_path / "shapes-sd")
    # a training run in progress: the stage-1 VAE is saved but the pipeline is not
    _fill(tmp_path / "shapes-sd", "stage1-vae/config.json", "stage1-vae/diffusion_pytorch_model.safetensors")
    vlm, gen = demo.pick_models()
    assert (vlm.kind, gen.kind) == ("tiny", "tiny")
    _fill(tmp_path / "shapes-sd", "model_index.json", "unet/diffusion_pytorch_model.safetensors")
    _fill(tmp_path / "shapes-qwen2.5-vl", "config.json", "model.safetensors")
    vlm, gen = demo.pick_models()
    assert (vlm.kind, vlm.source) == ("trained", str(tmp_path / "shapes-qwen2.5-vl"))
    assert (gen.kind, gen.source) == ("trained", str(tmp_path / "shapes-sd"))
    vlm, gen = demo.pick_models(vlm="Qwen/Qwen2.5-VL-3B-Instruct", generator=tmp_path / "sd15")
    assert (vlm.kind, vlm.source, gen.kind, gen.source) == ("override", "Qwen/Qwen2.5-VL-3B-Instruct", "override",
                                                            str(tmp_path / "sd15"))


def test_banner_names_only_the_roles_on_tiny_checkpoints():
    tiny_vlm, tiny_gen = demo.DemoModel("vlm", "t", "tiny"), demo.DemoModel("generator", "t", "tiny")
    trained_vlm, trained_gen = demo.DemoModel("vlm", "v", "trained"), demo.DemoModel("generator", "g", "trained")
    both = demo.tiny_banner(tiny_vlm, tiny_gen)
    assert both.startswith("THIS RUN USES TINY BUILT-IN CHECKPOINTS") and "pictures are noise" in both
    assert str(demo.TRAINED_VLM) in both and str(demo.TRAINED_GENERATOR) in both
    vlm_only = demo.tiny_banner(tiny_vlm, trained_gen)
    assert "VISION-LANGUAGE MODEL" in vlm_only and "pictures are noise" not in vlm_only
    assert str(demo.TRAINED_GENERATOR) not in vlm_only
    assert "GENERATOR" in demo.tiny_banner(trained_vlm, tiny_gen)
    assert demo.tiny_banner(trained_vlm, trained_gen) is None
