"""Latency-table probe files: build a device's ``lut.json`` on the device without TensorFlow.

:func:`tflite_adaspring.profiling.lut.build_lut` needs the supernet twice: to list the search space's
operators (:class:`~tflite_adaspring.profiling.plan.SubnetPlanner`) and to convert a few whole
configurations for the overhead fit (the TFLite converter, i.e. TensorFlow). Neither can run on a
Raspberry Pi with only numpy + ai-edge-litert, so the work is split:

* on the host (TensorFlow): :func:`make_lut_probes` lists the operators, converts the fit
  configurations into one multi-signature .tflite and stores, in a metadata entry named
  ``adaspring_lut_probes`` of that file, the operator specs, the operator list of every fit signature
  and, optionally, of every configuration of an exported model (to check the table against it).
  Run it as ``python -m tflite_adaspring.bench.lut_probes --run RUN --out probes.tflite [--model M]``;
* on the device (no TensorFlow): :func:`build_lut_from_probes` times the operators as single-operator
  models (:mod:`~tflite_adaspring.profiling.opbench`, pure flatbuffer building), measures the fit
  signatures and fits ``a + b x sum`` per thread count, exactly as ``build_lut`` does; ``adaspring bench
  device --lut_probes probes.tflite`` does this and writes the table next to its JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from absl import flags

from tflite_adaspring.errors import ModelFormatError, ModelNotFoundError, SchemaVersionError
from tflite_adaspring.profiling.ops import OpSpec

PROBES_KIND = "adaspring-lut-probes"
PROBES_SCHEMA_VERSION = 1
METADATA_ENTRY = "adaspring_lut_probes"

FLAGS = flags.FlagValues()
flags.DEFINE_string("run", None, "Run folder written by `adaspring train` (its search space is probed).",
                    flag_values=FLAGS)  # fmt: skip
flags.DEFINE_string("out", None, "Probe file to write (.tflite).", flag_values=FLAGS)
flags.DEFINE_string("model", None, "Exported model whose configurations get operator plans (optional).",
                    flag_values=FLAGS)  # fmt: skip
flags.DEFINE_list("precision", ["fp32", "fp16", "int8"], "Export precisions the table must cover.", flag_values=FLAGS)
flags.DEFINE_integer("fit_configs", 8, "Whole configurations converted for the overhead fit.", flag_values=FLAGS)
flags.mark_flag_as_required("run", flag_values=FLAGS)
flags.mark_flag_as_required("out", flag_values=FLAGS)


@dataclasses.dataclass(frozen=True)
class FitProbe:
    """One whole configuration converted for the overhead fit.

    Attributes:
      key: its signature key in the probe model.
      config_id: the configuration's id.
      dtype: tensor type it computes in (``float32`` or ``int8``).
      ops: operator keys of its plan, in execution order.
    """

    key: str
    config_id: str
    dtype: str
    ops: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class LutProbes:
    """Everything a device needs to build its latency table.

    Attributes:
      space: ``{"name", "version"}`` of the search space.
      precisions: export precisions covered.
      specs: operator key -> spec.
      fits: the fit configurations (signatures of ``model_bytes``).
      plans: configuration id -> operator keys (configurations of an exported model, for checking).
      model_bytes: the probe .tflite (fit signatures + this entry).
    """

    space: dict[str, Any]
    precisions: tuple[str, ...]
    specs: dict[str, OpSpec]
    fits: tuple[FitProbe, ...]
    plans: dict[str, tuple[str, ...]]
    model_bytes: bytes

    def plan(self, config_id: str) -> list[OpSpec] | None:
        """The operators of a configuration (a fit one or one of ``plans``), or None if unknown."""
        keys = self.plans.get(config_id) or next((f.ops for f in self.fits if f.config_id == config_id), None)
        return None if keys is None else [self.specs[k] for k in keys]

    def to_json(self) -> dict[str, Any]:
        """The JSON stored in the probe file's metadata entry."""
        return {
            "kind": PROBES_KIND,
            "schema_version": PROBES_SCHEMA_VERSION,
            "space": self.space,
            "precisions": list(self.precisions),
            "ops": [self.specs[k].to_json() for k in sorted(self.specs)],
            "fits": [dataclasses.asdict(f) | {"ops": list(f.ops)} for f in self.fits],
            "plans": {cid: list(keys) for cid, keys in self.plans.items()},
        }

    @classmethod
    def from_json(cls, obj: Any, model_bytes: bytes) -> LutProbes:
        """Inverse of :meth:`to_json`.

        Raises:
          SchemaVersionError: another kind of entry or a newer schema.
          ModelFormatError: a malformed field, or a plan naming an operator that is not listed.
        """
        if not isinstance(obj, dict) or obj.get("kind") != PROBES_KIND:
            raise ModelFormatError(f"not an adaspring latency-table probe entry (kind {PROBES_KIND!r} missing)")
        if obj.get("schema_version") != PROBES_SCHEMA_VERSION:
            raise SchemaVersionError(
                f"probe file schema_version {obj.get('schema_version')!r} is not {PROBES_SCHEMA_VERSION}; "
                "write it again on the host with this version of tflite-adaspring"
            )
        try:
            specs = {s.key: s for s in (OpSpec.from_json(o) for o in obj["ops"])}
            fits = tuple(FitProbe(str(f["key"]), str(f["config_id"]), str(f["dtype"]), tuple(map(str, f["ops"])))
                         for f in obj["fits"])  # fmt: skip
            plans = {str(cid): tuple(map(str, keys)) for cid, keys in obj["plans"].items()}
            probes = cls(dict(obj["space"]), tuple(map(str, obj["precisions"])), specs, fits, plans, model_bytes)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFormatError(f"malformed latency-table probe entry: {exc!r}") from exc
        used = {k for f in fits for k in f.ops} | {k for keys in plans.values() for k in keys}
        unknown = sorted(used - set(specs))
        if unknown or not fits:
            raise ModelFormatError(f"latency-table probe entry: no fit signatures or unlisted operators {unknown[:3]}")
        return probes

    def to_bytes(self) -> bytes:
        """The probe file: ``model_bytes`` with this object as the ``adaspring_lut_probes`` entry."""
        from tflite_adaspring.metadata import write_metadata_entry

        payload = json.dumps(self.to_json(), separators=(",", ":")).encode("utf-8")
        return write_metadata_entry(self.model_bytes, METADATA_ENTRY, payload)


def read_lut_probes(path: str | os.PathLike) -> LutProbes:
    """Reads a probe file (no TensorFlow).

    Raises:
      ModelNotFoundError: no such file.
      ModelFormatError: not a .tflite, or no/malformed ``adaspring_lut_probes`` entry.
      SchemaVersionError: written by a newer schema.
    """
    from tflite_adaspring.metadata import find_metadata_entry, verify_model

    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"latency-table probe file not found: {path} (write it on the host with "
                                 "`python -m tflite_adaspring.bench.lut_probes --run RUN --out FILE`)")  # fmt: skip
    data = path.read_bytes()
    verify_model(data)
    raw = find_metadata_entry(data, METADATA_ENTRY)
    if raw is None:
        raise ModelFormatError(f"{path}: no '{METADATA_ENTRY}' entry; it is not a latency-table probe file (write "
                               "one with `python -m tflite_adaspring.bench.lut_probes`)")  # fmt: skip
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: the '{METADATA_ENTRY}' entry is not valid JSON ({exc})") from exc
    return LutProbes.from_json(obj, data)


def build_lut_from_probes(
    probes: LutProbes, threads: Sequence[int] = (1,), quick: bool = False, log: Callable[[str], None] = print
) -> Any:
    """Measures this device's latency table from a probe file (numpy + ai-edge-litert only).

    Args:
      probes: the probe file's content.
      threads: thread counts to measure.
      quick: few timing rounds (a smoke test, not a usable table).
      log: progress messages.

    Returns:
      The :class:`~tflite_adaspring.profiling.lut.LatencyLUT` (not bound to a planner).
    """
    from tflite_adaspring.profiling.lut import FitModels, LatencyLUT, host_description, measure_thread_count

    op_kw = {"copies": 3, "runs": 10, "rounds": 3, "warmup": 5} if quick else {}
    fit_kw = {"runs": 10, "rounds": 2, "warmup": 5} if quick else {}
    specs = list(probes.specs.values())
    lut = LatencyLUT(probes.space, probes.specs, {s.key: {} for s in specs}, {}, host_description(), {})
    plans = [[probes.specs[k] for k in f.ops] for f in probes.fits]
    fit = FitModels(probes.model_bytes, [f.key for f in probes.fits], plans, [f.dtype for f in probes.fits])
    log(f"timing {len(specs)} operators at threads {list(threads)} ...")
    for t in threads:
        measure_thread_count(lut, t, fit, attempts=1 if quick else 3, op_kw=op_kw, fit_kw=fit_kw, log=log)
    return lut


def make_lut_probes(
    supernet: Any,
    precisions: Sequence[str] = ("fp32", "fp16", "int8"),
    n_fit: int = 8,
    representative: np.ndarray | None = None,
    extra_config_ids: Sequence[str] = (),
    seed: int = 0,
) -> LutProbes:
    """Host side (TensorFlow): lists the space's operators and converts the fit configurations.

    Args:
      supernet: the supernet of the run.
      precisions: export precisions the table must cover.
      n_fit: whole configurations converted for the overhead fit.
      representative: int8 calibration inputs (default: random normal inputs).
      extra_config_ids: configurations (e.g. of an exported model) whose plans are stored for checking.
      seed: seed of the random fit configurations and inputs.

    Returns:
      The probes (write them with :meth:`LutProbes.to_bytes`).

    Raises:
      ConfigError: an extra configuration is not in the supernet's space.
    """
    from tflite_adaspring.export.packed import convert_mixed
    from tflite_adaspring.profiling.lut import fit_configs, space_ops
    from tflite_adaspring.profiling.plan import PRECISION_DTYPE, SubnetPlanner
    from tflite_adaspring.space import Config

    planner = SubnetPlanner(supernet)
    extra = [supernet.space.validate(Config.from_id(cid)) for cid in extra_config_ids]  # fail before converting
    specs = {s.key: s for s in space_ops(planner, precisions)}
    configs = fit_configs(supernet.space, precisions, n_fit, seed)
    keys = [f"fit{i:02d}" for i in range(len(configs))]
    if representative is None:
        representative = np.random.default_rng(seed).normal(0, 1, (32, *supernet.backbone.input_shape))
    model = convert_mixed(supernet, configs, keys, np.asarray(representative, np.float32))

    def plan_keys(config: Config) -> tuple[str, ...]:
        plan = planner.plan(config)
        specs.update((s.key, s) for s in plan if s.key not in specs)
        return tuple(s.key for s in plan)

    fits = tuple(FitProbe(k, c.id, PRECISION_DTYPE[c.precision], plan_keys(c)) for k, c in zip(keys, configs))
    plans = {config.id: plan_keys(config) for config in extra}
    space = {"name": supernet.space.name, "version": supernet.space.version}
    return LutProbes(space, tuple(precisions), specs, fits, plans, model)


def run(fv: flags.FlagValues) -> int:
    """Host: writes the probe file of a run (and the plans of ``--model``'s configurations)."""
    from tflite_adaspring.cli.profile_cmd import parse_precisions
    from tflite_adaspring.metadata import read_metadata, save_model
    from tflite_adaspring.training.run import load_run

    precisions = parse_precisions(fv.precision)
    _, supernet, dataset = load_run(fv.run)
    extra = [s.config_id for s in read_metadata(fv.model).signatures] if fv.model else []
    probes = make_lut_probes(supernet, precisions, fv.fit_configs, dataset.train[0][:64], extra)
    path = save_model(fv.out, probes.to_bytes())
    print(f"wrote {path}: {len(probes.specs)} operators, {len(probes.fits)} fit signatures, "
          f"{len(probes.plans)} configuration plans; copy it to the device and run "
          f"`adaspring bench device --model M --json OUT --lut_probes {path.name}`")  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tflite_adaspring.bench.lut_probes --run RUN --out FILE [--model M]``."""
    from tflite_adaspring.errors import AdaSpringError

    argv = list(sys.argv if argv is None else argv)
    FLAGS.unparse_flags()
    try:
        FLAGS(argv)
        return run(FLAGS)
    except flags.Error as exc:
        print(f"lut_probes: {exc}\n{FLAGS.get_help(include_special_flags=False)}", file=sys.stderr)
        return 2
    except AdaSpringError as exc:
        print(f"lut_probes: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
