"""Accuracy predictor: encodings, Spearman, smoothed accuracy, ridge and kernel fits, JSON versions, cache, samplers."""

from __future__ import annotations

import json
import math
import random
import zlib
from pathlib import Path

import numpy as np
import pytest

from tflite_adaspring.errors import ConfigError, ModelFormatError, SchemaVersionError
from tflite_adaspring.profiling import accuracy_predictor as ap
from tflite_adaspring.profiling import config_sampling as cs
from tflite_adaspring.space import Config, SearchSpace

SPACE = SearchSpace("toy", 1, blocks_per_stage=(2, 2, 1))


def _additive_accuracy(config: Config) -> float:
    """A known additive function of the knobs (depth, op, width, rank) the ridge model can represent."""
    op_bonus = {"std": 0.02, "dws": 0.01, "fire": 0.0}
    value = 0.6 + 0.03 * config.head_rank
    for stage in config.stages:
        value += 0.02 * len(stage) + sum(0.05 * b.width + op_bonus[b.op] for b in stage)
    return value


def _joint_effects(seed: int) -> dict[tuple[int, int, str, float], float]:
    """An idiosyncratic effect per (stage, slot, op, width), like sub-networks whose branches differ."""
    rng = np.random.default_rng(seed)
    return {
        (s, b, op, w): float(rng.normal(0, 0.01))
        for s, n in enumerate(SPACE.blocks_per_stage)
        for b in range(n)
        for op in SPACE.ops
        for w in SPACE.widths
    }


def _joint_accuracy(config: Config, effects: dict[tuple[int, int, str, float], float]) -> float:
    return _additive_accuracy(config) + sum(
        effects[(s, b, block.op, block.width)] for s, stage in enumerate(config.stages) for b, block in enumerate(stage)
    )


def _configs(n: int, seed: int = 0) -> list[Config]:
    return cs.uniform_configs(SPACE, n, random.Random(seed))


def _macs(config: Config) -> float:
    """A synthetic cost: width- and depth-driven, like MACs."""
    return 1000.0 + sum(4000.0 * b.width * (2.0 if b.op == "std" else 1.0) for s in config.stages for b in s)


def _width_mismatch_accuracy(config: Config) -> float:
    """Additive knobs plus a penalty when the first and last stage widths differ (no additive model fits it)."""
    first, last = config.stages[0][0].width, config.stages[-1][0].width
    return _additive_accuracy(config) - 0.15 * (first - last) ** 2


# ----- encoding, ranks, labels --------------------------------------------------------------------------------


def test_encoding_is_one_hot_per_knob_and_zero_for_skipped_blocks() -> None:
    largest, smallest = SPACE.largest(), SPACE.smallest()
    a, b = ap.encode(SPACE, largest), ap.encode(SPACE, smallest)
    assert a.shape == b.shape and set(np.unique(a)) <= {0.0, 1.0}
    assert len(a) == (2 + 2 + 1) + 5 * (3 + 4 + 12) + 4  # depths per stage; op, width, joint per slot; ranks
    assert a.sum() == 3 + 5 * 3 + 1  # one depth per stage, op + width + joint per kept block, one rank
    assert b.sum() == 3 + 3 * 3 + 1  # smallest keeps one block per stage
    assert not np.array_equal(a, b)


def test_description_lists_depth_width_and_op_per_slot_and_the_log_rank() -> None:
    config = Config.from_id("s50.d100/f25/s75-r25-fp32")
    # stage 1: depth 2, slots (0.5, std) (1.0, dws); stage 2: depth 1, (0.25, fire), skipped; stage 3: (0.75, std)
    expected = [2, 0.5, 1, 0, 0, 1.0, 0, 1, 0, 1, 0.25, 0, 0, 1, 0, 0, 0, 0, 1, 0.75, 1, 0, 0, -2]
    assert ap.describe(SPACE, config).tolist() == expected
    assert len(ap.describe(SPACE, SPACE.largest())) == 3 + 5 * (1 + 3) + 1


def test_kernel_ridge_interpolates_and_rescales() -> None:
    z = np.random.default_rng(0).normal(size=(40, 3))
    y = np.sin(z[:, 0]) + z[:, 1] * z[:, 2]
    model = ap.KernelRidge.fit(z, y, gamma=1.0, penalty=1e-6)
    assert np.allclose(model.predict(z), y, atol=1e-3)  # a tiny penalty reproduces the training labels
    assert np.allclose(model.rescaled(2.0, 0.5).predict(z[:5]), 2 * model.predict(z[:5]) + 0.5)
    smooth = ap.KernelRidge.fit(z, y, gamma=1.0, penalty=100.0)
    assert np.std(smooth.predict(z)) < 0.5 * np.std(y)  # a large penalty shrinks towards the mean
    again = ap.KernelRidge.from_json(json.loads(json.dumps(model.to_json())), 3)
    assert np.allclose(again.predict(z[:5]), model.predict(z[:5]))
    with pytest.raises(ModelFormatError, match="kernel"):
        ap.KernelRidge.from_json(model.to_json(), 4)


def test_spearman_matches_hand_computed_values() -> None:
    assert ap.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert ap.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert ap.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486833, abs=1e-6)  # ties: average ranks
    assert ap.spearman([1, 1, 1], [1, 2, 3]) == 0.0


def test_smoothed_accuracy_matches_hand_computed_values_and_tends_to_top1() -> None:
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    labels = np.array([0, 0, 2])
    # margins 2, -1, 3 over T = 0.5: sigmoid(4), sigmoid(-2), sigmoid(6)
    expected = (1 / (1 + math.exp(-4)) + 1 / (1 + math.exp(2)) + 1 / (1 + math.exp(-6))) / 3
    assert ap.smoothed_accuracy(logits, labels, 0.5) == pytest.approx(expected, abs=1e-12)
    assert ap.smoothed_accuracy(logits, labels, 1e-4) == pytest.approx(2 / 3, abs=1e-9)  # top-1 accuracy
    assert ap.smoothed_accuracy(logits - 7.0, labels, 0.5) == pytest.approx(expected)  # only differences matter
    with pytest.raises(ValueError, match="temperature"):
        ap.smoothed_accuracy(logits, labels, 0.0)
    with pytest.raises(ValueError, match="labels"):
        ap.smoothed_accuracy(logits, labels[:2])


# ----- fitting -------------------------------------------------------------------------------------------------


def test_positive_definite_solve_matches_a_hand_solved_system() -> None:
    # [[4, 2], [2, 3]] x = [2, 1]: the inverse is [[3, -2], [-2, 4]] / 8, so x = [0.5, 0]
    assert np.allclose(ap._spd_solve(np.array([[4.0, 2.0], [2.0, 3.0]]), np.array([2.0, 1.0])), [0.5, 0.0])
    a = np.random.default_rng(0).normal(size=(30, 12))
    gram, b = a.T @ a + np.eye(12), np.arange(12.0)
    assert np.allclose(gram @ ap._spd_solve(gram, b), b)


def test_ridge_learns_an_additive_function_and_ranks_held_out_configs() -> None:
    configs = _configs(160)
    noise = np.random.default_rng(0).normal(0, 0.003, len(configs))
    y = [_additive_accuracy(c) + n for c, n in zip(configs, noise)]
    model = ap.AccuracyPredictor.fit(SPACE, configs[:120], y[:120])
    held = configs[120:]
    rho = ap.spearman([model.predict(c) for c in held], [_additive_accuracy(c) for c in held])
    assert rho > 0.95 and model.cv_spearman > 0.9 and model.label == ap.LABEL_ACCURACY
    assert model.predict(held[0].with_precision("int8")) < model.predict(held[0])  # the int8 prior penalty
    with pytest.raises(ValueError, match="configs"):
        ap.AccuracyPredictor.fit(SPACE, configs[:2], y[:2])
    with pytest.raises(ValueError, match="target"):
        ap.AccuracyPredictor.fit(SPACE, configs[:10], y[:10], targets=y[:9])


def test_ridge_learns_per_branch_effects_of_a_synthetic_supernet() -> None:
    effects = _joint_effects(1)
    configs = _configs(300, seed=1)
    noise = np.random.default_rng(1).normal(0, 0.004, len(configs))
    y = [_joint_accuracy(c, effects) + n for c, n in zip(configs, noise)]
    model = ap.AccuracyPredictor.fit(SPACE, configs[:220], y[:220])
    held = configs[220:]
    assert ap.spearman([model.predict(c) for c in held], [_joint_accuracy(c, effects) for c in held]) > 0.85


def test_the_kernel_member_captures_an_interaction_the_ridge_misses() -> None:
    configs = _configs(300, seed=5)
    noise = np.random.default_rng(5).normal(0, 0.003, len(configs))
    y = [_width_mismatch_accuracy(c) + n for c, n in zip(configs, noise)]
    fit, held = slice(0, 220), slice(220, 300)
    truth = [_width_mismatch_accuracy(c) for c in configs[held]]
    ridge = ap.AccuracyPredictor.fit(SPACE, configs[fit], y[fit], kernel=False)
    both = ap.AccuracyPredictor.fit(SPACE, configs[fit], y[fit])
    assert ridge.kernel is None and both.kernel is not None
    rho_ridge = ap.spearman([ridge.predict(c) for c in configs[held]], truth)
    rho_both = ap.spearman([both.predict(c) for c in configs[held]], truth)
    assert rho_both > rho_ridge + 0.05 and both.cv_spearman > ridge.cv_spearman
    assert np.allclose(both.weights, ridge.weights)  # the ridge member is the same fit


def test_lower_noise_targets_rank_better_and_predictions_stay_in_accuracy_units() -> None:
    """Top-1 labels carry much more noise than the smoothed ones; both measure the same quality."""
    effects = _joint_effects(2)
    configs = _configs(260, seed=2)
    rng = np.random.default_rng(2)
    truth = np.array([_joint_accuracy(c, effects) for c in configs])
    top1 = truth + rng.normal(0, 0.05, len(truth))
    smoothed = 0.9 * truth + 0.05 + rng.normal(0, 0.003, len(truth))  # another scale and offset
    fit, held = slice(0, 180), slice(180, 260)
    plain = ap.AccuracyPredictor.fit(SPACE, configs[fit], top1[fit])
    model = ap.AccuracyPredictor.fit(SPACE, configs[fit], top1[fit], targets=smoothed[fit])
    rho = ap.spearman([model.predict(c) for c in configs[held]], truth[held])
    rho_plain = ap.spearman([plain.predict(c) for c in configs[held]], truth[held])
    assert rho > 0.85 and rho > rho_plain + 0.1
    assert model.label == ap.LABEL_SMOOTHED
    level = np.mean([model.predict(c) for c in configs[fit]])
    assert level == pytest.approx(top1[fit].mean(), abs=0.005)  # mapped back to accuracy units


def test_fit_samples_keeps_the_label_with_the_better_cross_validated_ranking() -> None:
    configs = _configs(120, seed=3)
    rng = np.random.default_rng(3)
    truth = np.array([_additive_accuracy(c) for c in configs])
    top1 = truth + rng.normal(0, 0.03, len(truth))
    clean = {c.id: ap.Sample(t, 0.9 * a + 0.05) for c, t, a in zip(configs, top1, truth)}  # smoothed: noiseless
    misleading = {c.id: ap.Sample(t, float(rng.uniform(0.5, 0.9))) for c, t in zip(configs, top1)}  # smoothed: junk
    assert ap.AccuracyPredictor.fit_samples(SPACE, configs, clean).label == ap.LABEL_SMOOTHED
    assert ap.AccuracyPredictor.fit_samples(SPACE, configs, misleading).label == ap.LABEL_ACCURACY
    only = ap.AccuracyPredictor.fit_samples(SPACE, configs, clean, labels=(ap.LABEL_ACCURACY,), kernel=False)
    direct = ap.AccuracyPredictor.fit(SPACE, configs, top1, kernel=False)
    assert only.label == ap.LABEL_ACCURACY and np.allclose(only.weights, direct.weights) and only.kernel is None
    with pytest.raises(KeyError):
        ap.AccuracyPredictor.fit_samples(SPACE, [*configs, SPACE.largest()], clean)
    with pytest.raises(ValueError, match="labels"):
        ap.AccuracyPredictor.fit_samples(SPACE, configs, clean, labels=("loss",))


# ----- JSON ----------------------------------------------------------------------------------------------------


def test_predictor_json_round_trips_reads_versions_1_and_2_and_rejects_others() -> None:
    configs = _configs(40, seed=4)
    y = [_width_mismatch_accuracy(c) for c in configs]
    model = ap.AccuracyPredictor.fit(SPACE, configs, y, targets=y)
    obj = json.loads(json.dumps(model.to_json()))
    assert obj["schema_version"] == 3 and obj["label"] == ap.LABEL_SMOOTHED and obj["kernel"] is not None
    again = ap.AccuracyPredictor.from_json(obj)
    for config in configs[:5]:
        assert again.predict(config) == pytest.approx(model.predict(config))
    assert again.label == model.label and again.kernel is not None
    ridge_only = {k: v for k, v in obj.items() if k != "kernel"} | {"schema_version": 2}
    old = ap.AccuracyPredictor.from_json(ridge_only)
    assert old.kernel is None and old.label == ap.LABEL_SMOOTHED
    ridge_prediction = float(ap.encode(SPACE, configs[0]) @ model.weights + model.intercept)
    assert old.predict(configs[0]) == pytest.approx(min(1.0, max(0.0, ridge_prediction)))
    oldest = {k: v for k, v in ridge_only.items() if k != "label"} | {"schema_version": 1}
    assert ap.AccuracyPredictor.from_json(oldest).label == ap.LABEL_ACCURACY
    with pytest.raises(SchemaVersionError, match="schema_version 4"):
        ap.AccuracyPredictor.from_json(obj | {"schema_version": 4})
    with pytest.raises(ModelFormatError, match="weights"):
        ap.AccuracyPredictor.from_json(obj | {"weights": [0.0, 1.0]})
    with pytest.raises(ModelFormatError, match="kernel"):
        ap.AccuracyPredictor.from_json(obj | {"kernel": obj["kernel"] | {"mean": [0.0]}})
    with pytest.raises(ModelFormatError):
        ap.AccuracyPredictor.from_json({"kind": "something else"})


# ----- measured samples ----------------------------------------------------------------------------------------


class _FakeSupernet:
    """Logits that favour the true class by a config-dependent amount (numpy only)."""

    space = SPACE

    def __init__(self) -> None:
        self.recalibrated: list[str] = []
        self._config: Config | None = None

    def recalibrate(self, config: Config, batches: list, store: bool = True) -> None:
        assert batches and not store
        self.recalibrated.append(config.id)

    def forward(self, x: np.ndarray, config: Config) -> np.ndarray:
        rng = np.random.default_rng(zlib.crc32(config.id.encode()))
        return x * (_additive_accuracy(config) * 4 - 2) + rng.normal(0, 1, x.shape)


def _val(n: int = 50, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(n) % classes
    return np.eye(classes)[y], y


def test_measure_samples_measures_each_config_once_at_fp32() -> None:
    net, (x, y) = _FakeSupernet(), _val()
    configs = [SPACE.largest("int8"), SPACE.smallest()]
    cache: dict[str, ap.Sample] = {}
    got = ap.measure_samples(net, configs, (x, y), [x], cache)
    assert set(got) == {SPACE.largest().id, SPACE.smallest().id} and net.recalibrated == list(got)
    for config in (c.with_precision("fp32") for c in configs):
        logits = net.forward(x, config)
        sample = got[config.id]
        assert sample.accuracy == pytest.approx(np.mean(logits.argmax(1) == y))
        assert sample.smoothed_accuracy == pytest.approx(ap.smoothed_accuracy(logits, y))
    assert ap.measure_accuracies(net, configs, (x, y), [x], cache) == {k: s.accuracy for k, s in got.items()}
    assert len(net.recalibrated) == 2  # the second call came from the cache


def test_sample_cache_round_trips_and_treats_stale_files_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "samples.json"
    assert ap.load_samples(path, SPACE, "ckpt-3") == {}
    ap.save_samples(path, SPACE, "ckpt-3", {"a": ap.Sample(0.5, 0.45)})
    assert ap.load_samples(path, SPACE, "ckpt-3") == {"a": ap.Sample(0.5, 0.45)}
    assert ap.load_samples(path, SPACE, "ckpt-4") == {}  # stale: another checkpoint
    obj = json.loads(path.read_text())
    path.write_text(json.dumps(obj | {"label_temperature": 2.0}))
    assert ap.load_samples(path, SPACE, "ckpt-3") == {}  # stale: another label
    path.write_text(json.dumps(obj | {"schema_version": 1, "samples": {"a": 0.5}}))
    assert ap.load_samples(path, SPACE, "ckpt-3") == {}  # version 1: top-1 only, measured again
    path.write_text(json.dumps(obj | {"schema_version": 9}))
    with pytest.raises(SchemaVersionError, match="schema_version 9"):
        ap.load_samples(path, SPACE, "ckpt-3")
    path.write_text(json.dumps({"kind": "other"}))
    with pytest.raises(ModelFormatError):
        ap.load_samples(path, SPACE, "ckpt-3")


# ----- samplers ------------------------------------------------------------------------------------------------


def test_uniform_sampler_is_reproducible_and_distinct() -> None:
    a = cs.sample_configs(SPACE, "uniform", 50, random.Random("s"))
    assert a == cs.sample_configs(SPACE, "uniform", 50, random.Random("s")) and len(set(a)) == 50
    assert all(c.precision == "fp32" for c in a)


def test_mac_stratified_sampler_spreads_draws_evenly_over_log_macs() -> None:
    drawn = cs.sample_configs(SPACE, "mac_stratified", 100, random.Random("s"), _macs)
    assert len(set(drawn)) == 100
    low, high = math.log(_macs(SPACE.smallest())), math.log(_macs(SPACE.largest()))
    bins = np.minimum(9, ((np.log([_macs(c) for c in drawn]) - low) / (high - low) * 10).astype(int))
    counts = np.bincount(bins, minlength=10)
    uniform = cs.uniform_configs(SPACE, 100, random.Random("s"))
    uniform_counts = np.bincount(
        np.minimum(9, ((np.log([_macs(c) for c in uniform]) - low) / (high - low) * 10).astype(int)), minlength=10
    )
    # bins are cycled: equal counts except where the pool ran out (the few configs near the largest)
    assert counts[:-1].max() - counts[:-1].min() <= 1 and counts[-1] >= 1
    assert uniform_counts[:-1].max() - uniform_counts[:-1].min() > 10
    assert counts[:3].sum() > 2 * uniform_counts[:3].sum()  # the cheap end is no longer rare


def test_samplers_reject_bad_requests() -> None:
    with pytest.raises(ConfigError, match="unknown sampler"):
        cs.sample_configs(SPACE, "sobol", 5, random.Random(0))
    with pytest.raises(ConfigError, match="macs"):
        cs.sample_configs(SPACE, "mac_stratified", 5, random.Random(0))
    with pytest.raises(ConfigError, match="cannot draw"):
        cs.uniform_configs(SPACE, 0, random.Random(0))
    with pytest.raises(ConfigError, match="bins"):
        cs.mac_stratified_configs(SPACE, 5, _macs, random.Random(0), bins=0)
    with pytest.raises(ConfigError, match="pool"):
        cs.mac_stratified_configs(SPACE, 50, _macs, random.Random(0), pool=20)
