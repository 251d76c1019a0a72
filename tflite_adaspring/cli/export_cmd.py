"""``adaspring export``: search a run's space with the predictors and export K configurations in one model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from absl import flags

from tflite_adaspring.cli.profile_cmd import parse_precisions

FLAGS = flags.FlagValues()
flags.DEFINE_string("run", None, "Run folder written by `adaspring train`.", flag_values=FLAGS)
flags.DEFINE_string("out", None, "The .tflite to write (atomically).", flag_values=FLAGS)
flags.DEFINE_integer("signatures", 16, "Configurations (signatures) in the model.", lower_bound=2, flag_values=FLAGS)
flags.DEFINE_list("precision", ["fp32", "fp16", "int8"], "Precisions the search may choose per signature.",
                  flag_values=FLAGS)  # fmt: skip
flags.DEFINE_string("lut", None, "Latency table from `adaspring profile` (default: profile this host now).",
                    flag_values=FLAGS)  # fmt: skip
flags.DEFINE_enum("mode", "packed", ["packed", "evolve"], "Storage mode.", flag_values=FLAGS)
flags.DEFINE_string("max_size_ratio", "auto",
                    "Packed storage: cap on the signatures' weights (counted unshared) as a multiple of the full "
                    "model's; 'auto': 3 with fp32 only, 2 when fp16/int8 are allowed; 'none': no cap.",
                    flag_values=FLAGS)  # fmt: skip
flags.DEFINE_integer("threads", 1, "LiteRT threads for predicted and measured latency.", lower_bound=1,
                     flag_values=FLAGS)  # fmt: skip
flags.DEFINE_integer("predictor_samples", 240, "Sampled configurations measured to fit the accuracy predictor.",
                     lower_bound=10, flag_values=FLAGS)  # fmt: skip
flags.DEFINE_string("samples_cache", None, "JSON file caching those accuracy measurements between exports.",
                    flag_values=FLAGS)  # fmt: skip
flags.DEFINE_integer("seed", 0, "Seed of sampling and search.", flag_values=FLAGS)
flags.mark_flag_as_required("run", flag_values=FLAGS)
flags.mark_flag_as_required("out", flag_values=FLAGS)


def evolve_available() -> bool:
    """True when the evolve storage mode (``tflite_adaspring.export.evolve``) is installed."""
    return importlib.util.find_spec("tflite_adaspring.export.evolve") is not None


def parse_size_ratio(value: str) -> float | str | None:
    """Validates ``--max_size_ratio``: ``auto``, ``none`` or a positive number.

    Raises:
      flags.ValidationError: anything else.
    """
    text = value.strip().lower()
    if text in ("auto", "none"):
        return None if text == "none" else "auto"
    try:
        ratio = float(text)
    except ValueError:
        ratio = float("nan")
    if not ratio > 0:
        raise flags.ValidationError(f"--max_size_ratio {value}: give auto, none or a positive number such as 3")
    return ratio


def run(fv: flags.FlagValues) -> int:
    """Exports and prints the signature table."""
    from tflite_adaspring.cli.inspect_cmd import signature_table
    from tflite_adaspring.errors import MissingDependencyError
    from tflite_adaspring.export.pipeline import export_run
    from tflite_adaspring.metadata import read_metadata, save_model

    precisions = parse_precisions(fv.precision)
    size_ratio = parse_size_ratio(fv.max_size_ratio)
    if fv.mode == "evolve" and not evolve_available():
        raise MissingDependencyError("--mode evolve is not available in this installation; use --mode packed")
    result = export_run(
        fv.run,
        k=fv.signatures,
        precisions=precisions,
        lut_path=fv.lut,
        threads=fv.threads,
        predictor_samples=fv.predictor_samples,
        samples_cache=fv.samples_cache,
        seed=fv.seed,
        mode=fv.mode,
        max_size_ratio=size_ratio,
    )
    path = save_model(Path(fv.out), result.model_bytes)
    print(signature_table(read_metadata(path)))
    before, after = result.packed.size_before_dedup / 1e6, result.packed.size_after_dedup / 1e6
    print(f"\nwrote {path} ({len(result.model_bytes) / 1e6:.3f} MB, storage {fv.mode}); "
          f"buffer deduplication {before:.3f} -> {after:.3f} MB")  # fmt: skip
    return 0
