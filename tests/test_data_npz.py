"""Bring-your-own ``.npz`` data: shapes, kinds, validation carve and the field-naming validation errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tflite_adaspring import data
from tflite_adaspring.errors import DatasetUnavailableError, DataValidationError


def _arrays(example_shape: tuple[int, ...] = (16, 3), n_train: int = 60, n_test: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.normal(5.0, 2.0, (n_train, *example_shape)),
        "y_train": np.arange(n_train) % 3,
        "x_test": rng.normal(5.0, 2.0, (n_test, *example_shape)),
        "y_test": np.arange(n_test) % 3,
    }


def _save(tmp_path: Path, arrays: dict[str, np.ndarray], name: str = "d.npz") -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_timeseries_npz_carves_seeded_stratified_validation(tmp_path: Path) -> None:
    path = _save(tmp_path, _arrays())
    ds = data.load("npz", path=path)
    assert ds.spec.kind == "timeseries" and ds.spec.input_shape == (16, 3)
    assert ds.spec.class_names == ("0", "1", "2") and ds.spec.task == "npz"
    assert [len(s[1]) for s in (ds.train, ds.val, ds.test)] == [54, 6, 20]
    assert np.bincount(ds.val[1]).tolist() == [2, 2, 2]
    for x, y in (ds.train, ds.val, ds.test):
        assert x.dtype == np.float32 and y.dtype == np.int64
    rows = ds.train[0].reshape(-1, 3)
    np.testing.assert_allclose(rows.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(rows.std(axis=0), 1.0, atol=1e-4)
    assert ds.spec.normalization.mean[0] == pytest.approx(5.0, abs=0.2)
    again = data.load("npz", path=path)
    np.testing.assert_array_equal(ds.val[0], again.val[0])
    other_seed = data.load("npz", path=path, seed=1, val_fraction=0.25)
    assert len(other_seed.val[1]) == 15 and not np.array_equal(other_seed.val[1], ds.val[1][:15])


def test_image_npz_with_given_validation_and_class_names(tmp_path: Path) -> None:
    arrays = _arrays((8, 8, 2))
    arrays["x_val"], arrays["y_val"] = arrays["x_test"][:5], arrays["y_test"][:5]
    arrays["class_names"] = np.array(["cat", "dog", "eel", "fox"])
    ds = data.load("npz", path=_save(tmp_path, arrays))
    assert ds.spec.kind == "image" and ds.spec.input_shape == (8, 8, 2)
    assert ds.spec.class_names == ("cat", "dog", "eel", "fox")
    assert [len(s[1]) for s in (ds.train, ds.val, ds.test)] == [60, 5, 20]
    assert len(ds.spec.normalization.mean) == 2


def test_rank1_examples_become_univariate_series(tmp_path: Path) -> None:
    arrays = _arrays((10,))
    arrays["x_train"] = arrays["x_train"].astype(np.int32)  # integer features are accepted
    ds = data.load("npz", path=_save(tmp_path, arrays))
    assert ds.spec.kind == "timeseries" and ds.spec.input_shape == (10, 1)
    assert ds.train[0].shape[1:] == (10, 1) and ds.test[0].shape == (20, 10, 1)


def _set(field: str, value: Callable[[dict[str, np.ndarray]], object]) -> Callable[[dict[str, np.ndarray]], None]:
    def mutate(arrays: dict[str, np.ndarray]) -> None:
        arrays[field] = value(arrays)

    return mutate


def _poke(field: str, value: float) -> Callable[[dict[str, np.ndarray]], None]:
    def mutate(arrays: dict[str, np.ndarray]) -> None:
        arrays[field] = arrays[field].copy()
        arrays[field][3, 2, 1] = value

    return mutate


def _drop(field: str) -> Callable[[dict[str, np.ndarray]], None]:
    return lambda arrays: arrays.pop(field)


BAD_CASES = {
    "x_test shape": (_set("x_test", lambda a: a["x_test"][:, :8]), "x_test", "shape"),
    "x_val shape": (
        lambda a: a.update(x_val=a["x_test"][:4, :, :2], y_val=a["y_test"][:4]),
        "x_val",
        "shape",
    ),
    "y_train length": (_set("y_train", lambda a: a["y_train"][:-1]), "y_train", "59 labels"),
    "nan": (_poke("x_train", np.nan), "x_train", "NaN"),
    "inf": (_poke("x_test", np.inf), "x_test", "infinite"),
    "float32 overflow": (_poke("x_train", 1e300), "x_train", "float32"),
    "label too big": (
        lambda a: a.update(class_names=np.array(["a", "b", "c"]), y_test=np.where(a["y_test"] == 2, 3, a["y_test"])),
        "y_test",
        "outside",
    ),
    "negative label": (_set("y_train", lambda a: a["y_train"] - 1), "y_train", "outside"),
    "2-D labels": (_set("y_train", lambda a: a["y_train"][:, None]), "y_train", "1-D"),
    "float labels": (_set("y_test", lambda a: a["y_test"].astype(float)), "y_test", "integer"),
    "rank 4 examples": (
        lambda a: a.update(x_train=a["x_train"][..., None, None], x_test=a["x_test"][..., None, None]),
        "x_train",
        "rank",
    ),
    "no example axis": (_set("x_train", lambda a: a["x_train"][:, 0, 0]), "x_train", "rank"),
    "strings": (_set("x_train", lambda a: a["x_train"].astype(str)), "x_train", "numeric"),
    "complex": (_set("x_test", lambda a: a["x_test"].astype(complex)), "x_test", "numeric"),
    "empty train": (
        lambda a: a.update(x_train=a["x_train"][:0], y_train=a["y_train"][:0]),
        "x_train",
        "no examples",
    ),
    "missing x_test": (_drop("x_test"), "x_test", "missing"),
    "x_val without y_val": (_set("x_val", lambda a: a["x_test"][:3]), "y_val", "together"),
    "duplicate class names": (_set("class_names", lambda a: np.array(["a", "a", "b"])), "class_names", "duplicates"),
    "pickled class names": (_set("class_names", lambda a: np.array(["a", 1, None], dtype=object)), "class_names", ""),
    "one class": (
        lambda a: a.update(y_train=np.zeros_like(a["y_train"]), y_test=np.zeros_like(a["y_test"])),
        "y_train",
        "at least 2 classes",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_npz_raises_a_value_error_naming_the_field(tmp_path: Path, case: str) -> None:
    mutate, field, detail = BAD_CASES[case]
    arrays = _arrays()
    mutate(arrays)
    path = _save(tmp_path, arrays)
    with pytest.raises(DataValidationError) as info:
        data.load("npz", path=path)
    assert isinstance(info.value, ValueError)
    assert field in str(info.value) and detail in str(info.value)
    assert data.describe("npz", path=path).status == "invalid"


def test_path_problems(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"path=FILE\.npz"):
        data.load("npz")
    with pytest.raises(DatasetUnavailableError, match="does not exist"):
        data.load("npz", path=tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip archive")
    with pytest.raises(DataValidationError, match=r"not a readable \.npz"):
        data.load("npz", path=junk)
    assert data.describe("npz").status == "needs_path"
