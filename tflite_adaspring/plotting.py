"""Shared matplotlib plumbing for the PNGs the CLI writes (front plot, demo timeline, case study).

matplotlib is optional (the ``train`` extra): :func:`pyplot` imports it with the headless ``Agg`` backend or
raises a typed error naming the install command; :func:`save_png` renders a figure and writes it atomically.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from tflite_adaspring.errors import MissingDependencyError
from tflite_adaspring.fileio import atomic_write_bytes

INSTALL_HINT = "pip install 'tflite-adaspring[train]'"


def pyplot(purpose: str) -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend.

    Args:
      purpose: what needs the plot, for the error message (e.g. ``"the case-study plot"``).

    Returns:
      The ``matplotlib.pyplot`` module.

    Raises:
      MissingDependencyError: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingDependencyError(f"{purpose} needs matplotlib: {INSTALL_HINT}") from exc
    return plt


def save_png(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Renders ``fig`` as PNG, closes it and writes the bytes atomically (parent folders created).

    Args:
      fig: a matplotlib figure.
      path: the PNG to write.
      dpi: resolution.

    Returns:
      The path written.
    """
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())
