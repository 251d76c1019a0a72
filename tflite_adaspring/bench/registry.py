"""The benchmark names and their modules (one line per benchmark)."""

from tflite_adaspring.bench import register

register("retrain-gap", "tflite_adaspring.bench.retrain_gap", "Supernet subnets vs the same nets trained alone.")
register("report", "tflite_adaspring.bench.report", "Regenerate docs/results.md from docs/results/.")
