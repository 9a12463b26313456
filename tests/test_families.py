"""Family detection from configs, per-family facts, thinking detection from chat templates."""

import jinja2
import pytest
from transformers import Qwen2_5_VLConfig, Qwen2VLConfig, Qwen3VLConfig, Qwen3VLMoeConfig

from mmkit.exceptions import ModelLoadError, UsageError
from mmkit.understand.families import (
    SUPPORTED_MODEL_TYPES,
    ThinkingMode,
    detect_family,
    family_for_model_type,
    sampling_preset,
    thinking_mode,
)


@pytest.mark.parametrize(
    ("config_class", "name", "patch", "convention"),
    [
        (Qwen2VLConfig, "qwen2_vl", 14, "relative_1000"),
        (Qwen2_5_VLConfig, "qwen2_5_vl", 14, "resized_pixels"),
        (Qwen3VLConfig, "qwen3_vl", 16, "relative_1000"),
        (Qwen3VLMoeConfig, "qwen3_vl_moe", 16, "relative_1000"),
    ],
)
def test_family_from_config(config_class, name, patch, convention):
    family = detect_family(config_class())
    assert family.name == name
    assert family.image_patch_size == patch
    assert family.image_factor == 2 * patch
    assert family.coordinate_convention == convention


def test_family_ignores_the_checkpoint_name():
    config = Qwen3VLConfig()
    config.name_or_path = "someone/Qwen2.5-VL-7B-Instruct-finetune"
    assert detect_family(config, source=config.name_or_path).name == "qwen3_vl"


def test_unknown_model_type_names_it_and_the_supported_ones():
    with pytest.raises(ModelLoadError) as info:
        family_for_model_type("llava", source="my/llava")
    text = str(info.value)
    assert "'llava'" in text and "my/llava" in text
    for supported in ("qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe"):
        assert supported in text
    assert SUPPORTED_MODEL_TYPES == ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe")


def test_grounding_prompts_follow_the_cookbooks():
    qwen25, qwen3 = family_for_model_type("qwen2_5_vl"), family_for_model_type("qwen3_vl")
    assert qwen25.ground_prompt.format(query="cat, dog") == (
        'Locate every instance that belongs to the following categories: "cat, dog". '
        "Report bbox coordinates in JSON format."
    )
    assert qwen3.point_prompt.format(query="the red cup") == (
        "Locate the red cup in this image. Output the point coordinates in JSON format.\n"
        'For example:\n[\n{"point_2d": [x, y], "label": "point_1"}\n]'
    )


def test_sampling_presets():
    qwen3 = family_for_model_type("qwen3_vl_moe")
    assert sampling_preset(qwen3, thinking=True) == {"do_sample": True, "temperature": 0.6, "top_p": 0.95, "top_k": 20}
    assert sampling_preset(qwen3, thinking=False) == {"do_sample": True, "temperature": 0.7, "top_p": 0.8, "top_k": 20}
    preset = sampling_preset(qwen3, thinking=False)
    preset["temperature"] = 0.1  # a fresh dict each time: callers may edit it
    assert qwen3.instruct_preset["temperature"] == 0.7
    assert sampling_preset(family_for_model_type("qwen2_5_vl"), thinking=False) == {}  # generation_config decides


_BASE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content[0].text }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
)
INSTRUCT = _BASE + "{% endif %}"
THINKING = _BASE + "<think>\n{% endif %}"
HYBRID = _BASE + "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"


def _render(template):
    compiled = jinja2.Environment().from_string(template)
    return lambda messages, **kw: compiled.render(messages=messages, add_generation_prompt=True, **kw)


@pytest.mark.parametrize(
    ("template", "default_on", "switchable"),
    [(INSTRUCT, False, False), (THINKING, True, False), (HYBRID, True, True)],
)
def test_thinking_mode_is_read_from_the_template(template, default_on, switchable):
    assert thinking_mode(template, _render(template)) == ThinkingMode(default_on=default_on, switchable=switchable)


def test_thinking_mode_without_template_falls_back_to_the_name():
    assert thinking_mode(None, None, name="Qwen/Qwen3-VL-8B-Thinking").default_on is True
    assert thinking_mode(None, None, name="Qwen/Qwen3-VL-8B-Instruct").default_on is False


def test_thinking_switch_only_where_the_template_has_one():
    hybrid = ThinkingMode(default_on=True, switchable=True)
    assert hybrid.template_kwargs(False) == {"enable_thinking": False}
    assert hybrid.template_kwargs(None) == {}
    thinking_only = ThinkingMode(default_on=True, switchable=False)
    assert thinking_only.template_kwargs(True) == {}  # asking for what it does anyway is fine, no kwarg passed
    with pytest.raises(UsageError, match="always thinks"):
        thinking_only.template_kwargs(False)
    with pytest.raises(UsageError, match="does not think"):
        ThinkingMode(default_on=False, switchable=False).template_kwargs(True)
    with pytest.raises(UsageError):
        hybrid.template_kwargs("yes")
