"""Find and load ``libadaspring_delegate.so``, the AdaSpring external TFLite delegate.

No TensorFlow import: the delegate is loaded with ``ai_edge_litert.interpreter.load_delegate``; only when
ai_edge_litert is not installed does :func:`load` fall back to ``tf.lite.experimental.load_delegate``.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tflite_adaspring.errors import DelegateError, DelegateNotFoundError

LIBRARY_NAME = "libadaspring_delegate.so"
LIBRARY_ENV = "ADASPRING_DELEGATE_LIBRARY"
LOG_LEVELS = ("silent", "info", "debug")
MAX_THREADS = 64
BAZEL_WORKSPACE = "adaspring"
_BUILD_HINT = "build it with `python -m tflite_adaspring.delegates.build` (needs g++ and libeigen3-dev)"


def _candidate_paths() -> Iterator[tuple[str, Path]]:
    env = os.environ.get(LIBRARY_ENV)
    if env:
        yield f"${LIBRARY_ENV}", Path(env)
    for variable in ("RUNFILES_DIR", "TEST_SRCDIR"):  # set by `bazel run` / `bazel test` only
        runfiles = os.environ.get(variable)
        if runfiles:
            yield f"Bazel runfiles (${variable})", Path(runfiles) / BAZEL_WORKSPACE / "delegates" / LIBRARY_NAME
    package_dir = Path(__file__).resolve().parent
    yield "installed package", package_dir / LIBRARY_NAME
    repo = package_dir.parents[1]
    yield "development build", repo / "build" / "delegate" / LIBRARY_NAME
    yield "bazel-bin", repo / "bazel-bin" / "delegates" / LIBRARY_NAME


def library_path() -> Path:
    """Locate the built delegate library.

    Looks, in order, at ``$ADASPRING_DELEGATE_LIBRARY``, Bazel runfiles (under ``bazel test``), next to this
    package (``pip install .``), the development build ``<repo>/build/delegate`` and ``<repo>/bazel-bin/delegates``.

    Returns:
      The first existing path.

    Raises:
      DelegateNotFoundError: nothing found (``$ADASPRING_DELEGATE_LIBRARY``, when set, must exist).
    """
    searched = []
    for label, path in _candidate_paths():
        if path.is_file():
            return path
        if label.startswith(f"${LIBRARY_ENV}"):
            raise DelegateNotFoundError(f"{LIBRARY_ENV}={path} does not name a file; unset it or {_BUILD_HINT}")
        searched.append(f"{label}: {path}")
    raise DelegateNotFoundError(f"{LIBRARY_NAME} not found (searched {'; '.join(searched)}); {_BUILD_HINT}")


_locate_library = library_path  # `load` and `stats` take a parameter of the same name


def is_available() -> bool:
    """Whether the delegate library is built and loadable into this process.

    Returns:
      True when :func:`library_path` finds a library that exports the delegate entry point.
    """
    try:
        library = ctypes.CDLL(str(library_path()))
    except (DelegateNotFoundError, OSError):
        return False
    return hasattr(library, "tflite_plugin_create_delegate")


def delegate_options(
    num_threads: int = 1, log_level: str = "silent", weight_source: Any = None, weight_config: Any = None
) -> dict[str, str]:
    """Validate the options of :func:`load` and render them as the library's string options.

    Args:
      num_threads: threads of the delegate's kernels, 1 to 64.
      log_level: ``"silent"``, ``"info"`` or ``"debug"`` (diagnostics on stderr).
      weight_source: path of the shared-weight file, or None.
      weight_config: the configuration of ``weight_source`` whose views the delegate computes (None: the
        file's only one).

    Returns:
      The options dictionary passed to ``load_delegate``.

    Raises:
      DelegateError: an option has a wrong type or value (the message names it).
    """
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or not 1 <= num_threads <= MAX_THREADS:
        raise DelegateError(f"num_threads={num_threads!r} is invalid: give an integer from 1 to {MAX_THREADS}")
    if log_level not in LOG_LEVELS:
        raise DelegateError(f"log_level={log_level!r} is invalid: give one of {', '.join(LOG_LEVELS)}")
    options = {"num_threads": str(num_threads), "log_level": log_level}
    if weight_source is not None:
        if not isinstance(weight_source, (str, os.PathLike)) or not Path(weight_source).is_file():
            raise DelegateError(
                f"weight_source={weight_source!r} is not an existing file; pass the exported shared-weight file"
            )
        options["weight_source"] = os.fspath(weight_source)
    if weight_config is not None:
        if weight_source is None or not isinstance(weight_config, str) or not weight_config:
            raise DelegateError(
                f"weight_config={weight_config!r} is invalid: give a configuration key together with weight_source"
            )
        options["weight_config"] = weight_config
    return options


def _runtime_load_delegate() -> Any:
    if importlib.util.find_spec("ai_edge_litert") is not None:
        return importlib.import_module("ai_edge_litert.interpreter").load_delegate
    if importlib.util.find_spec("tensorflow") is not None:
        return importlib.import_module("tensorflow").lite.experimental.load_delegate
    raise DelegateError("neither ai_edge_litert nor tensorflow is installed: pip install ai-edge-litert")


def load(
    num_threads: int = 1,
    log_level: str = "silent",
    weight_source: str | os.PathLike | None = None,
    library_path: str | os.PathLike | None = None,
    weight_config: str | None = None,
) -> Any:
    """Load the AdaSpring delegate, ready for ``Interpreter(..., experimental_delegates=[delegate])``.

    Args:
      num_threads: threads of the delegate's kernels, 1 to 64 (independent of the interpreter's).
      log_level: ``"silent"``, ``"info"`` or ``"debug"``.
      weight_source: path of a shared-weight file (written by the ``shared`` runtime mode,
        :mod:`tflite_adaspring.runtime.weight_source`), or None.
      library_path: the ``.so`` to load; default: :func:`library_path`.
      weight_config: the configuration of ``weight_source`` to compute (None: the file's only one).

    Returns:
      The runtime's delegate object (``ai_edge_litert.interpreter.Delegate``).

    Raises:
      DelegateError: invalid option, or the library refused to load (its message is included).
      DelegateNotFoundError: no library found.
    """
    options = delegate_options(num_threads, log_level, weight_source, weight_config)
    path = Path(library_path) if library_path is not None else _locate_library()
    if not path.is_file():
        raise DelegateNotFoundError(f"delegate library {path} does not exist; {_BUILD_HINT}")
    load_delegate = _runtime_load_delegate()
    try:
        return load_delegate(str(path), options)
    except ValueError as error:
        raise DelegateError(f"the AdaSpring delegate refused to load: {error}") from error


@dataclass(frozen=True)
class DelegateStats:
    """Counters of one loaded delegate (see ``delegates/adaspring_delegate.h``)."""

    struct_size: int
    num_threads: int
    prepare_calls: int
    abi_refusals: int
    partitions: int
    claimed_conv2d: int
    claimed_depthwise_conv2d: int
    claimed_fully_connected: int
    skipped_candidates: int
    partition_invokes: int
    node_invokes: int
    shared_views: int
    claimed_shared: int
    shared_weight_bytes: int
    weight_source_mappings: int

    @property
    def claimed_nodes(self) -> int:
        """All nodes claimed, across op types."""
        return self.claimed_conv2d + self.claimed_depthwise_conv2d + self.claimed_fully_connected


class _StatsStruct(ctypes.Structure):
    _fields_ = [(f.name, ctypes.c_int64) for f in fields(DelegateStats)]


def _native_library(path: str | os.PathLike | None) -> ctypes.CDLL:
    return _open_library(str(path if path is not None else _locate_library()))


@functools.lru_cache(maxsize=8)
def _open_library(path: str) -> ctypes.CDLL:
    library = ctypes.CDLL(path)
    library.adaspring_delegate_get_stats.argtypes = [ctypes.c_void_p, ctypes.POINTER(_StatsStruct), ctypes.c_size_t]
    library.adaspring_delegate_get_stats.restype = ctypes.c_int
    library.adaspring_delegate_last_message.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    library.adaspring_delegate_last_message.restype = ctypes.c_int
    library.adaspring_delegate_build_info.restype = ctypes.c_char_p
    return library


def _native_pointer(delegate: Any) -> int:
    try:
        return int(delegate._get_native_delegate_pointer())
    except (AttributeError, TypeError) as error:
        raise DelegateError(f"{delegate!r} is not a loaded delegate object") from error


def stats(delegate: Any, library_path: str | os.PathLike | None = None) -> DelegateStats:
    """Read the counters of a delegate returned by :func:`load`.

    Args:
      delegate: the delegate object.
      library_path: the library it was loaded from; default: :func:`library_path`.

    Returns:
      The counters.

    Raises:
      DelegateError: the object is not a live delegate of that library.
    """
    raw = _StatsStruct()
    library = _native_library(library_path)
    if library.adaspring_delegate_get_stats(_native_pointer(delegate), ctypes.byref(raw), ctypes.sizeof(raw)) != 0:
        raise DelegateError(f"{delegate!r} is not a live delegate of {library._name}")
    return DelegateStats(**{f.name: getattr(raw, f.name) for f in fields(DelegateStats)})


def last_message(delegate: Any, library_path: str | os.PathLike | None = None) -> str:
    """The delegate's last diagnostic, e.g. why its ABI self-check refused to claim nodes ("" if none).

    Args:
      delegate: the delegate object.
      library_path: the library it was loaded from; default: :func:`library_path`.

    Returns:
      The message.

    Raises:
      DelegateError: the object is not a live delegate of that library.
    """
    library = _native_library(library_path)
    pointer = _native_pointer(delegate)
    length = library.adaspring_delegate_last_message(pointer, None, 0)
    if length < 0:
        raise DelegateError(f"{delegate!r} is not a live delegate of {library._name}")
    buffer = ctypes.create_string_buffer(length + 1)
    library.adaspring_delegate_last_message(pointer, buffer, len(buffer))
    return buffer.value.decode("utf-8", errors="replace")


def build_info(library_path: str | os.PathLike | None = None) -> str:
    """Version and kernel instruction set of the library, e.g. ``"0.1.0 x86-64-v3"``.

    Args:
      library_path: the library; default: :func:`library_path`.

    Returns:
      The build description.
    """
    return _native_library(library_path).adaspring_delegate_build_info().decode()
