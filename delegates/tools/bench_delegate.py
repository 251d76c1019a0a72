"""Invoke latency of the AdaSpring delegate vs the runtime's own kernels (XNNPACK) on 1-D CNNs for (128, 6).

Development tool (imports TensorFlow to build the models); not part of the package or the tests::

    .venv/bin/python delegates/tools/bench_delegate.py [--invokes 2000] [--rounds 3]

Prints a Markdown table of min / median / p90 microseconds per invoke. Configurations are interleaved and
repeated; the best round is reported (the machine is shared, so noise only adds time). On a busy machine
the minimum is the most comparable figure: it is the invoke that ran without being preempted.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def build_models() -> dict[str, tuple[bytes, int]]:
    """The benchmark networks as .tflite bytes with their parameter counts."""
    import tensorflow as tf
    import tf_keras as keras

    layers = keras.layers

    def large() -> keras.Model:
        return keras.Sequential(
            [
                layers.Input((128, 6)),
                layers.Conv1D(64, 5, padding="same", activation="relu"),
                layers.Conv1D(128, 5, padding="same", activation="relu"),
                layers.MaxPooling1D(2),
                layers.Conv1D(256, 5, padding="same", activation="relu"),
                layers.MaxPooling1D(2),
                layers.Conv1D(256, 5, padding="same", activation="relu"),
                layers.GlobalAveragePooling1D(),
                layers.Dense(192, activation="relu"),
                layers.Dense(6),
            ]
        )

    def small() -> keras.Model:
        return keras.Sequential(
            [
                layers.Input((128, 6)),
                layers.Conv1D(16, 5, padding="same", activation="relu"),
                layers.Conv1D(32, 5, padding="same", activation="relu"),
                layers.MaxPooling1D(2),
                layers.Conv1D(32, 3, padding="same", activation="relu"),
                layers.GlobalAveragePooling1D(),
                layers.Dense(6),
            ]
        )

    models = {}
    for name, factory in (("large", large), ("small", small)):
        model = factory()
        models[name] = (tf.lite.TFLiteConverter.from_keras_model(model).convert(), model.count_params())
    return models


def time_invokes(interpreter, x: np.ndarray, invokes: int) -> np.ndarray:
    """Microseconds of each of `invokes` invokes after a warm-up."""
    index = interpreter.get_input_details()[0]["index"]
    interpreter.set_tensor(index, x)
    for _ in range(50):
        interpreter.invoke()
    times = np.empty(invokes)
    for i in range(invokes):
        start = time.perf_counter_ns()
        interpreter.invoke()
        times[i] = (time.perf_counter_ns() - start) / 1000.0
    return times


def main() -> None:
    """Run the benchmark and print the table."""
    from ai_edge_litert.interpreter import Interpreter

    from tflite_adaspring import delegates

    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--invokes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    library = delegates.library_path()
    x = np.random.default_rng(0).standard_normal((1, 128, 6)).astype(np.float32)
    results: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    models = build_models()
    for _ in range(args.rounds):
        for name, (content, _) in models.items():
            for threads in (1, 2):
                for runtime in ("xnnpack", "delegate"):
                    delegate_list = None
                    if runtime == "delegate":
                        delegate_list = [delegates.load(num_threads=threads, library_path=library)]
                    start = time.perf_counter()
                    interpreter = Interpreter(
                        model_content=content, experimental_delegates=delegate_list, num_threads=threads
                    )
                    interpreter.allocate_tensors()
                    create_ms = (time.perf_counter() - start) * 1000
                    times = time_invokes(interpreter, x, args.invokes)
                    if delegate_list:
                        assert delegates.stats(delegate_list[0], library).claimed_nodes > 0
                    results.setdefault((name, runtime, threads), []).append(
                        (float(np.median(times)), float(np.percentile(times, 90)), float(times.min()), create_ms)
                    )
    print(f"library: {library} ({delegates.build_info(library)})")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print("| model | params | threads | runtime | min us | median us | p90 us | create+allocate ms |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, runtime, threads), rounds in results.items():
        median, p90, _, create_ms = min(rounds)
        best = min(r[2] for r in rounds)
        timings = [f"{best:.1f}", f"{median:.1f}", f"{p90:.1f}", f"{create_ms:.2f}"]
        row = [name, models[name][1], threads, runtime, *timings]
        print("| " + " | ".join(str(cell) for cell in row) + " |")


if __name__ == "__main__":
    main()
