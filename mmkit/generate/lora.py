"""LoRA adapters on a Stable Diffusion (1.5 / XL) pipeline: load, weigh, enable/disable, fuse, unload, list.

Owns: which weight file of a LoRA source to read (the source rules themselves are `sources`'), the
bookkeeping diffusers leaves to the caller (which adapters are loaded, from where, at which weight, fused or not),
and one check diffusers/peft do not make: that every key of the file landed in a module.

What diffusers 0.42 / peft 0.21 do with keys that match nothing (read in `diffusers/loaders/peft.py`,
`diffusers/utils/peft_utils.py::_maybe_warn_for_unhandled_keys`, `diffusers/loaders/lora_base.py`):
keys under an unknown component prefix are dropped by the `prefix` filter with at most a warning; UNet modules
that do not exist are skipped by peft's injection and their weights end up as "unexpected keys", which are only
logged (a warning by design, huggingface/diffusers#9622); a `lora_A` without its `lora_B` leaves B at peft's
zero init. The adapter then loads partially and silently. `LoraSet.load` therefore converts the state dict the
way diffusers does, loads it, compares the modules that received the adapter with the modules the file names, and
on any difference deletes the adapter again and raises `ModelLoadError` naming the keys.

Everything else is diffusers: `load_lora_weights` (diffusers and kohya-ss layouts), `set_adapters`,
`enable_lora`/`disable_lora`, `fuse_lora`/`unfuse_lora`, `delete_adapters`, `unload_lora_weights`. Two diffusers
rules this module enforces: after loading a second adapter only the last is active until `set_adapters` is called,
so every change re-applies the weights of all loaded adapters; and fused weights cannot be re-weighted or
disabled, so those calls ask for `unfuse()` first. This module knows nothing about prompts, schedulers or images.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import ModelLoadError, UsageError
from ..loading_bars import without_loading_bars
from .quiet_logs import without_adapter_load_report
from .sources import PICKLE_SUFFIXES, Source, resolve_source, unavailable, use_safetensors, weight_files

__all__ = ["LoraInfo", "LoraSet"]

_ADAPTER_NAME = re.compile(r"^[A-Za-z_][\w-]*$")  # peft stores adapters in ModuleDicts: no dots
_LORA_KEY = re.compile(r"^(?P<module>.+?)\.lora_(?:embedding_)?(?P<kind>A|B|magnitude_vector)(?:\.|$)")
_DEFAULT_WEIGHT_FILE = "pytorch_lora_weights.safetensors"  # what save_lora_weights writes
_SHOWN_KEYS = 5


@dataclass(frozen=True)
class LoraInfo:
    """One loaded adapter.

    Attributes:
        name: the adapter name (peft adapter name).
        source: where it was loaded from, as given.
        weight: its current weight in `set_adapters`.
        fused: whether its update is currently merged into the base weights.
    """

    name: str
    source: str
    weight: float
    fused: bool


def _key_list(keys: list[str]) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_SHOWN_KEYS])
    more = f" and {len(keys) - _SHOWN_KEYS} more" if len(keys) > _SHOWN_KEYS else ""
    return f"{len(keys)} key(s): {shown}{more}"


def _check_weight(weight: Any, name: str) -> float:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
        raise UsageError(f"LoRA weight for {name!r} must be a finite number", received=weight,
                         fix="Pass a float such as 0.8; 0 switches the adapter off without unloading it")
    return float(weight)


def _weight_location(found: Source, allow_pickle: bool) -> tuple[str, dict[str, Any]]:
    """(argument for diffusers' `lora_state_dict` / `load_lora_weights`, keyword arguments)."""
    kwargs: dict[str, Any] = {"use_safetensors": use_safetensors(allow_pickle)}
    if found.kind == "hub":
        return found.text, kwargs
    if found.kind == "file":
        if found.path.suffix != ".safetensors" and found.path.suffix.lower() not in PICKLE_SUFFIXES:
            raise UsageError("LoRA file must be a .safetensors file", received=found.text,
                             fix="Pass a .safetensors LoRA file or the folder holding it")
        return str(found.path.parent), {**kwargs, "weight_name": found.path.name}
    files = weight_files(found.path, allow_pickle=allow_pickle, what="LoRA folder")
    names = [p.name for p in files]
    if _DEFAULT_WEIGHT_FILE in names or len(names) == 1:
        return str(found.path), {**kwargs, "weight_name": _DEFAULT_WEIGHT_FILE if _DEFAULT_WEIGHT_FILE in names else names[0]}
    if len(names) > 1:
        raise UsageError("LoRA folder holds several weight files", received=names,
                         fix="Pass the path of the one file to load")
    raise ModelLoadError("No LoRA weight file found in folder", received=found.text,
                         fix="Pass a folder with one .safetensors file, or the file itself")


def _component_peft_keys(pipe: Any, component: str, sub: dict[str, Any]) -> dict[str, Any]:
    """The peft-format keys diffusers feeds to `component` (mirrors load_lora_into_unet / _text_encoder)."""
    from diffusers.utils import (
        convert_state_dict_to_diffusers,
        convert_state_dict_to_peft,
        convert_unet_state_dict_to_peft,
    )

    if component == "unet":  # diffusers/loaders/peft.py: the first key decides whether to convert
        return sub if "lora_A" in next(iter(sub)) else convert_unet_state_dict_to_peft(sub)
    sub = convert_state_dict_to_peft(convert_state_dict_to_diffusers(sub))
    if not hasattr(getattr(pipe, component), "text_model"):  # lora_base._load_lora_into_text_encoder
        sub = {k.removeprefix("text_model."): v for k, v in sub.items()}
    return sub


def _expected_modules(pipe: Any, state_dict: dict[str, Any]) -> tuple[dict[str, set[str]], list[str]]:
    """({component: module names the file targets}, keys that cannot land anywhere)."""
    loadable = [c for c in getattr(pipe, "_lora_loadable_modules", []) if getattr(pipe, c, None) is not None]
    bad = [k for k in state_dict if "lora" not in k or k.split(".", 1)[0] not in loadable]
    expected: dict[str, set[str]] = {}
    for component in loadable:
        sub = {k[len(component) + 1:]: v for k, v in state_dict.items() if k.startswith(component + ".")}
        if not sub:
            continue
        parts: dict[str, set[str]] = {}
        for key in _component_peft_keys(pipe, component, sub):
            match = _LORA_KEY.match(key)
            if match is None:
                bad.append(f"{component}.{key}")
                continue
            parts.setdefault(match["module"], set()).add(match["kind"])
        for module, kinds in parts.items():
            if not {"A", "B"} <= kinds:  # half a pair leaves peft's init (B = 0) in place
                bad.append(f"{component}.{module}.lora_{'B' if 'A' in kinds else 'A'} (missing)")
        expected[component] = set(parts)
    return expected, bad


def _received_modules(model: Any, adapter: str) -> set[str]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return {
        name
        for name, module in model.named_modules()
        if isinstance(module, BaseTunerLayer)
        and (adapter in getattr(module, "lora_A", {}) or adapter in getattr(module, "lora_embedding_A", {}))
    }


class LoraSet:
    """The LoRA adapters loaded into one diffusers pipeline, with their sources, weights and fused state.

    Every loaded adapter stays active at its own weight (diffusers' `set_adapters` is re-applied after each
    change). Pipelines built with `from_pipe` (ControlNet, img2img) share the UNet and text encoders, so they
    see the same adapters.

    Args:
        pipe: a diffusers Stable Diffusion 1.5 or XL pipeline (anything with diffusers' LoRA loader mixin).

    Example:
        ```py
        loras = LoraSet(pipe)
        loras.load("style.safetensors", name="style", weight=0.8)
        loras.set_weights({"style": 0.5})
        loras.fuse()
        ```
    """

    def __init__(self, pipe: Any, *, progress: bool = True) -> None:
        if not hasattr(pipe, "load_lora_weights"):
            raise UsageError("This pipeline cannot load LoRA adapters", received=type(pipe).__name__,
                             fix="Pass a diffusers Stable Diffusion 1.5 / XL pipeline")
        self._pipe = pipe
        self._progress = progress  # False: no library loading bars while adapters load
        self._sources: dict[str, str] = {}
        self._weights: dict[str, float] = {}
        self._fused = False
        self._enabled = True

    # 1. loading

    def load(
        self, source: str | Path, *, name: str | None = None, weight: float = 1.0, allow_pickle: bool = False
    ) -> str:
        """Load one LoRA (diffusers or kohya-ss layout) and keep every loaded adapter active at its weight.

        Args:
            source: a `.safetensors` file, a folder holding one (or `pytorch_lora_weights.safetensors`), or a
                hub id.
            name: the adapter name; defaults to the file name without extension.
            weight: the adapter's weight (1.0 = as trained, 0 = no effect).
            allow_pickle: also accept `.bin`/`.pt`/`.ckpt` pickle files (they can run code when loaded).

        Returns:
            The adapter name.

        Raises:
            UsageError: duplicate or invalid name, bad weight, or adapters currently fused.
            UnsafeSourceError: a pickle file without `allow_pickle=True`.
            ModelLoadError: the file cannot be read, or some of its keys match no module (the keys are named and
                nothing stays loaded).
        """
        if self._fused:
            raise UsageError("Cannot load a LoRA while adapters are fused", received=sorted(self._weights),
                             fix="Call unfuse() first, load, then fuse() again")
        found = resolve_source(source, allow_pickle=allow_pickle, what="LoRA")
        argument, kwargs = _weight_location(found, allow_pickle)
        name = self._new_name(source, name)
        weight = _check_weight(weight, name)
        try:
            state_dict = self._pipe.lora_state_dict(argument, **self._state_dict_kwargs(kwargs))[0]
        except (OSError, ValueError, RuntimeError) as error:
            raise unavailable(error, source=found, what=f"LoRA {name!r}",
                              fix="Check that the file is a diffusers or kohya-ss LoRA in safetensors") from error
        expected, bad = _expected_modules(self._pipe, state_dict)
        if bad:
            raise self._key_error(name, source, bad)
        self._load_checked(name, source, argument, kwargs, expected)
        self._sources[name] = str(source)
        self._weights[name] = weight
        self._apply()
        return name

    def _state_dict_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        from diffusers.loaders import StableDiffusionXLLoraLoaderMixin

        # what load_lora_weights passes: the SDXL loader maps kohya's sgm block names with the UNet config
        if isinstance(self._pipe, StableDiffusionXLLoraLoaderMixin):
            return {**kwargs, "unet_config": self._pipe.unet.config}
        return kwargs

    def _new_name(self, source: str | Path, name: str | None) -> str:
        name = Path(str(source)).stem if name is None else name
        if not isinstance(name, str) or not _ADAPTER_NAME.match(name):
            raise UsageError("Adapter name must start with a letter or _ and hold only letters, digits, _ or -",
                             received=name, fix="Pass name='my_style'")
        if name in self._weights:
            raise UsageError(f"An adapter named {name!r} is already loaded", received=name,
                             fix="Pass another name=..., or unload(name) first")
        return name

    def _key_error(self, name: str, source: str | Path, keys: list[str]) -> ModelLoadError:
        return ModelLoadError(f"LoRA {name!r} has keys that match no module of this pipeline: {_key_list(keys)}",
                              received=str(source), fix="Use a LoRA trained for this model family (SD 1.5 vs SDXL) "
                              "in diffusers or kohya-ss layout")

    def _load_checked(self, name: str, source, argument: str, kwargs: dict, expected: dict[str, set[str]]) -> None:
        try:
            with without_adapter_load_report(), without_loading_bars(not self._progress):
                self._pipe.load_lora_weights(argument, adapter_name=name, **kwargs)
        except (OSError, ValueError, RuntimeError, KeyError) as error:
            self._drop_partial(name)
            raise ModelLoadError(f"Could not load LoRA {name!r}: {error}", received=str(source),
                                 fix="Use a LoRA for this model family in diffusers or kohya-ss layout") from error
        bad = []
        for component, modules in expected.items():
            received = _received_modules(getattr(self._pipe, component), name)
            bad += [f"{component}.{m}.lora_A.weight" for m in sorted(modules - received)]
            bad += [f"{component}.{m} (no weights in file)" for m in sorted(received - modules)]
        if bad:
            self._drop_partial(name)
            raise self._key_error(name, source, bad)

    def _drop_partial(self, name: str) -> None:
        if any(name in names for names in self._pipe.get_list_adapters().values()):
            self._pipe.delete_adapters(name)
        self._apply()

    def _apply(self) -> None:
        """Activate every loaded adapter at its weight (diffusers activates only the last loaded otherwise)."""
        if self._weights:
            self._pipe.set_adapters(list(self._weights), adapter_weights=list(self._weights.values()))
            if not self._enabled:
                self._pipe.disable_lora()

    # 2. weights and switches

    def set_weights(self, weights: dict[str, float]) -> None:
        """Change the weights of loaded adapters; adapters not named keep theirs.

        Args:
            weights: `{adapter name: weight}`.
        """
        self._refuse_when_fused("change weights")
        unknown = sorted(set(weights) - set(self._weights))
        if unknown:
            raise UsageError(f"No loaded adapter named {unknown}", received=unknown,
                             fix=f"Loaded adapters: {sorted(self._weights)}")
        checked = {name: _check_weight(value, name) for name, value in weights.items()}
        self._weights.update(checked)
        self._apply()

    def enable(self) -> None:
        """Switch the loaded adapters back on after `disable()`."""
        self._enabled = True
        if self._weights:
            self._pipe.enable_lora()
            self._apply()

    def disable(self) -> None:
        """Switch every adapter off (the pipeline then runs as the base model); weights are kept."""
        self._refuse_when_fused("disable adapters")
        self._enabled = False
        if self._weights:
            self._pipe.disable_lora()

    def fuse(self) -> None:
        """Merge the active adapters, at their weights, into the base weights (faster inference)."""
        if not self._weights:
            raise UsageError("No LoRA loaded to fuse", fix="Call load(...) first")
        self._refuse_when_fused("fuse again")
        if not self._enabled:
            raise UsageError("Adapters are disabled; fusing them would merge nothing",
                             fix="Call enable() first")
        self._pipe.fuse_lora(adapter_names=list(self._weights))
        self._fused = True

    def unfuse(self) -> None:
        """Undo `fuse()`: restore the base weights (to float rounding) and run the adapters unmerged again."""
        if not self._fused:
            raise UsageError("Adapters are not fused", fix="Call fuse() first")
        self._pipe.unfuse_lora()
        self._fused = False

    def _refuse_when_fused(self, action: str) -> None:
        if self._fused:
            raise UsageError(f"Cannot {action} while adapters are fused into the base weights",
                             received=sorted(self._weights), fix="Call unfuse() first")

    # 3. unloading and listing

    def unload(self, name: str | None = None) -> None:
        """Remove one adapter, or all of them (restoring the base model exactly and re-enabling LoRA).

        Fused adapters are unfused first, so the base weights come back (within float rounding for the
        unfused parameters).

        Args:
            name: the adapter to remove; `None` removes all.
        """
        if name is not None and name not in self._weights:
            raise UsageError(f"No loaded adapter named {name!r}", received=name,
                             fix=f"Loaded adapters: {sorted(self._weights)}")
        if self._fused:
            self.unfuse()
        if name is None:
            self._pipe.unload_lora_weights()
            self._sources.clear()
            self._weights.clear()
            self._enabled = True  # a fresh start: the next adapter loads enabled
            return
        self._pipe.delete_adapters(name)
        del self._sources[name], self._weights[name]
        self._apply()

    def list(self) -> list[LoraInfo]:
        """The loaded adapters in load order."""
        return [
            LoraInfo(name=name, source=self._sources[name], weight=weight, fused=self._fused)
            for name, weight in self._weights.items()
        ]

    @property
    def enabled(self) -> bool:
        """False after `disable()` until `enable()`."""
        return self._enabled
