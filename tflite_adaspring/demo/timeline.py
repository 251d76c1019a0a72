"""The replay's timeline as a PNG: battery, contention, budget vs measured latency, chosen configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tflite_adaspring.plotting import pyplot, save_png


def plot_timeline(result: dict[str, Any], path: str | Path) -> Path:
    """Draws four stacked panels over simulated time and writes them as a PNG.

    Args:
      result: :func:`tflite_adaspring.demo.replay.replay` output.
      path: the PNG to write (parent folders are created; written atomically).

    Returns:
      The path written.

    Raises:
      MissingDependencyError: matplotlib is not installed.
    """
    plt = pyplot("the timeline")

    windows = result["windows"]
    t = [w["t"] / 60.0 for w in windows]
    keys = sorted(result["configs"], key=lambda k: result["configs"][k]["latency_ms"])
    fig, axes = plt.subplots(4, 1, figsize=(11, 10), sharex=True, constrained_layout=True)
    battery, contention, latency, chosen = axes
    battery.plot(t, [w["battery"] for w in windows], color="tab:green")
    battery.set_ylabel("battery %\n(simulated)")
    contention.step(t, [w["contention"] or 1.0 for w in windows], where="post", label="measured contention")
    contention.step(t, [w["load_workers"] for w in windows], where="post", label="busy-loop workers", alpha=0.6)
    contention.set_ylabel("CPU (measured)")
    contention.legend(loc="upper right", fontsize=8)
    latency.step(t, [w["budget_ms"] for w in windows], where="post", color="black", label="budget")
    for run, style in (("adaptive", "-o"), ("static_largest", "--"), ("static_smallest", ":")):
        latency.plot(t, [w["runs"][run]["measured_ms"] for w in windows], style, markersize=3, label=run)
    latency.set_yscale("log")
    latency.set_ylabel("latency ms\n(measured mean)")
    latency.legend(loc="upper right", fontsize=8)
    chosen.step(t, [keys.index(w["key"]) for w in windows], where="post", color="tab:purple")
    chosen.set_yticks(range(len(keys)))
    chosen.set_yticklabels(keys, fontsize=6)
    chosen.set_ylabel("configuration\n(fastest at bottom)")
    chosen.set_xlabel("simulated time (min)")
    summary = result["summary"]
    fig.suptitle(
        "adaptive: budget met {:.0%}, accuracy {:.3f} | static largest: {:.0%}, {:.3f} | static smallest: "
        "{:.0%}, {:.3f}".format(
            *(
                summary[r][f]
                for r in ("adaptive", "static_largest", "static_smallest")
                for f in ("budget_met_rate", "mean_accuracy")
            )
        ),
        fontsize=10,
    )
    return save_png(fig, path, dpi=110)
