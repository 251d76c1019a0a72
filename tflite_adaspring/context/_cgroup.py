"""Locate this process's cgroup folders (v1 and v2) below a root.

The process's cgroup path comes from ``<root>/proc/self/cgroup``; hierarchies are looked for at their
usual mount points: v2 at ``/sys/fs/cgroup`` (pure v2) or ``/sys/fs/cgroup/unified`` (hybrid), v1 at
``/sys/fs/cgroup/<controllers>`` (e.g. ``cpu,cpuacct``) or ``/sys/fs/cgroup/<controller>``. Inside a
container with its own cgroup namespace the listed path may not exist below the mount; the mount root
is then the process's cgroup. A limit may be set on any ancestor, so callers get the leaf folder and
every ancestor up to the mount root.
"""

from __future__ import annotations

import os

from tflite_adaspring.context._files import read_once

CGROUP_MOUNT = "sys/fs/cgroup"


def _membership(root: str) -> list[tuple[str, list[str], str]]:
    """Parses ``/proc/self/cgroup`` into ``(hierarchy id, controllers, path)``; empty if unreadable."""
    text = read_once(os.path.join(root, "proc/self/cgroup"), 65536)
    entries = []
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            entries.append((parts[0], [c for c in parts[1].split(",") if c], parts[2]))
    return entries


def _chain(mount: str, cgroup_path: str) -> list[str]:
    """Returns the leaf folder for ``cgroup_path`` under ``mount`` and its ancestors up to ``mount``."""
    mount = os.path.normpath(mount)
    leaf = os.path.normpath(os.path.join(mount, cgroup_path.lstrip("/")))
    if not leaf.startswith(mount + os.sep) or not os.path.isdir(leaf):
        leaf = mount
    chain = [leaf]
    while chain[-1] != mount:
        chain.append(os.path.dirname(chain[-1]))
    return chain


def v2_dirs(root: str) -> list[str]:
    """Folders of this process's unified (v2) cgroup, leaf first; empty when there is no v2 hierarchy.

    Args:
      root: filesystem root.

    Returns:
      Existing folder paths from the process's cgroup up to the hierarchy's root.
    """
    base = os.path.join(root, CGROUP_MOUNT)
    mount = base if os.path.exists(os.path.join(base, "cgroup.controllers")) else os.path.join(base, "unified")
    if not os.path.exists(os.path.join(mount, "cgroup.controllers")):
        return []
    path = next((p for hid, ctrls, p in _membership(root) if hid == "0" and not ctrls), "/")
    return _chain(mount, path)


def v1_dirs(root: str, controller: str) -> list[str]:
    """Folders of this process's v1 cgroup for ``controller`` (e.g. ``cpu``, ``memory``), leaf first.

    Args:
      root: filesystem root.
      controller: v1 controller name.

    Returns:
      Existing folder paths from the process's cgroup up to the hierarchy's root; empty if not mounted.
    """
    entry = next(((ctrls, p) for _, ctrls, p in _membership(root) if controller in ctrls), None)
    names = [",".join(entry[0]), controller] if entry else [controller]
    base = os.path.join(root, CGROUP_MOUNT)
    mount = next((os.path.join(base, n) for n in names if os.path.isdir(os.path.join(base, n))), None)
    if mount is None or os.path.exists(os.path.join(mount, "cgroup.controllers")):
        return []
    return _chain(mount, entry[1] if entry else "/")
