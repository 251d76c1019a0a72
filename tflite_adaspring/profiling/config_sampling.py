"""Samplers of configurations for fitting and scoring the accuracy predictor (pure Python).

* ``uniform``: :meth:`SearchSpace.sample` (every configuration equally likely). Most of its draws sit in
  the middle of the MAC range: deep stages are far more numerous than shallow ones.
* ``mac_stratified``: equal numbers of draws from ``bins`` equal-width bins of log MACs between the
  smallest and the largest configuration, i.e. evenly across the cost range the runtime search walks
  (its Pareto front runs from the smallest to the largest configuration). A pool of candidates (stage
  depths uniform, every other knob uniform) is drawn once and binned; draws cycle through the bins and
  take a random unused candidate of each (bins that run out are skipped).

Fit and held-out configurations must come from the same sampler; :func:`sample_configs` draws both at once
(distinct configurations, the first ``n_first`` of them for fitting).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from tflite_adaspring.errors import ConfigError
from tflite_adaspring.space import BlockChoice, Config, SearchSpace

SAMPLERS = ("uniform", "mac_stratified")


def uniform_configs(space: SearchSpace, n: int, rng: random.Random) -> list[Config]:
    """``n`` distinct fp32 configurations drawn uniformly from ``space``.

    Args:
      space: the search space (with more than ``n`` configurations).
      n: how many.
      rng: the random source.

    Returns:
      The configurations, in draw order.
    """
    _check_count(space, n)
    configs: dict[Config, None] = {}
    while len(configs) < n:
        configs[space.sample(rng, precision="fp32")] = None
    return list(configs)


def mac_stratified_configs(
    space: SearchSpace,
    n: int,
    macs: Callable[[Config], float],
    rng: random.Random,
    bins: int = 10,
    pool: int = 20_000,
) -> list[Config]:
    """``n`` distinct fp32 configurations spread evenly over log MACs (see the module docstring).

    Args:
      space: the search space.
      n: how many.
      macs: MACs of a configuration (e.g. ``lambda c: supernet.cost(c).macs``).
      rng: the random source.
      bins: equal-width bins of log MACs between the smallest and the largest configuration.
      pool: candidates drawn to fill the bins.

    Returns:
      The configurations, in draw order (bins cycled).

    Raises:
      ConfigError: when the pool holds fewer than ``n`` distinct configurations.
    """
    _check_count(space, n)
    if bins < 1:
        raise ConfigError(f"bins must be >= 1, got {bins}")
    low, high = math.log(macs(space.smallest())), math.log(macs(space.largest()))
    width = (high - low) / bins or 1.0
    members: list[list[Config]] = [[] for _ in range(bins)]
    seen: set[Config] = set()
    for _ in range(pool):
        config = _depth_uniform(space, rng)
        if config not in seen:
            seen.add(config)
            members[min(bins - 1, max(0, int((math.log(macs(config)) - low) / width)))].append(config)
    if len(seen) < n:
        raise ConfigError(f"a pool of {pool} candidates holds {len(seen)} distinct configurations, fewer than {n}")
    out: list[Config] = []
    b = 0
    while len(out) < n:
        if members[b]:
            out.append(members[b].pop(rng.randrange(len(members[b]))))
        b = (b + 1) % bins
    return out


def sample_configs(
    space: SearchSpace, sampler: str, n: int, rng: random.Random, macs: Callable[[Config], float] | None = None
) -> list[Config]:
    """``n`` distinct fp32 configurations from the named sampler (see :data:`SAMPLERS`).

    Args:
      space: the search space.
      sampler: ``uniform`` or ``mac_stratified``.
      n: how many.
      rng: the random source.
      macs: MACs of a configuration (required by ``mac_stratified``).

    Returns:
      The configurations.

    Raises:
      ConfigError: for an unknown sampler or a missing ``macs``.
    """
    if sampler == "uniform":
        return uniform_configs(space, n, rng)
    if sampler == "mac_stratified":
        if macs is None:
            raise ConfigError("the mac_stratified sampler needs a macs function (e.g. supernet.cost(c).macs)")
        return mac_stratified_configs(space, n, macs, rng)
    raise ConfigError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")


def _depth_uniform(space: SearchSpace, rng: random.Random) -> Config:
    stages = []
    for n in space.blocks_per_stage:
        depth = rng.randint(space.min_depth, n)
        stages.append(tuple(BlockChoice(rng.choice(space.ops), rng.choice(space.widths)) for _ in range(depth)))
    return Config(tuple(stages), rng.choice(space.head_ranks), "fp32")


def _check_count(space: SearchSpace, n: int) -> None:
    if n < 1 or n > space.size // len(space.precisions):
        raise ConfigError(f"cannot draw {n} distinct configurations from space {space.name!r}")
