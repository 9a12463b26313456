"""Bundled model names ("mmkit/shapes-sd") resolve through the same loaders as hub ids, offline, or fail clearly."""
import shutil
from pathlib import Path

import numpy as np

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


def test_the_bundled_vlm_gets_its_trained_frame_size_for_videos_by_name_or_folder(weights):
    from mmkit.exceptions import UsageError
    from mmkit.understand.messages import to_conversation

    import mmkit.shapes

    # the shipped folder (its processor's image budget: 112 x 112, the size its clips were trained at)
    shutil.copytree(Path(mmkit.shapes.__file__).parent / "weights" / "shapes-qwen2.5-vl", weights / "shapes-qwen2.5-vl")
    trained = {"min_pixels": 10000, "max_pixels": 12544}
    assert bundled.BUNDLED["mmkit/shapes-qwen2.5-vl"].videos_at_image_pixels
    by_name = VisionLanguageModel.from_pretrained("mmkit/shapes-qwen2.5-vl", progress=False)
    by_folder = VisionLanguageModel.from_pretrained(weights / "shapes-qwen2.5-vl", progress=False)
    other = VisionLanguageModel.from_pretrained(tiny_checkpoint("qwen2_5_vl"), progress=False)
    assert by_name.video_pixels == by_folder.video_pixels == trained and other.video_pixels == {}
    frames = [np.full((96, 96, 3), 255, dtype=np.uint8)] * 4
    conv = to_conversation("when?", videos=[{"video": frames, "sample_fps": 2.0, "raw_fps": 2.0}])
    grids = [m._prepare([conv], thinking=None, min_pixels=None, max_pixels=None).inputs["video_grid_thw"][0]
             for m in (by_name, other)]
    assert grids[0].tolist() == [2, 8, 8]  # 112 x 112 frames, as the model was trained
    assert grids[1].tolist()[1] > 8  # qwen-vl-utils' video rules (at least 128 tokens a frame pair)
    own = to_conversation("when?", videos=[{"video": frames, "sample_fps": 2.0, "raw_fps": 2.0,
                                            "min_pixels": 40000, "max_pixels": 50176}])
    assert by_name._prepare([own], thinking=None, min_pixels=None,
                            max_pixels=None).inputs["video_grid_thw"][0].tolist()[1] == 16  # the part's keys win
    with pytest.raises(UsageError, match="video_pixels"):
        VisionLanguageModel.from_pretrained(tiny_checkpoint("qwen2_5_vl"), video_pixels={"min_pixel": 10},
                                            progress=False)


def test_the_bundled_vlm_samples_video_files_at_the_rate_its_clips_were_trained_at(weights, tmp_path):
    import inspect

    from mmkit.demo import _write_clip
    from mmkit.exceptions import UsageError
    from mmkit.shapes import sample_video
    from mmkit.understand.messages import to_conversation

    import mmkit.shapes

    shutil.copytree(Path(mmkit.shapes.__file__).parent / "weights" / "shapes-qwen2.5-vl", weights / "shapes-qwen2.5-vl")
    trained_fps = inspect.signature(sample_video).parameters["fps"].default
    assert bundled.BUNDLED["mmkit/shapes-qwen2.5-vl"].video_fps == trained_fps == 4.0
    by_name = VisionLanguageModel.from_pretrained("mmkit/shapes-qwen2.5-vl", progress=False)
    by_folder = VisionLanguageModel.from_pretrained(weights / "shapes-qwen2.5-vl", progress=False)
    assert by_name.video_fps == by_folder.video_fps == 4.0
    assert VisionLanguageModel.from_pretrained(tiny_checkpoint("qwen2_5_vl"), progress=False).video_fps is None
    clip = _write_clip(tmp_path)  # 12 frames at 4 fps: 3 s
    path = tmp_path / clip["file"]

    def frames(model, **part):
        conv = to_conversation("when?", videos=[{"video": str(path), **part}])
        return model._prepare([conv], thinking=None, min_pixels=None, max_pixels=None).inputs["video_grid_thw"][0][0] * 2

    assert frames(by_name) == 12  # every frame, as trained
    assert frames(by_name, fps=2.0) == 6 and frames(by_name, nframes=8) == 8  # the part's own sampling wins
    assert frames(VisionLanguageModel.from_pretrained(weights / "shapes-qwen2.5-vl", video_fps=2.0,
                                                      progress=False)) == 6
    still = to_conversation("when?", videos=[{"video": [np.full((96, 96, 3), 255, np.uint8)] * 4, "sample_fps": 2.0}])
    assert by_name._prepare([still], thinking=None, min_pixels=None,
                            max_pixels=None).inputs["video_grid_thw"][0][0] == 2  # frame lists: as given
    with pytest.raises(UsageError, match="video_fps"):
        VisionLanguageModel.from_pretrained(tiny_checkpoint("qwen2_5_vl"), video_fps=0, progress=False)
