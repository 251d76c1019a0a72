"""Fake sysfs/procfs trees for the context sources."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest


@pytest.fixture
def tree(tmp_path: Path) -> Callable[[Mapping[str, str | bytes]], Path]:
    """Returns ``make(files)``: writes ``{relative path: content}`` below one fake root and returns the root.

    Calling ``make`` again adds or rewrites files in place (same inode), like the kernel does.
    """

    def make(files: Mapping[str, str | bytes]) -> Path:
        for rel, content in files.items():
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        return tmp_path

    return make
