"""Context traces: CSV/JSON round trips, validation errors, step lookup and replay."""

from __future__ import annotations

import json

import pytest

from tflite_adaspring.context.monitor import ContextMonitor
from tflite_adaspring.context.snapshot import ContextSnapshot, Requirements
from tflite_adaspring.context.synthetic import synthetic_day
from tflite_adaspring.context.trace import (
    ContextTrace,
    TraceClock,
    TraceReplaySource,
    load_trace,
    replay,
    save_trace,
)
from tflite_adaspring.errors import DataValidationError


def _trace() -> ContextTrace:
    return ContextTrace(
        (
            ContextSnapshot(timestamp=0.0, battery_percent=90.0, charging=False, memory_available_bytes=10),
            ContextSnapshot(timestamp=1.5, battery_percent=0.1 + 0.2, cpu_contention=1.5, throttled=True),
            ContextSnapshot(timestamp=1.5, battery_percent=80.0, requirements=Requirements(5.0, 0.9, 123, "saver")),
            ContextSnapshot(timestamp=4.0, cpu_runnable_others=2.0, temperature_c=-3.25),
        )
    )


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_round_trip_is_exact(tmp_path, suffix):
    for trace in (_trace(), synthetic_day(120, seed=3)):
        path = save_trace(trace, tmp_path / f"trace{suffix}")
        assert load_trace(path) == trace
        assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_csv_layout_is_readable(tmp_path):
    path = save_trace(_trace(), tmp_path / "t.csv")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("timestamp,battery_percent,charging,")
    assert lines[1].startswith("0.0,90.0,false,")
    assert ",saver" in lines[3]


def test_json_layout_and_bare_list(tmp_path):
    path = save_trace(_trace(), tmp_path / "t.json")
    obj = json.loads(path.read_text())
    assert obj["format"] == "adaspring-context-trace" and obj["version"] == 1 and len(obj["rows"]) == 4
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(obj["rows"]))
    assert load_trace(bare) == _trace()


def test_csv_missing_columns_mean_unknown(tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("timestamp,battery_percent\n0,50\n10,\n")
    trace = load_trace(path)
    assert trace[0].battery_percent == 50.0 and trace[1].battery_percent is None
    assert trace[1].requirements == Requirements()


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("timestamp,battery\n0,50\n", ["battery", "unknown column"]),
        ("battery_percent\n50\n", ["timestamp"]),
        ("timestamp,battery_percent\n0,50\n1,abc\n", ["row 1", "battery_percent", "abc"]),
        ("timestamp,battery_percent\n0,50\n1,150\n", ["row 1", "battery_percent", "outside"]),
        ("timestamp,charging\n0,maybe\n", ["row 0", "charging"]),
        ("timestamp,battery_percent\n5,50\n1,50\n", ["row 1", "timestamp", "earlier"]),
        ("timestamp,battery_percent\n0,50\n,40\n", ["row 1", "timestamp", "required"]),
        ("timestamp,req_energy_mode\n0,turbo\n", ["row 0", "energy_mode"]),
        ("timestamp,battery_percent\n0,50,7\n", ["row 0", "3 cells"]),
        ("timestamp,timestamp\n0,0\n", ["duplicate"]),
        ("timestamp,battery_percent\n", ["no rows"]),
        ("", ["timestamp"]),
    ],
)
def test_csv_validation_errors_name_row_and_column(tmp_path, text, fragments):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataValidationError) as info:
        load_trace(path)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("obj", "fragments"),
    [
        ({"format": "other", "version": 1, "rows": []}, ["format"]),
        ({"format": "adaspring-context-trace", "version": 9, "rows": []}, ["version 9"]),
        ({"format": "adaspring-context-trace", "version": 1, "rows": "x"}, ["list of rows"]),
        ([{"timestamp": 0}, 5], ["row 1", "object"]),
        ([{"timestamp": 0, "charging": "true"}], ["row 0", "charging"]),
        ([{"timestamp": 0, "memory_available_bytes": 1.5}], ["row 0", "memory_available_bytes"]),
        ([{"timestamp": 0, "gpu": 1}], ["row 0", "gpu"]),
        ([{"battery_percent": 1}], ["row 0", "timestamp"]),
        ([], ["no rows"]),
    ],
)
def test_json_validation_errors(tmp_path, obj, fragments):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(DataValidationError) as info:
        load_trace(path)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_not_json_and_bad_suffix(tmp_path):
    path = tmp_path / "t.json"
    path.write_text("{nope")
    with pytest.raises(DataValidationError, match="not valid JSON"):
        load_trace(path)
    with pytest.raises(DataValidationError, match=r"\.csv or \.json"):
        save_trace(_trace(), tmp_path / "t.txt")
    with pytest.raises(FileNotFoundError):
        load_trace(tmp_path / "missing.csv")


def test_construction_checks():
    with pytest.raises(DataValidationError, match="at least one row"):
        ContextTrace(())
    with pytest.raises(DataValidationError, match="row 1"):
        ContextTrace((ContextSnapshot(timestamp=2.0), ContextSnapshot(timestamp=1.0)))
    with pytest.raises(DataValidationError, match="ContextSnapshot"):
        ContextTrace(({"timestamp": 0},))
    trace = ContextTrace([ContextSnapshot(timestamp=1.0)])  # a list is accepted and frozen into a tuple
    assert isinstance(trace.snapshots, tuple)


def test_step_lookup():
    trace = _trace()
    assert (trace.start, trace.end, trace.duration, len(trace)) == (0.0, 4.0, 4.0, 4)
    assert trace.at(0.0).battery_percent == 90.0
    assert trace.at(1.49).battery_percent == 90.0
    assert trace.at(1.5).battery_percent == 80.0  # the last of the rows sharing a timestamp
    assert trace.at(3.99).battery_percent == 80.0
    assert trace.at(100.0).cpu_runnable_others == 2.0
    with pytest.raises(ValueError, match="before the trace starts"):
        trace.at(-0.1)


def test_replay_in_order_and_resampled():
    trace = _trace()
    assert list(replay(trace)) == list(trace)
    resampled = list(replay(trace, step_s=1.0))
    assert [s.timestamp for s in resampled] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [s.battery_percent for s in resampled] == [90.0, 90.0, 80.0, 80.0, None]
    with pytest.raises(ValueError, match="step_s"):
        list(replay(trace, step_s=0))


def test_replay_pacing_with_fake_clock():
    clock, sleeps = TraceClock(), []

    def sleep(dt):
        sleeps.append(round(dt, 9))
        clock.advance(dt)

    rows = list(replay(_trace(), speed=2.0, clock=clock, sleep=sleep))
    assert len(rows) == 4
    assert sleeps == [0.75, 1.25]  # 1.5 s and 4.0 s of trace time at 2x
    with pytest.raises(ValueError, match="speed"):
        list(replay(_trace(), speed=-1))


def test_trace_replay_source_drives_a_monitor():
    trace = synthetic_day(100, seed=1)
    clock = TraceClock(50.0)
    monitor = ContextMonitor([TraceReplaySource(trace, offset=50.0)], period_s=0.5, clock=clock)
    snap = monitor.snapshot()
    assert snap.battery_percent == trace.at(0.0).battery_percent and snap.timestamp == 50.0
    clock.advance(30.2)
    snap = monitor.snapshot()
    expected = trace.at(30.2)
    assert (snap.battery_percent, snap.cpu_contention, snap.requirements) == (
        expected.battery_percent,
        expected.cpu_contention,
        expected.requirements,
    )
    clock.set(10.0)  # before the trace's first row: unknown values, the monitor's own requirements
    snap = monitor.snapshot()
    assert snap.battery_percent is None and snap.requirements == Requirements()


def test_trace_clock():
    clock = TraceClock(1.0)
    assert clock() == 1.0 and clock.advance(0.5) == 1.5
    clock.set(0.0)
    assert clock() == 0.0
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
