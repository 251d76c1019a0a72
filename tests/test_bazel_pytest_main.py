"""The Bazel pytest runner: argument handling, scratch folders, path hygiene and the TensorFlow block."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import bazel_pytest_main as runner
import pytest


def test_arguments_put_the_test_file_first_and_deselect_slow_tests(tmp_path: Path) -> None:
    test_file = tmp_path / "test_x.py"
    test_file.write_text("")
    args, allow = runner.pytest_arguments([str(test_file), "-k", "fast"], {})
    assert args == [str(test_file), "-q", "-p", "no:cacheprovider", "-m", "not slow", "-k", "fast"]
    assert allow is False


def test_arguments_add_junit_xml_and_the_tensorflow_switch(tmp_path: Path) -> None:
    test_file = tmp_path / "test_x.py"
    test_file.write_text("")
    environ = {"XML_OUTPUT_FILE": str(tmp_path / "test.xml")}
    args, allow = runner.pytest_arguments([runner.ALLOW_TENSORFLOW_FLAG, str(test_file)], environ)
    assert allow is True
    assert args[0] == str(test_file)
    assert f"--junitxml={tmp_path / 'test.xml'}" in args
    assert runner.ALLOW_TENSORFLOW_FLAG not in args


@pytest.mark.parametrize("argv", [[], ["no_such_test_file.py"]])
def test_missing_test_file_exits_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        runner.pytest_arguments(argv, {})
    assert raised.value.code == 2
    assert "usage: bazel_pytest_main.py" in capsys.readouterr().err


def test_scratch_dirs_follow_test_tmpdir_and_keep_an_absolute_home() -> None:
    environ = {"TEST_TMPDIR": "/scratch", "TMPDIR": "/tmp"}
    runner.use_test_scratch_dirs(environ)
    assert environ == {"TEST_TMPDIR": "/scratch", "TMPDIR": "/scratch", "HOME": "/scratch"}
    environ = {"TEST_TMPDIR": "/scratch", "HOME": "/home/me"}
    runner.use_test_scratch_dirs(environ)
    assert environ["HOME"] == "/home/me"
    outside_bazel = {"TMPDIR": "/tmp"}
    runner.use_test_scratch_dirs(outside_bazel)
    assert outside_bazel == {"TMPDIR": "/tmp"}


def test_script_folder_is_dropped_from_the_search_path(tmp_path: Path) -> None:
    real = tmp_path / "src"
    real.mkdir()
    (real / "runner.py").write_text("")
    link = tmp_path / "link"
    link.symlink_to(real)
    path = [str(link), "/usr/lib/python3", str(real)]
    runner.drop_script_dir_from_path(path, str(real / "runner.py"))
    assert path == ["/usr/lib/python3"]


@pytest.mark.parametrize("name", ["tensorflow", "tensorflow.lite.python", "tf_keras", "keras.layers"])
def test_blocker_refuses_tensorflow_and_keras(name: str) -> None:
    with pytest.raises(ModuleNotFoundError, match=r"blocked under `bazel test`.*TENSORFLOW_TESTS") as raised:
        runner.TensorFlowImportBlocker().find_spec(name, None)
    assert raised.value.name == name


@pytest.mark.parametrize("name", ["numpy", "tensorflowish", "ai_edge_litert.interpreter"])
def test_blocker_leaves_other_modules_alone(name: str) -> None:
    assert runner.TensorFlowImportBlocker().find_spec(name, None) is None


def test_tensorflow_import_fails_under_bazel_test() -> None:
    if "TEST_SRCDIR" not in os.environ:
        pytest.skip("checks the runner end to end; only meaningful under `bazel test`")
    with pytest.raises(ModuleNotFoundError, match="blocked under `bazel test`"):
        importlib.import_module("tensorflow")
