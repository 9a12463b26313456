"""The device policy: every rule checked for every device kind, without the hardware."""
import pytest
import torch

from mmkit.devices import (
    DeviceCapabilities,
    DevicePlan,
    choose_attention,
    choose_dtype,
    plan_device,
    resolve_device,
)
from mmkit.exceptions import DeviceError, UsageError

CPU = DeviceCapabilities("cpu", bf16=True)
MPS = DeviceCapabilities("mps")
AMPERE = DeviceCapabilities("cuda", 0, bf16=True, cuda_capability=(8, 0), flash_attn_installed=True)
AMPERE_NO_FA = DeviceCapabilities("cuda", 0, bf16=True, cuda_capability=(8, 6), flash_attn_installed=False)
TURING = DeviceCapabilities("cuda", 1, bf16=False, cuda_capability=(7, 5), flash_attn_installed=True)
NPU_910B = DeviceCapabilities("npu", 0, bf16=True)
NPU_910A = DeviceCapabilities("npu", 0, bf16=False)


@pytest.mark.parametrize(
    "caps, expected",
    [
        (CPU, torch.float32),
        (MPS, torch.float16),
        (AMPERE, torch.bfloat16),
        (TURING, torch.float16),
        (NPU_910B, torch.bfloat16),
        (NPU_910A, torch.float16),
    ],
)
def test_auto_dtype_per_device(caps, expected):
    assert choose_dtype(caps, "auto") is expected


def test_explicit_dtype_is_honoured_on_cpu():
    assert choose_dtype(CPU, "bf16") is torch.bfloat16
    assert choose_dtype(CPU, torch.float16) is torch.float16
    assert choose_dtype(CPU, "torch.float32") is torch.float32


def test_float64_refused_on_npu_only():
    with pytest.raises(DeviceError, match="float64"):
        choose_dtype(NPU_910B, "float64")
    assert choose_dtype(CPU, "float64") is torch.float64


def test_bf16_refused_on_pre_ampere_cuda():
    with pytest.raises(DeviceError, match=r"\(7, 5\)"):
        choose_dtype(TURING, "bfloat16")


def test_unknown_dtype_names_the_value():
    with pytest.raises(UsageError, match="'int3'"):
        choose_dtype(CPU, "int3")


@pytest.mark.parametrize("caps", [CPU, MPS, AMPERE, TURING, NPU_910B])
def test_attention_defaults_to_sdpa_everywhere(caps):
    assert choose_attention(caps, torch.float16, "auto") == "sdpa"
    assert choose_attention(caps, torch.float16, "eager") == "eager"


def test_flash_attention_only_where_it_runs():
    assert choose_attention(AMPERE, torch.bfloat16, "flash_attention_2") == "flash_attention_2"
    assert choose_attention(NPU_910A, torch.float16, "flash_attention_2") == "flash_attention_2"
    with pytest.raises(DeviceError, match="not installed"):
        choose_attention(AMPERE_NO_FA, torch.bfloat16, "flash_attention_2")
    with pytest.raises(DeviceError, match="compute capability"):
        choose_attention(TURING, torch.float16, "flash_attention_2")
    with pytest.raises(DeviceError, match="float16 or bfloat16"):
        choose_attention(AMPERE, torch.float32, "flash_attention_2")
    for caps in (CPU, MPS):
        with pytest.raises(DeviceError, match="CUDA or an Ascend NPU"):
            choose_attention(caps, torch.float16, "flash_attention_2")
    with pytest.raises(UsageError, match="'xformers'"):
        choose_attention(CPU, torch.float32, "xformers")


def test_resolve_on_this_machine():
    assert resolve_device("auto") == torch.device("cpu")  # CI has no accelerator
    assert resolve_device("CPU") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "npu:-1", ""])
def test_resolve_rejects_unknown_names(bad):
    with pytest.raises(UsageError):
        resolve_device(bad)


def test_unavailable_devices_give_actionable_errors():
    with pytest.raises(DeviceError, match="CUDA"):
        resolve_device("cuda:1")
    with pytest.raises(DeviceError, match=r"mmkit\[npu\]"):
        resolve_device("npu:0")  # torch_npu is not installed here


def test_plan_device_cpu():
    plan = plan_device("auto")
    assert plan == DevicePlan(torch.device("cpu"), torch.float32, "sdpa")
    assert plan.describe() == "cpu / float32 / sdpa"
