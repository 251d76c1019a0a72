"""``adaspring datasets``: the offline tasks, whether their data is installed, split sizes and shapes.

Missing data is reported with the command that installs it, never as a failure. Exit code 0, or 1 when
``--npz_path`` names a file that fails validation.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from absl import flags

from tflite_adaspring.data import registry

FLAGS = flags.FlagValues()
flags.DEFINE_bool("json", False, "Print machine-readable JSON instead of a table.", flag_values=FLAGS)
flags.DEFINE_string(
    "data_dir",
    None,
    "Folder with the Fashion-MNIST IDX files (default: $ADASPRING_DATA_DIR, else /usr/share/datasets/fashion-mnist).",
    flag_values=FLAGS,
)
flags.DEFINE_string("npz_path", None, "Also validate and summarise this bring-your-own .npz file.", flag_values=FLAGS)
flags.DEFINE_list("tasks", None, "Only these tasks (comma-separated); default: all.", flag_values=FLAGS)

_MAX_CLASS_TEXT = 48


def run(flag_values: flags.FlagValues, out: TextIO | None = None) -> int:
    """Prints the task table (or JSON).

    Args:
      flag_values: the parsed :data:`FLAGS`.
      out: where to print (stdout when None).

    Returns:
      The exit code.
    """
    out = sys.stdout if out is None else out
    names = flag_values.tasks or registry.list_tasks()
    unknown = [name for name in names if name not in registry.TASKS]
    if unknown:
        print(
            f"adaspring datasets: unknown task(s) {', '.join(unknown)}; known: {', '.join(registry.TASKS)}",
            file=sys.stderr,
        )
        return 2
    summaries = [registry.describe(name, **_options(name, flag_values)) for name in names]
    if flag_values.json:
        json.dump({"tasks": [s.to_json() for s in summaries]}, out, indent=2)
        out.write("\n")
    else:
        out.write(format_table(summaries) + "\n")
    npz_failed = flag_values.npz_path is not None and any(
        s.task == "npz" and s.status == registry.STATUS_INVALID for s in summaries
    )
    return 1 if npz_failed else 0


def format_table(summaries: list[registry.TaskSummary]) -> str:
    """Formats summaries as an aligned text table; unavailable rows show what to do instead of sizes.

    Args:
      summaries: one per task.

    Returns:
      The table (no trailing newline).
    """
    header = ("task", "status", "train", "val", "test", "input", "kind", "classes")
    rows = []
    notes = []
    for s in summaries:
        if s.available:
            sizes = s.split_sizes or {}
            rows.append(
                (
                    s.task,
                    s.status,
                    str(sizes.get("train", "")),
                    str(sizes.get("val", "")),
                    str(sizes.get("test", "")),
                    "x".join(str(d) for d in s.input_shape or ()),
                    s.kind or "",
                    _classes_text(s.class_names or ()),
                )
            )
        else:
            rows.append((s.task, s.status, "-", "-", "-", "-", "-", "-"))
            notes.append(f"  {s.task}: {_what_to_do(s)}")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    numeric = {2, 3, 4}
    lines = [
        "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in (header, *rows)
    ]
    if notes:
        lines += ["", "not loadable as listed:", *notes]
    return "\n".join(lines)


def _classes_text(names: tuple[str, ...]) -> str:
    """``"7: PEN, ABD, ..."`` abbreviated to about :data:`_MAX_CLASS_TEXT` characters."""
    text = f"{len(names)}: " + ", ".join(names)
    if len(text) <= _MAX_CLASS_TEXT:
        return text
    return text[: _MAX_CLASS_TEXT - 3].rsplit(",", 1)[0] + ", ..."


def _what_to_do(summary: registry.TaskSummary) -> str:
    if summary.status == registry.STATUS_MISSING and summary.install_command:
        return f"install with: {summary.install_command}\n    ({summary.detail})"
    return summary.detail


def _options(task: str, flag_values: flags.FlagValues) -> dict[str, object]:
    """Maps CLI flags to the options of one task."""
    if task == "fashion_mnist" and flag_values.data_dir:
        return {"data_dir": flag_values.data_dir}
    if task == "npz" and flag_values.npz_path:
        return {"path": flag_values.npz_path}
    return {}
