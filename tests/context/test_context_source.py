"""The ContextSource contract and FileSource discovery/rescan behaviour."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tflite_adaspring.context.source import ContextSource, FileSource


class _Broken(ContextSource):
    name = "broken"
    fields = ("battery_percent", "charging")

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def _read(self, now):
        raise self.exc


@pytest.mark.parametrize("exc", [OSError("gone"), ValueError("garbage"), IndexError("short"), ZeroDivisionError()])
def test_read_errors_mean_unknown(exc):
    assert _Broken(exc).read(0.0) == {"battery_percent": None, "charging": None}


def test_programming_errors_are_not_hidden():
    with pytest.raises(TypeError):
        _Broken(TypeError("bug")).read(0.0)


class _Counting(FileSource):
    name = "counting"
    fields = ("battery_percent",)

    def __init__(self, root, **kw):
        super().__init__(root, **kw)
        self.discoveries = 0
        self.fail_discovery = False

    def _discover(self):
        self.discoveries += 1
        if self.fail_discovery:
            raise OSError("listing failed")
        self.file = self.open_file(self.path("value"))

    def _read(self, now):
        return {"battery_percent": float(self.file.read())}


def test_discovery_runs_first_then_every_rescan_period(tree):
    root = tree({"value": "10"})
    source = _Counting(root, rescan_s=5.0)
    assert source.read(100.0) == {"battery_percent": 10.0}
    source.read(104.9)
    assert source.discoveries == 1
    source.read(105.0)
    assert source.discoveries == 2
    source.read(50.0)  # clock went backwards: rediscover rather than trust stale state
    assert source.discoveries == 3
    source.rescan()
    source.read(50.1)
    assert source.discoveries == 4


def test_failed_discovery_is_unknown_and_retried(tree):
    root = tree({"value": "10"})
    source = _Counting(root)
    source.fail_discovery = True
    assert source.read(0.0) == {"battery_percent": None}
    source.fail_discovery = False
    assert source.read(0.1) == {"battery_percent": 10.0}
    assert source.discoveries == 2


def test_keep_open_defaults_to_real_root_only(tmp_path):
    assert _Counting("/").keep_open is True
    assert _Counting(tmp_path).keep_open is False
    assert _Counting(tmp_path, keep_open=True).keep_open is True
    with pytest.raises(ValueError, match="rescan_s"):
        _Counting(tmp_path, rescan_s=-1)


def test_close_then_read_reopens(tree):
    root = tree({"value": "3"})
    with _Counting(root, keep_open=True) as source:
        assert source.read(0.0) == {"battery_percent": 3.0}
        source.close()
        tree({"value": "4"})
        assert source.read(0.1) == {"battery_percent": 4.0}


def test_context_package_never_imports_tensorflow():
    code = (
        "import sys, tflite_adaspring.context as c; c.ContextMonitor().snapshot(); c.synthetic_day(60); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
