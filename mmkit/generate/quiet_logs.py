"""Library log records that report nothing wrong, hidden for the duration of one call.

Owns `hide_log_records` (a `logging.Filter` on one logger, removed afterwards) and the two records `generate`
hides with it:

- diffusers' `ModelMixin.to(dtype)` warns "There are modules in ... that should be kept in float32: []" even
  when the list is empty (`modeling_utils.py` checks `is not None`); `from_pipe`, the SDXL VAE upcast and every
  pipeline call that casts trigger it for the SD 1.5 / SDXL models, which declare no such modules;
- transformers 5's `load_adapter` logs a "LOAD REPORT" listing the base-layer weights as MISSING for every
  text-encoder LoRA (they are not missing); `lora.LoraSet` checks the keys itself instead.

Only records containing the given text are hidden: every other warning of those loggers still shows.
Knows nothing about pipelines or adapters.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

__all__ = ["hide_log_records", "without_empty_fp32_warning", "without_adapter_load_report"]


class _Containing(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


@contextmanager
def hide_log_records(logger_name: str, containing: str) -> Iterator[None]:
    """Drop the records of logger `logger_name` whose message contains `containing`, inside the block."""
    target = logging.getLogger(logger_name)
    quiet = _Containing(containing)
    target.addFilter(quiet)
    try:
        yield
    finally:
        target.removeFilter(quiet)


def without_empty_fp32_warning():
    """Hide diffusers' "should be kept in float32: []" warning (an empty list: nothing to keep)."""
    return hide_log_records("diffusers.models.modeling_utils", "should be kept in float32: []")


def without_adapter_load_report():
    """Hide transformers' LoRA "LOAD REPORT" (base weights listed as missing; `LoraSet` checks keys itself)."""
    return hide_log_records("transformers.integrations.peft", "LOAD REPORT")
