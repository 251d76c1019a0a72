"""IMU rotation augmentation: rotations are proper, norms are kept, zero range is the identity."""

import numpy as np
import pytest

from tflite_adaspring.data.spec import InputSpec, Normalization
from tflite_adaspring.training.augment import augmentation_for, euler_rotations, imu_rotation, random_rotations

SPEC = InputSpec("t", (4, 6), ("a", "b"), "timeseries", Normalization((1.0,) * 6, (2.0,) * 6))


def test_random_rotations_are_proper_rotations():
    r = random_rotations(np.random.default_rng(0), 50, 45.0)
    np.testing.assert_allclose(r @ np.transpose(r, (0, 2, 1)), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)


def test_zero_range_is_identity_and_rotation_keeps_sensor_norms():
    x = np.random.default_rng(1).normal(size=(3, 4, 6)).astype("f")
    same = imu_rotation(SPEC, max_degrees=0.0, scale=0.0)(x, np.random.default_rng(2))
    np.testing.assert_allclose(same, x, atol=1e-6)
    out = imu_rotation(SPEC, max_degrees=90.0, scale=0.0)(x, np.random.default_rng(3))
    raw_in, raw_out = x * 2 + 1, out * 2 + 1  # undo the normalisation by hand
    for sl in (slice(0, 3), slice(3, 6)):
        np.testing.assert_allclose(
            np.linalg.norm(raw_out[..., sl], axis=-1), np.linalg.norm(raw_in[..., sl], axis=-1), rtol=1e-5
        )
    assert not np.allclose(out, x)


def test_hand_computed_90_degree_turn():
    # a 90-degree turn about z maps x to y; about x it maps y to z
    rz, rx = euler_rotations(np.array([[0.0, 0.0, np.pi / 2], [np.pi / 2, 0.0, 0.0]]))
    np.testing.assert_allclose(rz @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(rx @ [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], atol=1e-12)


def test_bad_names_and_axes():
    assert augmentation_for("none", SPEC) is None
    with pytest.raises(ValueError, match="imu_rotation"):
        augmentation_for("mixup", SPEC)
    with pytest.raises(ValueError, match="3 channels"):
        imu_rotation(SPEC, sensor_axes=((0, 2),))
