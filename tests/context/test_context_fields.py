"""Flat context field types, ranges and CSV cell parsing."""

from __future__ import annotations

import math

import pytest

from tflite_adaspring.context._fields import COLUMN_TYPES, COLUMNS, VALUE_FIELDS, coerce, format_text, parse_text


def test_columns_cover_snapshot_and_requirements():
    assert COLUMNS[0] == "timestamp"
    assert "battery_percent" in VALUE_FIELDS and "requirements" not in VALUE_FIELDS
    assert COLUMN_TYPES["charging"] is bool
    assert COLUMN_TYPES["memory_available_bytes"] is int
    assert COLUMN_TYPES["req_energy_mode"] is str
    assert COLUMN_TYPES["cpu_contention"] is float


def test_coerce_accepts_and_normalises():
    assert coerce("battery_percent", 50) == 50.0 and isinstance(coerce("battery_percent", 50), float)
    assert coerce("memory_available_bytes", 1024.0) == 1024 and isinstance(coerce("memory_available_bytes", 1e3), int)
    assert coerce("charging", True) is True
    assert coerce("battery_percent", None) is None
    assert coerce("battery_percent", math.nan) is None


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("battery_percent", 101.0, "outside"),
        ("cpu_utilization", -0.1, "outside"),
        ("cpu_contention", 0.5, "outside"),
        ("battery_percent", "50", "expected a number"),
        ("battery_percent", True, "expected a number"),
        ("charging", 1, "expected true or false"),
        ("memory_available_bytes", 1.5, "whole number"),
        ("temperature_c", math.inf, "finite"),
        ("req_energy_mode", 3, "string"),
        ("no_such_field", 1, "unknown context field"),
    ],
)
def test_coerce_rejects(name, value, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        coerce(name, value)
    assert name in str(info.value)


def test_parse_text_cells():
    assert parse_text("battery_percent", " 12.5 ") == 12.5
    assert parse_text("battery_percent", "") is None
    assert parse_text("battery_percent", "nan") is None
    assert parse_text("charging", "TRUE") is True
    assert parse_text("charging", "0") is False
    assert parse_text("memory_available_bytes", "123") == 123
    assert parse_text("memory_available_bytes", "1e3") == 1000
    assert parse_text("req_energy_mode", "saver") == "saver"
    with pytest.raises(ValueError, match="charging"):
        parse_text("charging", "maybe")
    with pytest.raises(ValueError, match="expected a number"):
        parse_text("cpu_utilization", "busy")
    with pytest.raises(ValueError, match="unknown context field"):
        parse_text("bogus", "1")


def test_format_text_round_trips():
    for name, value in [("charging", False), ("battery_percent", 0.1 + 0.2), ("memory_available_bytes", 7)]:
        assert parse_text(name, format_text(value)) == value
    assert format_text(None) == ""
    assert parse_text("battery_percent", format_text(None)) is None
