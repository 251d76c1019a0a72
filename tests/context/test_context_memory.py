"""MemorySource: /proc/meminfo and cgroup v1/v2 limits."""

from __future__ import annotations

import pytest

from tflite_adaspring.context.memory import MemorySource, parse_mem_available

MEMINFO = "MemTotal:        8000000 kB\nMemFree:         1000000 kB\nMemAvailable:    4000000 kB\nBuffers: 1 kB\n"
MEMINFO_BYTES = 4_000_000 * 1024


def _read(root) -> int | None:
    return MemorySource(root).read(0.0)["memory_available_bytes"]


def test_meminfo_only(tree):
    assert _read(tree({"proc/meminfo": MEMINFO})) == MEMINFO_BYTES


@pytest.mark.parametrize(
    "text", ["", "MemTotal: 1 kB\n", "MemAvailable: lots kB\n", "MemAvailable: 12 MB\n", "MemAvailable:\n"]
)
def test_garbage_meminfo_is_unknown(tree, text):
    assert _read(tree({"proc/meminfo": text})) is None


def test_parse_mem_available_without_trailing_newline():
    assert parse_mem_available(b"MemAvailable: 3 kB") == 3072


def test_cgroup_v2_limit_minus_usage(tree):
    root = tree(
        {
            "proc/meminfo": MEMINFO,
            "proc/self/cgroup": "0::/app\n",
            "sys/fs/cgroup/cgroup.controllers": "memory\n",
            "sys/fs/cgroup/app/memory.max": "500000000\n",
            "sys/fs/cgroup/app/memory.current": "200000000\n",
        }
    )
    source = MemorySource(root, keep_open=True)
    assert source.read(0.0)["memory_available_bytes"] == 300_000_000
    tree({"sys/fs/cgroup/app/memory.current": "600000000\n"})  # over the limit: nothing left
    assert source.read(1.0)["memory_available_bytes"] == 0
    source.close()


def test_cgroup_v2_unlimited_leaf_limited_parent(tree):
    root = tree(
        {
            "proc/meminfo": MEMINFO,
            "proc/self/cgroup": "0::/a/b\n",
            "sys/fs/cgroup/cgroup.controllers": "",
            "sys/fs/cgroup/a/memory.max": "100000000\n",
            "sys/fs/cgroup/a/memory.current": "90000000\n",
            "sys/fs/cgroup/a/b/memory.max": "max\n",
            "sys/fs/cgroup/a/b/memory.current": "1000\n",
        }
    )
    assert _read(root) == 10_000_000


def test_cgroup_v2_limit_above_meminfo_keeps_meminfo(tree):
    root = tree(
        {
            "proc/meminfo": MEMINFO,
            "sys/fs/cgroup/cgroup.controllers": "",
            "sys/fs/cgroup/memory.max": str(100 * MEMINFO_BYTES),
            "sys/fs/cgroup/memory.current": "0",
        }
    )
    assert _read(root) == MEMINFO_BYTES


def test_cgroup_v1_limit_and_unlimited(tree):
    files = {
        "proc/meminfo": MEMINFO,
        "proc/self/cgroup": "4:memory:/grp\n",
        "sys/fs/cgroup/memory/grp/memory.limit_in_bytes": "1073741824\n",
        "sys/fs/cgroup/memory/grp/memory.usage_in_bytes": "268435456\n",
        "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
        "sys/fs/cgroup/memory/memory.usage_in_bytes": "999999999999\n",
    }
    root = tree(files)
    assert _read(root) == 1073741824 - 268435456
    tree({"sys/fs/cgroup/memory/grp/memory.limit_in_bytes": "9223372036854771712\n"})
    assert _read(root) == MEMINFO_BYTES


def test_cgroup_without_meminfo_and_garbage_usage(tree):
    root = tree(
        {
            "sys/fs/cgroup/cgroup.controllers": "",
            "sys/fs/cgroup/memory.max": "1000\n",
            "sys/fs/cgroup/memory.current": "400\n",
        }
    )
    assert _read(root) == 600
    tree({"sys/fs/cgroup/memory.current": "???\n"})
    assert _read(root) is None


def test_missing_everything_is_unknown(tmp_path):
    assert _read(tmp_path) is None


def test_this_machine_has_memory():
    assert _read("/") > 0
