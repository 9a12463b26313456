"""mmkit.evals end to end on the tiny checkpoints (untrained, so the scores are ~0: the structure, sample
counts and files are what is checked), through the Python API and the `mmkit eval` command line."""
import json

import pytest

from mmkit.evals import evaluate
from mmkit.evals.cli import main
from mmkit.testing.tiny_diffusion import tiny_diffusion_checkpoint
from mmkit.testing.tiny_qwen import tiny_checkpoint


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("evals-cache")


@pytest.mark.slow
def test_grounding_on_tiny_qwen2_5_vl(tmp_path, cache):
    model = tiny_checkpoint("qwen2_5_vl", cache_dir=cache / "tiny")
    result = evaluate("grounding", str(model), limit=3, output_dir=tmp_path / "run", cache_dir=cache, progress=False)
    assert result.n_samples == 3 and result.model.kind == "vlm" and result.model.family == "qwen2_5_vl"
    assert list(result.model.weight_sha256) == ["model.safetensors"] and len(result.model.weight_sha256["model.safetensors"]) == 64
    assert set(result.metrics) == {"acc@0.3", "acc@0.5", "acc@0.7", "mean_iou", "centre_acc"}
    assert all(v.n == 3 and 0.0 <= v.value <= 1.0 for v in result.metrics.values())
    assert result.config.data == "builtin:grounding-v1.0" and result.timings.model_s > 0
    rows = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["g0000", "g0001", "g0002"] and all("text" in r["prediction"] for r in rows)


@pytest.mark.slow
def test_geneval_on_tiny_sd15_with_oracle_judge(tmp_path, cache):
    model = tiny_diffusion_checkpoint("sd15", cache_dir=cache / "tiny")
    result = evaluate("geneval", str(model), limit=2, output_dir=tmp_path / "run", cache_dir=cache, progress=False,
                      options={"size": 64, "steps": 2, "images_per_prompt": 2})
    assert result.n_samples == 2 and result.model.kind == "generator" and result.config.options["judge"] == "oracle"
    assert set(result.categories) == {"single_object", "two_object"}
    assert result.metrics["image_accuracy"].n == 2 and "geneval_score" in result.metrics
    assert len(result.model.weight_sha256) == 3  # text encoder, UNet, VAE
    out = tmp_path / "run" / "geneval"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "outputs/00000/samples/0000.png", "outputs/00000/samples/0001.png",
        "outputs/00001/samples/0000.png", "outputs/00001/samples/0001.png"]
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and {"filename", "tag", "prompt", "correct", "reason", "metadata"} <= set(lines[0])


@pytest.mark.slow
def test_cli_vqa_on_tiny_qwen(tmp_path, cache, capsys, monkeypatch):
    monkeypatch.setenv("MMKIT_EVAL_CACHE", str(cache))
    model = tiny_checkpoint("qwen2_5_vl", cache_dir=cache / "tiny")
    assert main(["vqa", "--model", str(model), "--limit", "2", "--output", str(tmp_path / "run"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "accuracy: " in printed and "(n=2)" in printed and (tmp_path / "run" / "result.json").is_file()
    assert main(["--list"]) == 0
    assert "grounding v1.0 [vlm]" in capsys.readouterr().out
