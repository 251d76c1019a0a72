"""``adaspring datasets``: JSON and table output, missing data, user .npz files, bad flags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tflite_adaspring.cli.main import main

EXPECTED = {
    # task: (input shape, number of classes, split sizes or None when they depend on windowing)
    "har_watch": ([128, 6], 7, None),
    "fashion_mnist": ([28, 28, 1], 10, {"train": 55000, "val": 5000, "test": 10000}),
    "japanese_vowels": ([29, 12], 9, {"train": 216, "val": 54, "test": 370}),
    "basic_motions": ([100, 6], 4, {"train": 32, "val": 8, "test": 40}),
}


def _run_json(capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, dict[str, dict]]:
    code = main(["adaspring", "datasets", "--json", *flags])
    tasks = json.loads(capsys.readouterr().out)["tasks"]
    return code, {t["task"]: t for t in tasks}


def test_json_lists_all_bundled_tasks_as_available(capsys: pytest.CaptureFixture[str]) -> None:
    code, tasks = _run_json(capsys)
    assert code == 0
    assert list(tasks) == ["har_watch", "fashion_mnist", "japanese_vowels", "basic_motions", "npz"]
    for name, (shape, num_classes, sizes) in EXPECTED.items():
        task = tasks[name]
        assert task["available"] is True and task["status"] == "available", name
        assert task["input_shape"] == shape and len(task["class_names"]) == num_classes, name
        if sizes is not None:
            assert task["split_sizes"] == sizes, name
    har_sizes = tasks["har_watch"]["split_sizes"]
    assert har_sizes["train"] > 3 * har_sizes["test"] > 0 and har_sizes["val"] > 0
    assert tasks["npz"]["status"] == "needs_path" and tasks["npz"]["available"] is False


def test_table_shows_counts_shapes_and_abbreviated_classes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adaspring", "datasets"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "55000" in lines["fashion_mnist"] and "28x28x1" in lines["fashion_mnist"]
    assert "10: T-shirt/top" in lines["fashion_mnist"] and lines["fashion_mnist"].endswith("...")
    assert "100x6" in lines["basic_motions"] and "Badminton" in lines["basic_motions"]
    assert "128x6" in lines["har_watch"] and "available" in lines["har_watch"]
    assert "--npz_path" in out


def test_missing_fashion_mnist_shows_install_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adaspring", "datasets", f"--data_dir={tmp_path}", "--tasks=fashion_mnist,basic_motions"]) == 0
    out = capsys.readouterr().out
    assert "missing" in out and "apt-get install dataset-fashion-mnist" in out
    code, tasks = _run_json(capsys, f"--data_dir={tmp_path}", "--tasks=fashion_mnist")
    assert code == 0 and tasks["fashion_mnist"]["status"] == "missing"
    assert tasks["fashion_mnist"]["install_command"] == "apt-get install dataset-fashion-mnist"
    # flags do not leak into the next invocation in the same process
    _, tasks = _run_json(capsys, "--tasks=fashion_mnist")
    assert tasks["fashion_mnist"]["available"] is True


def test_user_npz_is_summarised_or_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.npz"
    np.savez(good, x_train=np.ones((10, 4, 4, 1)) * np.arange(10)[:, None, None, None], y_train=np.arange(10) % 2,
             x_test=np.zeros((4, 4, 4, 1)), y_test=np.array([0, 1, 0, 1]))  # fmt: skip
    code, tasks = _run_json(capsys, f"--npz_path={good}", "--tasks=npz")
    assert code == 0 and tasks["npz"]["available"] is True
    assert tasks["npz"]["input_shape"] == [4, 4, 1] and tasks["npz"]["kind"] == "image"
    assert tasks["npz"]["split_sizes"] == {"train": 9, "val": 1, "test": 4}
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.ones((10, 4)), y_train=np.arange(10) % 2, x_test=np.ones((4, 5)), y_test=np.zeros(4, int))
    assert main(["adaspring", "datasets", f"--npz_path={bad}", "--tasks=npz"]) == 1
    assert "x_test" in capsys.readouterr().out


def test_unknown_task_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adaspring", "datasets", "--tasks=mnist"]) == 2
    assert "known: har_watch" in capsys.readouterr().err
