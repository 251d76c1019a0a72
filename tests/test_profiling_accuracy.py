"""Accuracy predictor: one-hot encoding, Spearman, ridge fit on a known function, JSON and sample cache."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from tflite_adaspring.errors import ModelFormatError
from tflite_adaspring.profiling import accuracy_predictor as ap
from tflite_adaspring.space import Config, SearchSpace

SPACE = SearchSpace("toy", 1, blocks_per_stage=(2, 2, 1))


def _true_accuracy(config: Config) -> float:
    """A known additive function of the knobs (depth, op, width, rank) the ridge model can represent."""
    op_bonus = {"std": 0.02, "dws": 0.01, "fire": 0.0}
    value = 0.6 + 0.03 * config.head_rank
    for stage in config.stages:
        value += 0.02 * len(stage) + sum(0.05 * b.width + op_bonus[b.op] for b in stage)
    return value


def test_encoding_is_one_hot_per_knob_and_zero_for_skipped_blocks() -> None:
    largest, smallest = SPACE.largest(), SPACE.smallest()
    a, b = ap.encode(SPACE, largest), ap.encode(SPACE, smallest)
    assert a.shape == b.shape and set(np.unique(a)) <= {0.0, 1.0}
    assert len(a) == (2 + 2 + 1) + 5 * (3 + 4 + 12) + 4  # depths per stage; op, width, joint per slot; ranks
    assert a.sum() == 3 + 5 * 3 + 1  # one depth per stage, op + width + joint per kept block, one rank
    assert b.sum() == 3 + 3 * 3 + 1  # smallest keeps one block per stage
    assert not np.array_equal(a, b)


def test_spearman_matches_hand_computed_values() -> None:
    assert ap.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert ap.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert ap.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486833, abs=1e-6)  # ties: average ranks
    assert ap.spearman([1, 1, 1], [1, 2, 3]) == 0.0


def test_ridge_learns_an_additive_function_and_ranks_held_out_configs() -> None:
    rng = random.Random(0)
    configs = list(dict.fromkeys(SPACE.sample(rng, "fp32") for _ in range(160)))
    noise = np.random.default_rng(0).normal(0, 0.003, len(configs))
    y = [_true_accuracy(c) + n for c, n in zip(configs, noise)]
    model = ap.AccuracyPredictor.fit(SPACE, configs[:120], y[:120])
    held = configs[120:]
    rho = ap.spearman([model.predict(c) for c in held], [_true_accuracy(c) for c in held])
    assert rho > 0.95 and model.cv_spearman > 0.9
    assert model.predict(held[0].with_precision("int8")) < model.predict(held[0])  # the int8 prior penalty
    again = ap.AccuracyPredictor.from_json(json.loads(json.dumps(model.to_json())))
    assert again.predict(held[0]) == pytest.approx(model.predict(held[0]))
    with pytest.raises(ValueError, match="configs"):
        ap.AccuracyPredictor.fit(SPACE, configs[:2], y[:2])
    with pytest.raises(ModelFormatError):
        ap.AccuracyPredictor.from_json({"kind": "something else"})


def test_sample_cache_round_trips_and_ignores_other_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "samples.json"
    assert ap.load_samples(path, SPACE, "ckpt-3") == {}
    ap.save_samples(path, SPACE, "ckpt-3", {"a": 0.5})
    assert ap.load_samples(path, SPACE, "ckpt-3") == {"a": 0.5}
    assert ap.load_samples(path, SPACE, "ckpt-4") == {}  # stale: another checkpoint
    path.write_text(json.dumps({"kind": "other"}))
    with pytest.raises(ModelFormatError):
        ap.load_samples(path, SPACE, "ckpt-3")
