"""``adaspring bench predictors``, accuracy part: samplers, cache reuse, report and markdown (numpy fake supernet)."""

from __future__ import annotations

import types
import zlib
from pathlib import Path

import numpy as np

from tflite_adaspring.bench import predictors as bench
from tflite_adaspring.profiling import accuracy_predictor as ap
from tflite_adaspring.space import Config, SearchSpace

SPACE = SearchSpace("toy", 1, blocks_per_stage=(2, 2, 1))
CLASSES = 4


def _quality(config: Config) -> float:
    """How strongly the fake sub-network favours the true class: additive in the knobs."""
    op_bonus = {"std": 0.6, "dws": 0.3, "fire": 0.0}
    value = 0.5 * config.head_rank
    for stage in config.stages:
        value += 0.3 * len(stage) + sum(0.8 * b.width + op_bonus[b.op] for b in stage)
    return value


class _FakeSupernet:
    """The interface the bench uses: ``space``, ``cost``, ``recalibrate``, ``forward``."""

    space = SPACE

    def __init__(self) -> None:
        self.measured = 0

    def cost(self, config: Config) -> types.SimpleNamespace:
        return types.SimpleNamespace(macs=1000 + sum(5000 * b.width for stage in config.stages for b in stage))

    def recalibrate(self, config: Config, batches: list, store: bool = True) -> None:
        self.measured += 1

    def forward(self, x: np.ndarray, config: Config) -> np.ndarray:
        rng = np.random.default_rng(zlib.crc32(config.id.encode()))
        return x * _quality(config) + rng.normal(0, 1.5, x.shape)


def _dataset(n: int = 300) -> types.SimpleNamespace:
    y = np.arange(n) % CLASSES
    return types.SimpleNamespace(val=(np.eye(CLASSES)[y], y))


def test_accuracy_report_ranks_held_out_configs_and_reuses_the_cache(tmp_path: Path) -> None:
    net, dataset, cache = _FakeSupernet(), _dataset(), tmp_path / "accuracy.json"
    reports = {
        sampler: bench.accuracy_report(net, dataset, [dataset.val[0]], cache, 60, 30, 7, "ckpt-1", sampler)
        for sampler in ("mac_stratified", "uniform")
    }
    assert net.measured == 180
    for sampler, report in reports.items():
        assert report["sampler"] == sampler and report["label"] in (ap.LABEL_ACCURACY, ap.LABEL_SMOOTHED)
        assert report["kernel"] and report["train_configs"] == 60 and report["test_configs"] == 30
        assert report["spearman"] > 0.6 and report["spearman_vs_label"] > report["spearman"] - 0.2
        low, high = report["spearman_ci95"]
        assert low < report["spearman"] < high <= 1
        gain_low, gain_high = report["gain_over_previous_ci95"]
        assert gain_low <= report["spearman"] - report["spearman_previous"] <= gain_high
        assert 0 < report["accuracy_range"][0] <= report["accuracy_range"][1] <= 1
        assert list(report["spearman_by_train_configs"]) == ["15", "30", "45", "60"]
        assert report["spearman_by_train_configs"]["60"] == report["spearman"]
    stratified, uniform = reports["mac_stratified"]["macs_range"], reports["uniform"]["macs_range"]
    assert stratified[0] < uniform[0]  # the stratified draw reaches the cheap end
    assert len(ap.load_samples(cache, SPACE, "ckpt-1")) == 180
    again = bench.accuracy_report(net, dataset, [dataset.val[0]], cache, 60, 30, 7, "ckpt-1", "uniform")
    assert net.measured == 180 and again == reports["uniform"]  # every sample came from the cache


def test_bootstrap_intervals_cover_the_estimate_and_pair_the_baseline() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=200)
    good, poor = truth + rng.normal(0, 0.5, 200), truth + rng.normal(0, 2.0, 200)
    out = bench.bootstrap_spearman(list(good), list(truth), list(poor))
    (low, high), (gain_low, gain_high) = out["spearman_ci"], out["gain_ci"]
    rho = ap.spearman(good, truth)
    assert low < rho < high and high - low < 0.1  # 200 configurations: a narrow interval
    assert 0 < gain_low < rho - ap.spearman(poor, truth) < gain_high
    same = bench.bootstrap_spearman(list(good), list(truth), list(good))
    assert same["gain_ci"] == [0.0, 0.0]


def test_markdown_lists_every_sampler_and_names_the_label() -> None:
    row = {"sampler": "mac_stratified", "label": ap.LABEL_ACCURACY, "train_configs": 240, "test_configs": 240,
           "spearman": 0.81, "spearman_ci95": [0.76, 0.86], "spearman_previous": 0.77,
           "gain_over_previous_ci95": [0.02, 0.07], "spearman_vs_label": 0.83, "cv_spearman_train": 0.8,
           "mae_points": 1.5, "accuracy_range": [0.6, 0.85],
           "spearman_by_train_configs": {"120": 0.7, "240": 0.81}}  # fmt: skip
    latency = {"configs": 2, "threads": {"1": {"median_abs_error_pct": 1.0, "p90_abs_error_pct": 2.0,
               "median_noise_pct": 0.1, "per_precision_median_abs_error_pct": {"fp32": 1.0}}}}  # fmt: skip
    result = {"latency": latency, "accuracy": row,
              "accuracy_by_sampler": {"mac_stratified": row, "uniform": row | {"sampler": "uniform"}}}  # fmt: skip
    text = bench._markdown("toy", result)
    row_text = (
        "| mac_stratified | 240 / 240 | accuracy | 0.810 (0.760-0.860) | 0.770 | +0.040 (+0.020 to +0.070) | 0.830 | "
        "0.800 | 1.50 pts | 0.600-0.850 | 120: 0.700, 240: 0.810 |"
    )
    assert row_text in text
    assert "| uniform | 240 / 240 |" in text and "kernel ridge" in text and "`mac_stratified` sampler" in text
