"""Compile ``libadaspring_delegate.so`` from the C++ sources (``delegates/``, ``kernels/``) with the system g++.

Used by ``setup.py`` (so that ``pip install .`` puts the library next to this package), by the tests, and
from the command line::

    python -m tflite_adaspring.delegates.build [--out DIR] [--march x86-64-v3|native|...] [--force]

The kernels are compiled for ``x86-64-v3`` (AVX2 + FMA, CPUs since ~2015) on x86-64 by default and the
exported entry points for the baseline instruction set, so the library refuses cleanly (instead of
crashing) on an older CPU. ``--march native`` tunes for the build machine only. Stdlib only: this module
runs inside ``setup.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tflite_adaspring._version import __version__
from tflite_adaspring.errors import DelegateBuildError

LIBRARY_NAME = "libadaspring_delegate.so"
EIGEN_INCLUDE = "/usr/include/eigen3"
# Compiled for the baseline ISA: they run before the CPU check (see delegates/plugin_api.cc).
ENTRY_SOURCES = ("delegates/plugin_api.cc",)
OPTIMIZED_SOURCES = (
    "kernels/views.cc",
    "kernels/thread_pool.cc",
    "kernels/gemm.cc",
    "kernels/conv2d.cc",
    "kernels/depthwise_conv2d.cc",
    "kernels/fully_connected.cc",
    "delegates/safe_memory.cc",
    "delegates/options.cc",
    "delegates/op_shapes.cc",
    "delegates/abi_check.cc",
    "delegates/node_support.cc",
    "delegates/partition_kernel.cc",
    "delegates/weight_source.cc",
    "delegates/delegate.cc",
)
HEADER_DIRS = ("delegates", "kernels")
COMMON_FLAGS = ("-std=c++17", "-fPIC", "-pthread", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-Wall")
LINK_FLAGS = ("-shared", "-pthread", "-Wl,-z,defs", "-Wl,--exclude-libs,ALL", "-ldl")


def default_march() -> str:
    """The ``-march`` for the kernels on this platform ("" = compiler default).

    Returns:
      ``"x86-64-v3"`` on x86-64, ``""`` elsewhere (AArch64's default already has NEON).
    """
    return "x86-64-v3" if platform.machine().lower() in ("x86_64", "amd64") else ""


@dataclass(frozen=True)
class BuildConfig:
    """How to compile the library.

    Attributes:
      march: ``-march`` of the kernels ("" = compiler default, "native" = this machine only).
      compiler: the C++ compiler command.
      optimization: optimisation flag of the kernels.
      eigen_include: folder holding ``Eigen/Core``.
      extra_flags: more compiler flags for every source.
    """

    march: str = field(default_factory=default_march)
    compiler: str = "g++"
    optimization: str = "-O3"
    eigen_include: str = EIGEN_INCLUDE
    extra_flags: tuple[str, ...] = ()

    def entry_flags(self) -> list[str]:
        """Flags of the baseline-ISA entry points."""
        flags = [*COMMON_FLAGS, "-O2", f'-DADASPRING_VERSION="{__version__}"', f'-DADASPRING_KERNEL_ISA="{self.isa}"']
        if self.march == "x86-64-v3":
            flags.append("-DADASPRING_REQUIRE_X86_64_V3")
        return flags + list(self.extra_flags)

    def optimized_flags(self) -> list[str]:
        """Flags of the kernels and the delegate logic."""
        flags = [*COMMON_FLAGS, self.optimization, "-DNDEBUG"]
        if self.march:
            flags.append(f"-march={self.march}")
        return flags + list(self.extra_flags)

    @property
    def isa(self) -> str:
        """The instruction set named in ``adaspring_delegate_build_info()``."""
        return self.march or f"{platform.machine()}-default"


def source_root() -> Path:
    """The repository folder holding ``delegates/`` and ``kernels/``.

    Returns:
      The path.

    Raises:
      DelegateBuildError: when the C++ sources are not there (e.g. an installed wheel).
    """
    root = Path(__file__).resolve().parents[2]
    if not (root / ENTRY_SOURCES[0]).is_file():
        raise DelegateBuildError(
            f"the delegate's C++ sources are not next to this package (looked in {root}/delegates); "
            "build from a checkout of tflite-adaspring"
        )
    return root


def _check_toolchain(config: BuildConfig) -> str:
    compiler = shutil.which(config.compiler)
    if compiler is None:
        raise DelegateBuildError(
            f"C++ compiler {config.compiler!r} not found; install it (Debian: tools/ensure_system_packages.sh compiler)"
        )
    if not (Path(config.eigen_include) / "Eigen" / "Core").is_file():
        raise DelegateBuildError(
            f"Eigen headers not found in {config.eigen_include}; install them "
            "(Debian: tools/ensure_system_packages.sh eigen, i.e. apt-get install libeigen3-dev)"
        )
    return compiler


def _fingerprint(root: Path, config: BuildConfig) -> str:
    digest = hashlib.sha256(repr((config, __version__)).encode())
    files = sorted(p for d in HEADER_DIRS for p in (root / d).glob("*") if p.suffix in (".cc", ".h"))
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DelegateBuildError(f"command failed ({result.returncode}): {' '.join(command)}\n{result.stderr[-4000:]}")


def build_library(
    output_dir: str | os.PathLike,
    config: BuildConfig | None = None,
    root: str | os.PathLike | None = None,
    jobs: int = 2,
    force: bool = False,
    fingerprint_file: bool = True,
) -> Path:
    """Compile the delegate into ``output_dir/libadaspring_delegate.so`` unless an identical build is there.

    A fingerprint of the sources and flags is stored next to the library; a rebuild happens only when it
    changes (or with ``force``). The library is linked into a temporary file and renamed into place, so a
    reader never sees a half-written file.

    Args:
      output_dir: destination folder (created).
      config: compiler settings; default ``BuildConfig()``.
      root: repository root holding the sources; default: found from this file.
      jobs: parallel compiler processes.
      force: rebuild even when the fingerprint matches.
      fingerprint_file: keep the fingerprint next to the library (off for wheels: always rebuilds).

    Returns:
      The path of the library.

    Raises:
      DelegateBuildError: no compiler, no Eigen headers, missing sources or a compile/link error.
    """
    config = config or BuildConfig()
    root_path = Path(root) if root is not None else source_root()
    out_dir = Path(output_dir)
    library = out_dir / LIBRARY_NAME
    stamp = out_dir / (LIBRARY_NAME + ".fingerprint")
    fingerprint = _fingerprint(root_path, config)
    up_to_date = fingerprint_file and library.is_file() and stamp.is_file() and stamp.read_text().strip() == fingerprint
    if up_to_date and not force:
        return library
    compiler = _check_toolchain(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    includes = [f"-I{root_path}", "-isystem", config.eigen_include]
    with tempfile.TemporaryDirectory(prefix="adaspring_delegate_build_") as tmp:
        units = [(src, config.entry_flags()) for src in ENTRY_SOURCES]
        units += [(src, config.optimized_flags()) for src in OPTIMIZED_SOURCES]
        objects = [str(Path(tmp) / (Path(src).stem + ".o")) for src, _ in units]
        commands = [
            [compiler, *flags, *includes, "-c", str(root_path / src), "-o", obj]
            for (src, flags), obj in zip(units, objects, strict=True)
        ]
        with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
            list(pool.map(_run, commands))
        linked = Path(tmp) / LIBRARY_NAME
        _run([compiler, *objects, "-o", str(linked), *LINK_FLAGS])
        partial = out_dir / f".{LIBRARY_NAME}.{os.getpid()}.tmp"
        shutil.copyfile(linked, partial)
        os.replace(partial, library)
    if fingerprint_file:
        stamp.write_text(fingerprint + "\n")
    return library


def default_output_dir() -> Path:
    """The development build folder, ``<repository>/build/delegate``.

    Returns:
      The path (not created).
    """
    return Path(__file__).resolve().parents[2] / "build" / "delegate"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point.

    Args:
      argv: arguments without the program name; default ``sys.argv[1:]``.

    Returns:
      The process exit code.
    """
    parser = argparse.ArgumentParser(
        prog="python -m tflite_adaspring.delegates.build", description=__doc__.split("\n", maxsplit=1)[0]
    )
    parser.add_argument("--out", default=str(default_output_dir()), help="output folder (default: %(default)s)")
    parser.add_argument("--march", default=default_march(), help="-march of the kernels (default: %(default)s)")
    parser.add_argument("--compiler", default="g++", help="C++ compiler (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    try:
        path = build_library(args.out, BuildConfig(march=args.march, compiler=args.compiler), force=args.force)
    except DelegateBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
