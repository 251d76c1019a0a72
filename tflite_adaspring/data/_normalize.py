"""Per-channel normalisation: statistics from the training split only, applied to every split."""

from __future__ import annotations

import numpy as np

from tflite_adaspring.data.spec import Normalization

# A channel whose training std is below this is constant: it is centred but not scaled.
_MIN_STD = 1e-8
# Rows (one value per channel) per chunk when accumulating: keeps float64 temporaries at a few MB.
_CHUNK_ROWS = 1 << 18


def fit_normalization(x: np.ndarray) -> Normalization:
    """Computes per-channel mean and std over every axis but the last.

    Two passes in float64, chunked along the first axis so memory stays bounded.

    Args:
      x: training values, shape ``(..., channels)``, at least one row.

    Returns:
      The :class:`Normalization` (std of constant channels replaced by 1).
    """
    channels = x.shape[-1]
    rows = x.reshape(-1, channels)
    count = rows.shape[0]
    if count == 0:
        raise ValueError("cannot fit a normalisation on an empty training split")
    total = np.zeros(channels, np.float64)
    for start in range(0, count, _CHUNK_ROWS):
        total += rows[start : start + _CHUNK_ROWS].sum(axis=0, dtype=np.float64)
    mean = total / count
    squares = np.zeros(channels, np.float64)
    for start in range(0, count, _CHUNK_ROWS):
        centred = rows[start : start + _CHUNK_ROWS].astype(np.float64) - mean
        squares += np.einsum("ij,ij->j", centred, centred)
    std = np.sqrt(squares / count)
    std = np.where(std < _MIN_STD, 1.0, std)
    return Normalization(tuple(float(v) for v in mean), tuple(float(v) for v in std))


def apply_normalization(x: np.ndarray, norm: Normalization) -> np.ndarray:
    """Returns a new float32 array ``(x - mean) / std`` (broadcast over the last axis)."""
    out = np.array(x, dtype=np.float32, copy=True)
    out -= np.asarray(norm.mean, dtype=np.float32)
    out /= np.asarray(norm.std, dtype=np.float32)
    return out
