"""Tests of the shared matplotlib plumbing (headless import, typed error, atomic PNG write)."""

from __future__ import annotations

import sys

import pytest

from tflite_adaspring.errors import MissingDependencyError
from tflite_adaspring.plotting import pyplot, save_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_save_png_writes_a_png_and_closes_the_figure(tmp_path):
    plt = pyplot("this test")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    out = save_png(fig, tmp_path / "sub" / "line.png", dpi=40)
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert not plt.fignum_exists(fig.number)
    assert [p.name for p in out.parent.iterdir()] == ["line.png"]  # no temp file left behind


def test_missing_matplotlib_raises_typed_error_naming_purpose(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependencyError, match=r"the front plot needs matplotlib.*pip install"):
        pyplot("the front plot")
