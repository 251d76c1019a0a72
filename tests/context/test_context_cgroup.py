"""Finding this process's cgroup folders under a fake root."""

from __future__ import annotations

import os

from tflite_adaspring.context._cgroup import v1_dirs, v2_dirs


def test_pure_v2_leaf_and_ancestors(tree):
    root = tree(
        {
            "proc/self/cgroup": "0::/user.slice/app.scope\n",
            "sys/fs/cgroup/cgroup.controllers": "cpu memory\n",
            "sys/fs/cgroup/user.slice/app.scope/cgroup.procs": "1\n",
        }
    )
    base = os.path.join(root, "sys/fs/cgroup")
    assert v2_dirs(str(root)) == [f"{base}/user.slice/app.scope", f"{base}/user.slice", base]
    assert v1_dirs(str(root), "memory") == []


def test_hybrid_uses_unified_mount_and_v1_combined_controller_names(tree):
    root = tree(
        {
            "proc/self/cgroup": "3:cpu,cpuacct:/grp\n2:memory:/\n0::/\n",
            "sys/fs/cgroup/unified/cgroup.controllers": "",
            "sys/fs/cgroup/cpu,cpuacct/grp/cpu.cfs_quota_us": "-1\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "1\n",
        }
    )
    base = os.path.join(root, "sys/fs/cgroup")
    assert v2_dirs(str(root)) == [f"{base}/unified"]
    assert v1_dirs(str(root), "cpu") == [f"{base}/cpu,cpuacct/grp", f"{base}/cpu,cpuacct"]
    assert v1_dirs(str(root), "memory") == [f"{base}/memory"]


def test_namespaced_container_path_falls_back_to_mount_root(tree):
    root = tree({"proc/self/cgroup": "0::/docker/abc123\n", "sys/fs/cgroup/cgroup.controllers": ""})
    assert v2_dirs(str(root)) == [os.path.join(root, "sys/fs/cgroup")]


def test_path_escaping_the_mount_is_ignored(tree):
    root = tree({"proc/self/cgroup": "0::/../../etc\n", "sys/fs/cgroup/cgroup.controllers": ""})
    assert v2_dirs(str(root)) == [os.path.join(root, "sys/fs/cgroup")]


def test_missing_or_garbage_membership(tree, tmp_path):
    assert v2_dirs(str(tmp_path)) == []
    assert v1_dirs(str(tmp_path), "cpu") == []
    root = tree({"proc/self/cgroup": "garbage without colons\n", "sys/fs/cgroup/memory/tasks": ""})
    assert v1_dirs(str(root), "memory") == [os.path.join(root, "sys/fs/cgroup/memory")]
