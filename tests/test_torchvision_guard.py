"""A broken torchvision install must not break mmkit or transformers imports."""
import subprocess
import sys
import textwrap


def test_broken_torchvision_is_hidden(tmp_path):
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n"
    )
    script = textwrap.dedent(
        """
        import warnings, importlib.util, sys
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import mmkit
        assert any("torchvision is installed but fails to import" in str(w.message) for w in caught), caught
        assert importlib.util.find_spec("torchvision") is None
        from transformers import Qwen2_5_VLForConditionalGeneration, AutoProcessor  # noqa: F401
        from transformers.utils import is_torchvision_available
        print("ok", is_torchvision_available())
        """
    )
    env_path = f"{tmp_path}"
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok False")


def test_absent_torchvision_is_silent():
    out = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", "import mmkit; import mmkit._torchvision_guard as g; print(g.TORCHVISION_USABLE)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
