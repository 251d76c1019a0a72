"""A runtime-only process for ``adaspring bench runtime``: load a model, adapt and invoke, report peak RSS.

Run as ``python -m tflite_adaspring.bench.runtime_probe MODEL INVOKES``; prints one JSON line. Imports
only the on-device runtime (numpy + ai-edge-litert), never TensorFlow, and says so in its output.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def peak_rss_mb() -> float:
    """Peak resident set size of this process image in MB.

    Linux's ``VmHWM`` (``/proc/self/status``) belongs to the current address space. ``getrusage``'s
    ``ru_maxrss`` is the fallback elsewhere; on Linux it is useless here because it keeps the parent's
    peak across ``fork`` + ``exec``.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def probe(model_path: str, invokes: int) -> dict[str, float | bool | str]:
    """Loads ``model_path``, visits every configuration, runs ``invokes`` adaptive invokes.

    Args:
      model_path: an adaptive .tflite (packed or evolve).
      invokes: inferences to run (a context change every 50).

    Returns:
      ``max_rss_mb``, ``tensorflow_imported``, ``storage_mode``, ``configs`` and ``seconds``.
    """
    import numpy as np

    from tflite_adaspring.context.snapshot import ContextSnapshot, Requirements
    from tflite_adaspring.runtime import Interpreter, Policy

    start = time.perf_counter()
    interp = Interpreter(model_path=model_path, num_threads=1, policy=Policy(dwell_s=0.0))
    for key in interp.metadata.keys:  # every configuration loaded (evolve: built) at least once
        interp.set_active(key)
        interp.wait_until_active()
    runner = interp.get_signature_runner()
    detail = runner.get_input_details()
    name, spec = next(iter(detail.items()))
    x = np.zeros(spec["shape"], spec["dtype"])
    latencies = interp.table.latency_ms
    budgets = np.linspace(latencies.min(), latencies.max() * 1.2, 7)
    for i in range(invokes):
        if i % 50 == 0:
            budget = float(budgets[(i // 50) % len(budgets)])
            interp.adapt(ContextSnapshot(timestamp=float(i), requirements=Requirements(latency_budget_ms=budget)))
        runner(**{name: x})
    interp.close()
    return {
        "max_rss_mb": peak_rss_mb(),
        "tensorflow_imported": "tensorflow" in sys.modules or "tf_keras" in sys.modules,
        "storage_mode": interp.storage_mode,
        "configs": float(len(interp.metadata.keys)),
        "seconds": time.perf_counter() - start,
    }


def main(argv: list[str]) -> int:
    """``MODEL INVOKES`` -> one JSON line on stdout."""
    if len(argv) != 3:
        print("usage: python -m tflite_adaspring.bench.runtime_probe MODEL INVOKES", file=sys.stderr)
        return 2
    print(json.dumps(probe(argv[1], int(argv[2]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
