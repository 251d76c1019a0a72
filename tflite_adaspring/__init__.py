"""tflite-adaspring: AdaSpring (context-adaptive, runtime-evolutionary compression) on LiteRT.

The base package is the on-device runtime and needs only numpy + ai-edge-litert. Training-side entry
points (``build_supernet``, ``keras``) import TensorFlow lazily, on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from tflite_adaspring._version import __version__

# public name -> (module, attribute or None for the module itself); resolved on first access.
_LAZY: dict[str, tuple[str, str | None]] = {
    "data": ("tflite_adaspring.data", None),
    "errors": ("tflite_adaspring.errors", None),
    "metadata": ("tflite_adaspring.metadata", None),
    "runtime": ("tflite_adaspring.runtime", None),
    "context": ("tflite_adaspring.context", None),
    "Interpreter": ("tflite_adaspring.runtime", "Interpreter"),
    "space": ("tflite_adaspring.space", None),
    # training side (imports TensorFlow on first use)
    "build_supernet": ("tflite_adaspring.supernet", "build_supernet"),
    "keras": ("tflite_adaspring.keras", None),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'tflite_adaspring' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
