"""``adaspring profile``: measure this device's latency look-up table for a run's search space."""

from __future__ import annotations

from absl import flags

FLAGS = flags.FlagValues()
flags.DEFINE_string("run", None, "Run folder written by `adaspring train` (its search space is profiled).",
                    flag_values=FLAGS)  # fmt: skip
flags.DEFINE_string("out", None, "Where to write the table (lut.json).", flag_values=FLAGS)
flags.DEFINE_list("threads", ["1"], "Thread counts to measure, e.g. 1,2.", flag_values=FLAGS)
flags.DEFINE_list("precision", ["fp32", "fp16", "int8"], "Export precisions the table must cover.", flag_values=FLAGS)
flags.DEFINE_integer("fit_configs", 8, "Whole configurations converted and measured for the overhead fit.",
                     flag_values=FLAGS)  # fmt: skip
flags.mark_flag_as_required("run", flag_values=FLAGS)
flags.mark_flag_as_required("out", flag_values=FLAGS)


def parse_precisions(values: list[str]) -> tuple[str, ...]:
    """Validates a ``--precision`` list.

    Raises:
      flags.ValidationError: an unknown or empty precision list.
    """
    from tflite_adaspring.space import PRECISIONS

    chosen = tuple(dict.fromkeys(v.strip() for v in values if v.strip()))
    bad = [p for p in chosen if p not in PRECISIONS]
    if bad or not chosen:
        raise flags.ValidationError(f"--precision {','.join(values)}: choose from {','.join(PRECISIONS)}")
    return chosen


def parse_threads(values: list[str]) -> tuple[int, ...]:
    """Validates a ``--threads`` list (positive integers)."""
    try:
        threads = tuple(int(v) for v in values)
    except ValueError:
        threads = ()
    if not threads or min(threads) < 1:
        raise flags.ValidationError(f"--threads {','.join(values)}: give positive integers, e.g. 1,2")
    return threads


def run(fv: flags.FlagValues) -> int:
    """Builds the table and prints its overhead fits."""
    from tflite_adaspring.profiling.lut import build_lut
    from tflite_adaspring.training.run import load_run

    precisions, threads = parse_precisions(fv.precision), parse_threads(fv.threads)
    _, supernet, dataset = load_run(fv.run)
    lut = build_lut(supernet, threads, precisions, fv.fit_configs, representative=dataset.train[0][:64])
    path = lut.save(fv.out)
    print(f"wrote {path}: {len(lut.op_ms)} operators x threads {list(threads)} on {lut.host['cpu']}")
    return 0
