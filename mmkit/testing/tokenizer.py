"""A tiny Qwen-style tokenizer for tests, built offline in well under a second.

Owns: a byte-level BPE trained with the `tokenizers` library on a small built-in English + Chinese corpus,
Qwen's special and added tokens in Qwen's order, and the official chat templates of Qwen2.5-VL-Instruct,
Qwen3-VL-Instruct and Qwen3-VL-Thinking, wrapped as transformers' `Qwen2Tokenizer` (the class the real
checkpoints load as). It knows nothing about models, processors or files beyond the tokenizer itself.

The vocabulary is small (a few hundred merges), so token ids differ from the real Qwen ones; everything that
reads ids from the tokenizer or from a config built beside it (image/video token ids, eos ids) stays consistent.
"""
from __future__ import annotations

import json
from typing import Literal

from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer

__all__ = [
    "QWEN2_5_VL_CHAT_TEMPLATE",
    "QWEN3_VL_INSTRUCT_CHAT_TEMPLATE",
    "QWEN3_VL_THINKING_CHAT_TEMPLATE",
    "QWEN_SPECIAL_TOKENS",
    "QWEN_ADDED_TOKENS",
    "build_qwen_tokenizer",
]

TemplateName = Literal["qwen2_5_vl", "qwen3_vl_instruct", "qwen3_vl_thinking"]

# Qwen's pre-tokenizer regex (same string as transformers' models/qwen2/tokenization_qwen2.py PRETOKENIZE_REGEX).
_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Qwen2.5 / Qwen3 tokenizer_config.json `added_tokens_decoder`, ids 151643.. in this order. The `<|...|>` tokens
# are special (skipped by `skip_special_tokens`); the XML-like ones are plain added tokens (special=false).
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# 151657.. : `<tool_call>`, `</tool_call>`, the fim/repo tokens (special in the real config) and, from Qwen3 on,
# `<tool_response>`, `</tool_response>`, `<think>`, `</think>` (special=false).
QWEN_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
)
_QWEN2_5_LAST_ADDED = "<|file_sep|>"  # Qwen2.5-VL's vocabulary ends here (no tool_response / think tokens)

# Built-in training corpus: the words, digits and punctuation tests and demos print or parse.
_CORPUS_EN = """
You are a helpful assistant. Describe this image. Describe this video. What is in the picture?
The image shows a red circle, a green square, a blue triangle, a yellow star, a white background.
Colours: red green blue yellow orange purple pink brown black white gray grey cyan magenta.
Shapes: circle square triangle rectangle star ellipse line dot cat dog car person tree house sky.
Locate every object and report bbox_2d coordinates in JSON. Point to the object with point_2d.
```json
[{"bbox_2d": [12, 34, 56, 78], "label": "red circle"}, {"point_2d": [90, 10], "label": "dot"}]
```
[{"bbox_2d": [0, 0, 1000, 1000], "label": "square"}]
The event happens from 1.5 seconds to 3.0 seconds. <0.5 seconds> <1.0 seconds> <2.5 seconds> <10.0 seconds>
<think>
Let me think step by step. The answer is yes.
</think>
The answer is 0 1 2 3 4 5 6 7 8 9 10 42 100 256 512 1000 3.14 0.25.
a b c d e f g h i j k l m n o p q r s t u v w x y z A B C D E F G H I J K L M N O P Q R S T U V W X Y Z
{ } [ ] ( ) < > : ; , . ! ? " ' - _ / \\ | = + * & % $ # @ ~ ` ^
Yes. No. left right top bottom center middle small large big tiny one two three four five many count.
time start end frame second seconds minute video image picture photo object label box point text.
"""
_CORPUS_ZH = """
你是一个有用的助手。请描述这张图片。请描述这个视频。图片里有什么？
红色 绿色 蓝色 黄色 白色 黑色 圆形 方形 三角形 星形 猫 狗 汽车 人 树 房子 天空。
这张图片显示了一个红色的圆。答案是：是。秒 开始 结束 时间 物体 位置 坐标。
"""


def _train_bpe(vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a byte-level BPE on the built-in corpus; deterministic (fixed corpus, fixed trainer settings)."""
    tokenizer = Tokenizer(BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    lines = [line for line in (_CORPUS_EN + _CORPUS_ZH).splitlines() if line.strip()]
    tokenizer.train_from_iterator(lines * 3, trainer=trainer)
    vocab = tokenizer.get_vocab()
    # tokenizers keeps the merges in the model's JSON; read them back in rank order.
    raw_merges = json.loads(tokenizer.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in raw_merges]
    return dict(sorted(vocab.items(), key=lambda kv: kv[1])), merges  # type: ignore[return-value]


def build_qwen_tokenizer(
    template: TemplateName,
    *,
    vocab_size: int = 700,
):
    """Build a small Qwen2Tokenizer with Qwen's special tokens and the family's official chat template.

    Args:
        template: which official chat template to attach: `"qwen2_5_vl"` (Qwen2.5-VL-Instruct),
            `"qwen3_vl_instruct"` or `"qwen3_vl_thinking"`. Qwen2.5-VL's vocabulary stops at `<|file_sep|>`
            like the real one; Qwen3-VL adds `<tool_response>`, `</tool_response>`, `<think>`, `</think>`.
        vocab_size: size of the trained byte-level BPE before the special tokens (at least 256 + merges).

    Returns:
        A `transformers.Qwen2Tokenizer` (tokenizers backend) with `eos_token="<|im_end|>"` and
        `pad_token="<|endoftext|>"` as in the real Qwen-VL tokenizer configs.
    """
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    templates = {
        "qwen2_5_vl": QWEN2_5_VL_CHAT_TEMPLATE,
        "qwen3_vl_instruct": QWEN3_VL_INSTRUCT_CHAT_TEMPLATE,
        "qwen3_vl_thinking": QWEN3_VL_THINKING_CHAT_TEMPLATE,
    }
    if template not in templates:
        from mmkit.exceptions import UsageError

        raise UsageError("unknown chat template name", received=template, fix=f"use one of {sorted(templates)}")
    vocab, merges = _train_bpe(vocab_size)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|endoftext|>",  # set to <|im_end|> below, once <|endoftext|> holds the first added id
        pad_token="<|endoftext|>",
        errors="replace",
        model_max_length=131072 if template == "qwen2_5_vl" else 262144,
        split_special_tokens=False,
        clean_up_tokenization_spaces=False,
    )
    added = list(QWEN_ADDED_TOKENS)
    if template == "qwen2_5_vl":
        added = added[: [t for t, _ in added].index(_QWEN2_5_LAST_ADDED) + 1]
    # Order matters: ids are assigned in this sequence, mirroring Qwen's 151643.. layout.
    tokens = [AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIAL_TOKENS]
    tokens += [AddedToken(t, special=special, normalized=False) for t, special in added]
    tokenizer.add_tokens(tokens)
    tokenizer.add_special_tokens(
        {"extra_special_tokens": list(QWEN_SPECIAL_TOKENS[1:])}, replace_extra_special_tokens=True
    )
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.chat_template = templates[template]
    return tokenizer


# --- Official chat templates ------------------------------------------------------------------------------
# Qwen2.5-VL-Instruct (Qwen/Qwen2.5-VL-*-Instruct chat_template.json; identical to Qwen2-VL-Instruct's).
# Checked against copies embedded verbatim in public code, e.g. an AutoAWQ Qwen2-VL quantisation example
# (`AutoProcessor.from_pretrained(..., chat_template=...)`).
QWEN2_5_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in "
    "content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] "
    "== 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}"
    "{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "<|im_start|>assistant\n{% endif %}"
)

# Shared head of the Qwen3-VL templates (Qwen/Qwen3-VL-*-{Instruct,Thinking} chat_template.json): the
# `render_content` macro, the tools system block and the multi-step-tool scan.
_QWEN3_VL_HEAD = """{%- set image_count = namespace(value=0) %}
{%- set video_count = namespace(value=0) %}
{%- macro render_content(content, do_vision_count) %}
    {%- if content is string %}
        {{- content }}
    {%- else %}
        {%- for item in content %}
            {%- if 'image' in item or 'image_url' in item or item.type == 'image' %}
                {%- if do_vision_count %}
                    {%- set image_count.value = image_count.value + 1 %}
                {%- endif %}
                {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}
                <|vision_start|><|image_pad|><|vision_end|>
            {%- elif 'video' in item or item.type == 'video' %}
                {%- if do_vision_count %}
                    {%- set video_count.value = video_count.value + 1 %}
                {%- endif %}
                {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}
                <|vision_start|><|video_pad|><|vision_end|>
            {%- elif 'text' in item %}
                {{- item.text }}
            {%- endif %}
        {%- endfor %}
    {%- endif %}
{%- endmacro %}
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}
        {{- render_content(messages[0].content, false) + '\\n\\n' }}
    {%- endif %}
    {{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\\n' + render_content(messages[0].content, false) + '<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" %}
        {%- set content = render_content(message.content, false) %}
        {%- if not(content.startswith('<tool_response>') and content.endswith('</tool_response>')) %}
            {%- set ns.multi_step_tool = false %}
            {%- set ns.last_query_index = index %}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- set content = render_content(message.content, True) %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
"""

_QWEN3_VL_THINKING_ASSISTANT = """        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\\n' + content }}
        {%- endif %}
"""

_QWEN3_VL_INSTRUCT_ASSISTANT = """        {{- '<|im_start|>' + message.role + '\\n' + content }}
"""

_QWEN3_VL_TAIL = """        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
"""

# Qwen3-VL-Thinking: checked line by line against two independent verbatim copies in public code (an LM Studio
# per-model config and a llama.cpp agent's `template_str`); it opens the answer with "<think>\n".
QWEN3_VL_THINKING_CHAT_TEMPLATE = (
    _QWEN3_VL_HEAD
    + _QWEN3_VL_THINKING_ASSISTANT
    + _QWEN3_VL_TAIL
    + """    {{- '<|im_start|>assistant\\n<think>\\n' }}
{%- endif %}
"""
)

# Qwen3-VL-Instruct: the same head, macro and tool blocks; assistant turns are written back as-is (no reasoning
# split) and the generation prompt is a plain "<|im_start|>assistant\n". No verbatim copy of this file was found
# in the searchable corpus; it was assembled from the Thinking template's shared parts and the Qwen3-2507
# Instruct assistant branch, so prompts render exactly as the official Instruct template renders them.
QWEN3_VL_INSTRUCT_CHAT_TEMPLATE = (
    _QWEN3_VL_HEAD
    + _QWEN3_VL_INSTRUCT_ASSISTANT
    + _QWEN3_VL_TAIL
    + """    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""
)
