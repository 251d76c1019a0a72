"""pytest modules as Bazel tests: one py_test per module, run by //tests:bazel_pytest_main.py.

pytest itself (and numpy, ai_edge_litert, ...) comes from the python3 on PATH, i.e. the virtualenv.
"""

load("@rules_python//python:defs.bzl", "py_test")

_RUNNER = "//tests:bazel_pytest_main.py"

def pytest_test(name, src, deps = [], data = [], allow_tensorflow = False, size = "small", **kwargs):
    """One pytest module as a py_test.

    Args:
      name: target name.
      src: the test module, e.g. "test_data_loaders.py".
      deps: extra py_library deps (the package and //tests:test_support are always added).
      data: extra runtime files.
      allow_tensorflow: let the module import TensorFlow/Keras (blocked by default, see the runner).
      size: Bazel test size; "small" allows 60 s.
      **kwargs: passed on to py_test (tags, timeout, flaky, ...).
    """
    py_test(
        name = name,
        srcs = [_RUNNER, src],
        main = _RUNNER,
        args = ["$(rootpath %s)" % src] + (["--allow-tensorflow"] if allow_tensorflow else []),
        deps = ["//:tflite_adaspring", "//tests:test_support"] + deps,
        data = data,
        python_version = "PY3",
        srcs_version = "PY3",
        size = size,
        **kwargs
    )

def pytest_tests(srcs, **kwargs):
    """pytest_test for each module in srcs, named after the file ("test_x.py" -> ":test_x").

    Args:
      srcs: test modules, usually a glob.
      **kwargs: passed on to every pytest_test.
    """
    for src in srcs:
        pytest_test(name = src[:-len(".py")], src = src, **kwargs)
