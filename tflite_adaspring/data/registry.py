"""The task registry: names -> loaders, plus availability summaries that avoid loading whole data sets."""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable
from typing import Any

from tflite_adaspring.data import aeon_ts, fashion_mnist, har_watch, npz
from tflite_adaspring.data.spec import Dataset
from tflite_adaspring.errors import DatasetUnavailableError, DataValidationError

STATUS_AVAILABLE = "available"
STATUS_MISSING = "missing"
STATUS_INVALID = "invalid"
STATUS_NEEDS_PATH = "needs_path"


@dataclasses.dataclass(frozen=True)
class TaskSummary:
    """What the CLI shows about a task.

    Attributes:
      task: registry name.
      description: one line about the data.
      status: ``available``, ``missing`` (not installed), ``invalid`` (files corrupt / user file broken) or
        ``needs_path`` (the ``npz`` task without ``path=``).
      detail: why the task is not available (names the install command when missing); empty otherwise.
      install_command: the command that provides the data, None for user files.
      split_sizes: examples per split (``train``/``val``/``test``) when available.
      input_shape: shape of one example when available.
      kind: ``timeseries`` or ``image`` when available.
      class_names: class names when available.
      sampling_rate_hz: samples per second for time series, if known.
    """

    task: str
    description: str
    status: str
    detail: str = ""
    install_command: str | None = None
    split_sizes: dict[str, int] | None = None
    input_shape: tuple[int, ...] | None = None
    kind: str | None = None
    class_names: tuple[str, ...] | None = None
    sampling_rate_hz: float | None = None

    @property
    def available(self) -> bool:
        """Whether :func:`load` would succeed with the same options."""
        return self.status == STATUS_AVAILABLE

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-serialisable dict."""
        obj = dataclasses.asdict(self)
        obj["available"] = self.available
        for key in ("input_shape", "class_names"):
            obj[key] = None if obj[key] is None else list(obj[key])
        return obj


@dataclasses.dataclass(frozen=True)
class Task:
    """A registered task.

    Attributes:
      name: registry name.
      description: one line about the data.
      install_command: the command that provides the data (None for user-supplied files).
      loader: ``loader(**options) -> Dataset``.
      summarize: optional cheap ``summarize(**options) -> TaskSummary`` (same options as the loader);
        without it, summaries load the data set.
    """

    name: str
    description: str
    install_command: str | None
    loader: Callable[..., Dataset]
    summarize: Callable[..., TaskSummary] | None = None

    def options(self) -> tuple[str, ...]:
        """Names of the keyword options the loader accepts."""
        return tuple(inspect.signature(self.loader).parameters)


def _fashion_summary(*, data_dir: str | os.PathLike | None = None, seed: int = 0, val_size: int = 5000) -> TaskSummary:
    """Summary of Fashion-MNIST from the IDX headers only (``seed`` does not change sizes)."""
    del seed
    task = TASKS[fashion_mnist.TASK]
    return TaskSummary(
        task=task.name,
        description=task.description,
        status=STATUS_AVAILABLE,
        install_command=task.install_command,
        split_sizes=fashion_mnist.split_sizes(data_dir=data_dir, val_size=val_size),
        input_shape=fashion_mnist.IMAGE_SHAPE,
        kind="image",
        class_names=fashion_mnist.CLASS_NAMES,
    )


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            har_watch.TASK,
            "smartwatch IMU shoulder-exercise recognition, 10 subjects, 50 Hz, split by subject (seglearn)",
            har_watch.INSTALL_COMMAND,
            har_watch.load,
        ),
        Task(
            fashion_mnist.TASK,
            "Fashion-MNIST 28x28 grey clothing images (Debian dataset-fashion-mnist)",
            fashion_mnist.INSTALL_COMMAND,
            fashion_mnist.load,
            _fashion_summary,
        ),
        Task(
            aeon_ts.JAPANESE_VOWELS.name,
            "JapaneseVowels speaker identification from 12 LPC cepstra, 9 speakers (aeon)",
            aeon_ts.INSTALL_COMMAND,
            aeon_ts.load_japanese_vowels,
        ),
        Task(
            aeon_ts.BASIC_MOTIONS.name,
            "BasicMotions smartwatch acc+gyro, 4 activities, 10 Hz; tiny (aeon)",
            aeon_ts.INSTALL_COMMAND,
            aeon_ts.load_basic_motions,
        ),
        Task(
            npz.TASK, "your own data: load('npz', path=FILE.npz) with x_train, y_train, x_test, y_test", None, npz.load
        ),
    )
}


def list_tasks() -> list[str]:
    """Returns the registered task names, in registry order."""
    return list(TASKS)


def get_task(name: str) -> Task:
    """Returns a registered task; raises ValueError listing the known tasks for an unknown name."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


def load(task: str, **options: Any) -> Dataset:
    """Loads a task: normalised float32 ``x`` and int64 ``y`` for train/val/test plus the InputSpec.

    Nothing is downloaded; only numpy is needed.

    Args:
      task: a name from :func:`list_tasks`.
      **options: task options (e.g. ``seed=``, ``val_fraction=``, ``data_dir=``, ``path=``).

    Returns:
      The :class:`Dataset`.

    Raises:
      ValueError: unknown task.
      TypeError: an option the task does not accept (the message lists the accepted ones).
      DatasetUnavailableError: the data is not installed (the message names the install command).
      DataValidationError: the data is malformed (the message names the field or file).
    """
    entry = get_task(task)
    _check_options(entry, options)
    return entry.loader(**options)


def describe(task: str, **options: Any) -> TaskSummary:
    """Summarises a task without raising for missing or invalid data (cheaply where possible).

    Args:
      task: a name from :func:`list_tasks`.
      **options: the same options :func:`load` takes.

    Returns:
      The :class:`TaskSummary`; ``status`` says whether the task can be loaded.
    """
    entry = get_task(task)
    _check_options(entry, options)
    base = TaskSummary(task=entry.name, description=entry.description, status="", install_command=entry.install_command)
    if entry.name == npz.TASK and options.get("path") is None:
        return dataclasses.replace(base, status=STATUS_NEEDS_PATH, detail="pass path=FILE.npz (CLI: --npz_path)")
    try:
        if entry.summarize is not None:
            return entry.summarize(**options)
        dataset = entry.loader(**options)
    except DatasetUnavailableError as exc:
        return dataclasses.replace(base, status=STATUS_MISSING, detail=str(exc))
    except DataValidationError as exc:
        return dataclasses.replace(base, status=STATUS_INVALID, detail=str(exc))
    spec = dataset.spec
    return dataclasses.replace(
        base,
        status=STATUS_AVAILABLE,
        split_sizes={"train": len(dataset.train[1]), "val": len(dataset.val[1]), "test": len(dataset.test[1])},
        input_shape=spec.input_shape,
        kind=spec.kind,
        class_names=spec.class_names,
        sampling_rate_hz=spec.sampling_rate_hz,
    )


def _check_options(entry: Task, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(entry.options()))
    if unknown:
        raise TypeError(
            f"task {entry.name!r} has no option(s) {', '.join(unknown)}; accepted: {', '.join(entry.options())}"
        )
