"""Training-time data augmentation (numpy, applied per epoch to the normalised training split).

``imu_rotation``: rotates each window's accelerometer and gyroscope axes by one random 3-D rotation
(same rotation for both sensors) and scales the magnitude a little. Watches sit at different angles on
different wrists, so this is what makes a model generalise to people it never saw. It works on raw
units: the loader's normalisation is undone, the rotation applied, and the normalisation redone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tflite_adaspring.data.spec import InputSpec

Augmentation = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def random_rotations(rng: np.random.Generator, n: int, max_degrees: float) -> np.ndarray:
    """``n`` rotation matrices from Euler angles drawn uniformly in ``[-max_degrees, max_degrees]``."""
    return euler_rotations(np.deg2rad(rng.uniform(-max_degrees, max_degrees, size=(n, 3))))


def euler_rotations(angles: np.ndarray) -> np.ndarray:
    """Rotation matrices ``Rz @ Ry @ Rx`` for an ``(n, 3)`` array of (x, y, z) angles in radians."""
    n = len(angles)
    c, s = np.cos(angles), np.sin(angles)
    one, zero = np.ones(n), np.zeros(n)
    rx = np.stack([one, zero, zero, zero, c[:, 0], -s[:, 0], zero, s[:, 0], c[:, 0]], -1).reshape(n, 3, 3)
    ry = np.stack([c[:, 1], zero, s[:, 1], zero, one, zero, -s[:, 1], zero, c[:, 1]], -1).reshape(n, 3, 3)
    rz = np.stack([c[:, 2], -s[:, 2], zero, s[:, 2], c[:, 2], zero, zero, zero, one], -1).reshape(n, 3, 3)
    return rz @ ry @ rx


def imu_rotation(
    spec: InputSpec, sensor_axes: tuple[tuple[int, int], ...] = ((0, 3), (3, 6)), max_degrees: float = 30.0,
    scale: float = 0.1,
) -> Augmentation:  # fmt: skip
    """An augmentation that rotates 3-axis sensors (channel ranges ``sensor_axes``) of time-major windows.

    Args:
      spec: the task's input spec (its normalisation is undone and redone).
      sensor_axes: ``(start, stop)`` channel ranges of 3-axis sensors rotated together.
      max_degrees: maximum rotation per Euler angle.
      scale: magnitude scaling drawn from ``[1 - scale, 1 + scale]``.

    Returns:
      ``augment(x, rng) -> x'`` for arrays shaped ``(n, T, C)``.
    """
    norm = spec.normalization
    mean = np.zeros(spec.input_shape[-1], np.float32) if norm is None else np.asarray(norm.mean, np.float32)
    std = np.ones(spec.input_shape[-1], np.float32) if norm is None else np.asarray(norm.std, np.float32)
    for start, stop in sensor_axes:
        if stop - start != 3 or stop > spec.input_shape[-1]:
            raise ValueError(f"sensor axes {start}:{stop} must be 3 channels within {spec.input_shape[-1]}")

    def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raw = x * std + mean
        rot = random_rotations(rng, len(x), max_degrees).astype(np.float32)
        gain = rng.uniform(1 - scale, 1 + scale, size=(len(x), 1, 1)).astype(np.float32)
        for start, stop in sensor_axes:
            raw[..., start:stop] = np.einsum("ntj,nij->nti", raw[..., start:stop], rot)
        return ((raw * gain - mean) / std).astype(np.float32)

    return augment


def augmentation_for(name: str, spec: InputSpec) -> Augmentation | None:
    """The augmentation named ``name`` (``none`` or ``imu_rotation``) for a task."""
    if name == "none":
        return None
    if name == "imu_rotation":
        return imu_rotation(spec)
    raise ValueError(f"unknown augmentation {name!r}; choose 'none' or 'imu_rotation'")
