"""Progressive shrinking: which part of the space is sampled in each training phase.

Phases (Once-for-All style, on our operators): ``full`` (largest only) -> ``depth`` (+ elastic depth)
-> ``width`` (+ elastic width) -> ``all`` (+ decomposition ops and head rank). Each phase starts at a
configurable fraction of the epochs.
"""

from __future__ import annotations

import dataclasses
import random

from tflite_adaspring.space import BlockChoice, Config, SearchSpace

PHASES = ("full", "depth", "width", "all")


@dataclasses.dataclass(frozen=True)
class ShrinkSchedule:
    """Start of each phase as a fraction of training (ascending, first is 0).

    Attributes:
      starts: phase name -> start fraction in [0, 1].
    """

    starts: tuple[tuple[str, float], ...] = (("full", 0.0), ("depth", 0.1), ("width", 0.2), ("all", 0.3))

    def __post_init__(self) -> None:
        names = [n for n, _ in self.starts]
        fractions = [f for _, f in self.starts]
        if names != list(PHASES[: len(names)]) or fractions[0] != 0.0 or fractions != sorted(fractions):
            raise ValueError(
                f"schedule must list phases {PHASES} in order with ascending starts from 0, got {self.starts}"
            )

    def phase(self, progress: float) -> str:
        """The phase at ``progress`` (0 = start, 1 = end of training)."""
        current = self.starts[0][0]
        for name, start in self.starts:
            if progress >= start:
                current = name
        return current


def sample_in_phase(space: SearchSpace, rng: random.Random, phase: str) -> Config:
    """Samples a config from the part of ``space`` that ``phase`` trains.

    Args:
      space: the search space.
      rng: random source.
      phase: one of :data:`PHASES`.

    Returns:
      A config (precision fp32: precision is applied at export).
    """
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; expected one of {PHASES}")
    config = space.sample(rng, precision="fp32")
    if phase == "all":
        return config
    largest = space.largest()
    full_op, full_width = largest.stages[0][0].op, largest.stages[0][0].width
    stages = []
    for stage, full_stage in zip(config.stages, largest.stages):
        depth = len(stage) if phase in ("depth", "width") else len(full_stage)
        stages.append(
            tuple(BlockChoice(full_op, b.width if phase == "width" else full_width) for b in stage[:depth])
            if phase != "full"
            else full_stage
        )
    return Config(tuple(stages), largest.head_rank, "fp32")
