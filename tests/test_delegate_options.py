"""The C library's own option checks and C-API misuse: clean errors, never a crash.

Each case runs in a fresh interpreter (a crash there fails the test instead of killing pytest) and
talks to the library only through the runtime's ``load_delegate`` or ctypes, bypassing the Python
validation of :func:`tflite_adaspring.delegates.load`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from delegate_helpers import delegate_library, run_python

from tflite_adaspring.runtime.weight_source import View, pack_weight_source

LOAD_AND_REPORT = """
import json, sys
from ai_edge_litert.interpreter import load_delegate
try:
    load_delegate({library!r}, json.loads({options!r}))
except ValueError as error:
    print(json.dumps({{"error": str(error)}}))
    sys.exit(0)
print(json.dumps({{"loaded": True}}))
"""


@pytest.fixture(scope="module")
def library() -> Path:
    return delegate_library()


def load_in_subprocess(library: Path, options: dict[str, str]) -> dict:
    result = run_python(LOAD_AND_REPORT.format(library=str(library), options=json.dumps(options)))
    assert result.returncode == 0, f"process died ({result.returncode}): {result.stderr[-2000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"num_thread": "2"}, "unknown option 'num_thread'; known options: num_threads, log_level"),
        ({"num_threads": "0"}, "num_threads='0' is invalid: give an integer from 1 to 64"),
        ({"num_threads": "65"}, "num_threads='65' is invalid"),
        ({"num_threads": "-1"}, "num_threads='-1' is invalid"),
        ({"num_threads": "two"}, "num_threads='two' is invalid"),
        ({"num_threads": "1.5"}, "num_threads='1.5' is invalid"),
        ({"num_threads": ""}, "num_threads='' is invalid"),
        ({"num_threads": "99999999999999999999"}, "is invalid"),
        ({"log_level": "verbose"}, "log_level='verbose' is invalid: give one of silent, info, debug"),
        ({"weight_source": "/nonexistent/shared.bin"}, "the file cannot be accessed (No such file or directory)"),
        ({"weight_source": "/"}, "the file is not a regular file"),
        ({"weight_source": ""}, "the file is empty"),
        ({"debug_simulate_abi_mismatch": "maybe"}, "give false, tensor (or true) or params"),
    ],
)
def test_bad_options_fail_cleanly_at_load(library, options, expected):
    outcome = load_in_subprocess(library, options)
    assert "error" in outcome, f"{options} was accepted"
    assert expected in outcome["error"]
    assert "adaspring delegate" in outcome["error"]


def test_good_options_load(library, tmp_path):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(pack_weight_source(b"", {"only": []}))
    options = {"num_threads": "4", "log_level": "silent", "weight_source": str(weights)}
    assert load_in_subprocess(library, options) == {"loaded": True}
    assert load_in_subprocess(library, dict(options, weight_config="only")) == {"loaded": True}
    assert load_in_subprocess(library, {}) == {"loaded": True}


@pytest.mark.parametrize(
    ("content", "options", "expected"),
    [
        (b"\x00" * 16, {}, "missing magic 'ADASWSRC'"),
        (pack_weight_source(b"", {"a": []})[:40], {}, "missing magic"),
        (pack_weight_source(b"", {"a": []}).replace(b"ADASWSRC\x01", b"ADASWSRC\x09"), {}, "format version 9"),
        (pack_weight_source(b"", {"a": [], "b": []}), {}, "choose one with weight_config (one of a, b)"),
        (pack_weight_source(b"", {"a": []}), {"weight_config": "z"}, "weight_config='z' is not a configuration"),
        (pack_weight_source(b"", {"a": [View("t1", "dense", (4, 1, 1, 4), 4, 0, 0)]}), {}, "past the data section"),
    ],
)
def test_bad_weight_source_is_refused_at_load(library, tmp_path, content, options, expected):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(content)
    outcome = load_in_subprocess(library, {"weight_source": str(weights), **options})
    assert "error" in outcome, f"{content[:60]!r} {options} was accepted"
    assert expected in outcome["error"] and "adaspring delegate" in outcome["error"]


def test_weight_config_needs_a_weight_source(library):
    outcome = load_in_subprocess(library, {"weight_config": "cfg01"})
    assert "needs weight_source" in outcome["error"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_weight_source_fails_cleanly(library, tmp_path):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00")
    weights.chmod(0)
    outcome = load_in_subprocess(library, {"weight_source": str(weights)})
    assert "cannot be opened for reading" in outcome["error"]


C_API_MISUSE = """
import ctypes
lib = ctypes.CDLL({library!r})
lib.tflite_plugin_create_delegate.restype = ctypes.c_void_p
lib.tflite_plugin_create_delegate.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
lib.tflite_plugin_destroy_delegate.argtypes = [ctypes.c_void_p]
lib.adaspring_delegate_get_stats.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
lib.adaspring_delegate_last_message.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
messages = []
callback = ctypes.CFUNCTYPE(None, ctypes.c_char_p)(lambda m: messages.append(m.decode()))
# Options announced but no arrays; then a null key inside the arrays; then no callback at all.
assert lib.tflite_plugin_create_delegate(None, None, 2, callback) is None
keys = (ctypes.c_char_p * 1)(None)
values = (ctypes.c_char_p * 1)(b"1")
assert lib.tflite_plugin_create_delegate(keys, values, 1, callback) is None
assert lib.tflite_plugin_create_delegate(None, None, 3, None) is None
# Destroying or querying pointers the library never created is a no-op / -1.
lib.tflite_plugin_destroy_delegate(None)
lib.tflite_plugin_destroy_delegate(12345)
buffer = ctypes.create_string_buffer(256)
assert lib.adaspring_delegate_get_stats(None, buffer, 256) == -1
assert lib.adaspring_delegate_get_stats(0xDEADBEEF, buffer, 256) == -1
assert lib.adaspring_delegate_last_message(0xDEADBEEF, buffer, 256) == -1
# A real delegate: stats with a short buffer, double destroy.
delegate = lib.tflite_plugin_create_delegate(None, None, 0, callback)
assert delegate
assert lib.adaspring_delegate_get_stats(delegate, buffer, 8) == 0
assert ctypes.c_int64.from_buffer(buffer).value == 120
lib.tflite_plugin_destroy_delegate(delegate)
lib.tflite_plugin_destroy_delegate(delegate)
assert lib.adaspring_delegate_get_stats(delegate, buffer, 256) == -1
print("|".join(messages))
"""


def test_c_api_misuse_is_refused_without_crashing(library):
    result = run_python(C_API_MISUSE.format(library=str(library)))
    assert result.returncode == 0, f"process died ({result.returncode}): {result.stderr[-2000:]}"
    messages = result.stdout.strip().split("|")
    assert "2 options announced but the key/value arrays are null" in messages[0]
    assert "option #0 has a null key or value" in messages[1]
