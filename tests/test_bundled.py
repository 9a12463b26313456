"""Bundled model names ("mmkit/shapes-sd") resolve through the same loaders as hub ids, offline, or fail clearly."""
import shutil

import pytest

import mmkit.bundled as bundled
from mmkit import ImageGenerator, ModelLoadError, VisionLanguageModel
from mmkit.generate.sources import resolve_source
from mmkit.testing.tiny_diffusion import tiny_diffusion_checkpoint
from mmkit.testing.tiny_qwen import tiny_checkpoint


@pytest.fixture()
def weights(tmp_path, monkeypatch):
    monkeypatch.setattr(bundled, "WEIGHTS_DIR", tmp_path)
    return tmp_path


def test_unknown_bundled_name_suggests_the_closest(weights):
    with pytest.raises(ModelLoadError) as err:
        resolve_source("mmkit/shapes-sdd", allow_pickle=False, what="Checkpoint")
    assert "mmkit/shapes-sd" in str(err.value.fix) and err.value.received == "mmkit/shapes-sdd"


def test_missing_bundled_weights_name_the_training_command(weights):
    with pytest.raises(ModelLoadError) as err:
        ImageGenerator.from_pretrained("mmkit/shapes-sd")
    assert "train_generator" in str(err.value.fix) and "model_index.json" in str(err.value)
    with pytest.raises(ModelLoadError) as err:
        VisionLanguageModel.from_pretrained("mmkit/shapes-qwen2.5-vl")
    assert "train_vlm" in str(err.value.fix)


def test_bundled_names_load_the_shipped_folders(weights):
    shutil.copytree(tiny_diffusion_checkpoint("sd15"), weights / "shapes-sd")
    shutil.copytree(tiny_checkpoint("qwen2_5_vl"), weights / "shapes-qwen2.5-vl")
    assert bundled.available_bundled() == ["mmkit/shapes-sd", "mmkit/shapes-qwen2.5-vl"]
    generator = ImageGenerator.from_pretrained("mmkit/shapes-sd", progress=False)
    assert generator.family == "sd15"
    vlm = VisionLanguageModel.from_pretrained("mmkit/shapes-qwen2.5-vl")
    assert vlm.family.name == "qwen2_5_vl" and str(weights) in vlm.model_id


def test_a_local_folder_named_like_a_bundled_model_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_diffusion_checkpoint("sd15"), tmp_path / "mmkit" / "my-sd")
    found = resolve_source("mmkit/my-sd", allow_pickle=False, what="Checkpoint")
    assert found.kind == "folder" and found.path.resolve() == (tmp_path / "mmkit" / "my-sd").resolve()


@pytest.mark.parametrize("name", sorted(bundled.BUNDLED))
def test_every_bundled_model_names_its_retrain_script(name):
    import importlib.util

    model = bundled.BUNDLED[name]
    module = model.retrain.split()[2]
    assert model.name == name and module.startswith("mmkit.shapes.training.")
    assert importlib.util.find_spec(module) is not None
