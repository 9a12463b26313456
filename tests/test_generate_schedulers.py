"""Scheduler names -> diffusers schedulers built from the checkpoint's config; every name runs."""
import numpy as np
import pytest

from mmkit.exceptions import UsageError
from mmkit.generate import ImageGenerator, list_schedulers
from mmkit.generate.schedulers import a1111_sampler_name, make_scheduler, scheduler_from_a1111, scheduler_name_of
from mmkit.testing.tiny_diffusion import tiny_diffusion_checkpoint


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "tiny-diffusion"
    return ImageGenerator.from_pretrained(tiny_diffusion_checkpoint("sd15", cache_dir=cache), progress=False)


def test_names():
    names = list_schedulers()
    for required in ("ddim", "ddpm", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "unipc", "lcm", "pndm", "heun"):
        assert required in names
    assert "lms" in list_schedulers(available_only=False)


def test_missing_extra_package_is_a_clear_error():
    import importlib.util

    if importlib.util.find_spec("scipy") is None:  # this environment has no scipy; LMS needs it
        assert "lms" not in list_schedulers()
        with pytest.raises(UsageError, match="needs scipy"):
            make_scheduler("lms", {})
    else:
        assert "lms" in list_schedulers()


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UsageError, match="Did you mean 'euler_a'") as info:
        make_scheduler("euler_aa", {})
    assert info.value.received == "euler_aa"
    with pytest.raises(UsageError, match="Known: ddim"):
        make_scheduler("zzzz", {})


def test_built_from_checkpoint_config(sd15):
    base = sd15._scheduler_config
    karras = make_scheduler("dpmpp_2m_karras", base)
    plain = make_scheduler("dpmpp_2m", karras.config)  # overrides reset what a previous name set
    assert type(karras).__name__ == "DPMSolverMultistepScheduler" and karras.config.use_karras_sigmas
    assert not plain.config.use_karras_sigmas
    assert karras.config.beta_end == base["beta_end"] == 0.012 and karras.config.beta_schedule == "scaled_linear"
    assert scheduler_name_of(karras) == "dpmpp_2m_karras" and scheduler_name_of(plain) == "dpmpp_2m"


def test_a1111_labels_round_trip():
    for name in list_schedulers(available_only=False):
        assert scheduler_from_a1111(a1111_sampler_name(name)) == name
    assert scheduler_from_a1111("DPM++ 2M", "Karras") == "dpmpp_2m_karras"
    assert scheduler_from_a1111("Restart") is None


def test_every_scheduler_runs(sd15):
    outputs = {}
    for name in list_schedulers():
        result = sd15.text_to_image("a cat", steps=3, seed=1, scheduler=name, width=32, height=32)
        assert type(sd15.pipeline.scheduler).__name__ == make_scheduler(name, sd15._scheduler_config).__class__.__name__
        image = np.asarray(result.image, np.float32)
        assert image.shape == (32, 32, 3) and np.isfinite(image).all() and image.std() > 1.0
        assert result.params.scheduler == name
        outputs[name] = image
    assert np.abs(outputs["euler"] - outputs["euler_a"]).mean() > 0.5  # the names change the sampling
    default = sd15.text_to_image("a cat", steps=3, seed=1, width=32, height=32)
    assert default.params.scheduler is None and default.params.sampler_label == "PLMS"
    assert np.array_equal(np.asarray(default.image, np.float32), outputs["pndm"])  # the checkpoint's own = pndm


def test_zero_terminal_snr_schedule_is_kept_or_refused(sd15):
    zero_snr = {**sd15._scheduler_config, "prediction_type": "v_prediction", "rescale_betas_zero_snr": True,
                "timestep_spacing": "trailing"}
    for name in ("ddim", "euler", "dpmpp_2m", "unipc"):
        built = make_scheduler(name, zero_snr)
        assert built.config.rescale_betas_zero_snr and built.config.prediction_type == "v_prediction"
        assert float(built.alphas_cumprod[-1]) < 1e-6  # the rescaled betas, not SD 1.5's 0.0047
    for name in ("pndm", "heun", "dpm2"):  # classes without rescale_betas_zero_snr would drop it silently
        with pytest.raises(UsageError, match="zero terminal SNR") as info:
            make_scheduler(name, zero_snr)
        assert "ddim" in info.value.fix and "pndm" not in info.value.fix
