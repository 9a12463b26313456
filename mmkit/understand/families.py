"""Which Qwen-VL family a checkpoint belongs to, and the facts mmkit keeps per family.

The family is read from the loaded config's `model_type`, never from the checkpoint's name: a fine-tune
saved as "my-detector" is still a "qwen2_5_vl". Per family this module holds the vision patch size, the
grounding coordinate convention, known-good grounding / pointing prompts (from the Qwen cookbooks and the
Qwen3-VL technical report), the recommended sampling presets and the check of the sampling settings a
caller lays over them.

Whether a checkpoint *thinks* is read from its chat template (`thinking_mode`): Qwen3-VL "Thinking"
checkpoints open `<think>` in the generation prompt; hybrid templates expose an `enable_thinking` switch.

This module knows nothing about media loading or generation loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..exceptions import ModelLoadError, UsageError

__all__ = [
    "FamilyName",
    "Family",
    "ThinkingMode",
    "SUPPORTED_MODEL_TYPES",
    "family_for_model_type",
    "detect_family",
    "thinking_mode",
    "sampling_preset",
    "SAMPLING_KEYS",
    "check_sampling",
]

FamilyName = Literal["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe"]

# Qwen2.5-VL cookbook (spatial_understanding) and Qwen3-VL cookbook (2d_grounding): the same categories prompt.
_GROUND_CATEGORIES = (
    'Locate every instance that belongs to the following categories: "{query}". '
    "Report bbox coordinates in JSON format."
)
# Qwen3-VL technical report, appendix B.6 (RoboSpatial / RefSpatial): points as JSON with an example.
_POINT_JSON = (
    "Locate {query} in this image. Output the point coordinates in JSON format.\n"
    "For example:\n"
    "[\n"
    '{{"point_2d": [x, y], "label": "point_1"}}\n'
    "]"
)

# Recommended sampling (Qwen3-VL model cards). Qwen2/2.5-VL: the checkpoint's own generation_config.json.
_QWEN3_INSTRUCT = {"do_sample": True, "temperature": 0.7, "top_p": 0.8, "top_k": 20}
_QWEN3_THINKING = {"do_sample": True, "temperature": 0.6, "top_p": 0.95, "top_k": 20}


@dataclass(frozen=True)
class Family:
    """Facts mmkit keeps about one Qwen-VL family.

    Attributes:
        name: the family, equal to the config's `model_type`.
        display_name: a readable name for messages and reprs.
        image_patch_size: vision patch size in pixels (14 for Qwen2/2.5-VL, 16 for Qwen3-VL); images are
            resized to multiples of `image_patch_size * 2`.
        ground_prompt: prompt template with a `{query}` slot that asks for `bbox_2d` JSON.
        point_prompt: prompt template with a `{query}` slot that asks for `point_2d` JSON.
        instruct_preset: sampling defaults for instruction-tuned checkpoints (empty: the checkpoint's own
            generation_config decides).
        thinking_preset: sampling defaults for checkpoints that think.
        timestamps_in_prompt: whether video prompts carry `<t seconds>` text per temporal patch (Qwen3-VL)
            rather than only time-aware position ids (Qwen2.5-VL).
    """

    name: FamilyName
    display_name: str
    image_patch_size: int
    ground_prompt: str = _GROUND_CATEGORIES
    point_prompt: str = _POINT_JSON
    instruct_preset: dict[str, Any] = field(default_factory=dict)
    thinking_preset: dict[str, Any] = field(default_factory=dict)
    timestamps_in_prompt: bool = False

    @property
    def coordinate_convention(self) -> str:
        """How this family's raw box numbers are meant ("resized_pixels" or "relative_1000")."""
        from .grounding import convention_for

        return convention_for(self.name)

    @property
    def image_factor(self) -> int:
        """Images are resized to multiples of this many pixels (patch size x spatial merge 2)."""
        return self.image_patch_size * 2


_FAMILIES: dict[str, Family] = {
    "qwen2_vl": Family("qwen2_vl", "Qwen2-VL", 14),
    "qwen2_5_vl": Family("qwen2_5_vl", "Qwen2.5-VL", 14),
    "qwen3_vl": Family(
        "qwen3_vl", "Qwen3-VL", 16, instruct_preset=_QWEN3_INSTRUCT, thinking_preset=_QWEN3_THINKING,
        timestamps_in_prompt=True,
    ),
    "qwen3_vl_moe": Family(
        "qwen3_vl_moe", "Qwen3-VL-MoE", 16, instruct_preset=_QWEN3_INSTRUCT, thinking_preset=_QWEN3_THINKING,
        timestamps_in_prompt=True,
    ),
}

SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(_FAMILIES)


def family_for_model_type(model_type: str | None, *, source: str = "") -> Family:
    """The `Family` for a config `model_type`.

    Raises:
        ModelLoadError: the model type is not a supported Qwen-VL family.
    """
    family = _FAMILIES.get(model_type or "")
    if family is None:
        where = f" of {source}" if source else ""
        raise ModelLoadError(
            f"The config{where} has model_type {model_type!r}, which mmkit.understand does not support",
            received=model_type,
            fix=f"Load a checkpoint whose config.json model_type is one of {', '.join(SUPPORTED_MODEL_TYPES)}",
        )
    return family


def detect_family(config: Any, *, source: str = "") -> Family:
    """The `Family` of a loaded transformers config (read from `config.model_type`, never the name)."""
    return family_for_model_type(getattr(config, "model_type", None), source=source)


@dataclass(frozen=True)
class ThinkingMode:
    """How a checkpoint's chat template handles thinking.

    Attributes:
        default_on: the generation prompt opens `<think>` (or the model thinks) when nothing is asked.
        switchable: the template reads an `enable_thinking` variable (Qwen3 hybrid templates), so
            `thinking=True/False` can be honoured per call.
    """

    default_on: bool
    switchable: bool

    def template_kwargs(self, thinking: bool | None) -> dict[str, Any]:
        """Chat-template kwargs for a call's `thinking=` value.

        Raises:
            UsageError: thinking was asked to be on/off but this checkpoint cannot switch it.
        """
        if thinking is None:
            return {}
        if not isinstance(thinking, bool):
            raise UsageError("thinking must be True, False or None", received=thinking, fix="Pass a bool or None")
        if self.switchable:
            return {"enable_thinking": thinking}
        if thinking != self.default_on:
            kind = "a Thinking checkpoint that always thinks" if self.default_on else "a checkpoint that does not think"
            other = "an Instruct" if self.default_on else "a Thinking"
            raise UsageError(
                f"This is {kind}; its chat template has no enable_thinking switch",
                received=thinking,
                fix=f"Leave thinking=None, or load {other} checkpoint of the same family",
            )
        return {}


_PROBE = [{"role": "user", "content": [{"type": "text", "text": "probe"}]}]


def _opens_think(prompt: str) -> bool:
    tail = prompt.rsplit("<|im_start|>assistant", 1)[-1]
    return "<think>" in tail and "</think>" not in tail


def thinking_mode(chat_template: str | None, render: Any, *, config: Any = None, name: str = "") -> ThinkingMode:
    """Read a checkpoint's thinking behaviour from its chat template.

    Args:
        chat_template: the template source (used to see whether it reads `enable_thinking`).
        render: `render(messages, **template_kwargs) -> str`, the processor's apply_chat_template with
            `tokenize=False, add_generation_prompt=True`.
        config / name: fallbacks when there is no template: a config or name that says "thinking".
    """
    if not chat_template:
        hint = f"{name} {getattr(config, 'name_or_path', '')}".lower()
        return ThinkingMode(default_on="thinking" in hint, switchable=False)
    switchable = "enable_thinking" in chat_template
    default_prompt = render(_PROBE)
    default_on = _opens_think(default_prompt)
    if switchable and not default_on:
        # Hybrid (Qwen3) templates let the model open <think> itself and insert an empty think block only
        # when told enable_thinking=False: if switching off changes the prompt, the default is "on".
        default_on = render(_PROBE, enable_thinking=False) != default_prompt
    return ThinkingMode(default_on=default_on, switchable=switchable)


def sampling_preset(family: Family, thinking: bool) -> dict[str, Any]:
    """The family's recommended sampling kwargs for a thinking or non-thinking call (a fresh dict)."""
    return dict(family.thinking_preset if thinking else family.instruct_preset)


SAMPLING_KEYS: tuple[str, ...] = ("do_sample", "temperature", "top_p", "top_k", "repetition_penalty", "min_p")
"""The sampling settings a caller may lay over a preset (transformers `generate` names)."""


def check_sampling(values: dict[str, Any], where: str) -> None:
    """Refuse sampling settings `generate` would misread; `None` values mean "not set" and pass.

    Args:
        values: settings keyed by `SAMPLING_KEYS` names.
        where: the argument or call they came from, named in the error ("generation", "chat").

    Raises:
        UsageError: not a dict, an unknown key, a non-bool `do_sample`, a negative or non-numeric value, or
            `top_p` outside (0, 1].
    """
    if not isinstance(values, dict):
        raise UsageError(f"{where}: generation settings must be a dict", received=values)
    for key, value in values.items():
        if key not in SAMPLING_KEYS:
            raise UsageError(f"{where}: unknown generation setting {key!r}", received=key, fix=f"Use {list(SAMPLING_KEYS)}")
        if value is None:
            continue
        if key == "do_sample":
            if not isinstance(value, bool):
                raise UsageError(f"{where}: do_sample must be a bool", received=value)
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise UsageError(f"{where}: {key} must be a non-negative number", received=value)
        elif key == "top_p" and not 0 < value <= 1:
            raise UsageError(f"{where}: top_p must be in (0, 1]", received=value)
