"""`mmkit bench` (evals/bench*.py): the report's structure on the tiny models, the like-for-like checks of the
SDK-vs-raw comparisons, the interleaving and memory gauges, and the full-size architectures' parameter
counts (built on the meta device). No timing is asserted: speed targets live in the benchmark's output."""
import json

import pytest
import torch

from mmkit.evals import bench_full_size
from mmkit.evals.bench import build_parser, main, run_bench
from mmkit.evals.bench_full_size import full_size_parameter_counts
from mmkit.evals.bench_measure import PeakMemory, compare
from mmkit.evals.bench_understand import bench_image
from mmkit.exceptions import UsageError
from mmkit.media.resize import smart_resize

FAST = ["--repeats", "2", "--warmup", "1", "--max-new-tokens", "6", "--batch-sizes", "1,2", "--steps", "3"]


def _check_pair(overhead: dict) -> None:
    for key in ("sdk_ms", "raw_ms", "ratio"):
        assert overhead[key] > 0, key
    assert overhead["ratio"] == pytest.approx(overhead["sdk_ms"] / overhead["raw_ms"])
    assert overhead["overhead_ms"] == pytest.approx(overhead["sdk_ms"] - overhead["raw_ms"])
    assert len(overhead["pair_ratios"]) == overhead["repeats"] == 2 and all(r > 0 for r in overhead["pair_ratios"])


@pytest.mark.slow
def test_bench_tiny_models_table_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main([*FAST, "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["schema"] == "mmkit.bench/1"
    assert report["environment"]["device"] == "cpu" and report["settings"]["repeats"] == 2

    u = report["understanding"]
    assert u["family"] == "qwen2_5_vl" and u["load_s"] > 0 and u["parameters"] > 100_000
    assert tuple(u["image_size"]) == (224, 224)  # multiples of 28: neither side resizes it
    call = u["call"]
    assert call["completion_tokens"] == 6 and call["image_tokens"] == 64  # (224 / 28)^2
    assert call["generate_ms"] > 0 and call["preprocess_ms"] > 0 and call["tokens_per_s"] > 0
    assert [b["batch_size"] for b in u["batches"]] == [1, 2]
    assert all(b["tokens_per_s"] > 0 and b["answers_per_s"] > 0 for b in u["batches"])
    _check_pair(u["overhead"])
    # Like-for-like: same prompt (same pixels -> same image tokens), same forced length, same greedy text.
    m = u["like_for_like"]
    assert m["sdk_prompt_tokens"] == m["raw_prompt_tokens"] == call["prompt_tokens"]
    assert m["sdk_completion_tokens"] == m["raw_completion_tokens"] == 6
    assert m["same_text"] is True

    g = report["generation"]
    assert g["family"] == "sd15" and g["steps"] == 3 and g["size"] == 64
    assert g["image"]["per_step_ms"] > 0 and g["image"]["per_image_ms"] >= g["image"]["per_step_ms"] * 3
    assert g["image"]["images_per_s"] == pytest.approx(1000 / g["image"]["per_image_ms"])
    _check_pair(g["overhead"])
    assert g["like_for_like"] == {"identical": True, "max_abs_diff": 0, "size": [64, 64]}

    assert "sdk / raw transformers" in printed and "sdk / raw diffusers" in printed
    assert "same text" in printed and "identical pixels" in printed and f"result: {out}" in printed


@pytest.mark.slow
def test_bench_qwen3_vl_and_sdxl_are_like_for_like(tmp_path):
    # Qwen3-VL's preset samples (do_sample=True): the SDK call passes do_sample=False like the raw one.
    args = build_parser().parse_args([*FAST, "--vlm", "tiny:qwen3_vl", "--generator", "tiny:sdxl", "--batch-sizes", "2"])
    report = run_bench(args).to_json()
    u, g = report["understanding"], report["generation"]
    assert u["family"] == "qwen3_vl" and tuple(u["image_size"]) == (256, 256)  # >= min_pixels 65536, multiple of 32
    assert u["like_for_like"]["sdk_prompt_tokens"] == u["like_for_like"]["raw_prompt_tokens"]
    assert u["like_for_like"]["sdk_completion_tokens"] == u["like_for_like"]["raw_completion_tokens"] == 6
    assert u["like_for_like"]["same_text"] is True
    assert g["family"] == "sdxl" and g["like_for_like"]["identical"] is True
    _check_pair(u["overhead"])
    _check_pair(g["overhead"])


def test_only_one_half(tmp_path):
    args = build_parser().parse_args([*FAST, "--only", "generation", "--steps", "2", "--output", str(tmp_path / "x.json")])
    report = run_bench(args)
    assert report.understanding is None and report.generation is not None and report.generation.steps == 2


@pytest.mark.parametrize(
    "name, key, published",
    [
        ("qwen2_5_vl_7b", "total", 8.29e9),  # Qwen/Qwen2.5-VL-7B-Instruct: 8.29 B
        ("qwen2_5_vl_7b", "vision", 0.6766e9),  # its ViT (32 blocks, hidden 1280) with the merger
        ("qwen3_vl_8b", "total", 8.77e9),  # Qwen/Qwen3-VL-8B-Instruct: 8.77 B
        ("sd15", "unet", 859.52e6),  # SD 1.5 UNet: 859.52 M
        ("sd15", "vae", 83.65e6),  # SD VAE: 83.65 M
        ("sd15", "text_encoder", 123.06e6),  # CLIP ViT-L/14 text: 123.06 M
        ("sdxl", "unet", 2.567e9),  # SDXL base UNet: 2.567 B
        ("sdxl", "text_encoder_2", 694.66e6),  # OpenCLIP bigG text with projection: 694.66 M
    ],
)
def test_full_size_parameter_counts_on_meta(name, key, published):
    counts = full_size_parameter_counts(name)
    assert counts[key] == pytest.approx(published, rel=0.002)


def test_full_size_configs_keep_real_vocab_and_take_tiny_ids():
    config = bench_full_size.qwen_full_size_config("qwen2_5_vl_7b", {"image": 700, "eos": 5})
    assert config.text_config.vocab_size == 152064 and config.image_token_id == 700
    assert config.text_config.eos_token_id == 5 and config.video_token_id == 151656
    sdxl = bench_full_size.diffusion_full_size_configs("sdxl", {"bos": 998, "eos": 999, "pad": 999, "pad_2": 3})
    assert sdxl["text_encoder"].vocab_size == sdxl["text_encoder_2"].vocab_size == 49408
    assert (sdxl["text_encoder"].pad_token_id, sdxl["text_encoder_2"].pad_token_id) == (999, 3)


def _shrunk_qwen(name, token_ids=None):
    """Qwen2.5-VL with the full-size builder's ids and layout but toy widths (the path, not the size, is tested)."""
    from transformers import Qwen2_5_VLConfig

    ids = {**bench_full_size._QWEN_IDS, **(token_ids or {})}
    return Qwen2_5_VLConfig(
        text_config=dict(vocab_size=151936, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, bos_token_id=ids["bos"], eos_token_id=ids["eos"],
                         pad_token_id=ids["pad"], tie_word_embeddings=False,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]}),
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                           fullatt_block_indexes=[0]),
        image_token_id=ids["image"], video_token_id=ids["video"], vision_start_token_id=ids["vision_start"],
        vision_end_token_id=ids["vision_end"],
    )  # fmt: skip


def test_random_full_size_path_runs_with_shrunk_configs(tmp_path, monkeypatch):
    # The GPU recipe's code path (random weights, tiny processor / tokenizers, wrapped in the SDK classes)
    # with the architectures shrunk so it runs here; the real sizes are checked on the meta device above.
    monkeypatch.setattr(bench_full_size, "qwen_full_size_config", _shrunk_qwen)
    real = bench_full_size.diffusion_full_size_configs

    def shrunk_sd(name, token_ids=None):
        configs = real(name, token_ids)
        configs["unet"].update(block_out_channels=(32, 64, 64, 64), sample_size=8)
        configs["vae"].update(block_out_channels=(16, 16, 32, 32), layers_per_block=1, norm_num_groups=8)
        text = configs["text_encoder"]
        text.num_hidden_layers, text.hidden_size, text.intermediate_size, text.num_attention_heads = 1, 32, 64, 2
        configs["unet"]["cross_attention_dim"] = text.projection_dim = 32
        return configs

    monkeypatch.setattr(bench_full_size, "diffusion_full_size_configs", shrunk_sd)
    args = build_parser().parse_args([*FAST, "--batch-sizes", "1", "--size", "64", "--random-full-size", "qwen2_5_vl_7b",
                                      "--random-full-size", "sd15"])
    report = run_bench(args)
    u, g = report.understanding, report.generation
    assert u.model == "random-full-size:qwen2_5_vl_7b" and u.like_for_like.matched
    assert u.call.completion_tokens == 6 and u.call.image_tokens == 64
    assert g.model == "random-full-size:sd15" and g.like_for_like.identical and g.steps == 3
    assert report.settings["random_full_size"] == ["qwen2_5_vl_7b", "sd15"]


def test_two_full_size_models_for_one_half_are_refused():
    args = build_parser().parse_args(["--random-full-size", "sd15", "--random-full-size", "sdxl"])
    with pytest.raises(UsageError, match="Two full-size generation"):
        run_bench(args)


def test_unknown_tiny_name_is_refused():
    args = build_parser().parse_args(["--only", "understanding", "--vlm", "tiny:llava"])
    with pytest.raises(UsageError, match="Unknown tiny model"):
        run_bench(args)


def test_compare_alternates_order_and_takes_medians():
    calls = []

    def side(name):
        def call():
            calls.append(name)
            return name
        return call

    timing, sdk_out, raw_out = compare(side("sdk"), side("raw"), repeats=4, warmup=1, device="cpu")
    assert calls == ["sdk", "raw", "sdk", "raw", "raw", "sdk", "sdk", "raw", "raw", "sdk"]
    assert (sdk_out, raw_out) == ("sdk", "raw")
    assert timing.repeats == 4 and timing.warmup == 1 and len(timing.pair_ratios) == 4
    assert timing.ratio == pytest.approx(timing.sdk_ms / timing.raw_ms)


def test_peak_memory_sees_torch_allocations():
    with PeakMemory("cpu") as peak:
        block = torch.ones(64 * 1024 * 1024 // 4)  # 64 MB of float32, touched
        del block
    assert peak.peak_mb >= 60, (peak.peak_mb, peak.source)
    with PeakMemory("cpu") as idle:
        pass
    assert idle.peak_mb < 60


@pytest.mark.parametrize("factor, min_pixels, side, expected", [(28, 3136, 224, 224), (32, 65536, 224, 256), (28, 3136, 300, 308)])
def test_bench_image_is_a_fixed_point_of_smart_resize(factor, min_pixels, side, expected):
    image = bench_image(factor, min_pixels, side)
    assert image.size == (expected, expected)
    assert smart_resize(expected, expected, factor, min_pixels, 16384 * factor * factor) == (expected, expected)
