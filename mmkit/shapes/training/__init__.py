"""Training of mmkit's bundled shapes-world models (no pretrained weights can be downloaded here).

- `data`: train-split scenes, captions, pixel tensors, the shapes-world CLIP tokenizer.
- `vae`: stage 1, the 4x-down-sampling `AutoencoderKL`.
- `train_generator`: stage 2, CLIP text encoder + `UNet2DConditionModel` with classifier-free-guidance
  dropout; saves a diffusers `StableDiffusionPipeline` folder (`python -m mmkit.shapes.training.train_generator`).
- `evaluate_generator`: the oracle's scores of a saved pipeline (text-to-image, inpainting).
- `train_vlm` (+ `vlm_data`, `vlm_model`, `vlm_tokenizer`): a Qwen2.5-VL-architecture model trained from
  scratch to caption, answer and ground in its native resized-pixel format
  (`python -m mmkit.shapes.training.train_vlm`); `vlm_patch_loss`: the training-only dense patch supervision
  that keeps its from-scratch ViT informative; `vlm_position_loss`: the training-only row/column supervision
  of image tokens in the decoder that lets it say where things are; `vlm_object_loss`: the training-only
  supervision that makes each image token state its covering shape and that shape's box;
  `vlm_attention_loss`: the training-only supervision that points the queries writing a box's digits at the
  target's image tokens; `vlm_evaluate`: its scores through the SDK path.
- `train_controlnet` (+ `evaluate_controlnet`): a canny `ControlNetModel` for the generator.
- `train_concept_lora`: a LoRA teaching the generator a held-out shape (the star), trained with
  `mmkit.generate.train_lora` unchanged.
Each script prints its time and final metrics; `mmkit quality` measures the committed weights.
"""

__all__ = ["GeneratorConfig", "train_generator", "evaluate_generator", "VlmTrainConfig", "train_vlm", "evaluate_vlm",
           "ControlNetConfig", "train_controlnet", "evaluate_controlnet", "ConceptLoraConfig", "train_concept_lora",
           "evaluate_concept_lora"]

_HOME = {"GeneratorConfig": "train_generator", "train_generator": "train_generator",
         "evaluate_generator": "evaluate_generator", "VlmTrainConfig": "train_vlm", "train_vlm": "train_vlm",
         "evaluate_vlm": "vlm_evaluate", "ControlNetConfig": "train_controlnet", "train_controlnet": "train_controlnet",
         "evaluate_controlnet": "evaluate_controlnet", "ConceptLoraConfig": "train_concept_lora",
         "train_concept_lora": "train_concept_lora", "evaluate_concept_lora": "train_concept_lora"}


def __getattr__(name: str):
    # lazy: `python -m mmkit.shapes.training.vae` etc. should not import every stage (and torch) twice
    if name in _HOME:
        import importlib

        return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    raise AttributeError(name)
