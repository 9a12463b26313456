"""Long-prompt embeddings: exact parity with diffusers for short prompts, windows for long ones."""
import numpy as np
import pytest
import torch

from mmkit.generate import ImageGenerator
from mmkit.generate.prompts import count_tokens, encode_prompts
from mmkit.testing.tiny_diffusion import tiny_diffusion_checkpoint

HEAD = "a photo of a cat sitting on a red chair in the garden, highly detailed, " * 6  # > 75 tokens


@pytest.fixture(scope="module")
def gens(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "tiny-diffusion"
    return {name: ImageGenerator.from_pretrained(tiny_diffusion_checkpoint(name, cache_dir=cache), progress=False)
            for name in ("sd15", "sdxl")}


def test_short_prompt_matches_diffusers_sd15(gens):
    pipe = gens["sd15"].pipeline
    ours = encode_prompts(pipe, "sd15", "a red cat", "blurry")
    theirs, theirs_neg = pipe.encode_prompt("a red cat", "cpu", 1, True, "blurry")
    assert torch.equal(ours.prompt_embeds, theirs) and torch.equal(ours.negative_prompt_embeds, theirs_neg)
    # diffusers' clip_skip path reads `text_encoder.text_model`, which transformers 5 removed from
    # CLIPTextModel (AttributeError); its rule, written out: hidden state n+1 from the end, then final norm.
    with pytest.raises(AttributeError):
        pipe.encode_prompt("a red cat", "cpu", 1, True, None, clip_skip=1)
    skip = encode_prompts(pipe, "sd15", "a red cat", clip_skip=1)
    ids = pipe.tokenizer("a red cat", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        hidden = pipe.text_encoder(ids, output_hidden_states=True).hidden_states[-2]
        expected = pipe.text_encoder.final_layer_norm(hidden)
    assert torch.equal(skip.prompt_embeds, expected)
    assert not torch.equal(skip.prompt_embeds, ours.prompt_embeds)


@pytest.mark.parametrize("negative", [None, "blurry"])
def test_short_prompt_matches_diffusers_sdxl(gens, negative):
    pipe = gens["sdxl"].pipeline
    ours = encode_prompts(pipe, "sdxl", "a red cat", negative)
    theirs = pipe.encode_prompt("a red cat", device="cpu", num_images_per_prompt=1,
                                do_classifier_free_guidance=True, negative_prompt=negative)
    mine = (ours.prompt_embeds, ours.negative_prompt_embeds, ours.pooled_prompt_embeds, ours.negative_pooled_prompt_embeds)
    assert all(torch.equal(a, b) for a, b in zip(mine, theirs))
    assert ours.prompt_embeds.shape == (1, 77, 32 + 64) and ours.pooled_prompt_embeds.shape == (1, 64)
    if negative is None:  # force_zeros_for_empty_prompt, as diffusers
        assert not ours.negative_prompt_embeds.any()


def test_long_prompt_windows_and_padding(gens):
    pipe = gens["sd15"].pipeline
    tokens = count_tokens(pipe.tokenizer, HEAD)
    assert 75 < tokens <= 150
    emb = encode_prompts(pipe, "sd15", HEAD, "blurry")
    assert emb.windows == 2
    assert emb.prompt_embeds.shape == emb.negative_prompt_embeds.shape == (1, 154, 32)
    # the first window is the diffusers encoding of the truncated prompt
    theirs, _ = pipe.encode_prompt(HEAD, "cpu", 1, True, "blurry")
    assert torch.equal(emb.prompt_embeds[:, :77], theirs)
    neg_long = encode_prompts(pipe, "sd15", "a cat", HEAD)
    assert neg_long.prompt_embeds.shape == (1, 154, 32)  # the prompt is padded to the negative's windows


@pytest.mark.parametrize("name", ["sd15", "sdxl"])
def test_tail_past_token_77_changes_the_image(gens, name):
    gen = gens[name]
    a = gen.text_to_image(HEAD + "blue sky", steps=3, seed=2, width=64, height=64)
    b = gen.text_to_image(HEAD + "green apples and yellow bananas", steps=3, seed=2, width=64, height=64)
    diff = np.abs(np.asarray(a.image, np.float32) - np.asarray(b.image, np.float32)).mean()
    assert diff > 0.1  # measured 0.4-0.5 levels of 255 with the random tiny text encoders; identical prompts: 0
    # plain diffusers would truncate both prompts to the same 77 tokens
    pipe = gen.pipeline
    trunc_a = pipe.encode_prompt(HEAD + "blue sky", "cpu", 1, False) if name == "sd15" else \
        pipe.encode_prompt(HEAD + "blue sky", device="cpu", do_classifier_free_guidance=False)
    trunc_b = pipe.encode_prompt(HEAD + "green apples and yellow bananas", "cpu", 1, False) if name == "sd15" else \
        pipe.encode_prompt(HEAD + "green apples and yellow bananas", device="cpu", do_classifier_free_guidance=False)
    assert torch.equal(trunc_a[0], trunc_b[0])
