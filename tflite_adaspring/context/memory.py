"""Memory available to this process: ``/proc/meminfo`` ``MemAvailable`` capped by cgroup limits."""

from __future__ import annotations

import os
from typing import Any

from tflite_adaspring.context._cgroup import v1_dirs, v2_dirs
from tflite_adaspring.context._files import PseudoFile, parse_int, read_once
from tflite_adaspring.context.source import FileSource

# cgroup v1 writes "no limit" as a huge page-aligned number (2**63 - 4096 on 64-bit kernels).
V1_UNLIMITED = 2**62


def parse_mem_available(data: bytes | None) -> int | None:
    """Returns ``MemAvailable`` in bytes from ``/proc/meminfo`` content, or ``None`` if absent/garbled."""
    if not data:
        return None
    start = data.find(b"MemAvailable:")
    if start < 0:
        return None
    words = data[start + len(b"MemAvailable:") :].split(b"\n", 1)[0].split()
    if not words or (len(words) > 1 and words[1] != b"kB"):
        return None
    kib = parse_int(words[0])
    return kib * 1024 if kib is not None and kib >= 0 else None


class MemorySource(FileSource):
    """Reads ``memory_available_bytes``.

    The value is the minimum of ``MemAvailable`` from ``/proc/meminfo`` and, for every level of this
    process's cgroup that sets a limit, ``limit - usage`` (v2: ``memory.max - memory.current``; v1:
    ``memory.limit_in_bytes - memory.usage_in_bytes``). cgroup usage includes reclaimable page cache, so
    the cgroup figure is conservative. Limits are re-read at each re-discovery, usage on every read.

    Args:
      root: filesystem root (see :class:`FileSource`).
      keep_open: see :class:`FileSource`.
      rescan_s: seconds between re-discoveries of cgroup levels and limits.
    """

    name = "memory"
    fields = ("memory_available_bytes",)

    def __init__(self, root: str | os.PathLike = "/", keep_open: bool | None = None, rescan_s: float = 10.0) -> None:
        super().__init__(root, keep_open, rescan_s)
        self._meminfo: PseudoFile | None = None
        self._limited: list[tuple[int, PseudoFile]] = []  # (limit bytes, usage file) per limited cgroup level

    def _discover(self) -> None:
        self._meminfo = self.open_file(self.path("proc/meminfo"), 512)
        self._limited = []
        levels = [(d, "memory.max", "memory.current") for d in v2_dirs(self.root)]
        levels += [(d, "memory.limit_in_bytes", "memory.usage_in_bytes") for d in v1_dirs(self.root, "memory")]
        for folder, limit_name, usage_name in levels:
            limit = parse_int(read_once(os.path.join(folder, limit_name)))  # "max" (v2 unlimited) -> None
            if limit is not None and 0 <= limit < V1_UNLIMITED:
                self._limited.append((limit, self.open_file(os.path.join(folder, usage_name), 32)))

    def _read(self, now: float) -> dict[str, Any]:
        available = parse_mem_available(self._meminfo.read() if self._meminfo else None)
        for limit, usage_file in self._limited:
            usage = parse_int(usage_file.read())
            if usage is not None:
                room = max(0, limit - usage)
                available = room if available is None else min(available, room)
        return {"memory_available_bytes": available}
