"""Flags shared by commands that take a task: ``--task``, ``--data`` (npz) and ``--data_dir``."""

from __future__ import annotations

from typing import Any

from absl import flags


def define_task_flags(fv: flags.FlagValues, default_task: str | None = "har_watch") -> None:
    """Defines ``--task``, ``--data`` and ``--data_dir`` on ``fv``."""
    flags.DEFINE_string("task", default_task, "Task name (see `adaspring datasets`) or 'npz'.", flag_values=fv)
    flags.DEFINE_string("data", None, "With --task npz: path of your .npz file.", flag_values=fv)
    flags.DEFINE_string("data_dir", None, "Folder of the Fashion-MNIST IDX files (default: Debian's).", flag_values=fv)


def load_task(fv: flags.FlagValues) -> Any:
    """Loads the dataset named by the task flags."""
    from tflite_adaspring import data

    options: dict[str, Any] = {}
    if fv.task == "npz":
        if not fv.data:
            raise flags.ValidationError("--task npz needs --data FILE.npz")
        options["path"] = fv.data
    elif fv.data:
        raise flags.ValidationError("--data is only for --task npz")
    if fv.data_dir:
        if fv.task != "fashion_mnist":
            raise flags.ValidationError("--data_dir is only for --task fashion_mnist")
        options["data_dir"] = fv.data_dir
    return data.load(fv.task, **options)
