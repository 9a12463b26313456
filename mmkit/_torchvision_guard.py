"""Keep a broken torchvision install from crashing transformers imports.

transformers imports torchvision whenever the package is installed. The PyPI torchvision wheel is a CUDA
build that fails to import against a CPU torch (`operator torchvision::nms does not exist`), which then
breaks every transformers model and processor import. If torchvision is present but fails to import, this
module hides it (sys.modules["torchvision"] = None makes importlib.util.find_spec return None) and warns
once. mmkit never needs torchvision. This module must stay import-light.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings

TORCHVISION_USABLE: bool = False


def _check() -> bool:
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"] is not None
    try:
        if importlib.util.find_spec("torchvision") is None:
            return False
    except (ImportError, ValueError):
        return False
    try:
        importlib.import_module("torchvision")
    except Exception as err:  # any failure means "unusable"; we report it and hide the package
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules["torchvision"] = None  # type: ignore[assignment]
        warnings.warn(
            f"torchvision is installed but fails to import ({type(err).__name__}: {err}); mmkit hides it so "
            "transformers keeps working. Uninstall it or install the build matching your torch.",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    return True


TORCHVISION_USABLE = _check()
