"""Bazel entry point for one pytest module (used by ``tests/pytest_test.bzl``).

Usage: ``bazel_pytest_main.py [--allow-tensorflow] TEST_FILE [PYTEST_ARGS...]``, run by Bazel from the
test's runfiles directory. It deselects tests marked ``slow`` (``make pytest`` runs them; a later ``-m`` in
PYTEST_ARGS overrides this), gives the test Bazel's private scratch folder as HOME and TMPDIR, writes JUnit
XML where Bazel asks for it and exits with pytest's code (5, "no tests collected", fails too).
Unless ``--allow-tensorflow`` is given, importing TensorFlow or Keras fails: Bazel runs only the fast,
TensorFlow-free tests, and doing so proves that the on-device package never needs TensorFlow.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import MutableMapping, Sequence
from types import ModuleType

ALLOW_TENSORFLOW_FLAG = "--allow-tensorflow"
BLOCKED_PACKAGES = frozenset({"tensorflow", "tf_keras", "keras", "tensorflow_model_optimization"})
PYTEST_OPTIONS = ("-q", "-p", "no:cacheprovider", "-m", "not slow")


class TensorFlowImportBlocker(importlib.abc.MetaPathFinder):
    """Meta-path finder that makes every import of a TensorFlow/Keras package fail with an explanation."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        """Refuse the blocked packages and let the normal finders handle everything else.

        Args:
          fullname: dotted name of the module being imported.
          path: the parent package's ``__path__`` (unused).
          target: the module being reloaded, if any (unused).

        Returns:
          None for modules that are not blocked.

        Raises:
          ModuleNotFoundError: for TensorFlow, tf_keras, keras and TFMOT modules.
        """
        del path, target
        if fullname.partition(".")[0] not in BLOCKED_PACKAGES:
            return None
        raise ModuleNotFoundError(
            f"import of {fullname!r} is blocked under `bazel test`, which runs only TensorFlow-free tests. "
            "If this test module needs TensorFlow, exclude it in tests/BUILD (TENSORFLOW_TESTS; pytest still "
            "runs it) or give its pytest_test allow_tensorflow = True. If library code imported it, that code "
            "must import TensorFlow lazily: the base package may not depend on it.",
            name=fullname,
        )


def use_test_scratch_dirs(environ: MutableMapping[str, str]) -> None:
    """Point HOME and TMPDIR at Bazel's per-test scratch folder (no-op outside Bazel).

    Args:
      environ: the environment to update (``os.environ`` in practice).
    """
    scratch = environ.get("TEST_TMPDIR")
    if not scratch:
        return
    environ["TMPDIR"] = scratch
    if not os.path.isabs(environ.get("HOME", "")):
        environ["HOME"] = scratch


def drop_script_dir_from_path(path: list[str], script: str) -> None:
    """Remove this script's real source folder from ``sys.path``.

    Bazel's launcher runs the resolved source file, so Python would put the source ``tests/`` folder on
    ``sys.path`` and let tests import files Bazel never declared. The runfiles copy is what must be used.

    Args:
      path: the module search path to edit in place (``sys.path`` in practice).
      script: the path of this script.
    """
    script_dir = os.path.dirname(os.path.realpath(script))
    path[:] = [entry for entry in path if os.path.realpath(entry or os.curdir) != script_dir]


def pytest_arguments(argv: Sequence[str], environ: MutableMapping[str, str]) -> tuple[list[str], bool]:
    """Split this script's arguments into pytest's argument list and the TensorFlow switch.

    Args:
      argv: the arguments after the script name.
      environ: the environment (Bazel's ``XML_OUTPUT_FILE`` adds ``--junitxml``).

    Returns:
      ``(pytest_args, allow_tensorflow)``.

    Raises:
      SystemExit: with code 2 when no test file is given or it does not exist.
    """
    args = list(argv)
    allow_tensorflow = ALLOW_TENSORFLOW_FLAG in args
    if allow_tensorflow:
        args.remove(ALLOW_TENSORFLOW_FLAG)
    if not args or not os.path.isfile(args[0]):
        given = repr(args[0]) if args else "nothing"
        print(
            f"bazel_pytest_main: expected the test module as first argument, got {given}; "
            f"usage: bazel_pytest_main.py [{ALLOW_TENSORFLOW_FLAG}] TEST_FILE [PYTEST_ARGS...]",
            file=sys.stderr,
        )
        raise SystemExit(2)
    test_file, extra = args[0], args[1:]
    junit = [f"--junitxml={environ['XML_OUTPUT_FILE']}"] if environ.get("XML_OUTPUT_FILE") else []
    return [test_file, *PYTEST_OPTIONS, *junit, *extra], allow_tensorflow


def main(argv: Sequence[str]) -> int:
    """Run one pytest module the way Bazel expects.

    Args:
      argv: ``sys.argv``.

    Returns:
      pytest's exit code.
    """
    pytest_args, allow_tensorflow = pytest_arguments(argv[1:], os.environ)
    use_test_scratch_dirs(os.environ)
    if os.environ.get("TEST_SRCDIR"):
        drop_script_dir_from_path(sys.path, __file__)
    if not allow_tensorflow:
        sys.meta_path.insert(0, TensorFlowImportBlocker())
    # Imported only now, after TMPDIR is set, so that pytest's temporary folders follow it.
    try:
        import pytest
    except ModuleNotFoundError:
        print(
            f"bazel_pytest_main: pytest is not installed for {sys.executable}; Bazel runs the python3 found on "
            'PATH, so put the project\'s virtualenv first: PATH="$PWD/.venv/bin:$PATH" bazel --batch test //...',
            file=sys.stderr,
        )
        return 2
    return int(pytest.main(pytest_args))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
