"""``adaspring inspect MODEL.tflite [--json] [--plot front.png]``: the signature table of an exported model.

Reads the ``adaspring`` metadata with ai-edge-litert only (no TensorFlow); ``--plot`` draws the
accuracy-latency front with matplotlib.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from absl import flags

from tflite_adaspring.plotting import pyplot, save_png

FLAGS = flags.FlagValues()
flags.DEFINE_boolean("json", False, "Print the metadata as JSON instead of a table.", flag_values=FLAGS)
flags.DEFINE_string("plot", None, "Draw the accuracy-latency front into this PNG.", flag_values=FLAGS)
SUBCOMMAND = True  # takes a positional MODEL argument: main() hands over argv to dispatch()

USAGE = "usage: adaspring inspect MODEL.tflite [--json] [--plot front.png]"


def signature_table(metadata: Any, file_bytes: int | None = None) -> str:
    """The metadata as a text table (one row per signature).

    Args:
      metadata: a :class:`~tflite_adaspring.metadata.ModelMetadata`.
      file_bytes: the model's size, shown in the header when given.

    Returns:
      The table.
    """
    profiles = metadata.energy_profiles()
    energy_name = profiles[0] if profiles else None
    host = metadata.export_host
    head = [
        f"task {metadata.task}  space {metadata.space['name']} v{metadata.space['version']}  "
        f"storage {metadata.storage_mode}  {len(metadata.signatures)} signatures"
        + (f"  {file_bytes / 1e6:.3f} MB" if file_bytes is not None else ""),
        f"latency measured on {host.get('cpu') or host.get('processor', '?')} with "
        f"{metadata.signatures[0].latency_threads} thread(s); energy: {energy_name or 'none'}",
        "",
        f"{'key':<6} {'prec':<5} {'config':<40} {'params':>8} {'MMACs':>7} {'weightKB':>8} {'actKB':>6} "
        f"{'val':>6} {'test':>6} {'ms':>7} {'pred':>7} {'err':>6} {'mJ':>8}",
    ]
    rows = []
    for s in metadata.signatures:
        pred = s.latency_model.predicted_ms if s.latency_model else None
        err = f"{(pred - s.latency_ms) / s.latency_ms:+.0%}" if pred is not None else "-"
        energy = s.energy_mj.get(energy_name) if energy_name else None
        rows.append(
            f"{s.key:<6} {s.precision:<5} {s.config_id:<40} {s.params:>8} {s.macs / 1e6:>7.2f} "
            f"{s.weight_bytes / 1024:>8.1f} {s.peak_activation_bytes / 1024:>6.1f} {s.accuracy:>6.3f} "
            f"{'-' if s.test_accuracy is None else f'{s.test_accuracy:.3f}':>6} {s.latency_ms:>7.4f} "
            f"{'-' if pred is None else f'{pred:.4f}':>7} {err:>6} "
            f"{'-' if energy is None else f'{energy.value:.4f}':>8}" + ("" if energy is None else f" {energy.kind}")
        )
    return "\n".join(head + rows)


def front_keys(metadata: Any) -> list[str]:
    """Keys of the signatures no other signature beats in both accuracy and latency, by latency."""
    rows = sorted(metadata.signatures, key=lambda s: (s.latency_ms, -s.accuracy))
    front, best = [], -1.0
    for s in rows:
        if s.accuracy > best:
            front.append(s.key)
            best = s.accuracy
    return front


def plot_front(metadata: Any, path: str | Path) -> Path:
    """Draws accuracy against latency (log scale), one marker per precision, the front as a line.

    Args:
      metadata: the model's metadata.
      path: the PNG to write (atomically).

    Returns:
      The path.

    Raises:
      MissingDependencyError: matplotlib is not installed.
    """
    plt = pyplot("--plot")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = {"fp32": "o", "fp16": "s", "int8": "^"}
    for precision, marker in markers.items():
        rows = [s for s in metadata.signatures if s.precision == precision]
        if rows:
            ax.scatter([s.latency_ms for s in rows], [s.accuracy for s in rows], marker=marker, label=precision)
    by_key = {s.key: s for s in metadata.signatures}
    front = [by_key[k] for k in front_keys(metadata)]
    ax.plot([s.latency_ms for s in front], [s.accuracy for s in front], color="gray", lw=1, zorder=0, label="front")
    for s in metadata.signatures:
        ax.annotate(s.key, (s.latency_ms, s.accuracy), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(f"measured latency (ms, {metadata.signatures[0].latency_threads} thread(s))")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"{metadata.task}: {len(metadata.signatures)} configurations ({metadata.storage_mode})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_png(fig, path, dpi=120)


def dispatch(argv: list[str]) -> int:
    """Parses ``MODEL.tflite`` and the flags, prints the table or JSON, draws the plot.

    Args:
      argv: the arguments after ``inspect``.

    Returns:
      The exit code.
    """
    from tflite_adaspring.metadata import read_metadata

    if "-h" in argv or "--help" in argv:
        print(f"{USAGE}\n\n{FLAGS.get_help(include_special_flags=False)}")
        return 0
    FLAGS.unparse_flags()
    try:
        rest = FLAGS(["adaspring inspect", *argv])[1:]
    except flags.Error as exc:
        print(f"adaspring inspect: {exc}\n{USAGE}", file=sys.stderr)
        return 2
    if len(rest) != 1:
        print(f"adaspring inspect: expected one model path, got {rest}\n{USAGE}", file=sys.stderr)
        return 2
    path = Path(rest[0])
    if not path.exists():
        print(f"adaspring inspect: {path} does not exist", file=sys.stderr)
        return 1
    metadata = read_metadata(path)
    size = path.stat().st_size
    if FLAGS.json:
        print(json.dumps({"file_bytes": size, "front": front_keys(metadata), **metadata.to_json()}, indent=2))
    else:
        print(signature_table(metadata, size))
    if FLAGS.plot:
        print(f"wrote {plot_front(metadata, FLAGS.plot)}", file=sys.stderr if FLAGS.json else sys.stdout)
    return 0
