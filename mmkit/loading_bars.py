"""Loading progress bars, off for one `from_pretrained` when the caller passed `progress=False`.

diffusers ("Loading pipeline components") and transformers ("Loading weights") each keep a global switch for
their tqdm bars; `without_loading_bars` turns both off inside a block and restores each library's own setting
afterwards, so a quiet load does not silence the caller's other loads.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

__all__ = ["without_loading_bars"]


@contextmanager
def without_loading_bars(enabled: bool = True) -> Iterator[None]:
    """Inside the block, diffusers' and transformers' loading bars are off when `enabled`."""
    if not enabled:
        yield
        return
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    before = [(lib, lib.is_progress_bar_enabled()) for lib in (diffusers_logging, transformers_logging)]
    for lib, _ in before:
        lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, was_on in before:
            if was_on:
                lib.enable_progress_bar()
