"""Which device, dtype and attention backend a model runs with.

`plan_device("auto")` resolves CUDA -> Ascend NPU -> MPS -> CPU and returns a `DevicePlan` with the dtype
and attention implementation this project's policy picks for that device:

- dtype: bfloat16 where the device runs it natively (CUDA compute capability >= 8.0, Ascend 910B-class
  NPUs), float16 on older CUDA / NPU and on MPS, float32 on CPU unless the caller asks otherwise;
  float64 is refused on NPU (the hardware has no float64 matmul).
- attention: "sdpa" by default everywhere. "flash_attention_2" only when asked and usable (flash-attn
  installed on CUDA >= 8.0 with a half dtype, or an NPU, where transformers routes it to the NPU fused
  attention). "eager" always works.

The policy functions take a `DeviceCapabilities` value so each rule is unit-tested for every device kind
without the hardware. torch_npu is imported only when an NPU is asked for or probed. This module knows
nothing about models.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Literal

import torch

from .exceptions import DeviceError, UsageError

__all__ = [
    "DeviceKind",
    "DeviceCapabilities",
    "DevicePlan",
    "resolve_device",
    "probe_capabilities",
    "choose_dtype",
    "choose_attention",
    "plan_device",
]

DeviceKind = Literal["cuda", "npu", "mps", "cpu"]
AttentionName = Literal["sdpa", "eager", "flash_attention_2"]

_DTYPE_NAMES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float64": torch.float64,
    "fp64": torch.float64,
}


@dataclass(frozen=True)
class DeviceCapabilities:
    """What the policy needs to know about one device.

    Attributes:
        kind: the device family.
        index: the device ordinal (None for CPU / MPS).
        bf16: whether the device runs bfloat16 natively.
        cuda_capability: (major, minor) for CUDA devices, else None.
        flash_attn_installed: whether the `flash_attn` package can be imported.
    """

    kind: DeviceKind
    index: int | None = None
    bf16: bool = False
    cuda_capability: tuple[int, int] | None = None
    flash_attn_installed: bool = False

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.kind if self.index is None else f"{self.kind}:{self.index}")


@dataclass(frozen=True)
class DevicePlan:
    """The device, dtype and attention backend one model is loaded with."""

    device: torch.device
    dtype: torch.dtype
    attn_implementation: AttentionName

    def describe(self) -> str:
        return f"{self.device} / {str(self.dtype).removeprefix('torch.')} / {self.attn_implementation}"


def _import_torch_npu(required: bool) -> bool:
    """Import torch_npu (it registers `torch.npu`). Returns False when absent and not required."""
    if hasattr(torch, "npu") and getattr(torch.npu, "is_available", None) is not None:
        return True
    if importlib.util.find_spec("torch_npu") is None:
        if required:
            raise DeviceError(
                "An Ascend NPU was requested but torch_npu is not installed",
                received="npu",
                fix="Install the NPU extra: pip install 'mmkit[npu]' (torch_npu matching your CANN version)",
            )
        return False
    try:
        importlib.import_module("torch_npu")
    except Exception as err:  # torch_npu raises many kinds of errors when CANN is missing
        if required:
            raise DeviceError(
                f"torch_npu is installed but failed to import: {err}",
                received="npu",
                fix="Check that the CANN toolkit is installed and sourced (set_env.sh)",
            ) from err
        return False
    return True


def _npu_available(required: bool = False) -> bool:
    return _import_torch_npu(required) and bool(torch.npu.is_available())  # type: ignore[attr-defined]


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn "auto", "cuda", "cuda:1", "npu:0", "mps" or "cpu" into a concrete, available `torch.device`.

    "auto" picks CUDA, then Ascend NPU, then MPS, then CPU.

    Raises:
        UsageError: the string is not a device name.
        DeviceError: the device is not available here (the message says what to install or pick).
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise UsageError("device must be a string such as 'auto', 'cpu', 'cuda:0' or 'npu:0'", received=device)
    name = device.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _npu_available(required=False):
            return torch.device("npu", torch.npu.current_device())  # type: ignore[attr-defined]
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind, _, index_text = name.partition(":")
    if kind not in ("cuda", "npu", "mps", "cpu") or (index_text and not index_text.isdigit()):
        raise UsageError(
            "Unknown device", received=device, fix="Use 'auto', 'cpu', 'mps', 'cuda', 'cuda:N', 'npu' or 'npu:N'"
        )
    index = int(index_text) if index_text else None
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "mps":
        if not _mps_available():
            raise DeviceError("MPS was requested but is not available", received=device, fix="Use device='auto'")
        return torch.device("mps")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                "CUDA was requested but no CUDA device is visible to this torch build",
                received=device,
                fix="Install a CUDA build of torch, check CUDA_VISIBLE_DEVICES, or use device='auto'",
            )
        count = torch.cuda.device_count()
    else:
        if not _npu_available(required=True):
            raise DeviceError("torch_npu is installed but reports no NPU", received=device, fix="Check npu-smi info")
        count = torch.npu.device_count()  # type: ignore[attr-defined]
    index = 0 if index is None else index
    if index >= count:
        raise DeviceError(f"Only {count} {kind} device(s) are visible", received=device, fix=f"Use {kind}:0..{count - 1}")
    return torch.device(kind, index)


def probe_capabilities(device: torch.device) -> DeviceCapabilities:
    """Read the capabilities the policy needs from a resolved device."""
    flash = importlib.util.find_spec("flash_attn") is not None
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        return DeviceCapabilities("cuda", index, bf16=major >= 8, cuda_capability=(major, minor), flash_attn_installed=flash)
    if device.type == "npu":
        _import_torch_npu(required=True)
        index = device.index if device.index is not None else 0
        bf16_check = getattr(torch.npu, "is_bf16_supported", None)  # type: ignore[attr-defined]
        return DeviceCapabilities("npu", index, bf16=bool(bf16_check()) if bf16_check else False)
    if device.type == "mps":
        return DeviceCapabilities("mps")
    return DeviceCapabilities("cpu", bf16=True)


def _parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype.lower().removeprefix("torch.") in _DTYPE_NAMES:
        return _DTYPE_NAMES[dtype.lower().removeprefix("torch.")]
    raise UsageError("Unknown dtype", received=dtype, fix="Use 'auto', 'float32', 'bfloat16' or 'float16'")


def choose_dtype(caps: DeviceCapabilities, requested: str | torch.dtype = "auto") -> torch.dtype:
    """The dtype a model runs in on this device.

    "auto": bf16 on CUDA >= 8.0 and bf16-capable NPUs, fp16 on older CUDA / NPU and on MPS, fp32 on CPU.
    An explicit dtype is honoured, except float64 on NPU (refused) and bf16 on CUDA < 8.0 (refused:
    it would be emulated and slow).
    """
    if isinstance(requested, str) and requested.lower() == "auto":
        if caps.kind in ("cuda", "npu"):
            return torch.bfloat16 if caps.bf16 else torch.float16
        if caps.kind == "mps":
            return torch.float16
        return torch.float32
    dtype = _parse_dtype(requested)
    if caps.kind == "npu" and dtype == torch.float64:
        raise DeviceError("float64 is not supported on Ascend NPUs", received=str(dtype), fix="Use 'auto' or 'float32'")
    if caps.kind == "cuda" and dtype == torch.bfloat16 and not caps.bf16:
        raise DeviceError(
            f"bfloat16 needs CUDA compute capability >= 8.0; this GPU has {caps.cuda_capability}",
            received="bfloat16",
            fix="Use dtype='float16' or 'auto'",
        )
    return dtype


def choose_attention(
    caps: DeviceCapabilities, dtype: torch.dtype, requested: str = "auto"
) -> AttentionName:
    """The transformers `attn_implementation` for this device.

    "auto" is "sdpa" on every device. "flash_attention_2" is accepted only where it runs: CUDA with
    compute capability >= 8.0, flash-attn installed and a half dtype; or an Ascend NPU (transformers maps
    it to torch_npu's fused attention). "eager" is always accepted.
    """
    if requested == "auto" or requested == "sdpa":
        return "sdpa"
    if requested == "eager":
        return "eager"
    if requested != "flash_attention_2":
        raise UsageError(
            "Unknown attention implementation", received=requested, fix="Use 'auto', 'sdpa', 'eager' or 'flash_attention_2'"
        )
    if caps.kind == "npu":
        return "flash_attention_2"
    if caps.kind != "cuda":
        raise DeviceError(f"flash_attention_2 needs CUDA or an Ascend NPU, not {caps.kind}", received=requested, fix="Use 'sdpa'")
    if not caps.flash_attn_installed:
        raise DeviceError("flash_attention_2 was requested but flash-attn is not installed", received=requested, fix="pip install flash-attn, or use 'sdpa'")
    if caps.cuda_capability is None or caps.cuda_capability < (8, 0):
        raise DeviceError(
            f"flash_attention_2 needs compute capability >= 8.0; this GPU has {caps.cuda_capability}",
            received=requested,
            fix="Use 'sdpa'",
        )
    if dtype not in (torch.float16, torch.bfloat16):
        raise DeviceError("flash_attention_2 runs only in float16 or bfloat16", received=str(dtype), fix="Pass dtype='auto'")
    return "flash_attention_2"


def plan_device(
    device: str | torch.device = "auto", dtype: str | torch.dtype = "auto", attention: str = "auto"
) -> DevicePlan:
    """Resolve a device and apply the dtype and attention policy to it."""
    resolved = resolve_device(device)
    caps = probe_capabilities(resolved)
    chosen = choose_dtype(caps, dtype)
    return DevicePlan(resolved, chosen, choose_attention(caps, chosen, attention))
