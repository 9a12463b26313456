"""The shared source rules (`mmkit.generate.sources`), the shared log filter, and the lazy testing exports."""
import logging
import sys

import pytest

from mmkit.exceptions import ModelLoadError, UnsafeSourceError, UsageError
from mmkit.generate.quiet_logs import hide_log_records, without_empty_fp32_warning
from mmkit.generate.sources import resolve_source, unavailable, use_safetensors, weight_files


def test_source_kinds_and_pickle_rule(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x")
    (tmp_path / "model.ckpt").write_bytes(b"x")
    assert resolve_source(tmp_path / "model.safetensors", allow_pickle=False, what="LoRA").kind == "file"
    assert resolve_source(str(tmp_path), allow_pickle=False, what="LoRA").path == tmp_path
    hub = resolve_source("owner/name", allow_pickle=False, what="LoRA")
    assert (hub.kind, hub.text, hub.path) == ("hub", "owner/name", None)
    with pytest.raises(UnsafeSourceError, match="allow_pickle=True") as info:
        resolve_source(tmp_path / "model.ckpt", allow_pickle=False, what="Checkpoint")
    assert "Checkpoint file is a pickle file (.ckpt)" in str(info.value)
    assert resolve_source(tmp_path / "model.ckpt", allow_pickle=True, what="Checkpoint").kind == "file"
    for missing in (tmp_path / "nope", "./not/a-hub-id", "~/nope"):
        with pytest.raises(ModelLoadError, match="not found"):
            resolve_source(missing, allow_pickle=False, what="ControlNet")
    with pytest.raises(UsageError):
        resolve_source(42, allow_pickle=False, what="ControlNet")
    assert (use_safetensors(False), use_safetensors(True)) == (True, None)


def test_weight_files_prefers_safetensors_and_refuses_pickle_only(tmp_path):
    both, pickled = tmp_path / "both", tmp_path / "pickled"
    both.mkdir(), pickled.mkdir()
    for name in ("a.safetensors", "a.bin", "config.json"):
        (both / name).write_bytes(b"x")
    (pickled / "a.bin").write_bytes(b"x")
    assert [p.name for p in weight_files(both, allow_pickle=False, what="x")] == ["a.safetensors"]
    with pytest.raises(UnsafeSourceError, match="'unet' has only pickle weights \\(a.bin\\)"):
        weight_files(pickled, allow_pickle=False, what="Component 'unet'")
    assert [p.name for p in weight_files(pickled, allow_pickle=True, what="x")] == ["a.bin"]


def test_unavailable_names_hf_hub_offline_for_hub_sources(monkeypatch, tmp_path):
    hub = resolve_source("owner/name", allow_pickle=False, what="LoRA")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    error = unavailable(OSError("no cache"), source=hub, what="LoRA")
    assert error.received == "owner/name" and "HF_HUB_OFFLINE is set" in str(error)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert "network" in str(unavailable(OSError("404"), source=hub, what="LoRA"))
    local = resolve_source(str(tmp_path), allow_pickle=False, what="LoRA")
    assert str(unavailable(OSError("bad"), source=local, what="LoRA", fix="Pass a folder")).startswith(
        "Could not load LoRA: bad")


def test_training_family_comes_from_the_checkpoint_reader(monkeypatch, tmp_path):
    from mmkit.generate.training.models import detect_family
    from mmkit.testing.tiny_diffusion import tiny_diffusion_checkpoint

    folder = tiny_diffusion_checkpoint("sd15", cache_dir=tmp_path.parent / "tiny-diffusion")
    assert detect_family(str(folder)) == "sd15"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE") as info:
        detect_family("someone/not-cached-model")
    assert info.value.received == "someone/not-cached-model"
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(UsageError, match="single checkpoint file"):
        detect_family(str(tmp_path / "model.safetensors"))


def test_hide_log_records_drops_only_matching_records(caplog):
    logger = logging.getLogger("diffusers.models.modeling_utils")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        with without_empty_fp32_warning():
            logger.warning("There are modules in UNet that should be kept in float32: []. Casting ...")
            logger.warning("There are modules in X that should be kept in float32: ['norm'].")
        logger.warning("should be kept in float32: [] (outside the block)")
        with hide_log_records("some.logger", "LOAD REPORT"):
            logging.getLogger("some.logger").warning("Model LOAD REPORT from: x")
    assert [r.getMessage() for r in caplog.records] == [
        "There are modules in X that should be kept in float32: ['norm'].",
        "should be kept in float32: [] (outside the block)",
    ]
    assert not [f for f in logger.filters if type(f).__name__ == "_Containing"]  # removed again


def test_testing_exports_are_lazy():
    import mmkit.testing as testing

    names = ["build_tiny_sd15", "build_tiny_sdxl", "build_tiny_sd15_inpaint", "tiny_diffusion_checkpoint",
             "build_tiny_controlnet", "build_tiny_lora", "save_single_file_checkpoint"]
    assert set(names) <= set(testing.__all__)
    from mmkit.testing import (  # noqa: F401  (the import itself is the check)
        build_tiny_controlnet,
        build_tiny_lora,
        build_tiny_sd15,
        build_tiny_sd15_inpaint,
        build_tiny_sdxl,
        tiny_diffusion_checkpoint,
    )
    from mmkit.testing.single_file import save_single_file_checkpoint
    from mmkit.testing.tiny_diffusion import build_tiny_sd15 as direct

    assert build_tiny_sd15 is direct and testing.save_single_file_checkpoint is save_single_file_checkpoint
    assert callable(build_tiny_controlnet) and callable(build_tiny_lora) and "mmkit.testing.tiny_lora" in sys.modules
