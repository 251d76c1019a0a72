"""Storage operator: TFMOT magnitude pruning of a materialised subnet (unstructured or 2:4).

Composes *after* :meth:`Supernet.materialize`: the subnet is a plain tf_keras model, so
``tfmot.sparsity.keras.prune_low_magnitude`` applies as is, followed by a short fine-tune and
``strip_pruning``. What it buys is **compressibility, not speed**: zeros make the ``.tflite`` compress
well (for download or storage), but LiteRT's XNNPACK kernels still run dense weights, so latency is
unchanged. Structured savings (fewer channels, lower rank) come from the width/low-rank operators.
"""

from __future__ import annotations

import gzip
from typing import Any

import numpy as np
import tf_keras

PATTERNS = ("unstructured", "2:4")


def prune_for_storage(
    model: tf_keras.Model,
    sparsity: float = 0.5,
    pattern: str = "unstructured",
    fine_tune: tuple[np.ndarray, np.ndarray] | None = None,
    epochs: int = 1,
    batch_size: int = 64,
) -> tf_keras.Model:
    """Magnitude-prunes a plain tf_keras model with TFMOT and strips the pruning wrappers.

    Args:
      model: a materialised subnet (or any TFMOT-prunable tf_keras model).
      sparsity: fraction of zero weights for ``unstructured`` (``2:4`` is always 50 %).
      pattern: ``unstructured`` or ``2:4`` (two zeros in every four consecutive input weights).
      fine_tune: optional ``(x, y)`` to fine-tune while pruning (labels as class indices).
      epochs: fine-tuning epochs.
      batch_size: fine-tuning batch size.

    Returns:
      A new stripped model whose prunable kernels hold the zeros.
    """
    import tensorflow_model_optimization as tfmot

    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {PATTERNS}, got {pattern!r}")
    if not 0.0 < sparsity < 1.0:
        raise ValueError(f"sparsity must be in (0, 1), got {sparsity}")
    clone = tf_keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, frequency=1)
    kwargs: dict[str, Any] = {"pruning_schedule": schedule}
    if pattern == "2:4":
        kwargs = {"sparsity_m_by_n": (2, 4)}
    pruned = tfmot.sparsity.keras.prune_low_magnitude(clone, **kwargs)
    pruned.compile(
        optimizer=tf_keras.optimizers.Adam(1e-4),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep()]
    if fine_tune is None:  # two steps on zeros apply the masks without changing the kept weights much
        x = np.zeros((2, *model.input_shape[1:]), np.float32)
        pruned.fit(x, np.zeros((2,), np.int64), batch_size=1, epochs=1, verbose=0, callbacks=callbacks)
    else:
        pruned.fit(*fine_tune, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=callbacks)
    return tfmot.sparsity.keras.strip_pruning(pruned)


def gzip_size(data: bytes) -> int:
    """Size in bytes of ``data`` after gzip (level 9): what pruning buys for storage/download."""
    return len(gzip.compress(data, compresslevel=9))
