"""The benchmark names and their modules (one line per benchmark)."""

from tflite_adaspring.bench import register

register("retrain-gap", "tflite_adaspring.bench.retrain_gap", "Supernet subnets vs the same nets trained alone.")
register("report", "tflite_adaspring.bench.report", "Regenerate docs/results.md from docs/results/.")
register("runtime", "tflite_adaspring.bench.runtime", "Adapt/switch latency, evolve builds, invoke overhead, RSS.")
register("predictors", "tflite_adaspring.bench.predictors", "Latency-table / accuracy-predictor errors, held-out.")
register("export", "tflite_adaspring.bench.export_size", "K-signature model: speed range, file size, fp16/int8 loss.")
register("device", "tflite_adaspring.bench.device", "Every signature on this Linux device (Pi too), no TensorFlow.")
register("android", "tflite_adaspring.bench.android", "Every signature on an Android phone via adb + benchmark_model.")
register("compare", "tflite_adaspring.bench.compare", "AdaSpring vs hand-crafted baselines: iso-accuracy ratios.")
register("casestudy", "tflite_adaspring.bench.casestudy", "One context trace: adaptive runtime vs static baselines.")
