"""The shapes-world VLM training script: data encoding, target conventions, a few-step run loaded by the SDK."""

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors import safe_open

from mmkit.shapes import Scene, ShapeSpec, render
from mmkit.shapes.training.train_vlm import VlmTrainConfig, _batch, train_vlm
from mmkit.shapes.training.vlm_data import (IGNORE, Sample, TaskMix, box_answer, collate, encode_prompt,
                                            encode_sample, pixel_budget, point_answer, samples_for, span_answer,
                                            video_part, video_sample, world_corpus)
from mmkit.shapes.training.vlm_evaluate import evaluate_vlm
from mmkit.shapes.training.vlm_model import TINY_ARCH, build_processor
from mmkit.shapes.training.vlm_tokenizer import DigitTokens, build_world_tokenizer
from mmkit.shapes import sample_video
from mmkit.understand.answer import Answer, Box, TimeSpan
from mmkit.understand.families import family_for_model_type
from mmkit.understand.grounding import boxes_from_text
from mmkit.understand.time_spans import parse_time_spans

CONFIG = VlmTrainConfig(steps=3, batch_size=4, video_every=3, video_batch_size=2, warmup=1, arch=TINY_ARCH,
                        corpus_n=60, eval_every=0, final_eval_n=0, checkpoint_every=2, log_every=1)


def _scene() -> Scene:
    shapes = (ShapeSpec(kind="circle", colour="red", position="left", box=Box(x1=3, y1=23, x2=21, y2=41)),
              ShapeSpec(kind="square", colour="blue", position="right", box=Box(x1=45, y1=21, x2=62, y2=38)))
    return Scene(size=64, shapes=shapes)


@pytest.fixture(scope="module")
def processor():
    return build_processor(TINY_ARCH, build_world_tokenizer(world_corpus(CONFIG.corpus_n)))


def test_world_tokenizer_digits_one_by_one_and_short_chinese(processor):
    tok = processor.tokenizer
    assert tok.convert_ids_to_tokens(tok("37")["input_ids"]) == ["3", "7"]
    assert len(tok("左边一个红色的圆，右边一个蓝色的正方形")["input_ids"]) <= 12  # 19 characters
    prompt = family_for_model_type("qwen2_5_vl").ground_prompt.format(query="the red circle")
    assert len(tok(prompt)["input_ids"]) <= 30  # the generic test tokenizer needs 56
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"


def test_processor_resizes_world_images_to_112(processor):
    inputs = encode_prompt(processor, "Describe this image.", render(_scene()))
    assert inputs["image_grid_thw"].tolist() == [[1, 8, 8]]
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((inputs["input_ids"] == image_id).sum()) == 16


def test_encoding_masks_everything_but_the_assistant_answer(processor):
    scene = _scene()
    sample = Sample(render(scene), "What colour is the circle?", "red", "vqa", "en", scene)
    encoded = encode_sample(processor, sample)
    tok = processor.tokenizer
    # The full chat with the assistant turn, tokenised by the processor in one go, is exactly our sequence
    # (minus the template's trailing "\n" after <|im_end|>, which carries no loss and is not appended).
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": sample.prompt}]},
                {"role": "assistant", "content": [{"type": "text", "text": "red"}]}]
    full_text = processor.apply_chat_template(messages, tokenize=False)
    assert full_text.endswith("<|im_start|>assistant\nred<|im_end|>\n")
    prompt = encode_prompt(processor, sample.prompt, sample.image)["input_ids"][0]
    full = processor(text=[full_text], images=[sample.image.resize((112, 112))], do_resize=False,
                     return_tensors="pt")["input_ids"][0]
    assert encoded["input_ids"].tolist() == full[:-1].tolist()
    answer = tok("red", add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("<|im_end|>")]
    n = prompt.numel()
    assert encoded["labels"][:n].tolist() == [IGNORE] * n
    assert encoded["labels"][n:].tolist() == answer
    assert tok.decode(encoded["input_ids"][:n], skip_special_tokens=False).endswith("<|im_start|>assistant\n")
    # 3-D M-RoPE needs the token types: 1 on the 16 image tokens, 0 elsewhere (answer included)
    image_id = tok.convert_tokens_to_ids("<|image_pad|>")
    assert encoded["mm_token_type_ids"].tolist() == [int(t == image_id) for t in encoded["input_ids"].tolist()]


def test_grounding_and_point_targets_round_trip_through_the_sdk_parser(processor):
    scene = _scene()
    grid = encode_prompt(processor, "x", render(scene))["image_grid_thw"][0].tolist()
    input_size = (grid[2] * 14, grid[1] * 14)  # what VisionLanguageModel uses as the input size
    boxes = [s.box for s in scene.shapes]
    text = box_answer(boxes, ["red circle", "blue square"], input_size, (64, 64))
    assert text.startswith('```json\n[\n\t{"bbox_2d": [5, 40, 37, 72], "label": "red circle"},\n\t{"bbox_2d"')
    parsed = boxes_from_text(text, family="qwen2_5_vl", original_sizes=[(64, 64)], input_sizes=[input_size])
    assert [b.label for b in parsed.boxes] == ["red circle", "blue square"]
    for got, want in zip(parsed.boxes, boxes):
        assert max(abs(g - w) for g, w in zip(got.as_tuple(), want.as_tuple())) <= 1.0
    points = boxes_from_text(point_answer(boxes, ["a", "b"], input_size, (64, 64)), family="qwen2_5_vl",
                             original_sizes=[(64, 64)], input_sizes=[input_size]).points
    for got, want in zip(points, boxes):
        assert abs(got.x - want.center[0]) <= 1.0 and abs(got.y - want.center[1]) <= 1.0


def test_span_answers_round_trip_through_the_sdk_time_parser():
    span = TimeSpan(start=0.75, end=3.0)
    assert span_answer(span, "en") == "From 0.75 to 3.0 seconds." and span_answer(span, "zh") == "从0.75秒到3.0秒。"
    for lang in ("en", "zh"):
        (got,) = parse_time_spans(span_answer(span, lang))
        assert (got.start, got.end) == (0.75, 3.0)


def test_clips_and_images_share_a_batch(processor):
    clip = video_sample(sample_video(np.random.default_rng(0), n_frames=8), "en", np.random.default_rng(1))
    scene = _scene()
    still = Sample(render(scene), "Describe this image.", "a red circle", "caption", "en", scene)
    encoded = encode_sample(processor, clip)
    assert encoded["video_grid_thw"].tolist() == [[4, 8, 8]]  # 8 frames of 112 px: 4 x 16 tokens
    assert encoded["second_per_grid_ts"].tolist() == [0.5]  # 2 frames at 4 fps
    assert int((encoded["mm_token_type_ids"] == 2).sum()) == 64
    batch = collate([encode_sample(processor, still), encoded], processor.tokenizer.pad_token_id)
    assert batch["input_ids"].shape[0] == 2 and batch["image_grid_thw"].shape == (1, 3)
    assert batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum()  # the still is right-padded
    assert batch["labels"][0][batch["attention_mask"][0] == 0].eq(IGNORE).all()


def test_grounding_samples_use_the_sdk_prompt_and_multi_instance_answers():
    rng = np.random.default_rng(0)
    scene = Scene(size=64, shapes=(
        ShapeSpec(kind="circle", colour="red", position="left", box=Box(x1=3, y1=23, x2=21, y2=41)),
        ShapeSpec(kind="circle", colour="blue", position="right", box=Box(x1=45, y1=21, x2=62, y2=38))))
    sample = samples_for(scene, "ground", "en", rng, mix=TaskMix(multi_share=1.0), input_size=(112, 112))
    assert sample.prompt == ('Locate every instance that belongs to the following categories: "circle". '
                             "Report bbox coordinates in JSON format.")
    assert len(sample.boxes) == 2 and sample.answer.count("bbox_2d") == 2
    zh = samples_for(_scene(), "vqa", "zh", np.random.default_rng(1), input_size=(112, 112))
    assert zh.prompt.endswith("？")


def test_batches_depend_only_on_seed_and_step(processor):
    (a, la), (b, lb) = _batch(3, CONFIG, processor, (112, 112)), _batch(3, CONFIG, processor, (112, 112))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(la[k], lb[k]) for k in ("patch", "classes", "boxes"))
    assert la["target_classes"] == lb["target_classes"]
    assert [(t.cells.tolist(), t.avoid) if t else None for t in la["targets"]] == \
        [(t.cells.tolist(), t.avoid) if t else None for t in lb["targets"]]
    c, lc = _batch(4, CONFIG, processor, (112, 112))
    assert c["pixel_values"].shape == a["pixel_values"].shape  # 4 images x 64 patches either way
    assert not torch.equal(c["pixel_values"], a["pixel_values"])
    # one class per patch, some shapes in it; one covering shape and box per merged token
    assert la["patch"].shape == lc["patch"].shape == (4 * 64,) and int(la["patch"].max()) > 0
    assert la["classes"].shape == (4 * 16,) and la["boxes"].shape == (4 * 16, 4) and int(la["classes"].max()) > 0
    clips, none = _batch(2, CONFIG, processor, (112, 112))  # every 3rd step: a batch of 2 clips, no stills
    assert clips["video_grid_thw"].shape == (2, 3) and "pixel_values" not in clips and none is None


def test_patch_labels_follow_the_processors_merged_token_order():
    from mmkit.shapes.scene import Scene, ShapeSpec
    from mmkit.shapes.training.vlm_patch_loss import N_CLASSES, patch_labels
    from mmkit.understand.answer import Box

    # a red square filling pixels 8-24 x 0-16 of a 64 px image: patches (row 0, cols 1-2) and (row 1, cols 1-2)
    shape = ShapeSpec(kind="square", colour="red", box=Box(x1=8, y1=0, x2=24, y2=16), position="top left")
    labels = patch_labels(Scene(size=64, background="white", shapes=(shape,)), 8)
    cls = int(labels.max())
    assert 0 < cls < N_CLASSES and set(labels.tolist()) == {0, cls}
    # merged token 0 = patches (0,0) (0,1) (1,0) (1,1); token 1 = (0,2) (0,3) (1,2) (1,3)
    assert labels[:8].tolist() == [0, cls, 0, cls, cls, 0, cls, 0] and not labels[8:].any()


def test_position_labels_follow_the_decoders_mrope_grid(processor):
    """PositionHead labels image token k with (k // grid, k % grid); upstream's M-RoPE indices must agree."""
    from mmkit.shapes.training.vlm_model import build_model

    model = build_model(TINY_ARCH, processor.tokenizer)
    inputs = encode_prompt(processor, "What colour is the circle?", render(_scene()))
    position_ids, _ = model.model.get_rope_index(inputs["input_ids"], inputs["mm_token_type_ids"],
                                                 image_grid_thw=inputs["image_grid_thw"])
    image = inputs["input_ids"][0] == model.config.image_token_id
    t, h, w = (position_ids[i, 0, image] for i in range(3))
    assert int(image.sum()) == 16 and len(set(t.tolist())) == 1
    assert (h - h.min()).tolist() == [k // 4 for k in range(16)] and (w - w.min()).tolist() == [k % 4 for k in range(16)]


def test_position_head_reads_row_and_column_of_image_tokens():
    from mmkit.shapes.training.vlm_position_loss import PositionHead

    grid, hidden = 4, 8
    head = PositionHead(hidden, grid, layers=(1,))
    mask = torch.zeros(2, 20, dtype=torch.bool)
    mask[:, 2:18] = True  # two rows, one 4 x 4 image each
    states = torch.zeros(2, 20, hidden)
    k = torch.arange(16)
    states[:, 2:18, 0], states[:, 2:18, 1] = (k // grid).float(), (k % grid).float()
    with torch.no_grad():  # a head that reads the row from channel 0 and the column from channel 1
        head.proj[0].weight.zero_()
        head.proj[0].bias.zero_()
        for c in range(grid):
            head.proj[0].weight[c, 0], head.proj[0].bias[c] = 40.0 * c, -20.0 * c * c
            head.proj[0].weight[grid + c, 1], head.proj[0].bias[grid + c] = 40.0 * c, -20.0 * c * c
        right = head((states, states), mask).item()
        wrong = head((states, states.flip(1)), mask).item()  # tokens reversed: rows and columns mislabelled
    assert right < 1e-3 and wrong > 10.0
    partial = mask.clone()
    partial[:, 12:] = False  # 10 image tokens per row: not whole 4 x 4 images
    with pytest.raises(ValueError, match="whole number"):
        head((states, states), partial)


def test_token_objects_give_each_cell_its_covering_shape_and_the_answers_box():
    from mmkit.shapes.training.vlm_object_loss import NO_BOX, token_objects
    from mmkit.shapes.training.vlm_patch_loss import patch_labels

    scene = _scene()  # red circle (3, 23)-(21, 41) on the left, blue square (45, 21)-(62, 38) on the right
    classes, boxes = token_objects(scene, 4, 112)
    red, blue = (int(patch_labels(Scene(size=64, shapes=(s,)), 8).max()) for s in scene.shapes)
    # 16 px cells: the circle spans columns 0-1 and rows 1-2, the square columns 2-3 and rows 1-2
    assert classes.reshape(4, 4).tolist() == [[0, 0, 0, 0], [red, red, blue, blue], [red, red, blue, blue],
                                              [0, 0, 0, 0]]
    fence = box_answer([s.box for s in scene.shapes], ["a", "b"], (112, 112), (64, 64))
    answer = json.loads(fence.removeprefix("```json\n").removesuffix("\n```"))  # what the model is taught to write
    assert boxes[4].tolist() == answer[0]["bbox_2d"] == [5, 40, 37, 72] and boxes[7].tolist() == answer[1]["bbox_2d"]
    assert (boxes[classes == 0] == NO_BOX).all()


def test_object_head_loss_is_low_only_for_the_true_labels():
    from mmkit.shapes.training.vlm_object_loss import ObjectHead, token_objects

    classes, boxes = (torch.from_numpy(a) for a in token_objects(_scene(), 4, 112))
    head = ObjectHead(32, 112, layers=(1,))
    mask = torch.zeros(1, 20, dtype=torch.bool)
    mask[:, 2:18] = True
    states = torch.zeros(1, 20, 32)
    states[0, 2:18, 0] = classes.float()  # channel 0 carries the class; the head fits it and the boxes
    states[0, 2:18, 1] = 1.0
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    first = head((states, states), mask, classes, boxes).item()
    for _ in range(300):
        optimizer.zero_grad()
        head((states, states), mask, classes, boxes).backward()
        optimizer.step()
    with torch.no_grad():
        fitted = head((states, states), mask, classes, boxes).item()
        shuffled = head((states, states), mask, classes.roll(1), boxes.roll(1, 0)).item()
    assert first > 5.0 and fitted < 0.05 and shuffled > 1.0
    with pytest.raises(ValueError, match="image tokens"):
        head((states, states), mask, classes[:8], boxes[:8])


def test_digit_tokens_tell_numbers_from_digits_inside_words(processor):
    tokenizer = processor.tokenizer
    digits = DigitTokens.of(tokenizer)
    for text, starts in [('{"bbox_2d": [79, 19, 108, 49], "label": "red circle"}', ["7", "1", "1", "4"]),
                         ('{"point_2d": [5, 60]}', ["5", "6"]), ("从1.5秒到3秒", ["1", "5", "3"])]:
        ids = torch.tensor(tokenizer(text)["input_ids"])
        assert [tokenizer.decode([i]) for i in ids[digits.leading(ids)].tolist()] == starts, text


def test_target_cells_and_attention_loss_reward_only_attention_on_the_target():
    from mmkit.shapes.training.vlm_attention_loss import (AttentionTarget, attention_loss, attention_on_targets,
                                                          target_cells)

    scene = _scene()  # 16 px cells: the circle spans columns 0-1, rows 1-2; the square columns 2-3, rows 1-2
    circle = target_cells(scene, scene.shapes[0], 4)
    assert np.flatnonzero(circle).tolist() == [4, 5, 8, 9]
    # one row: 2 text tokens, 16 image tokens (id 9), then an answer "1 2 x" where ids 1 and 2 are digits
    ids = torch.tensor([[5, 5] + [9] * 16 + [1, 2, 3]])
    labels = torch.tensor([[IGNORE] * 18 + [1, 2, 3]])
    queries = [17, 18]  # the positions that predict the digits 1 and 2
    on_target, elsewhere = torch.zeros(1, 2, 21, 21), torch.zeros(1, 2, 21, 21)
    on_target[0, 1, queries, 2 + 4] = on_target[0, 1, queries, 2 + 9] = 0.5  # head 1: all on the circle
    elsewhere[0, 1, queries, 2 + 6] = 1.0  # head 1: all on the square
    on_target[0, 0, :, 0] = elsewhere[0, 0, :, 0] = 1.0  # head 0: on the first text token
    digits = DigitTokens((1, 2), ())
    args = (ids, labels, 9, [AttentionTarget(circle)], digits)
    assert attention_loss((on_target,), *args, heads=((0, 1),)).item() == pytest.approx(0.0, abs=1e-5)
    assert attention_loss((elsewhere,), *args, heads=((0, 1),)).item() == pytest.approx(-np.log(1e-6), rel=1e-3)
    assert attention_on_targets((on_target,), *args, layer=0, head=1) == pytest.approx(1.0)
    assert attention_on_targets((on_target,), *args, layer=0, head=0) == pytest.approx(0.0)
    # the first query (the one that picks the object) can weigh more than the digits after it
    split = torch.zeros(1, 2, 21, 21)
    split[0, 1, 17, 2 + 4], split[0, 1, 18, 2 + 6] = 1.0, 1.0  # first digit on the circle, second on the square
    assert attention_loss((split,), *args, heads=((0, 1),), first_weight=3.0).item() == \
        pytest.approx(-np.log(1e-6) / 4, rel=1e-3)
    # ... and the first number is found past digits inside words ("bbox_2d": token 8 ends a word, 1 follows it)
    word_ids = torch.tensor([[5, 5] + [9] * 16 + [8, 1, 3, 2]])
    word_labels = torch.tensor([[IGNORE] * 18 + [8, 1, 3, 2]])
    word = torch.zeros(1, 2, 22, 22)
    word[0, 1, 18, 2 + 4], word[0, 1, 20, 2 + 6] = 1.0, 1.0  # the "1" in the word on the circle, the number not
    in_word = (word_ids, word_labels, 9, [AttentionTarget(circle)], DigitTokens((1, 2), (8,)))
    assert attention_loss((word,), *in_word, heads=((0, 1),), first_weight=3.0).item() == \
        pytest.approx(-3 * np.log(1e-6) / 4, rel=1e-3)
    no_words = (word_ids, word_labels, 9, [AttentionTarget(circle)], digits)
    assert attention_loss((word,), *no_words, heads=((0, 1),), first_weight=3.0).item() == \
        pytest.approx(-np.log(1e-6) / 4, rel=1e-3)
    # a "no": attention anywhere but on the cells is what is asked for
    avoid = (ids, labels, 9, [AttentionTarget(circle, avoid=True)], digits)
    assert attention_loss((elsewhere,), *avoid, heads=((0, 0), (0, 1))).item() == pytest.approx(0.0, abs=1e-5)
    assert attention_on_targets((on_target,), *avoid, layer=0, head=1) == pytest.approx(0.0)
    # an answer without digits ("yes"): only the query writing its first token is supervised
    first_only = torch.zeros(1, 2, 21, 21)
    first_only[0, 1, 17, 2 + 5] = 1.0
    assert attention_on_targets((first_only,), ids, labels, 9, [AttentionTarget(circle)], DigitTokens((7,), ()),
                                layer=0, head=1) == pytest.approx(1.0)
    assert attention_on_targets((first_only,), *args, layer=0, head=1) == pytest.approx(0.5)
    assert attention_loss((on_target,), ids, labels, 9, [None], digits, heads=((0, 1),)) is None
    with pytest.raises(ValueError, match="target cells"):
        attention_loss((on_target,), ids, labels, 9, [AttentionTarget(circle[:8])], digits, heads=((0, 1),))


def test_query_head_reads_the_target_class_at_the_first_numbers_query():
    from mmkit.shapes.training.vlm_attention_loss import QueryHead, answer_queries, query_loss

    # answer "8 1 3 4 2": 8 ends a word, so 1 is inside it; 4 starts the first number (digits 1, 2, 4)
    labels = torch.tensor([[IGNORE] * 4 + [8, 1, 3, 4, 2]] * 2)
    digits = DigitTokens((1, 2, 4), (8,))
    queries, first = answer_queries(labels[0], digits)
    assert queries.tolist() == [4, 6, 7] and first == 1  # positions writing 1, 4, 2; the number starts at 4
    states = torch.zeros(2, 9, 8)
    states[0, 6, 0], states[1, 6, 1] = 3.0, 3.0  # only the first number's query carries which class is meant
    head = QueryHead(8, 5, layers=(1,))
    optimizer = torch.optim.Adam(head.parameters(), lr=0.1)
    args = ((states, states), labels, [2, 4], digits)
    first_loss = query_loss(head, *args).item()
    for _ in range(200):
        optimizer.zero_grad()
        query_loss(head, *args).backward()
        optimizer.step()
    assert first_loss == pytest.approx(np.log(5), rel=1e-4) and query_loss(head, *args).item() < 0.01
    assert query_loss(head, (states, states), labels, [4, 2], digits).item() > 3.0  # swapped classes
    assert query_loss(head, (states, states), labels, [None, None], digits) is None


def test_attention_heads_outside_the_decoder_are_refused_before_training(tmp_path):
    from mmkit.exceptions import UsageError

    with pytest.raises(UsageError, match="attention_heads"):  # TINY_ARCH has one decoder layer
        train_vlm(replace(CONFIG, attention_loss_weight=0.5), out=tmp_path / "vlm", ckpt_dir=tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()


def test_batches_give_attention_targets_to_one_target_answers_of_the_chosen_tasks(processor):
    from mmkit.shapes.training.vlm_attention_loss import target_cells

    from mmkit.shapes.training.vlm_data import sample_train

    config = replace(CONFIG, batch_size=48, video_every=0)
    rng = np.random.default_rng([config.seed, 0])  # the same draw as _batch's
    samples = [sample_train(rng, mix=config.mix, input_size=(112, 112)) for _ in range(48)]
    _, labels = _batch(0, config, processor, (112, 112))
    _, with_questions = _batch(0, replace(config, attention_tasks=("ground", "point", "vqa")), processor, (112, 112))
    seen = set()
    for sample, target, asked in zip(samples, labels["targets"], with_questions["targets"]):
        if sample.task in ("ground", "point") and len(sample.boxes) == 1:
            shape = next(s for s in sample.scene.shapes if s.box == sample.boxes[0])
            assert np.array_equal(target.cells, target_cells(sample.scene, shape, 4)) and not target.avoid
            assert np.array_equal(asked.cells, target.cells) and not asked.avoid
            seen.add("target")
        elif sample.task == "vqa" and sample.boxes:  # the union of the cells of the shapes the answer is about
            assert target is None and not asked.avoid
            assert asked.cells.sum() >= max(target_cells(sample.scene, s, 4).sum()
                                            for s in sample.scene.shapes if s.box in sample.boxes)
            seen.add("question")
        elif sample.task == "vqa" and sample.answer in ("no", "没有"):  # no shape is what a "no" reads
            assert target is None and asked.avoid
            assert asked.cells.sum() >= max(target_cells(sample.scene, s, 4).sum() for s in sample.scene.shapes)
            seen.add("no")
        else:
            assert target is None and asked is None
            seen.add("none")
    assert seen == {"target", "question", "no", "none"}


def test_batches_give_question_answers_the_class_asked_about_when_asked_to(processor):
    from mmkit.shapes.training.vlm_data import sample_train
    from mmkit.shapes.training.vlm_patch_loss import object_class, shape_class

    config = replace(CONFIG, batch_size=64, video_every=0, mix=TaskMix(ground=0.0, point=0.0, vqa=1.0, caption=0.0,
                                                                   yes_no_share=0.5))
    rng = np.random.default_rng([config.seed, 0])  # the same draw as _batch's
    samples = [sample_train(rng, mix=config.mix, input_size=(112, 112)) for _ in range(64)]
    _, plain = _batch(0, config, processor, (112, 112))
    assert plain["target_classes"] == [None] * 64  # questions only with query_tasks naming vqa
    _, asked = _batch(0, replace(config, query_tasks=("ground", "point", "vqa")), processor, (112, 112))
    seen = set()
    for sample, klass in zip(samples, asked["target_classes"]):
        if sample.answer in ("no", "没有"):  # the absent colour and kind the question names
            shape = sample.prompt.removeprefix("Is there ").removeprefix("a ").removeprefix("an ")
            colour, kind = sample.asks
            assert klass == object_class(colour, kind) and not any(
                (s.colour, s.kind) == sample.asks for s in sample.scene.shapes)
            assert sample.lang == "zh" or shape.startswith(f"{colour} {kind}")
            seen.add("no")
        elif sample.asks is not None:  # "yes": the shape it names
            (shape,) = [s for s in sample.scene.shapes if s.box in sample.boxes]
            assert klass == shape_class(shape) and sample.asks == (shape.colour, shape.kind)
            seen.add("yes")
        elif len(sample.boxes) == 1:  # "what colour is the square?": the one shape it is read from
            (shape,) = [s for s in sample.scene.shapes if s.box in sample.boxes]
            assert klass == shape_class(shape)
            seen.add("one shape")
        else:  # counts over several shapes
            assert klass is None
            seen.add("none")
    assert seen == {"no", "yes", "one shape", "none"}


def test_answer_loss_matches_transformers_and_weights_answers_and_digits():
    from transformers.loss.loss_utils import ForCausalLMLoss

    from mmkit.shapes.training.train_vlm import answer_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 6, 12)
    labels = torch.tensor([[IGNORE, IGNORE, 3, 4, 5, 6], [IGNORE, IGNORE, IGNORE, IGNORE, 7, IGNORE]])
    plain = answer_loss(logits, labels)
    assert torch.allclose(plain, ForCausalLMLoss(logits, labels, vocab_size=12))  # the default is upstream's loss
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 12), labels[:, 1:].reshape(-1),
                                           ignore_index=IGNORE, reduction="none").view(2, 5)
    a, b = ce[0, 1:].mean(), ce[1, 3]  # row 0 answers 4 tokens, row 1 one
    assert torch.allclose(answer_loss(logits, labels, per_sample=True), (a + b) / 2)
    weighted = answer_loss(logits, labels, digits=DigitTokens((4, 7), ()), number_weight=3.0)  # 4 and 7 count 3x
    assert torch.allclose(weighted, (ce[0, 1] + 3 * ce[0, 2] + ce[0, 3] + ce[0, 4] + 3 * ce[1, 3]) / 9)
    # a number's first digit (token 4 after 3) can weigh more than the digits after it (5 after 4)
    leading = answer_loss(logits, labels, digits=DigitTokens((4, 5), ()), number_weight=3.0, leading_weight=10.0)
    assert torch.allclose(leading, (ce[0, 1] + 10 * ce[0, 2] + 3 * ce[0, 3] + ce[0, 4] + ce[1, 3]) / 16)
    in_word = answer_loss(logits, labels, digits=DigitTokens((4, 5), (3,)), number_weight=3.0, leading_weight=10.0)
    assert torch.allclose(in_word, (ce[0, 1] + 3 * ce[0, 2] + 3 * ce[0, 3] + ce[0, 4] + ce[1, 3]) / 9)  # 3 ends a word


def test_instructed_yes_no_questions_only_when_asked():
    from mmkit.shapes.training.vlm_data import instructed_yes_no

    assert instructed_yes_no("Is there a red circle?", "en") == "Is there a red circle in the image? Answer yes or no."
    assert instructed_yes_no("图中有红色的圆吗？", "zh") == "图中有红色的圆吗？请回答有或没有。"
    plain = [samples_for(_scene(), "vqa", "en", np.random.default_rng(i), input_size=(112, 112)) for i in range(60)]
    assert not any("Answer yes or no" in s.prompt for s in plain)
    mix = TaskMix(instructed_share=1.0)
    asked = [samples_for(_scene(), "vqa", "en", np.random.default_rng(i), mix=mix, input_size=(112, 112))
             for i in range(60)]
    exists = [s for s in asked if s.prompt.startswith("Is there")]
    assert exists and all(s.prompt.endswith("in the image? Answer yes or no.") for s in exists)
    assert all(s.answer in ("yes", "no") for s in exists)


def test_yes_no_and_crowded_shares_draw_what_they_name_and_nothing_when_off():
    from mmkit.shapes.training.vlm_data import sample_train

    def draw(mix, task, n=200):
        rng = np.random.default_rng(3)
        return [sample_train(rng, mix=mix, input_size=(112, 112), task=task) for _ in range(n)]

    crowded = draw(TaskMix(crowded_share=1.0), "ground")
    assert all(len(s.scene.shapes) == 3 for s in crowded)
    assert {len(s.scene.shapes) for s in draw(TaskMix(crowded_share=1.0), "caption", 60)} == {1, 2, 3}
    asked = draw(TaskMix(yes_no_share=1.0), "vqa")
    assert all(s.prompt.startswith(("Is there", "图中有")) and s.prompt.endswith(("?", "吗？")) for s in asked)
    assert 0.35 < sum(s.answer in ("no", "没有") for s in asked) / len(asked) < 0.65
    # off (the default): the very samples drawn before the knobs existed, so older runs replay
    for task, before in (("ground", "782f9950587d9273"), ("vqa", "1cd6557164faee14")):
        drawn = [(s.prompt, s.answer) for s in draw(TaskMix(), task, 40)]
        assert hashlib.sha1(repr(drawn).encode()).hexdigest()[:16] == before


@pytest.mark.slow
def test_few_step_run_writes_a_folder_the_sdk_loads_and_resumes(tmp_path):
    from mmkit.understand.messages import to_conversation
    from mmkit.understand.model import VisionLanguageModel

    out, ckpt = tmp_path / "vlm", tmp_path / "ckpt"
    result = train_vlm(CONFIG, out=out, ckpt_dir=ckpt)
    assert [h["step"] for h in result["history"]] == [1, 2, 3]
    with safe_open(out / "model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert json.loads((out / "config.json").read_text())["model_type"] == "qwen2_5_vl"
    assert (out / "README.md").is_file() and json.loads((out / "training.json").read_text())["config"]["steps"] == 3

    vlm = VisionLanguageModel.from_pretrained(out, device="cpu")
    image = render(_scene())
    answer = vlm.ground(image, "the red circle", max_new_tokens=6)
    assert isinstance(answer, Answer) and answer.family == "qwen2_5_vl"
    assert answer.usage.image_tokens == 16
    # Training inputs are the SDK's inputs: same ids, pixels and grid as VisionLanguageModel prepares.
    prompt = vlm.family.ground_prompt.format(query="the red circle")
    ours = encode_prompt(vlm.processor, prompt, image)
    sdk = vlm._prepare([to_conversation(prompt, images=[image])], thinking=None, min_pixels=None,
                       max_pixels=None).inputs
    for key in ("input_ids", "pixel_values", "image_grid_thw", "mm_token_type_ids"):
        assert torch.equal(ours[key], sdk[key])
    clip = video_sample(sample_video(np.random.default_rng(2), n_frames=6), "zh", np.random.default_rng(3))
    part = video_part(clip.frames, clip.scene.fps, pixel_budget(vlm.processor))
    ours = encode_prompt(vlm.processor, clip.prompt, video=part)
    sdk = vlm._prepare([to_conversation(clip.prompt, videos=[part])], thinking=None, min_pixels=None,
                       max_pixels=None).inputs
    for key in ("input_ids", "pixel_values_videos", "video_grid_thw", "second_per_grid_ts", "mm_token_type_ids"):
        assert torch.equal(ours[key], sdk[key])
    scores = evaluate_vlm(out, n=2, seed=0, split="val", verbose=False)
    assert set(scores) == {"grounding_acc50", "grounding_miou", "vqa_acc", "caption_em", "temporal_miou",
                           "temporal_acc50", "n"} and all(0 <= v <= 1 for k, v in scores.items() if k != "n")

    resumed = train_vlm(replace(CONFIG, steps=4), out=out, ckpt_dir=ckpt, resume=True)
    assert [h["step"] for h in resumed["history"]] == [1, 2, 3, 4]

    # A second run starts from the saved folder (weights and processor) with the position, object and attention
    # losses and the weighted language loss on; at a vanishing learning rate its weights are the first run's.
    second = tmp_path / "vlm2"
    run = train_vlm(replace(CONFIG, steps=2, lr=1e-12, init_from=str(out), position_loss_weight=0.5,
                            object_loss_weight=0.5, loss_per_sample=True, number_token_weight=3.0,
                            attention_loss_weight=0.5, attention_heads=((0, 1),), attention_first_weight=4.0,
                            attention_tasks=("ground", "point", "vqa"), leading_digit_weight=10.0,
                            query_loss_weight=0.5), out=second,
                    ckpt_dir=tmp_path / "ckpt2")
    assert any("attention_loss" in h for h in run["history"]) and any("query_loss" in h for h in run["history"])
    assert "eager" not in (second / "config.json").read_text()  # training's attention backend is not shipped
    assert (second / "tokenizer.json").read_bytes() == (out / "tokenizer.json").read_bytes()
    with safe_open(out / "model.safetensors", "pt") as f, safe_open(second / "model.safetensors", "pt") as g:
        assert all(torch.equal(f.get_tensor(k), g.get_tensor(k)) for k in f.keys())
    assert json.loads((second / "training.json").read_text())["config"]["init_from"] == str(out)
