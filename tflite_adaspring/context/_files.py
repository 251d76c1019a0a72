"""Cheap, exception-free reads of small procfs / sysfs / cgroup files.

Opening a file costs 4-6 us on Linux, re-reading an already open procfs/sysfs file with ``pread`` at
offset 0 costs about 1 us (the kernel regenerates the content on every read from offset 0). So on the
real machine files are kept open; under a fake root (tests) they are opened per read by default, because
a test may replace a file instead of rewriting it in place.
"""

from __future__ import annotations

import os

DEFAULT_READ_SIZE = 4096


class PseudoFile:
    """One small kernel file, re-read on demand; every failure reads as ``None``.

    Args:
      path: absolute path of the file.
      keep_open: keep the descriptor open and ``pread`` from offset 0 (only valid for files the kernel
        regenerates or that are rewritten in place).
      size: bytes to read; the head of the file is enough for every file this package parses.
    """

    __slots__ = ("_fh", "_keep_open", "path", "size")

    def __init__(self, path: str, keep_open: bool, size: int = DEFAULT_READ_SIZE) -> None:
        self.path = path
        self.size = size
        self._keep_open = keep_open
        self._fh = None

    def read(self) -> bytes | None:
        """Returns the file's first ``size`` bytes, or ``None`` if it cannot be read."""
        if not self._keep_open:
            try:
                with open(self.path, "rb", buffering=0) as fh:
                    return fh.read(self.size)
            except OSError:
                return None
        fh = self._fh
        if fh is None:
            try:
                fh = self._fh = open(self.path, "rb", buffering=0)
            except OSError:
                return None
        try:
            return os.pread(fh.fileno(), self.size, 0)
        except OSError:
            self.close()
            return None

    def close(self) -> None:
        """Closes the kept-open descriptor (a later :meth:`read` reopens it)."""
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()


def read_once(path: str, size: int = DEFAULT_READ_SIZE) -> str | None:
    """Reads a small file once as stripped text.

    Args:
      path: file to read.
      size: maximum bytes to read.

    Returns:
      The stripped text, or ``None`` if it cannot be read or decoded.
    """
    try:
        with open(path, "rb", buffering=0) as fh:
            return fh.read(size).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def parse_int(data: bytes | str | None) -> int | None:
    """Parses a whole file's content as one integer; ``None`` for missing or garbage content."""
    if data is None:
        return None
    try:
        return int(data)
    except ValueError:
        return None


def parse_word(data: bytes | None) -> str | None:
    """Returns the first line of ``data`` as stripped text, ``None`` if missing, empty or undecodable."""
    if not data:
        return None
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    return text or None


def is_real_root(root: str | os.PathLike) -> bool:
    """True when ``root`` is the real filesystem root (so the running process's own state applies)."""
    return os.path.realpath(os.fspath(root)) == "/"
