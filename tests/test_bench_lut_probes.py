"""The host half of the latency-table probe files (TensorFlow: converts the fit configurations)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

from tflite_adaspring.bench.lut_probes import LutProbes, build_lut_from_probes, make_lut_probes, read_lut_probes
from tflite_adaspring.errors import ConfigError
from tflite_adaspring.profiling.plan import SubnetPlanner
from tflite_adaspring.profiling.tflite_ops import signature_ops
from tflite_adaspring.space import Config

EXTRA = "s50.d100/f25-r50-fp32"
pytestmark = pytest.mark.slow  # converts three configurations (≈ 10-40 s on 2 cores)


@functools.lru_cache(maxsize=1)
def _supernet() -> Any:
    from export_factory import tiny_backbone

    from tflite_adaspring import data
    from tflite_adaspring.supernet import Supernet

    spec = data.load("basic_motions").spec
    return Supernet(tiny_backbone(spec), spec)  # structure only: untrained weights time the same


@functools.lru_cache(maxsize=1)
def _probes() -> LutProbes:
    return make_lut_probes(_supernet(), ("fp32",), n_fit=3, extra_config_ids=[EXTRA])


def test_fit_signatures_hold_the_planned_operators_and_round_trip(tmp_path: Path) -> None:
    probes = _probes()
    assert [f.key for f in probes.fits] == ["fit00", "fit01", "fit02"]
    planner = SubnetPlanner(_supernet())
    for fit in probes.fits:  # (plan == converted operators is test_export_plan's business, on trained weights)
        assert list(fit.ops) == [s.key for s in planner.plan(Config.from_id(fit.config_id))]
        assert signature_ops(probes.model_bytes, fit.key)[0].op == "RESHAPE"  # the signature exists and runs a net
    path = tmp_path / "probes.tflite"
    path.write_bytes(probes.to_bytes())
    read = read_lut_probes(path)
    assert read.specs == probes.specs and read.fits == probes.fits and set(read.plans) == {EXTRA}


def test_the_device_half_builds_a_table_that_predicts_the_extra_configuration() -> None:
    probes = _probes()
    lut = build_lut_from_probes(probes, (1,), quick=True, log=lambda _: None)
    assert lut.threads == (1,) and set(lut.op_ms) == set(probes.specs)
    assert lut.predict_plan(probes.plan(EXTRA), 1).predicted_ms > 0


def test_an_extra_configuration_outside_the_space_fails_before_converting() -> None:
    with pytest.raises(ConfigError):
        make_lut_probes(_supernet(), ("fp32",), n_fit=1, extra_config_ids=["s100/s100/s100-r100-fp32"])
