"""The LiteRT interpreter used for measurements (ai-edge-litert, XNNPACK on by default)."""

from __future__ import annotations

from typing import Any

from tflite_adaspring.errors import MissingDependencyError


def make_interpreter(model_bytes: bytes, threads: int = 1) -> Any:
    """An ``ai_edge_litert`` interpreter over ``model_bytes`` with ``threads`` threads.

    Raises:
      MissingDependencyError: ai-edge-litert is not installed.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise MissingDependencyError(
            "measuring latency needs ai-edge-litert: pip install 'ai-edge-litert>=2.3,<2.4'"
        ) from exc
    return Interpreter(model_content=bytes(model_bytes), num_threads=int(threads))
