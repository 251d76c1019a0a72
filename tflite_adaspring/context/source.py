"""The context-source interface, and the base of sources that read kernel files under a configurable root."""

from __future__ import annotations

import abc
import math
import os
from typing import Any

from tflite_adaspring.context._files import PseudoFile, is_real_root

# What reading or parsing a kernel file can raise; a source turns any of them into "unknown".
READ_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, IndexError, ZeroDivisionError, OverflowError)


class ContextSource(abc.ABC):
    """One provider of context values (battery, CPU load, ...).

    Subclasses set ``name`` and ``fields`` (the :class:`ContextSnapshot` fields they report) and implement
    :meth:`_read`. :meth:`read` never raises for missing or garbage inputs: every field is then ``None``.
    """

    name: str = "source"
    fields: tuple[str, ...] = ()

    def read(self, now: float) -> dict[str, Any]:
        """Reads the source.

        Args:
          now: the caller's clock time in seconds (used for rate computations and re-discovery).

        Returns:
          ``{field: value}`` for every name in ``fields``; ``None`` means unknown.
        """
        try:
            return self._read(now)
        except READ_ERRORS:
            return dict.fromkeys(self.fields)

    @abc.abstractmethod
    def _read(self, now: float) -> dict[str, Any]:
        """Reads the source; may raise any of :data:`READ_ERRORS`."""

    def close(self) -> None:  # noqa: B027 - an optional hook: most sources hold nothing to release
        """Releases open files (the source stays usable and reopens them on the next read)."""

    def __enter__(self) -> ContextSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FileSource(ContextSource):
    """A source reading procfs/sysfs/cgroup files below ``root``.

    Which files exist (batteries, CPUs, thermal zones, cgroup levels) and slowly changing values (limits,
    trip points, maximum frequencies) are discovered on the first read and again every ``rescan_s``
    seconds; each read then only touches the few files whose values change.

    Args:
      root: filesystem root; ``"/"`` for the real machine, a fake sysfs/procfs tree in tests.
      keep_open: keep files open between reads and re-read them with ``pread`` (about 1 us instead of
        5 us per file). Default: only for the real root, because a fake tree may replace files.
      rescan_s: seconds between re-discoveries.
    """

    def __init__(self, root: str | os.PathLike = "/", keep_open: bool | None = None, rescan_s: float = 10.0) -> None:
        if not rescan_s >= 0:
            raise ValueError(f"rescan_s must be >= 0 seconds, got {rescan_s!r}")
        self.root = os.fspath(root)
        self.is_real_root = is_real_root(self.root)
        self.keep_open = self.is_real_root if keep_open is None else bool(keep_open)
        self.rescan_s = float(rescan_s)
        self._rescan_at = -math.inf
        self._files: list[PseudoFile] = []

    def path(self, *parts: str) -> str:
        """Returns ``root`` joined with a path written relative to ``/`` (e.g. ``"proc/stat"``)."""
        return os.path.join(self.root, *parts)

    def open_file(self, path: str, size: int = 256) -> PseudoFile:
        """Returns a :class:`PseudoFile` for ``path`` that :meth:`close` and re-discovery release."""
        pseudo = PseudoFile(path, self.keep_open, size)
        self._files.append(pseudo)
        return pseudo

    def read(self, now: float) -> dict[str, Any]:
        """Reads the source, re-discovering files first when ``rescan_s`` has passed (see :class:`ContextSource`)."""
        if not self._rescan_at <= now < self._rescan_at + self.rescan_s:
            try:
                self.close()
                self._files = []
                self._discover()
            except READ_ERRORS:
                self._rescan_at = -math.inf
                return dict.fromkeys(self.fields)
            self._rescan_at = now
        return super().read(now)

    @abc.abstractmethod
    def _discover(self) -> None:
        """Finds the files to read and reads slowly changing values; may raise any of :data:`READ_ERRORS`."""

    def rescan(self) -> None:
        """Forces re-discovery on the next read."""
        self._rescan_at = -math.inf

    def close(self) -> None:
        """Closes every file this source keeps open (they reopen on the next read)."""
        for pseudo in self._files:
            pseudo.close()
