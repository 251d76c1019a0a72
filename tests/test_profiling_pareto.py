"""Pareto search and selection against brute force on small spaces with a synthetic evaluator."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tflite_adaspring.profiling import pareto
from tflite_adaspring.space import Config, SearchSpace

BYTES = {"fp32": 4, "fp16": 2, "int8": 1}
SPEED = {"fp32": 1.0, "fp16": 1.0, "int8": 0.4}
PENALTY = {"fp32": 0.0, "fp16": 0.0, "int8": 0.01}


def synthetic(config: Config) -> pareto.Candidate:
    """Objectives from the knobs: bigger is more accurate, slower and larger; int8 is fast, small, a bit worse."""
    work = sum(b.width * {"std": 3.0, "dws": 1.5, "fire": 1.0}[b.op] for s in config.stages for b in s)
    work += config.head_rank
    accuracy = 0.9 - 0.3 * math.exp(-work / 3) - PENALTY[config.precision]
    latency = 0.01 + 0.02 * work * SPEED[config.precision]
    return pareto.Candidate(config, accuracy, latency, 3.75 * latency, int(1000 * work * BYTES[config.precision]))


def _brute_front(cands: list[pareto.Candidate]) -> set[Config]:
    objs = [c.objectives() for c in cands]
    front = set()
    for i, a in enumerate(objs):
        if not any((b <= a).all() and (b < a).any() for j, b in enumerate(objs) if j != i):
            front.add(cands[i].config)
    return front


def test_non_dominated_sorting_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    points = rng.integers(0, 5, (60, 3)).astype(float)
    fronts = pareto.non_dominated_fronts(points)
    assert sorted(i for f in fronts for i in f) == list(range(60))
    first = set(fronts[0])
    for i in range(60):
        dominated = any((points[j] <= points[i]).all() and (points[j] < points[i]).any() for j in range(60))
        assert (i in first) == (not dominated)
    for earlier, later in itertools.pairwise(fronts):  # nothing in a later front dominates an earlier one
        for i in earlier:
            assert not any((points[j] <= points[i]).all() and (points[j] < points[i]).any() for j in later)


def test_crowding_gives_boundaries_infinity() -> None:
    d = pareto.crowding_distance(np.array([[0.0, 3.0], [1.0, 2.0], [3.0, 0.0]]))
    assert math.isinf(d[0]) and math.isinf(d[2]) and d[1] == pytest.approx(2.0)


def test_exhaustive_search_returns_exactly_the_front() -> None:
    space = pareto.restrict_precisions(
        SearchSpace("small", 1, blocks_per_stage=(1, 1), ops=("std", "fire")), ["fp32", "int8"]
    )
    assert space.size < 2000
    everything = [synthetic(c) for c in space.enumerate()]
    front = pareto.search(space, synthetic)
    assert {c.config for c in front} == _brute_front(everything)


def test_nsga_front_dominates_random_sampling_and_keeps_the_extremes() -> None:
    import random

    space = pareto.restrict_precisions(SearchSpace("big", 1, blocks_per_stage=(2, 2, 2)), ["fp32", "fp16", "int8"])
    assert space.size > 20_000
    front = pareto.search(space, synthetic, population=32, generations=15, seed=1)
    rng = random.Random(5)
    sampled = [synthetic(space.sample(rng)) for _ in range(300)]
    # no random sample dominates every front member near it: measure how many samples beat the front
    front_objs = np.stack([c.objectives() for c in front])
    beaten = sum(
        bool(((s.objectives() <= front_objs).all(1) & (s.objectives() < front_objs).any(1)).any()) for s in sampled
    )
    assert beaten <= 0.05 * len(sampled)
    largest, smallest = pareto.extremes(space)
    assert largest.precision == "fp32" and smallest.precision == "int8"


def test_select_k_covers_the_front_with_the_required_ones() -> None:
    space = pareto.restrict_precisions(
        SearchSpace("small", 1, blocks_per_stage=(1, 1), ops=("std", "fire")), ["fp32", "int8"]
    )
    front = pareto.search(space, synthetic)
    required = [synthetic(c) for c in pareto.extremes(space)]
    chosen = pareto.select_k(front, 6, required)
    assert len(chosen) == 6
    assert {r.config for r in required} <= {c.config for c in chosen}
    assert [c.latency_ms for c in chosen] == sorted(c.latency_ms for c in chosen)
    lat = sorted(math.log(c.latency_ms) for c in chosen)
    span = lat[-1] - lat[0]
    assert max(b - a for a, b in itertools.pairwise(lat)) < 0.6 * span  # spread out, not clustered
    assert len(pareto.select_k(front, 1000, required)) == len({c.config for c in [*front, *required]})
    with pytest.raises(ValueError, match="required"):
        pareto.select_k(front, 1, required)


def test_select_k_skips_picks_over_the_storage_budget() -> None:
    space = pareto.restrict_precisions(
        SearchSpace("small", 1, blocks_per_stage=(1, 1), ops=("std", "fire")), ["fp32", "int8"]
    )
    front = pareto.search(space, synthetic)
    required = [synthetic(c) for c in pareto.extremes(space)]

    def fire_blocks(configs: list[Config]) -> int:  # storage: one unit per fire block beyond the required ones
        extra = {c for c in configs if c not in {r.config for r in required}}
        return sum(b.op == "fire" for c in extra for s in c.stages for b in s)

    chosen = pareto.select_k(front, 6, required, fire_blocks, budget_bytes=1)
    assert {r.config for r in required} <= {c.config for c in chosen}
    assert fire_blocks([c.config for c in chosen]) <= 1
    unbudgeted = pareto.select_k(front, 6, required)
    assert fire_blocks([c.config for c in unbudgeted]) > 1  # the budget did change the choice


def test_budgeted_selection_keeps_a_fair_share_for_every_slot() -> None:
    configs = list(SearchSpace("small", 1, blocks_per_stage=(1, 1), ops=("std", "fire")).enumerate(1000))[:10]

    def cand(i: int, acc: float, lat: float) -> pareto.Candidate:
        return pareto.Candidate(configs[i], acc, lat, lat, int(1000 * lat))

    required = [cand(0, 0.5, 1.0), cand(1, 0.9, 100.0)]
    expensive = [cand(2, 0.5, 100.0), cand(3, 0.9, 1.0)]  # the other corners: far from both required ones
    cheap = [cand(4 + j, 0.55 + 0.005 * j, 1.5 + 0.1 * j) for j in range(6)]  # a cluster near the smallest
    cost = {c.config: 10 if c in expensive else 1 for c in expensive + cheap}

    def extra(chosen: list[Config]) -> int:
        return sum(cost.get(c, 0) for c in chosen)

    front = expensive + cheap
    assert {c.config for c in expensive} <= {c.config for c in pareto.select_k(front, 4, required)}  # farthest
    chosen = pareto.select_k(front, 8, required, extra, budget_bytes=12)
    assert len(chosen) == 8 and extra([c.config for c in chosen]) <= 12  # greedy alone: 5 (one 10 + two 1)
    assert {c.config for c in cheap} <= {c.config for c in chosen}
    few = pareto.select_k(expensive, 4, required, extra, budget_bytes=10)  # share 5: none within, one fits
    assert len(few) == 3 and extra([c.config for c in few]) == 10
