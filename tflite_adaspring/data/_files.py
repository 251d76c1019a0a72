"""Locating data files that ship inside installed Python packages, without importing those packages.

``importlib.util.find_spec`` on a top-level name only consults the import path: it never runs the
package's ``__init__`` (which for aeon would pull in numba and scikit-learn).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
import warnings
from pathlib import Path

from tflite_adaspring.errors import DatasetUnavailableError


def find_package_dir(package: str) -> Path | None:
    """Returns the folder of an installed top-level package, or None if it is not installed.

    Args:
      package: a top-level package name such as ``"seglearn"``.

    Returns:
      The package folder, or None.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if Path(location).is_dir():
                return Path(location)
    for entry in sys.path:  # fallback for unusual import hooks that hide the location
        candidate = Path(entry or os.getcwd(), package)
        if candidate.joinpath("__init__.py").is_file():
            return candidate
    return None


def installed_version(distribution: str) -> str | None:
    """Returns the installed version of a distribution (from its metadata; nothing is imported), or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_file(package: str, relative: str, pinned_version: str) -> Path:
    """Returns a data file shipped inside ``package``; raises if the package or the file is missing.

    Warns (once per call site) when the installed version differs from ``pinned_version``, because the
    bundled data sets change between releases.

    Args:
      package: top-level package (and distribution) name, e.g. ``"aeon"``.
      relative: path of the file inside the package folder, ``/``-separated.
      pinned_version: the version the loader was written for; named in the install command.

    Returns:
      The absolute path of the file.

    Raises:
      DatasetUnavailableError: the package is not installed or lacks the file; the message names the
        ``pip install`` command that provides it.
    """
    command = install_command(package, pinned_version)
    folder = find_package_dir(package)
    if folder is None:
        raise DatasetUnavailableError(f"package {package!r} is not installed; install it with: {command}")
    path = folder.joinpath(*relative.split("/"))
    if not path.is_file():
        version = installed_version(package)
        raise DatasetUnavailableError(
            f"{path} is missing from the installed {package} {version or '(unknown version)'}; "
            f"install the pinned version with: {command}"
        )
    version = installed_version(package)
    if version is not None and version != pinned_version:
        warnings.warn(
            f"{package} {version} is installed but the loader expects {pinned_version}; the bundled data may "
            f"differ. Pin it with: {command}",
            stacklevel=3,
        )
    return path


def install_command(package: str, pinned_version: str) -> str:
    """Returns the command that installs a data-carrying package without its (heavy) dependencies."""
    return f"pip install --no-deps {package}=={pinned_version}"


def file_key(path: Path) -> tuple[str, int, int]:
    """Returns a cache key that changes when the file is replaced: (resolved path, mtime_ns, size)."""
    stat = path.stat()
    return str(path.resolve()), stat.st_mtime_ns, stat.st_size
