"""The case study's timeline as a PNG: battery and slowdown, budget vs every run's latency, adaptive choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tflite_adaspring.plotting import pyplot, save_png


def plot_casestudy(result: dict[str, Any], path: str | Path) -> Path:
    """Draws three stacked panels over trace time and writes them as a PNG (atomically).

    Args:
      result: the case-study result (``simulation`` as built by :func:`tflite_adaspring.bench.casestudy.simulate`).
      path: the PNG to write.

    Returns:
      The path written.

    Raises:
      MissingDependencyError: matplotlib is not installed.
    """
    plt = pyplot("the case-study plot")
    from tflite_adaspring.bench.casestudy import ADAPTIVE

    sim = result["simulation"]
    t = [i * sim["step_s"] / 60.0 for i in range(len(sim["budgets_ms"]))]
    fig, (context, latency, chosen) = plt.subplots(3, 1, figsize=(11, 9), sharex=True, constrained_layout=True)
    context.plot(t, sim["battery"], color="tab:green", label="battery % (simulated)")
    context.set_ylabel("battery %")
    slowdown = context.twinx()
    slowdown.step(t, sim["factors"], where="post", color="tab:red", alpha=0.6, label="slowdown (modeled)")
    slowdown.set_ylabel("latency factor")
    context.legend(loc="upper right", fontsize=8)
    latency.step(t, sim["budgets_ms"], where="post", color="black", linewidth=2, label="budget")
    for name, run in sim["runs"].items():
        style = {"linewidth": 1.6, "color": "tab:purple"} if name == ADAPTIVE else {"linewidth": 0.8, "alpha": 0.7}
        m = run["metrics"]
        latency.step(t, run["latency_ms"], where="post", label=f"{name} ({m['violation_rate']:.0%} over)", **style)
    latency.set_yscale("log")
    latency.set_ylabel("latency ms (log)")
    latency.legend(loc="upper left", fontsize=7, ncol=2)
    keys = sorted(set(sim["adaptive_keys"]))
    chosen.step(t, [keys.index(k) for k in sim["adaptive_keys"]], where="post", color="tab:purple")
    chosen.set_yticks(range(len(keys)))
    chosen.set_yticklabels(keys, fontsize=7)
    chosen.set_ylabel("adaptive signature")
    chosen.set_xlabel("trace time (min)")
    a = sim["runs"][ADAPTIVE]["metrics"]
    title = (f"{result['task']}: adaptive runtime {a['violation_rate']:.0%} budget violations, accuracy "
             f"{a['mean_accuracy']:.3f}; latency measured x modeled slowdown, energy modeled")  # fmt: skip
    fig.suptitle(title, fontsize=10)
    return save_png(fig, path, dpi=100)
