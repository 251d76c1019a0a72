"""The search space of compression configurations (pure Python: no numpy, no TensorFlow).

A :class:`Config` names one sub-network of a supernet: per stage, the residual blocks it keeps (depth)
and for each kept block its convolution-decomposition op and width; the rank of the low-rank head;
and the weight precision used at export. Configs are immutable and hashable, have a compact id
(``Config.id``), and round-trip through JSON that carries the space's name and version.

Compact id grammar: stages separated by ``/``, blocks in a stage by ``.``, each block an op letter
(``s`` standard conv, ``d`` depthwise-separable, ``f`` fire) followed by the width in percent; then
``-r`` with the head rank in percent, then ``-`` and the precision. Example:
``s100.d50/f25/s75.s100-r50-fp16``; fractional percents use ``p`` (``r12p5`` is 0.125).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

from tflite_adaspring.errors import ConfigError, SchemaVersionError

OP_STANDARD = "std"
OP_DEPTHWISE_SEPARABLE = "dws"
OP_FIRE = "fire"
OP_LETTERS = {OP_STANDARD: "s", OP_DEPTHWISE_SEPARABLE: "d", OP_FIRE: "f"}
PRECISIONS = ("fp32", "fp16", "int8")


@dataclasses.dataclass(frozen=True)
class BlockChoice:
    """The choice for one kept residual block.

    Attributes:
      op: convolution decomposition: ``std``, ``dws`` or ``fire``.
      width: fraction of the block's inner channels kept, e.g. 0.5.
    """

    op: str
    width: float


@dataclasses.dataclass(frozen=True)
class Config:
    """One configuration of the supernet.

    Attributes:
      stages: per stage, the kept blocks in order (the stage's depth is ``len(stage)``).
      head_rank: fraction of the head's full rank kept by the low-rank factorisation.
      precision: weight precision at export: ``fp32``, ``fp16`` or ``int8``.
    """

    stages: tuple[tuple[BlockChoice, ...], ...]
    head_rank: float = 1.0
    precision: str = "fp32"

    @property
    def depths(self) -> tuple[int, ...]:
        """Kept blocks per stage."""
        return tuple(len(stage) for stage in self.stages)

    @property
    def id(self) -> str:
        """Compact human-readable id (see the module docstring)."""
        stages = "/".join(".".join(f"{OP_LETTERS[b.op]}{_percent(b.width)}" for b in stage) for stage in self.stages)
        return f"{stages}-r{_percent(self.head_rank)}-{self.precision}"

    @classmethod
    def from_id(cls, text: str) -> Config:
        """Parses a compact id produced by :attr:`id`.

        Args:
          text: the id.

        Returns:
          The config (not yet validated against a space: use ``SearchSpace.validate``).
        """
        letters = {v: k for k, v in OP_LETTERS.items()}
        try:
            body, rank, precision = text.rsplit("-", 2)
            if not rank.startswith("r"):
                raise ValueError("rank part must start with 'r'")
            stages = tuple(
                tuple(BlockChoice(letters[tok[0]], _fraction(tok[1:])) for tok in stage.split("."))
                for stage in body.split("/")
            )
            return cls(stages, _fraction(rank[1:]), precision)
        except (ValueError, KeyError, IndexError) as exc:
            raise ConfigError(
                f"cannot parse config id {text!r} ({exc}); expected e.g. 's100.d50/f25-r50-fp32'"
            ) from exc

    def with_precision(self, precision: str) -> Config:
        """Returns a copy with another export precision."""
        return dataclasses.replace(self, precision=precision)


def _percent(fraction: float) -> str:
    """Percent text for ids: ``50`` for 0.5, ``12p5`` for 0.125 (exact for the fractions we use)."""
    text = f"{fraction * 100:.4f}".rstrip("0").rstrip(".")
    return text.replace(".", "p")


def _fraction(text: str) -> float:
    return float(text.replace("p", ".")) / 100.0


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The set of configurations a supernet can take.

    Attributes:
      name: space name, stored with every serialised config (e.g. ``timeseries_resnet``).
      version: bumped whenever the meaning of a config changes; JSON of another version is rejected.
      blocks_per_stage: the maximum number of residual blocks of each stage.
      min_depth: the minimum number of kept blocks per stage.
      ops: convolution-decomposition choices per block.
      widths: width choices per block (fractions of the block's inner channels), ascending.
      head_ranks: low-rank choices of the head (fractions of its full rank), ascending.
      precisions: export precision choices.
    """

    name: str
    version: int
    blocks_per_stage: tuple[int, ...]
    min_depth: int = 1
    ops: tuple[str, ...] = (OP_STANDARD, OP_DEPTHWISE_SEPARABLE, OP_FIRE)
    widths: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    head_ranks: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0)
    precisions: tuple[str, ...] = PRECISIONS

    def __post_init__(self) -> None:
        if not self.blocks_per_stage or min(self.blocks_per_stage) < self.min_depth or self.min_depth < 1:
            raise ValueError(f"every stage needs >= min_depth >= 1 blocks, got {self.blocks_per_stage}")
        unknown = [op for op in self.ops if op not in OP_LETTERS]
        if unknown:
            raise ValueError(f"unknown ops {unknown}; known: {sorted(OP_LETTERS)}")
        for name, values in (("widths", self.widths), ("head_ranks", self.head_ranks)):
            if list(values) != sorted(values) or not all(0 < v <= 1 for v in values):
                raise ValueError(f"{name} must be ascending fractions in (0, 1], got {values}")
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad:
            raise ValueError(f"unknown precisions {bad}; known: {PRECISIONS}")

    # ----- size and canonical members -------------------------------------------------------------
    @property
    def block_choices(self) -> int:
        """Number of (op, width) choices of one block."""
        return len(self.ops) * len(self.widths)

    def _stage_count(self, n_blocks: int) -> int:
        return sum(self.block_choices**d for d in range(self.min_depth, n_blocks + 1))

    @property
    def size(self) -> int:
        """Number of distinct configurations (skipped blocks carry no choice)."""
        total = len(self.head_ranks) * len(self.precisions)
        for n in self.blocks_per_stage:
            total *= self._stage_count(n)
        return total

    def largest(self, precision: str = "fp32") -> Config:
        """All blocks kept, standard convs at full width, full-rank head."""
        block = BlockChoice(self.ops[0], self.widths[-1])
        return Config(tuple((block,) * n for n in self.blocks_per_stage), self.head_ranks[-1], precision)

    def smallest(self, precision: str = "fp32") -> Config:
        """Minimum depth, the cheapest op at the smallest width, the lowest head rank."""
        op = OP_FIRE if OP_FIRE in self.ops else self.ops[-1]
        block = BlockChoice(op, self.widths[0])
        return Config(tuple((block,) * self.min_depth for _ in self.blocks_per_stage), self.head_ranks[0], precision)

    # ----- validation ---------------------------------------------------------------------------
    def validate(self, config: Config) -> Config:
        """Checks that ``config`` belongs to this space.

        Args:
          config: the configuration.

        Returns:
          ``config`` itself.

        Raises:
          ConfigError: naming the knob and the allowed values.
        """
        if not isinstance(config, Config):
            raise ConfigError(f"expected a Config, got {type(config).__name__}")
        if len(config.stages) != len(self.blocks_per_stage):
            raise ConfigError(
                f"stages: the config has {len(config.stages)} stages, space {self.name!r} has "
                f"{len(self.blocks_per_stage)}"
            )
        for s, (stage, n) in enumerate(zip(config.stages, self.blocks_per_stage)):
            if not self.min_depth <= len(stage) <= n:
                raise ConfigError(f"stage{s}.depth: {len(stage)} not allowed; choose {self.min_depth}..{n} blocks")
            for b, block in enumerate(stage):
                if block.op not in self.ops:
                    raise ConfigError(f"stage{s}.block{b}.op: {block.op!r} not allowed; choose one of {self.ops}")
                if not any(math.isclose(block.width, w) for w in self.widths):
                    raise ConfigError(
                        f"stage{s}.block{b}.width: {block.width!r} not allowed; choose one of {self.widths}"
                    )
        if not any(math.isclose(config.head_rank, r) for r in self.head_ranks):
            raise ConfigError(f"head_rank: {config.head_rank!r} not allowed; choose one of {self.head_ranks}")
        if config.precision not in self.precisions:
            raise ConfigError(f"precision: {config.precision!r} not allowed; choose one of {self.precisions}")
        return config

    # ----- integer encoding (knob order shared with the supernet's variables) ---------------------
    @property
    def knob_names(self) -> tuple[str, ...]:
        """Names of the integer knobs of :meth:`encode`, in order."""
        names = []
        for s, n in enumerate(self.blocks_per_stage):
            names.append(f"stage{s}.depth")
            for b in range(n):
                names += [f"stage{s}.block{b}.op", f"stage{s}.block{b}.width"]
        names += ["head_rank", "precision"]
        return tuple(names)

    def encode(self, config: Config) -> tuple[int, ...]:
        """Encodes a config as integers: depth, then (op index, width index) per block, rank, precision.

        Skipped blocks encode as op 0, width index 0.

        Args:
          config: a config of this space.

        Returns:
          A tuple aligned with :attr:`knob_names`.
        """
        self.validate(config)
        out: list[int] = []
        for stage, n in zip(config.stages, self.blocks_per_stage):
            out.append(len(stage))
            for b in range(n):
                if b < len(stage):
                    out += [self.ops.index(stage[b].op), _index_close(self.widths, stage[b].width)]
                else:
                    out += [0, 0]
        out += [_index_close(self.head_ranks, config.head_rank), self.precisions.index(config.precision)]
        return tuple(out)

    def decode(self, codes: Sequence[int]) -> Config:
        """Inverse of :meth:`encode`.

        Args:
          codes: integers aligned with :attr:`knob_names`.

        Returns:
          The config.
        """
        codes = [int(c) for c in codes]
        if len(codes) != len(self.knob_names):
            raise ConfigError(f"expected {len(self.knob_names)} codes ({self.knob_names}), got {len(codes)}")
        pos = 0
        stages = []
        try:
            for n in self.blocks_per_stage:
                depth = codes[pos]
                pos += 1
                blocks = []
                for b in range(n):
                    if b < depth:
                        blocks.append(BlockChoice(self.ops[codes[pos]], self.widths[codes[pos + 1]]))
                    pos += 2
                stages.append(tuple(blocks))
            config = Config(tuple(stages), self.head_ranks[codes[pos]], self.precisions[codes[pos + 1]])
        except IndexError as exc:
            raise ConfigError(f"code out of range in {codes} for space {self.name!r}") from exc
        return self.validate(config)

    # ----- sampling, enumeration, search moves ------------------------------------------------------
    def sample(self, rng: random.Random, precision: str | None = None) -> Config:
        """Draws a configuration uniformly from the space.

        Args:
          rng: a ``random.Random`` (seed it for reproducibility).
          precision: fix the precision instead of sampling it.

        Returns:
          The config.
        """
        stages = []
        for n in self.blocks_per_stage:
            depths = list(range(self.min_depth, n + 1))
            depth = rng.choices(depths, weights=[self.block_choices**d for d in depths])[0]
            stages.append(tuple(self._random_block(rng) for _ in range(depth)))
        return Config(
            tuple(stages),
            rng.choice(self.head_ranks),
            precision if precision is not None else rng.choice(self.precisions),
        )

    def _random_block(self, rng: random.Random) -> BlockChoice:
        return BlockChoice(rng.choice(self.ops), rng.choice(self.widths))

    def enumerate(self, limit: int = 100_000) -> Iterator[Config]:
        """Yields every configuration, when the space has at most ``limit`` of them.

        Raises:
          ValueError: when the space is larger than ``limit``.
        """
        if self.size > limit:
            raise ValueError(f"space {self.name!r} has {self.size} configs > limit {limit}; use sample()")
        blocks = [BlockChoice(op, w) for op in self.ops for w in self.widths]
        per_stage = [
            [tuple(combo) for d in range(self.min_depth, n + 1) for combo in itertools.product(blocks, repeat=d)]
            for n in self.blocks_per_stage
        ]
        for stages in itertools.product(*per_stage):
            for rank in self.head_ranks:
                for precision in self.precisions:
                    yield Config(tuple(stages), rank, precision)

    def mutate(self, config: Config, rng: random.Random, n_moves: int = 1) -> Config:
        """Applies ``n_moves`` random neighbour moves (each changes one knob).

        Args:
          config: the starting config.
          rng: random source.
          n_moves: number of moves.

        Returns:
          The mutated config (may equal the input if a move had only one choice).
        """
        for _ in range(n_moves):
            config = rng.choice(self.neighbours(config))
        return config

    def neighbours(self, config: Config) -> list[Config]:
        """All configs that differ from ``config`` in exactly one knob (one step for ordered knobs)."""
        self.validate(config)
        out: list[Config] = []
        stages = [list(s) for s in config.stages]

        def with_stages(new: list[list[BlockChoice]]) -> Config:
            return dataclasses.replace(config, stages=tuple(tuple(s) for s in new))

        for s, stage in enumerate(stages):
            if len(stage) > self.min_depth:
                out.append(with_stages([*stages[:s], stage[:-1], *stages[s + 1 :]]))
            if len(stage) < self.blocks_per_stage[s]:
                out.append(with_stages([*stages[:s], [*stage, stage[-1]], *stages[s + 1 :]]))
            for b, block in enumerate(stage):
                for op in self.ops:
                    if op != block.op:
                        new = [list(x) for x in stages]
                        new[s][b] = BlockChoice(op, block.width)
                        out.append(with_stages(new))
                wi = _index_close(self.widths, block.width)
                for wj in (wi - 1, wi + 1):
                    if 0 <= wj < len(self.widths):
                        new = [list(x) for x in stages]
                        new[s][b] = BlockChoice(block.op, self.widths[wj])
                        out.append(with_stages(new))
        ri = _index_close(self.head_ranks, config.head_rank)
        for rj in (ri - 1, ri + 1):
            if 0 <= rj < len(self.head_ranks):
                out.append(dataclasses.replace(config, head_rank=self.head_ranks[rj]))
        for p in self.precisions:
            if p != config.precision:
                out.append(config.with_precision(p))
        return out

    # ----- JSON -------------------------------------------------------------------------------------
    def config_to_json(self, config: Config) -> dict[str, Any]:
        """Serialises a config with this space's name and version."""
        self.validate(config)
        return {
            "space": self.name,
            "space_version": self.version,
            "id": config.id,
            "stages": [[{"op": b.op, "width": b.width} for b in stage] for stage in config.stages],
            "head_rank": config.head_rank,
            "precision": config.precision,
        }

    def config_from_json(self, obj: dict[str, Any] | str) -> Config:
        """Parses :meth:`config_to_json` output (a dict or a JSON string).

        Raises:
          SchemaVersionError: the JSON belongs to another space or space version.
          ConfigError: the config is malformed or outside this space.
        """
        obj = parse_config_header(obj, self.name, self.version, "run")
        try:
            config = Config(
                tuple(tuple(BlockChoice(str(b["op"]), float(b["width"])) for b in st) for st in obj["stages"]),
                float(obj["head_rank"]),
                str(obj["precision"]),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"malformed config JSON: missing or bad field {exc}") from exc
        return self.validate(config)

    def to_json(self) -> dict[str, Any]:
        """Describes the space itself (knobs, choices, size)."""
        return {
            "name": self.name,
            "version": self.version,
            "blocks_per_stage": list(self.blocks_per_stage),
            "min_depth": self.min_depth,
            "ops": list(self.ops),
            "widths": list(self.widths),
            "head_ranks": list(self.head_ranks),
            "precisions": list(self.precisions),
            "size": self.size,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SearchSpace:
        """Inverse of :meth:`to_json`."""
        return cls(
            name=str(obj["name"]),
            version=int(obj["version"]),
            blocks_per_stage=tuple(int(n) for n in obj["blocks_per_stage"]),
            min_depth=int(obj["min_depth"]),
            ops=tuple(obj["ops"]),
            widths=tuple(float(w) for w in obj["widths"]),
            head_ranks=tuple(float(r) for r in obj["head_ranks"]),
            precisions=tuple(obj["precisions"]),
        )


def parse_config_header(obj: dict[str, Any] | str, name: str, version: Any, source: str) -> dict[str, Any]:
    """Parses config JSON and checks that it belongs to space ``name`` at ``version``.

    Args:
      obj: a dict or a JSON string with ``space`` and ``space_version`` fields.
      name: the expected space name.
      version: the expected space version.
      source: what the config should be re-exported from (named in the error).

    Returns:
      The parsed dict.

    Raises:
      SchemaVersionError: the JSON belongs to another space or space version.
    """
    if isinstance(obj, str):
        obj = json.loads(obj)
    if obj.get("space") != name or obj.get("space_version") != version:
        raise SchemaVersionError(
            f"config is for space {obj.get('space')!r} version {obj.get('space_version')!r}; "
            f"this is space {name!r} version {version}. Re-export the config from a matching {source}."
        )
    return obj


def _index_close(values: Sequence[float], value: float) -> int:
    for i, v in enumerate(values):
        if math.isclose(v, value):
            return i
    raise ConfigError(f"{value!r} is not among {tuple(values)}")
