"""The Python side of the delegate: locating, loading, option validation, counters (no TensorFlow)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from delegate_helpers import assert_close, conv_fc_model, delegate_library, run_model

from tflite_adaspring import delegates
from tflite_adaspring.delegates import build, loader
from tflite_adaspring.errors import AdaSpringError
from tflite_adaspring.runtime.weight_source import pack_weight_source


@pytest.fixture(scope="module")
def library() -> Path:
    return delegate_library()


def test_library_path_prefers_the_environment_variable(library, monkeypatch):
    monkeypatch.setenv(delegates.LIBRARY_ENV, str(library))
    assert delegates.library_path() == library


def test_library_path_rejects_a_dangling_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(delegates.LIBRARY_ENV, str(tmp_path / "missing.so"))
    with pytest.raises(delegates.DelegateNotFoundError, match="ADASPRING_DELEGATE_LIBRARY"):
        delegates.library_path()


def test_library_path_lists_the_searched_places_when_nothing_is_built(tmp_path, monkeypatch):
    monkeypatch.delenv(delegates.LIBRARY_ENV, raising=False)
    monkeypatch.delenv("RUNFILES_DIR", raising=False)
    monkeypatch.delenv("TEST_SRCDIR", raising=False)
    monkeypatch.setattr(loader, "__file__", str(tmp_path / "pkg" / "tflite_adaspring" / "delegates" / "loader.py"))
    with pytest.raises(delegates.DelegateNotFoundError) as raised:
        delegates.library_path()
    message = str(raised.value)
    assert "development build" in message and "python -m tflite_adaspring.delegates.build" in message
    assert isinstance(raised.value, FileNotFoundError) and isinstance(raised.value, AdaSpringError)


def test_is_available_and_build_info(library, monkeypatch):
    monkeypatch.setenv(delegates.LIBRARY_ENV, str(library))
    assert delegates.is_available()
    info = delegates.build_info(library)
    assert re.fullmatch(r"\S+ \S+", info), info
    assert info.split()[1] == build.BuildConfig().isa


def test_is_available_is_false_without_a_library(tmp_path, monkeypatch):
    monkeypatch.setenv(delegates.LIBRARY_ENV, str(tmp_path / "missing.so"))
    assert not delegates.is_available()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"num_threads": 0}, "num_threads=0"),
        ({"num_threads": 65}, "num_threads=65"),
        ({"num_threads": 2.0}, "num_threads=2.0"),
        ({"num_threads": True}, "num_threads=True"),
        ({"log_level": "loud"}, "log_level='loud'"),
        ({"weight_source": "/nonexistent/weights.bin"}, "weight_source='/nonexistent/weights.bin'"),
        ({"weight_source": 3}, "weight_source=3"),
        ({"weight_config": "cfg01"}, "weight_config='cfg01' is invalid"),
    ],
)
def test_load_rejects_bad_options_before_touching_the_library(library, kwargs, fragment):
    with pytest.raises(delegates.DelegateError, match=re.escape(fragment)) as raised:
        delegates.load(library_path=library, **kwargs)
    assert isinstance(raised.value, ValueError)


def test_load_rejects_a_missing_library(tmp_path):
    with pytest.raises(delegates.DelegateNotFoundError, match="does not exist"):
        delegates.load(library_path=tmp_path / "nope.so")


def test_delegate_options_render_strings(tmp_path):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\0")
    assert delegates.delegate_options(3, "debug", weights) == {
        "num_threads": "3",
        "log_level": "debug",
        "weight_source": str(weights),
    }


def test_loaded_delegate_runs_a_model_and_counts(library, tmp_path):
    model = conv_fc_model(seed=1)
    weights = tmp_path / "shared.bin"
    weights.write_bytes(pack_weight_source(b"", {"only": []}))
    delegate = delegates.load(num_threads=2, weight_source=weights, library_path=library)
    before = delegates.stats(delegate, library)
    assert before.num_threads == 2 and before.prepare_calls == 0 and before.claimed_nodes == 0
    (output,) = run_model(model.content, [model.input], [delegate])
    assert_close(output, model.expected, "delegate output vs numpy reference")
    after = delegates.stats(delegate, library)
    assert (after.claimed_conv2d, after.claimed_depthwise_conv2d, after.claimed_fully_connected) == (1, 1, 1)
    assert after.prepare_calls == 1 and after.abi_refusals == 0 and after.partitions == 1
    assert after.partition_invokes == 1 and after.node_invokes == 3
    assert delegates.last_message(delegate, library) == ""


def test_stats_reject_objects_that_are_not_live_delegates(library):
    class Fake:
        def _get_native_delegate_pointer(self) -> int:
            return 12345

    with pytest.raises(delegates.DelegateError, match="not a live delegate"):
        delegates.stats(Fake(), library)
    with pytest.raises(delegates.DelegateError, match="not a live delegate"):
        delegates.last_message(Fake(), library)
    with pytest.raises(delegates.DelegateError, match="not a loaded delegate"):
        delegates.stats(object(), library)


def test_two_delegates_keep_separate_counters(library):
    model = conv_fc_model(seed=2)
    first = delegates.load(library_path=library)
    second = delegates.load(library_path=library)
    run_model(model.content, [model.input], [first])
    run_model(model.content, [model.input], [first])
    assert delegates.stats(first, library).partition_invokes == 2
    assert delegates.stats(second, library).partition_invokes == 0


def test_delegate_output_is_independent_of_thread_count(library):
    model = conv_fc_model(seed=3)
    outputs = []
    for threads in (1, 2, 3):
        delegate = delegates.load(num_threads=threads, library_path=library)
        outputs.append(run_model(model.content, [model.input], [delegate])[0])
    for output in outputs:
        assert_close(output, model.expected, "threads")
    assert not np.array_equal(outputs[0], np.zeros_like(outputs[0]))
