"""Readable scheduler names ("euler_a", "dpmpp_2m_karras", ...) -> diffusers schedulers.

A scheduler is always built from the checkpoint's own scheduler config (betas, timestep spacing, prediction
type) with `SchedulerClass.from_config(config, **overrides)`, so a name changes only the sampling algorithm,
never the noise schedule the model was trained on. Each name also has the label A1111 writes in its
`Sampler:` field, so PNG metadata stays readable by other tools. This module knows nothing about prompts,
pipelines or results.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import UsageError

__all__ = ["SchedulerSpec", "list_schedulers", "make_scheduler", "scheduler_name_of", "a1111_sampler_name",
           "scheduler_from_a1111"]


@dataclass(frozen=True)
class SchedulerSpec:
    """One readable scheduler name.

    Attributes:
        cls_name: the diffusers scheduler class.
        overrides: config values set on top of the checkpoint's scheduler config.
        a1111: the sampler label A1111 / Forge write in their `parameters` text.
        requires: extra packages the diffusers class needs.
    """

    cls_name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    a1111: str = ""
    requires: tuple[str, ...] = ()

    def available(self) -> bool:
        return all(importlib.util.find_spec(module) is not None for module in self.requires)


_KARRAS_OFF = {"use_karras_sigmas": False}
_SCHEDULERS: dict[str, SchedulerSpec] = {
    "ddim": SchedulerSpec("DDIMScheduler", {}, "DDIM"),
    "ddpm": SchedulerSpec("DDPMScheduler", {}, "DDPM"),
    "pndm": SchedulerSpec("PNDMScheduler", {"skip_prk_steps": True}, "PLMS"),
    "euler": SchedulerSpec("EulerDiscreteScheduler", dict(_KARRAS_OFF), "Euler"),
    "euler_a": SchedulerSpec("EulerAncestralDiscreteScheduler", {}, "Euler a"),
    "heun": SchedulerSpec("HeunDiscreteScheduler", dict(_KARRAS_OFF), "Heun"),
    "lms": SchedulerSpec("LMSDiscreteScheduler", dict(_KARRAS_OFF), "LMS", requires=("scipy",)),
    "dpm2": SchedulerSpec("KDPM2DiscreteScheduler", dict(_KARRAS_OFF), "DPM2"),
    "dpm2_a": SchedulerSpec("KDPM2AncestralDiscreteScheduler", dict(_KARRAS_OFF), "DPM2 a"),
    "dpmpp_2m": SchedulerSpec(
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, **_KARRAS_OFF},
        "DPM++ 2M",
    ),
    "dpmpp_2m_karras": SchedulerSpec(
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
        "DPM++ 2M Karras",
    ),
    "dpmpp_2m_sde": SchedulerSpec(
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, **_KARRAS_OFF},
        "DPM++ 2M SDE",
    ),
    "unipc": SchedulerSpec("UniPCMultistepScheduler", dict(_KARRAS_OFF), "UniPC"),
    "lcm": SchedulerSpec("LCMScheduler", {}, "LCM"),
}


def list_schedulers(*, available_only: bool = True) -> list[str]:
    """The scheduler names `make_scheduler` accepts, sorted.

    Args:
        available_only: leave out names whose extra packages are not installed ("lms" needs scipy).
    """
    return sorted(name for name, spec in _SCHEDULERS.items() if spec.available() or not available_only)


def _spec(name: str) -> SchedulerSpec:
    if not isinstance(name, str) or name.strip().lower() not in _SCHEDULERS:
        close = difflib.get_close_matches(str(name).lower(), list(_SCHEDULERS), n=3, cutoff=0.4)
        hint = f"Did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise UsageError(
            "Unknown scheduler name", received=name, fix=f"{hint}Known: {', '.join(list_schedulers(available_only=False))}"
        )
    return _SCHEDULERS[name.strip().lower()]


def make_scheduler(name: str, base_config: Any):
    """Build the scheduler called `name` from a checkpoint's scheduler config.

    Args:
        name: one of `list_schedulers()`, case-insensitive.
        base_config: the checkpoint's original `pipe.scheduler.config` (keep the one loaded with the
            checkpoint; a config taken from an already-swapped scheduler would carry its overrides along).

    Raises:
        UsageError: unknown name (the message lists the closest matches); a scheduler that cannot keep the
            checkpoint's zero-terminal-SNR schedule (it would silently sample on other betas).
    """
    import diffusers

    spec = _spec(name)
    if not spec.available():
        raise UsageError(
            f"Scheduler {name!r} needs {', '.join(spec.requires)}, which is not installed", received=name,
            fix=f"pip install {' '.join(spec.requires)}, or pick one of {', '.join(list_schedulers())}",
        )
    cls = getattr(diffusers, spec.cls_name)
    if dict(base_config).get("rescale_betas_zero_snr") and not _keeps_zero_snr(cls):
        able = [n for n in list_schedulers() if _keeps_zero_snr(getattr(diffusers, _SCHEDULERS[n].cls_name))]
        raise UsageError(
            f"Scheduler {name!r} cannot sample this checkpoint: it was trained with betas rescaled to zero "
            f"terminal SNR, and {spec.cls_name} has no rescale_betas_zero_snr, so it would run another noise "
            "schedule", received=name, fix=f"pick one of {', '.join(able)}",
        )
    return cls.from_config(base_config, **spec.overrides)


def _keeps_zero_snr(cls) -> bool:
    return "rescale_betas_zero_snr" in inspect.signature(cls.__init__).parameters


def scheduler_name_of(scheduler: Any) -> str | None:
    """The readable name that rebuilds `scheduler`'s algorithm, or None when no name matches exactly."""
    cfg = dict(scheduler.config)
    for name, spec in _SCHEDULERS.items():
        if type(scheduler).__name__ == spec.cls_name and all(
            cfg.get(k, v) == v for k, v in spec.overrides.items() if k != "skip_prk_steps"
        ):
            return name
    return None


def a1111_sampler_name(name: str | None, scheduler: Any = None) -> str:
    """The A1111 `Sampler:` label for a readable name (or, for None, for the scheduler object given)."""
    if name is None and scheduler is not None:
        name = scheduler_name_of(scheduler)
        if name is None:
            return type(scheduler).__name__
    return _spec(name).a1111 if name is not None else "Default"


def scheduler_from_a1111(sampler: str, schedule_type: str | None = None) -> str | None:
    """The readable name for an A1111 `Sampler:` label (plus its newer `Schedule type:` field), or None."""
    label = sampler.strip()
    if schedule_type and schedule_type.strip().lower() == "karras" and not label.lower().endswith("karras"):
        label = f"{label} Karras"
    for name, spec in _SCHEDULERS.items():
        if spec.a1111.lower() == label.lower():
            return name
    return None
