"""Context traces: timestamped snapshots saved as CSV or JSON, looked up step-wise and replayed.

File formats (one row per snapshot, columns = ``ContextSnapshot.to_json()`` keys, requirements as
``req_*``; an empty cell or ``null`` means unknown, a missing column means unknown in every row):

* CSV: a header row, then one row per snapshot; booleans ``true``/``false`` (``1``/``0``, ``yes``/``no``
  are accepted).
* JSON: ``{"format": "adaspring-context-trace", "version": 1, "rows": [{column: value}, ...]}``
  (a bare list of rows is accepted too).

Timestamps are seconds on the trace's own time axis and must not decrease.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import io
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from tflite_adaspring.context._fields import COLUMNS, SOURCE_FIELDS, coerce, format_text, parse_text
from tflite_adaspring.context.snapshot import ContextSnapshot
from tflite_adaspring.context.source import ContextSource
from tflite_adaspring.errors import DataValidationError
from tflite_adaspring.fileio import atomic_write_json, atomic_write_text

TRACE_FORMAT = "adaspring-context-trace"
TRACE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class ContextTrace:
    """An immutable, time-ordered sequence of context snapshots.

    Attributes:
      snapshots: the rows, timestamps non-decreasing (at least one row).
    """

    snapshots: tuple[ContextSnapshot, ...]
    _times: tuple[float, ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rows = tuple(self.snapshots)
        if not rows:
            raise DataValidationError("a context trace needs at least one row")
        for i, snap in enumerate(rows):
            if not isinstance(snap, ContextSnapshot):
                raise DataValidationError(f"trace row {i}: expected a ContextSnapshot, got {type(snap).__name__}")
            if not math.isfinite(snap.timestamp):
                raise DataValidationError(f"trace row {i}, column 'timestamp': {snap.timestamp!r} is not finite")
            if i and snap.timestamp < rows[i - 1].timestamp:
                raise DataValidationError(
                    f"trace row {i}, column 'timestamp': {snap.timestamp} is earlier than the previous row's "
                    f"{rows[i - 1].timestamp}; sort the rows by time"
                )
        object.__setattr__(self, "snapshots", rows)
        object.__setattr__(self, "_times", tuple(s.timestamp for s in rows))

    def __len__(self) -> int:
        return len(self.snapshots)

    def __iter__(self) -> Iterator[ContextSnapshot]:
        return iter(self.snapshots)

    def __getitem__(self, index: int) -> ContextSnapshot:
        return self.snapshots[index]

    @property
    def start(self) -> float:
        """Timestamp of the first row."""
        return self._times[0]

    @property
    def end(self) -> float:
        """Timestamp of the last row."""
        return self._times[-1]

    @property
    def duration(self) -> float:
        """``end - start`` in seconds."""
        return self._times[-1] - self._times[0]

    def at(self, t: float) -> ContextSnapshot:
        """Step-wise lookup: the latest row whose timestamp is at or before ``t``.

        Args:
          t: time on the trace's axis.

        Returns:
          That row (the last of several rows sharing its timestamp).

        Raises:
          ValueError: ``t`` is before the first row.
        """
        i = bisect.bisect_right(self._times, t) - 1
        if i < 0:
            raise ValueError(f"t={t} is before the trace starts (t={self._times[0]})")
        return self.snapshots[i]

    def to_rows(self) -> list[dict[str, Any]]:
        """Returns one flat dict per row (``ContextSnapshot.to_json`` output)."""
        return [snap.to_json() for snap in self.snapshots]

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]], where: str = "trace") -> ContextTrace:
        """Builds a validated trace from flat dicts (``ContextSnapshot.to_json`` layout).

        Args:
          rows: one mapping per snapshot; missing keys mean unknown.
          where: how to name the input in error messages (e.g. a file name).

        Returns:
          The trace.

        Raises:
          DataValidationError: a row is not a mapping, or a column is unknown, of the wrong type, out of
            range or missing ``timestamp``; the message names the row and column.
        """
        snaps = []
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise DataValidationError(f"{where}: row {i} must be an object of columns, got {type(row).__name__}")
            values = {column: _checked(coerce, column, value, where, i) for column, value in row.items()}
            snaps.append(_snapshot_from_row(values, where, i))
        if not snaps:
            raise DataValidationError(f"{where}: the trace has no rows")
        return cls(tuple(snaps))


def _checked(convert: Callable[[str, Any], Any], column: str, value: Any, where: str, row: int) -> Any:
    """Returns ``convert(column, value)``; errors become a DataValidationError naming the row and column."""
    if column not in COLUMNS:
        raise DataValidationError(f"{where}: row {row}: unknown column {column!r}; known columns: {', '.join(COLUMNS)}")
    try:
        return convert(column, value)
    except ValueError as exc:
        raise DataValidationError(f"{where}: row {row}, column {column!r}: {exc}") from None


def _snapshot_from_row(values: dict[str, Any], where: str, row: int) -> ContextSnapshot:
    if values.get("timestamp") is None:
        raise DataValidationError(f"{where}: row {row}, column 'timestamp': a timestamp is required")
    try:
        return ContextSnapshot.from_json(values)
    except ValueError as exc:  # Requirements' own checks (energy mode, budget, accuracy)
        raise DataValidationError(f"{where}: row {row}, requirements: {exc}") from None


def save_trace_csv(trace: ContextTrace, path: str | os.PathLike) -> Path:
    """Writes ``trace`` as CSV atomically.

    Args:
      trace: the trace.
      path: destination file.

    Returns:
      The destination path.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in trace.to_rows():
        writer.writerow([format_text(row[c]) for c in COLUMNS])
    return atomic_write_text(path, buffer.getvalue())


def save_trace_json(trace: ContextTrace, path: str | os.PathLike) -> Path:
    """Writes ``trace`` as JSON atomically (format in the module docstring).

    Args:
      trace: the trace.
      path: destination file.

    Returns:
      The destination path.
    """
    return atomic_write_json(path, {"format": TRACE_FORMAT, "version": TRACE_VERSION, "rows": trace.to_rows()})


def load_trace_csv(path: str | os.PathLike) -> ContextTrace:
    """Reads and validates a CSV trace.

    Args:
      path: the CSV file.

    Returns:
      The trace.

    Raises:
      DataValidationError: bad header, row or cell (the message names the row, counted from 0 after the
        header, and the column).
    """
    where = os.fspath(path)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        unknown = [h for h in header if h not in COLUMNS]
        if unknown:
            raise DataValidationError(
                f"{where}: unknown column(s) {unknown} in the header; known columns: {', '.join(COLUMNS)}"
            )
        if "timestamp" not in header:
            raise DataValidationError(f"{where}: the header has no 'timestamp' column")
        if len(set(header)) != len(header):
            raise DataValidationError(f"{where}: duplicate column names in the header {header}")
        snaps = []
        for i, cells in enumerate(reader):
            if not cells:
                continue
            if len(cells) != len(header):
                raise DataValidationError(f"{where}: row {i} has {len(cells)} cells, the header has {len(header)}")
            values = {
                column: _checked(parse_text, column, cell, where, i) for column, cell in zip(header, cells, strict=True)
            }
            snaps.append(_snapshot_from_row(values, where, i))
    if not snaps:
        raise DataValidationError(f"{where}: the trace has no rows")
    return ContextTrace(tuple(snaps))


def load_trace_json(path: str | os.PathLike) -> ContextTrace:
    """Reads and validates a JSON trace.

    Args:
      path: the JSON file.

    Returns:
      The trace.

    Raises:
      DataValidationError: not JSON, wrong format/version, or a bad row (named by index and column).
    """
    where = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as fh:
            obj = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataValidationError(f"{where}: not valid JSON ({exc})") from None
    if isinstance(obj, dict):
        if obj.get("format") != TRACE_FORMAT:
            raise DataValidationError(f"{where}: 'format' must be {TRACE_FORMAT!r}, got {obj.get('format')!r}")
        if obj.get("version") != TRACE_VERSION:
            raise DataValidationError(
                f"{where}: unsupported trace version {obj.get('version')!r} (this reader: {TRACE_VERSION})"
            )
        obj = obj.get("rows")
    if not isinstance(obj, list):
        raise DataValidationError(f"{where}: expected a list of rows or an object with 'rows'")
    return ContextTrace.from_rows(obj, where)


def save_trace(trace: ContextTrace, path: str | os.PathLike) -> Path:
    """Writes ``trace`` as CSV or JSON, chosen by the file suffix (``.csv`` / ``.json``).

    Raises:
      DataValidationError: another suffix.
    """
    return _by_suffix(path, save_trace_csv, save_trace_json)(trace, path)


def load_trace(path: str | os.PathLike) -> ContextTrace:
    """Reads a CSV or JSON trace, chosen by the file suffix (``.csv`` / ``.json``).

    Raises:
      DataValidationError: another suffix or invalid content.
      FileNotFoundError: no such file.
    """
    return _by_suffix(path, load_trace_csv, load_trace_json)(path)


def _by_suffix(path: str | os.PathLike, csv_fn: Callable, json_fn: Callable) -> Callable:
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return csv_fn
    if suffix == ".json":
        return json_fn
    raise DataValidationError(f"trace file {os.fspath(path)!r} must end in .csv or .json, not {suffix or 'nothing'!r}")


class TraceClock:
    """A clock that only moves when told to; pass it as ``ContextMonitor(clock=...)``.

    Args:
      start: the initial time in seconds.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, dt: float) -> float:
        """Moves the clock forward by ``dt`` >= 0 seconds and returns the new time."""
        if not dt >= 0:
            raise ValueError(f"a clock only moves forward; dt must be >= 0, got {dt!r}")
        self.now += dt
        return self.now

    def set(self, t: float) -> None:
        """Jumps to time ``t`` (a jump back restarts a replay)."""
        self.now = float(t)


class TraceReplaySource(ContextSource):
    """A context source that reports the trace row in force at the caller's clock time.

    With a :class:`TraceClock` as the monitor's clock, the monitor's snapshots follow the trace. Before
    the first row every field is unknown. Requirements recorded in the trace are reported too (they win
    over the monitor's own requirements source, which comes first in merge order).

    Args:
      trace: the trace to replay.
      offset: clock time at which the trace's first row is due (``t_trace = now - offset + trace.start``).
    """

    name = "trace"
    fields = tuple(sorted(SOURCE_FIELDS))

    def __init__(self, trace: ContextTrace, offset: float = 0.0) -> None:
        self.trace = trace
        self.offset = float(offset)

    def _read(self, now: float) -> dict[str, Any]:
        snap = self.trace.at(now - self.offset + self.trace.start)
        return {name: getattr(snap, name) for name in self.fields}


def replay(
    trace: ContextTrace,
    step_s: float | None = None,
    speed: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[ContextSnapshot]:
    """Yields the trace's snapshots in time order, optionally resampled and paced.

    Args:
      trace: the trace.
      step_s: if given, yield ``trace.at(t)`` at ``t = start, start + step_s, ..., <= end`` (timestamp set
        to ``t``; a row due within 1 ns after ``t`` counts as due, against float rounding) instead of the
        raw rows.
      speed: if given, pace the replay in real time, ``speed`` trace seconds per wall second.
      clock: wall clock used for pacing.
      sleep: sleep function used for pacing.

    Yields:
      Snapshots with non-decreasing timestamps.
    """
    if step_s is not None and not step_s > 0:
        raise ValueError(f"step_s must be > 0, got {step_s!r}")
    if speed is not None and not speed > 0:
        raise ValueError(f"speed must be > 0, got {speed!r}")
    if step_s is None:
        rows: Iterable[ContextSnapshot] = trace.snapshots
    else:
        count = math.floor(trace.duration / step_s + 1e-9) + 1
        times = (trace.start + k * step_s for k in range(count))
        rows = (dataclasses.replace(trace.at(t + 1e-9), timestamp=t) for t in times)
    wall_start = clock()
    for snap in rows:
        if speed is not None:
            delay = wall_start + (snap.timestamp - trace.start) / speed - clock()
            if delay > 0:
                sleep(delay)
        yield snap
