"""CallbackSource: values pushed by a host app."""

from __future__ import annotations

import logging

import pytest

from tflite_adaspring.context.callback import CallbackSource
from tflite_adaspring.errors import DataValidationError


def test_partial_dict_fills_only_given_fields():
    source = CallbackSource(lambda: {"battery_percent": 42, "charging": True})
    values = source.read(0.0)
    assert values["battery_percent"] == 42.0 and values["charging"] is True
    assert values["cpu_utilization"] is None
    assert set(values) == set(source.fields)


def test_restricted_fields():
    source = CallbackSource(lambda: {"battery_percent": 42, "temperature_c": 30}, fields=["battery_percent"])
    assert source.read(0.0) == {"battery_percent": 42.0}


def test_raising_callback_is_unknown_and_logged_once(caplog):
    def boom():
        raise RuntimeError("JNI detached")

    source = CallbackSource(boom, fields=["battery_percent"])
    with caplog.at_level(logging.WARNING, logger="tflite_adaspring.context.callback"):
        for t in range(3):
            assert source.read(float(t)) == {"battery_percent": None}
    assert len(caplog.records) == 1
    assert "JNI detached" in caplog.records[0].getMessage()


def test_unknown_keys_and_bad_values_are_dropped_and_logged_once(caplog):
    source = CallbackSource(lambda: {"battery": 1, "battery_percent": 150, "charging": "yes", "cpu_utilization": 0.5})
    with caplog.at_level(logging.WARNING, logger="tflite_adaspring.context.callback"):
        for t in range(3):
            values = source.read(float(t))
    assert values["battery_percent"] is None and values["charging"] is None and values["cpu_utilization"] == 0.5
    assert len(caplog.records) == 3  # one per distinct problem, not per read


@pytest.mark.parametrize("returned", [None, 5, ["battery_percent"]])
def test_none_or_non_mapping_result_is_unknown(returned):
    source = CallbackSource(lambda: returned, fields=["charging"])
    assert source.read(0.0) == {"charging": None}


def test_bad_construction():
    with pytest.raises(DataValidationError, match="battery_level"):
        CallbackSource(dict, fields=["battery_level"])
    with pytest.raises(TypeError, match="callable"):
        CallbackSource(42)
