"""The bundled-data loaders: shapes, classes, splits, normalisation, determinism, caching and errors."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tflite_adaspring import data
from tflite_adaspring.data import _files, fashion_mnist, har_watch
from tflite_adaspring.data._splits import carve_validation, validation_size
from tflite_adaspring.data.idx_format import read_idx
from tflite_adaspring.data.ts_format import read_ts
from tflite_adaspring.errors import DatasetUnavailableError, DataValidationError

SMALL_TASKS = {
    # task: (input shape, number of classes, sampling rate)
    "har_watch": ((128, 6), 7, 50.0),
    "japanese_vowels": ((29, 12), 9, 156.25),
    "basic_motions": ((100, 6), 4, 10.0),
}


@pytest.fixture(scope="module")
def fashion() -> data.Dataset:
    """Fashion-MNIST, parsed once for the module (a few seconds)."""
    return data.load("fashion_mnist")


def _splits(ds: data.Dataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"train": ds.train, "val": ds.val, "test": ds.test}


def _channel_stats(x: np.ndarray, chunk: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std in float64, chunked (Fashion-MNIST train has 43 M values)."""
    rows = x.reshape(-1, x.shape[-1])
    mean = sum(rows[i : i + chunk].sum(axis=0, dtype=np.float64) for i in range(0, len(rows), chunk)) / len(rows)
    squares = sum(((rows[i : i + chunk] - mean) ** 2).sum(axis=0) for i in range(0, len(rows), chunk))
    return mean, np.sqrt(squares / len(rows))


def _digest(ds: data.Dataset) -> str:
    h = hashlib.sha256()
    for x, y in _splits(ds).values():
        h.update(x.tobytes())
        h.update(y.tobytes())
    return h.hexdigest()


# --- shapes, dtypes, classes -------------------------------------------------------------------


@pytest.mark.parametrize("task", sorted(SMALL_TASKS))
def test_small_task_shapes_dtypes_and_spec(task: str) -> None:
    shape, num_classes, rate = SMALL_TASKS[task]
    ds = data.load(task)
    assert ds.spec.task == task
    assert ds.spec.input_shape == shape
    assert ds.spec.kind == "timeseries"
    assert ds.spec.num_classes == num_classes
    assert ds.spec.sampling_rate_hz == rate
    assert ds.spec.normalization is not None and len(ds.spec.normalization.mean) == shape[-1]
    for name, (x, y) in _splits(ds).items():
        assert x.dtype == np.float32 and y.dtype == np.int64, name
        assert x.shape[1:] == shape and len(x) == len(y) > 0, name
        assert y.min() >= 0 and y.max() < num_classes, name
        assert np.isfinite(x).all(), name
    assert set(np.unique(ds.train[1])) == set(range(num_classes))


def test_known_split_sizes_and_class_names() -> None:
    vowels = data.load("japanese_vowels")
    motions = data.load("basic_motions")
    assert [len(s[1]) for s in _splits(vowels).values()] == [216, 54, 370]
    assert [len(s[1]) for s in _splits(motions).values()] == [32, 8, 40]
    assert motions.spec.class_names == ("Standing", "Running", "Walking", "Badminton")
    assert vowels.spec.class_names == tuple(str(i) for i in range(1, 10))
    assert data.load("har_watch").spec.class_names == ("PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW")


def test_fashion_mnist_shapes_classes_and_stratified_val(fashion: data.Dataset) -> None:
    assert fashion.spec.input_shape == (28, 28, 1)
    assert fashion.spec.kind == "image"
    assert fashion.spec.class_names[0] == "T-shirt/top" and fashion.spec.num_classes == 10
    assert [len(s[1]) for s in _splits(fashion).values()] == [55000, 5000, 10000]
    assert fashion.train[0].dtype == np.float32 and fashion.test[1].dtype == np.int64
    assert np.bincount(fashion.val[1]).tolist() == [500] * 10


def test_fashion_mnist_normalisation_is_from_train_in_pixel_units(fashion: data.Dataset) -> None:
    norm = fashion.spec.normalization
    # Known Fashion-MNIST training pixel statistics: mean 0.2860, std 0.3530 on the [0, 1] scale.
    assert norm.mean[0] == pytest.approx(0.2860 * 255, abs=0.5)
    assert norm.std[0] == pytest.approx(0.3530 * 255, abs=0.5)
    mean, std = _channel_stats(fashion.train[0])
    assert abs(mean[0]) < 1e-4 and std[0] == pytest.approx(1.0, abs=1e-4)
    test_mean, _ = _channel_stats(fashion.test[0])
    assert abs(test_mean[0]) > 1e-4  # the test split was normalised with train statistics, not its own
    # a device normalises raw pixels with the recorded numbers and gets the model input exactly
    raw = read_idx(fashion_mnist.locate()["test"][0])[:3].astype(np.float32)[..., None]
    np.testing.assert_allclose((raw - norm.mean[0]) / norm.std[0], fashion.test[0][:3], rtol=1e-5, atol=1e-5)


# --- normalisation -----------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["har_watch", "basic_motions"])
def test_normalisation_comes_from_train_only(task: str) -> None:
    ds = data.load(task)
    mean, std = _channel_stats(ds.train[0])
    np.testing.assert_allclose(mean, 0.0, atol=1e-4)
    np.testing.assert_allclose(std, 1.0, atol=1e-4)
    test_mean, test_std = _channel_stats(ds.test[0])
    assert np.abs(test_mean).max() > 1e-3 or np.abs(test_std - 1).max() > 1e-3


def test_japanese_vowels_pads_after_normalising_real_frames() -> None:
    ds = data.load("japanese_vowels")
    x_all = np.concatenate([ds.train[0], ds.val[0], ds.test[0]])
    real_all = np.abs(x_all).sum(axis=-1) > 0  # padding frames are exactly zero
    lengths = real_all.sum(axis=1)
    assert (lengths.min(), lengths.max()) == (7, 29)  # the documented 7..29 frames
    assert all(real_all[i, : lengths[i]].all() for i in range(len(x_all)))  # padding only at the end
    x = ds.train[0]
    mean, std = _channel_stats(x[np.abs(x).sum(axis=-1) > 0])
    np.testing.assert_allclose(mean, 0.0, atol=1e-4)
    np.testing.assert_allclose(std, 1.0, atol=1e-4)


# --- har_watch splits ----------------------------------------------------------------------------


def test_har_watch_has_no_subject_leakage_and_groups_align() -> None:
    ds = data.load("har_watch")
    assert ds.groups is not None
    subjects = {name: set(np.unique(ds.groups[name]).tolist()) for name in ("train", "val", "test")}
    assert not subjects["train"] & subjects["val"]
    assert not subjects["train"] & subjects["test"]
    assert not subjects["val"] & subjects["test"]
    assert subjects["train"] | subjects["val"] | subjects["test"] == set(range(1, 11))
    assert (len(subjects["train"]), len(subjects["val"]), len(subjects["test"])) == (6, 2, 2)
    for name, (x, _) in _splits(ds).items():
        assert len(ds.groups[name]) == len(x), name


def test_har_watch_subject_assignment_follows_seed() -> None:
    a = data.load("har_watch", seed=0).groups
    b = data.load("har_watch", seed=1).groups
    assert set(a["test"].tolist()) != set(b["test"].tolist()) or set(a["val"].tolist()) != set(b["val"].tolist())
    split = data.load("har_watch", seed=3, val_subjects=1, test_subjects=3).groups
    assert (len(np.unique(split["val"])), len(np.unique(split["test"]))) == (1, 3)
    with pytest.raises(DataValidationError, match="test_subjects"):
        data.load("har_watch", val_subjects=5, test_subjects=5)


def test_har_watch_train_windows_overlap_and_eval_windows_do_not() -> None:
    recordings = [np.arange(600, dtype=np.float64).reshape(100, 6), np.ones((20, 6))]  # the second is too short
    x, y, g = har_watch._windows(recordings, np.array([3, 4]), np.array([7, 8]), window=32, stride=16)
    assert x.shape == ((100 - 32) // 16 + 1, 32, 6)
    assert set(y.tolist()) == {3} and set(g.tolist()) == {7}
    np.testing.assert_array_equal(x[1, :16], x[0, 16:])  # 50 % overlap
    np.testing.assert_array_equal(x[0], recordings[0][:32])  # time-major, channels last
    x_eval, _, _ = har_watch._windows(recordings[:1], np.array([3]), np.array([7]), window=32, stride=32)
    assert len(x_eval) == 100 // 32
    np.testing.assert_array_equal(x_eval[1], recordings[0][32:64])  # contiguous, no overlap


def test_har_watch_eval_split_is_not_overlapping_in_real_data() -> None:
    ds = data.load("har_watch")
    x_train, x_test = ds.train[0], ds.test[0]
    train_overlaps = np.mean([np.array_equal(x_train[i, 64:], x_train[i + 1, :64]) for i in range(50)])
    test_overlaps = np.mean([np.array_equal(x_test[i, 64:], x_test[i + 1, :64]) for i in range(50)])
    assert train_overlaps > 0.8 and test_overlaps == 0.0


# --- determinism and caching -------------------------------------------------------------------


@pytest.mark.parametrize("task", sorted(SMALL_TASKS))
def test_two_loads_are_identical(task: str) -> None:
    assert _digest(data.load(task)) == _digest(data.load(task))


def test_splits_are_identical_in_another_process() -> None:
    code = (
        "import hashlib, json\n"
        "from tflite_adaspring import data\n"
        "out = {}\n"
        "for task in ('har_watch', 'basic_motions'):\n"
        "    ds = data.load(task)\n"
        "    h = hashlib.sha256()\n"
        "    for x, y in (ds.train, ds.val, ds.test):\n"
        "        h.update(x.tobytes()); h.update(y.tobytes())\n"
        "    out[task] = h.hexdigest()\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    other = json.loads(result.stdout.strip().splitlines()[-1])
    assert other == {task: _digest(data.load(task)) for task in ("har_watch", "basic_motions")}


def test_returned_arrays_are_not_shared_between_loads() -> None:
    first = data.load("basic_motions")
    expected = first.train[0].copy()
    first.train[0][:] = 123.0
    first.train[1][:] = 0
    second = data.load("basic_motions")
    np.testing.assert_array_equal(second.train[0], expected)
    assert len(set(second.train[1].tolist())) > 1


def test_raw_reads_are_cached_and_read_only() -> None:
    path = har_watch.locate()
    recordings, labels, _, _ = har_watch._read_cached(_files.file_key(path))
    assert har_watch._read_cached(_files.file_key(path))[1] is labels
    with pytest.raises(ValueError, match="read-only"):
        recordings[0][0, 0] = 1.0


# --- validation carve -------------------------------------------------------------------------


def test_carve_validation_is_exact_stratified_disjoint_and_seeded() -> None:
    y = np.repeat(np.arange(4), [40, 20, 20, 20])
    train, val = carve_validation(y, 10, seed=5)
    assert len(val) == 10 and len(train) == 90
    assert np.intersect1d(train, val).size == 0 and np.union1d(train, val).tolist() == list(range(100))
    assert np.bincount(y[val]).tolist() == [4, 2, 2, 2]
    again_train, again_val = carve_validation(y, 10, seed=5)
    assert np.array_equal(val, again_val) and np.array_equal(train, again_train)
    assert not np.array_equal(val, carve_validation(y, 10, seed=6)[1])
    assert validation_size(40, 0.2) == 8
    with pytest.raises(DataValidationError, match="val_fraction"):
        validation_size(40, 1.5)


def test_val_fraction_option_changes_validation_size() -> None:
    ds = data.load("basic_motions", val_fraction=0.5, seed=2)
    assert len(ds.val[1]) == 20 and np.bincount(ds.val[1]).tolist() == [5, 5, 5, 5]


# --- registry -------------------------------------------------------------------------------------


def test_list_tasks_and_unknown_task_or_option() -> None:
    assert data.list_tasks() == ["har_watch", "fashion_mnist", "japanese_vowels", "basic_motions", "npz"]
    with pytest.raises(ValueError, match="known tasks: har_watch, fashion_mnist"):
        data.load("mnist")
    with pytest.raises(TypeError, match="accepted: seed, val_fraction"):
        data.load("basic_motions", window=3)


def test_describe_reports_sizes_without_loading_fashion(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_full_read(*args: object) -> None:
        raise AssertionError("describe must not parse the whole data set")

    monkeypatch.setattr(fashion_mnist, "_read_cached", no_full_read)
    summary = data.describe("fashion_mnist", val_size=1000)
    assert summary.available and summary.split_sizes == {"train": 59000, "val": 1000, "test": 10000}
    assert summary.input_shape == (28, 28, 1)


# --- missing data -------------------------------------------------------------------------------


def test_missing_fashion_mnist_names_the_apt_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DatasetUnavailableError, match="apt-get install dataset-fashion-mnist"):
        data.load("fashion_mnist", data_dir=tmp_path)
    monkeypatch.setenv("ADASPRING_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetUnavailableError, match=re.escape(str(tmp_path))):
        data.load("fashion_mnist")
    summary = data.describe("fashion_mnist")
    assert summary.status == "missing" and summary.install_command == "apt-get install dataset-fashion-mnist"


def test_missing_seglearn_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_files, "find_package_dir", lambda package: None)
    with pytest.raises(DatasetUnavailableError, match=r"pip install --no-deps seglearn==1\.2\.5"):
        data.load("har_watch")
    with pytest.raises(DatasetUnavailableError, match=r"pip install --no-deps aeon==1\.6\.0"):
        data.load("japanese_vowels")


def test_aeon_without_the_bundled_file_names_the_pinned_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_files, "find_package_dir", lambda package: tmp_path)
    with pytest.raises(DatasetUnavailableError, match=r"BasicMotions_TRAIN\.ts is missing.*aeon==1\.6\.0"):
        data.load("basic_motions")
    assert data.describe("basic_motions").status == "missing"


def test_package_dir_is_found_without_importing_the_package() -> None:
    code = (
        "import sys\n"
        "from tflite_adaspring.data import _files\n"
        "assert _files.find_package_dir('aeon') is not None and _files.find_package_dir('seglearn') is not None\n"
        "assert _files.find_package_dir('no_such_package_xyz') is None\n"
        "from tflite_adaspring import data\n"
        "data.load('japanese_vowels'); data.load('har_watch')\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('aeon', 'seglearn', 'sklearn', 'numba')]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --- file formats: IDX and .ts ----------------------------------------------------------------


def _write_idx(path: Path, array: np.ndarray, magic: bytes | None = None) -> None:
    header = magic if magic is not None else bytes([0, 0, 0x08, array.ndim])
    payload = header + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def _write_fake_fashion(folder: Path, n_train: int = 40, n_test: int = 20, suffix: str = ".gz") -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(n) % 10)


@pytest.mark.parametrize(("subfolder", "suffix"), [("", ".gz"), ("fashion-mnist", "")])
def test_fashion_mnist_reads_a_custom_folder(tmp_path: Path, subfolder: str, suffix: str) -> None:
    _write_fake_fashion(tmp_path / subfolder if subfolder else tmp_path, suffix=suffix)
    ds = data.load("fashion_mnist", data_dir=tmp_path, val_size=10)
    assert [len(s[1]) for s in _splits(ds).values()] == [30, 10, 20]
    assert ds.train[0].shape == (30, 28, 28, 1) and np.bincount(ds.val[1]).tolist() == [1] * 10


def test_fashion_mnist_corrupt_magic_is_a_clear_error(tmp_path: Path) -> None:
    _write_fake_fashion(tmp_path)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((20, 28, 28)), magic=b"\x12\x34\x08\x03")
    with pytest.raises(DataValidationError, match="bad IDX magic number 12340803"):
        data.load("fashion_mnist", data_dir=tmp_path, val_size=10)
    assert data.describe("fashion_mnist", data_dir=tmp_path, val_size=10).status == "invalid"


def test_idx_reader_rejects_truncated_and_mismatched_files(tmp_path: Path) -> None:
    _write_fake_fashion(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:-5]))
    with pytest.raises(DataValidationError, match="header promises"):
        read_idx(images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(39) % 10)
    with pytest.raises(DataValidationError, match="39 labels for 40 images"):
        data.load("fashion_mnist", data_dir=tmp_path, val_size=10)
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataValidationError, match=r"bad\.gz"):
        read_idx(tmp_path / "bad.gz")


TS_HEADER = "# comment\n@problemName Toy\n@timeStamps false\n@dimensions 2\n@classLabel true a b\n@data\n"


def test_ts_reader_parses_ragged_cases_and_missing_values(tmp_path: Path) -> None:
    path = tmp_path / "toy.ts"
    path.write_text(TS_HEADER + "1,2,3:4,5,6:b\n\n7,?:8,9:a\n")
    parsed = read_ts(path)
    assert parsed.class_names == ("a", "b") and parsed.labels.tolist() == [1, 0]
    np.testing.assert_array_equal(parsed.series[0], [[1, 2, 3], [4, 5, 6]])
    assert parsed.series[1].shape == (2, 2) and np.isnan(parsed.series[1][0, 1])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("1,2:3,4:c\n", "label 'c' is not declared"),
        ("1,2:b\n", "1 dimensions, header declares 2"),
        ("1,2:3:a\n", "different lengths"),
        ("1,x:3,4:a\n", "non-numeric"),
        ("", "no cases"),
    ],
)
def test_ts_reader_names_the_bad_line(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.ts"
    path.write_text(TS_HEADER + body)
    with pytest.raises(DataValidationError, match=message):
        read_ts(path)


def test_ts_reader_requires_a_classification_header(tmp_path: Path) -> None:
    path = tmp_path / "reg.ts"
    path.write_text("@problemName R\n@classLabel false\n@data\n1,2:0.5\n")
    with pytest.raises(DataValidationError, match="classLabel true"):
        read_ts(path)
    path.write_text("@problemName R\n@timeStamps true\n@classLabel true a\n@data\n(0,1):a\n")
    with pytest.raises(DataValidationError, match="timestamped"):
        read_ts(path)
