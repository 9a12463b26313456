"""The parts of LoRA training behind `mmkit.generate.train_lora`: config, data, models, the step loop.

`config` holds the typed settings and result, `data` turns a captioned folder into batches, `models` loads
the frozen SD 1.5 / SDXL components and attaches the LoRA adapters, `loop` runs the accelerate training
loop (loss, checkpoints, validation). The public entry points live in `mmkit.generate.train_lora`.
"""
