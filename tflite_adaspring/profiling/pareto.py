"""Pareto selection: search the space with the predictors, then pick K configurations covering the front.

Objectives (all minimised): ``-accuracy``, latency, energy, memory (weights + peak activations).
:func:`search` enumerates the space when it is small and otherwise runs NSGA-II (non-dominated sorting,
crowding distance, binary tournaments, stage-wise crossover and one-knob mutations) keeping an archive
of every evaluated configuration; the result is the archive's non-dominated set. :func:`select_k` takes
the required configurations (the largest and the smallest) and adds, greedily, the front member farthest
from everything chosen so far in normalised objective space (log scale for latency, energy, memory);
under a storage budget, each pick must stay within its fair share of the budget left when any can.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tflite_adaspring.cost import KERNEL_BYTES
from tflite_adaspring.profiling.energy import DeviceProfile, load_profile
from tflite_adaspring.space import Config, SearchSpace


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A configuration with its predicted (or measured) objectives.

    Attributes:
      config: the configuration.
      accuracy: validation accuracy in [0, 1].
      latency_ms: latency on the export host.
      energy_mj: energy per inference (of the evaluator's device profile).
      memory_bytes: weights plus peak activations.
    """

    config: Config
    accuracy: float
    latency_ms: float
    energy_mj: float
    memory_bytes: int

    def objectives(self) -> np.ndarray:
        """The minimised objective vector ``(-accuracy, latency, energy, memory)``."""
        return np.array([-self.accuracy, self.latency_ms, self.energy_mj, float(self.memory_bytes)])


class Evaluator:
    """Predicts a configuration's objectives from the latency table and the accuracy predictor (cached).

    Args:
      supernet: the supernet (for the analytic memory).
      lut: a bound :class:`~tflite_adaspring.profiling.lut.LatencyLUT`.
      predictor: an :class:`~tflite_adaspring.profiling.accuracy_predictor.AccuracyPredictor`.
      threads: inference threads.
      energy_profile: device profile of the energy objective (default: ``x86_server_core``).
    """

    def __init__(
        self, supernet: Any, lut: Any, predictor: Any, threads: int = 1, energy_profile: DeviceProfile | None = None
    ):
        self.supernet = supernet
        self.lut = lut
        self.predictor = predictor
        self.threads = threads
        self.profile = energy_profile or load_profile("x86_server_core")
        self._cache: dict[Config, Candidate] = {}

    def __call__(self, config: Config) -> Candidate:
        """The candidate of ``config``."""
        hit = self._cache.get(config)
        if hit is not None:
            return hit
        latency = self.lut.predict(config, self.threads).predicted_ms
        cost = self.supernet.cost(config)
        candidate = Candidate(
            config=config,
            accuracy=self.predictor.predict(config),
            latency_ms=latency,
            energy_mj=self.profile.modeled_energy(latency, self.threads).value,
            memory_bytes=cost.weight_bytes(config.precision) + cost.peak_activation_bytes(config.precision),
        )
        self._cache[config] = candidate
        return candidate

    @property
    def evaluated(self) -> int:
        """Distinct configurations evaluated so far."""
        return len(self._cache)


# ---------------------------------------------------------------------------------------------
# dominance


def non_dominated_fronts(objectives: np.ndarray) -> list[list[int]]:
    """Fast non-dominated sorting.

    Args:
      objectives: ``(n, m)`` minimised objectives.

    Returns:
      Fronts of row indices, best first.
    """
    n = len(objectives)
    le = (objectives[:, None, :] <= objectives[None, :, :]).all(-1)
    lt = (objectives[:, None, :] < objectives[None, :, :]).any(-1)
    dominates = le & lt  # dominates[i, j]: i dominates j
    dominated_by = dominates.sum(0)
    fronts: list[list[int]] = []
    current = [i for i in range(n) if dominated_by[i] == 0]
    while current:
        fronts.append(current)
        nxt = []
        for i in current:
            for j in np.flatnonzero(dominates[i]):
                dominated_by[j] -= 1
                if dominated_by[j] == 0:
                    nxt.append(int(j))
        current = nxt
    return fronts


def pareto_front(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The non-dominated candidates (duplicates of one configuration kept once)."""
    unique = list({c.config: c for c in candidates}.values())
    if not unique:
        return []
    front = non_dominated_fronts(np.stack([c.objectives() for c in unique]))[0]
    return [unique[i] for i in front]


def crowding_distance(objectives: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the rows of one front (boundary rows get infinity)."""
    n, m = objectives.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(objectives[:, k], kind="mergesort")
        span = objectives[order[-1], k] - objectives[order[0], k]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (objectives[order[2:], k] - objectives[order[:-2], k]) / span
    return distance


# ---------------------------------------------------------------------------------------------
# search


def restrict_precisions(space: SearchSpace, precisions: Sequence[str]) -> SearchSpace:
    """The same space with only ``precisions`` allowed."""
    bad = [p for p in precisions if p not in space.precisions]
    if bad or not precisions:
        raise ValueError(f"precisions {list(precisions)} must be a non-empty subset of {space.precisions}")
    return dataclasses.replace(space, precisions=tuple(p for p in space.precisions if p in precisions))


def extremes(space: SearchSpace) -> tuple[Config, Config]:
    """The largest configuration (fp32 when allowed) and the smallest (at the most compact precision)."""
    high = "fp32" if "fp32" in space.precisions else space.precisions[0]
    low = min(space.precisions, key=lambda p: KERNEL_BYTES[p])
    return space.largest(high), space.smallest(low)


def _crossover(space: SearchSpace, a: Config, b: Config, rng: random.Random) -> Config:
    stages = tuple(sa if rng.random() < 0.5 else sb for sa, sb in zip(a.stages, b.stages))
    return Config(stages, rng.choice((a.head_rank, b.head_rank)), rng.choice((a.precision, b.precision)))


def search(
    space: SearchSpace,
    evaluate: Callable[[Config], Candidate],
    population: int = 64,
    generations: int = 40,
    seed: int = 0,
    exhaustive_limit: int = 20_000,
) -> list[Candidate]:
    """The predicted Pareto front of ``space``.

    Args:
      space: the search space (restrict its precisions first with :func:`restrict_precisions`).
      evaluate: config -> :class:`Candidate` (e.g. an :class:`Evaluator`).
      population: NSGA-II population size.
      generations: NSGA-II generations.
      seed: random seed.
      exhaustive_limit: enumerate every configuration when the space has at most this many.

    Returns:
      The non-dominated candidates found.
    """
    if space.size <= exhaustive_limit:
        return pareto_front([evaluate(c) for c in space.enumerate(exhaustive_limit)])
    rng = random.Random(seed)
    archive: dict[Config, Candidate] = {}

    def score(config: Config) -> Candidate:
        if config not in archive:
            archive[config] = evaluate(config)
        return archive[config]

    pop = list(dict.fromkeys([*extremes(space), *(space.sample(rng) for _ in range(population * 2))]))[:population]
    for c in pop:
        score(c)
    for _ in range(generations):
        fitness = _rank_and_crowd([archive[c] for c in pop])
        children = []
        while len(children) < population:
            child = _crossover(space, _tournament(pop, fitness, rng), _tournament(pop, fitness, rng), rng)
            child = space.mutate(child, rng, n_moves=rng.choice((1, 1, 2)))
            children.append(child)
            score(child)
        merged = list(dict.fromkeys(pop + children))
        pop = _survivors([archive[c] for c in merged], population)
    return pareto_front(list(archive.values()))


def _tournament(pop: Sequence[Config], fitness: tuple[list[int], list[float]], rng: random.Random) -> Config:
    """Binary tournament: lower rank wins, then larger crowding distance."""
    rank, crowd = fitness
    i, j = rng.randrange(len(pop)), rng.randrange(len(pop))
    return pop[i] if (rank[i], -crowd[i]) <= (rank[j], -crowd[j]) else pop[j]


def _rank_and_crowd(cands: Sequence[Candidate]) -> tuple[list[int], list[float]]:
    objectives = np.stack([c.objectives() for c in cands])
    rank, crowd = [0] * len(cands), [0.0] * len(cands)
    for r, front in enumerate(non_dominated_fronts(objectives)):
        distance = crowding_distance(objectives[front])
        for i, d in zip(front, distance):
            rank[i], crowd[i] = r, float(d)
    return rank, crowd


def _survivors(cands: Sequence[Candidate], size: int) -> list[Config]:
    objectives = np.stack([c.objectives() for c in cands])
    chosen: list[int] = []
    for front in non_dominated_fronts(objectives):
        if len(chosen) + len(front) <= size:
            chosen += front
            continue
        distance = crowding_distance(objectives[front])
        order = np.argsort(-distance, kind="mergesort")
        chosen += [front[i] for i in order[: size - len(chosen)]]
        break
    return [cands[i].config for i in chosen]


# ---------------------------------------------------------------------------------------------
# selection


def _normalised(cands: Sequence[Candidate]) -> np.ndarray:
    raw = np.array(
        [
            [c.accuracy, math.log(c.latency_ms), math.log(max(c.energy_mj, 1e-12)), math.log(c.memory_bytes)]
            for c in cands
        ]
    )
    lo, hi = raw.min(0), raw.max(0)
    return (raw - lo) / np.where(hi > lo, hi - lo, 1.0)


def select_k(
    front: Sequence[Candidate],
    k: int,
    required: Sequence[Candidate],
    extra_bytes: Callable[[Sequence[Config]], int] | None = None,
    budget_bytes: int | None = None,
) -> list[Candidate]:
    """K candidates covering the front: the required ones plus farthest-point picks, sorted by latency.

    With a storage budget, each pick is the farthest candidate whose added storage is within its fair
    share (the budget left divided by the slots left), so early far-away but expensive picks cannot use
    up the budget that the remaining slots need; when no candidate is within its share, the farthest one
    that still fits the budget is taken.

    Args:
      front: the front (e.g. from :func:`search`).
      k: how many to pick (>= len(required)).
      required: candidates that must be included (e.g. the largest and the smallest).
      extra_bytes: storage the chosen configurations need (e.g. beyond a shared backbone:
        :func:`tflite_adaspring.export.evolve.branch_bytes`); with ``budget_bytes``, a pick that would
        raise it above the budget is skipped (the required ones are always taken).
      budget_bytes: the storage budget for ``extra_bytes``.

    Returns:
      ``min(k, |front ∪ required|)`` distinct candidates (fewer when the budget excludes the rest),
      sorted by latency.
    """
    pool = list({c.config: c for c in [*required, *front]}.values())
    if k < len({c.config for c in required}):
        raise ValueError(f"k = {k} is smaller than the {len(required)} required configurations")
    budgeted = extra_bytes is not None and budget_bytes is not None
    points = _normalised(pool)
    chosen = [i for i, c in enumerate(pool) if c.config in {r.config for r in required}]
    nearest = np.full(len(pool), np.inf)
    for i in chosen:
        nearest = np.minimum(nearest, np.linalg.norm(points - points[i], axis=1))
    excluded = np.zeros(len(pool), bool)
    target = min(k, len(pool))
    while len(chosen) < target:
        nearest[chosen] = -1.0
        nearest[excluded] = -1.0
        if budgeted:
            pick = _budgeted_pick(pool, chosen, nearest, excluded, extra_bytes, budget_bytes, target)
        else:
            pick = int(np.argmax(nearest))
            pick = pick if nearest[pick] >= 0 else None
        if pick is None:
            break  # everything left is chosen or over the budget
        chosen.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(points - points[pick], axis=1))
    return sorted((pool[i] for i in chosen), key=lambda c: (c.latency_ms, c.config.id))


def _budgeted_pick(
    pool: Sequence[Candidate],
    chosen: list[int],
    nearest: np.ndarray,
    excluded: np.ndarray,
    extra_bytes: Callable[[Sequence[Config]], int],
    budget_bytes: int,
    target: int,
) -> int | None:
    """The farthest candidate within its fair share of the budget, else the farthest that fits (see select_k).

    Marks candidates that no longer fit the budget in ``excluded``.
    """
    current = [pool[i].config for i in chosen]
    used = extra_bytes(current)
    share = (budget_bytes - used) / (target - len(chosen))
    fallback = None
    for i in np.argsort(-nearest, kind="mergesort"):
        if nearest[i] < 0:
            break
        cost = extra_bytes([*current, pool[i].config])
        if cost > budget_bytes:
            excluded[i] = True
        elif cost - used <= share:
            return int(i)
        elif fallback is None:
            fallback = int(i)
    return fallback
