"""A generic search space of named knobs, for models made elastic by ``make_elastic`` (pure Python).

A user's model has no fixed stage/block structure, so its space is a vector of **knobs**: one per
width-elastic layer (``<layer>.width``), low-rank layer (``<layer>.rank``) and run of skippable
residual blocks (``<run>.depth``). A knob may be **gated** by a depth knob: a knob inside block ``b``
of a run is active only while the run keeps more than ``b`` blocks; an inactive knob has the value
``None``, so every configuration has exactly one representation.

A :class:`KnobConfig` is immutable and hashable, has a compact id (one token per knob, joined by
``.``: the kind's letter and the value in percent for fractions (``p`` as decimal point) or as an
integer for depths, ``-`` when inactive, e.g. ``w50.w100.d2.w-.r12p5``), and round-trips through
JSON that carries the space's name and version (a fingerprint of the knobs).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import random
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from tflite_adaspring.errors import ConfigError
from tflite_adaspring.space import parse_config_header

KIND_LETTERS = {"width": "w", "rank": "r", "depth": "d"}
INACTIVE_TOKEN = "-"


@dataclasses.dataclass(frozen=True)
class KnobSpec:
    """One knob of a :class:`KnobSpace`.

    Attributes:
      name: ``<owner>.<kind>``, e.g. ``conv2d_1.width``.
      choices: the allowed values, ascending (fractions for width/rank, block counts for depth).
      gate: ``(depth knob, b)``: the knob is active only while that knob is active and greater than ``b``.
    """

    name: str
    choices: tuple[Any, ...]
    gate: tuple[str, int] | None = None

    @property
    def kind(self) -> str:
        """The part of the name after the last dot (``width``, ``rank`` or ``depth``)."""
        return self.name.rsplit(".", 1)[-1]

    @property
    def letter(self) -> str:
        """The kind's letter in compact ids."""
        return KIND_LETTERS.get(self.kind, self.kind[:1])

    def canonical(self, value: Any) -> Any:
        """The choice equal to ``value`` (floats compared with ``math.isclose``).

        Raises:
          ConfigError: naming the knob and its allowed values.
        """
        for choice in self.choices:
            if value == choice or (
                isinstance(choice, float) and isinstance(value, (int, float)) and math.isclose(choice, value)
            ):
                return choice
        raise ConfigError(f"{self.name}: {value!r} not allowed; choose one of {self.choices}")

    def token(self, value: Any) -> str:
        """The compact-id token of ``value``."""
        if value is None:
            return f"{self.letter}{INACTIVE_TOKEN}"
        if isinstance(value, float):  # percent, with "p" for a decimal point: 0.125 -> "12p5"
            return f"{self.letter}{round(value * 100, 4):g}".replace(".", "p")
        return f"{self.letter}{value}"


@dataclasses.dataclass(frozen=True)
class KnobConfig:
    """One configuration: a value (or ``None`` when inactive) for every knob, in the space's order.

    Attributes:
      knobs: ``(name, value)`` pairs.
    """

    knobs: tuple[tuple[str, Any], ...]

    def __getitem__(self, name: str) -> Any:
        for key, value in self.knobs:
            if key == name:
                return value
        raise KeyError(f"no knob {name!r}; knobs: {self.names}")

    @property
    def names(self) -> tuple[str, ...]:
        """Knob names in order."""
        return tuple(name for name, _ in self.knobs)

    @property
    def values(self) -> tuple[Any, ...]:
        """Knob values in order."""
        return tuple(value for _, value in self.knobs)

    def as_dict(self) -> dict[str, Any]:
        """``{name: value}``."""
        return dict(self.knobs)

    @property
    def id(self) -> str:
        """Compact human-readable id (see the module docstring)."""
        return ".".join(KnobSpec(name, ()).token(value) for name, value in self.knobs) or "-"


@dataclasses.dataclass(frozen=True)
class KnobSpace:
    """The set of configurations of an elastic model.

    Attributes:
      name: space name, stored with every serialised config (the user model's name).
      knobs: the knobs; a gate always names an earlier knob.
    """

    name: str
    knobs: tuple[KnobSpec, ...]

    def __post_init__(self) -> None:
        seen: dict[str, KnobSpec] = {}
        for knob in self.knobs:
            if knob.name in seen:
                raise ValueError(f"duplicate knob {knob.name!r}")
            if not knob.choices or list(knob.choices) != sorted(knob.choices):
                raise ValueError(f"{knob.name}: choices must be non-empty and ascending, got {knob.choices}")
            if knob.gate is not None:
                gate = seen.get(knob.gate[0])
                if gate is None or not all(isinstance(c, int) for c in gate.choices):
                    raise ValueError(f"{knob.name}: gate {knob.gate} must name an earlier integer knob")
            seen[knob.name] = knob

    # ----- structure -------------------------------------------------------------------------------
    @property
    def knob_names(self) -> tuple[str, ...]:
        """Knob names, in config order."""
        return tuple(k.name for k in self.knobs)

    @property
    def version(self) -> int:
        """Fingerprint of the knobs (names, choices, gates): configs of another structure are rejected."""
        text = json.dumps([[k.name, list(k.choices), k.gate] for k in self.knobs])
        return zlib.crc32(text.encode())

    def knob(self, name: str) -> KnobSpec:
        """The knob called ``name``.

        Raises:
          ConfigError: when there is no such knob.
        """
        for knob in self.knobs:
            if knob.name == name:
                return knob
        raise ConfigError(f"unknown knob {name!r}; knobs: {self.knob_names}")

    def _children(self, context: tuple[str, int] | None) -> list[KnobSpec]:
        return [k for k in self.knobs if k.gate == context]

    def _gated_positions(self, knob: KnobSpec) -> list[int]:
        return sorted({k.gate[1] for k in self.knobs if k.gate is not None and k.gate[0] == knob.name})

    @staticmethod
    def _is_active(knob: KnobSpec, values: Mapping[str, Any]) -> bool:
        if knob.gate is None:
            return True
        gate_value = values.get(knob.gate[0])
        return gate_value is not None and gate_value > knob.gate[1]

    # ----- size and canonical members ----------------------------------------------------------------
    @functools.cached_property
    def _weight_table(self) -> dict[str, list[int]]:
        """Per knob and choice, the number of configs of the knobs that choice keeps active."""
        table: dict[str, list[int]] = {}
        for knob in reversed(self.knobs):  # gated knobs come later, so their weights exist already
            positions = self._gated_positions(knob)
            table[knob.name] = [
                math.prod(self._context_size((knob.name, b), table) for b in positions if b < c) for c in knob.choices
            ]
        return table

    def _weights(self, knob: KnobSpec) -> list[int]:
        return self._weight_table[knob.name]

    def _context_size(self, context: tuple[str, int] | None, table: Mapping[str, list[int]]) -> int:
        return math.prod(sum(table[knob.name]) for knob in self._children(context))

    @property
    def size(self) -> int:
        """Number of distinct configurations (inactive knobs carry no choice)."""
        return self._context_size(None, self._weight_table)

    def _build(self, choose: Callable[[KnobSpec, list[int]], Any]) -> KnobConfig:
        values: dict[str, Any] = {}
        for knob in self.knobs:
            values[knob.name] = choose(knob, self._weights(knob)) if self._is_active(knob, values) else None
        return KnobConfig(tuple(values.items()))

    def largest(self) -> KnobConfig:
        """Every knob at its largest choice (full width, full rank, every block kept)."""
        return self._build(lambda knob, _: knob.choices[-1])

    def smallest(self) -> KnobConfig:
        """Every active knob at its smallest choice."""
        return self._build(lambda knob, _: knob.choices[0])

    def sample(self, rng: random.Random) -> KnobConfig:
        """Draws a configuration uniformly from the space.

        Args:
          rng: a ``random.Random`` (seed it for reproducibility).

        Returns:
          The config.
        """
        return self._build(lambda knob, weights: rng.choices(knob.choices, weights=weights)[0])

    def make(self, values: Mapping[str, Any] | None = None) -> KnobConfig:
        """A valid config from a partial ``{knob: value}`` mapping.

        Knobs not given take their largest choice; knobs made inactive by a depth become ``None``.

        Raises:
          ConfigError: an unknown knob or a value outside a knob's choices.
        """
        values = dict(values or {})
        unknown = sorted(set(values) - set(self.knob_names))
        if unknown:
            raise ConfigError(f"unknown knobs {unknown}; knobs: {self.knob_names}")

        def choose(knob: KnobSpec, _: list[int]) -> Any:
            value = values.get(knob.name)
            return knob.choices[-1] if value is None else knob.canonical(value)

        return self._build(choose)

    # ----- validation ----------------------------------------------------------------------------
    def validate(self, config: KnobConfig) -> KnobConfig:
        """Checks that ``config`` belongs to this space.

        Args:
          config: the configuration.

        Returns:
          The config with every value replaced by its exact choice (equal to ``config`` when it was exact).

        Raises:
          ConfigError: naming the knob and the allowed values.
        """
        if not isinstance(config, KnobConfig):
            raise ConfigError(f"expected a KnobConfig, got {type(config).__name__}; build one with space.make(...)")
        if config.names != self.knob_names:
            missing = [n for n in self.knob_names if n not in config.names]
            extra = [n for n in config.names if n not in self.knob_names]
            raise ConfigError(
                f"knobs: the config's knobs do not match space {self.name!r} (missing {missing}, unknown {extra}, "
                f"or out of order); expected {self.knob_names}"
            )
        values: dict[str, Any] = {}
        for knob, value in zip(self.knobs, config.values):
            if self._is_active(knob, values):
                if value is None:
                    raise ConfigError(
                        f"{knob.name}: None not allowed (the knob is active); choose one of {knob.choices}"
                    )
                values[knob.name] = knob.canonical(value)
            elif value is not None:
                gate, b = knob.gate  # type: ignore[misc]
                raise ConfigError(
                    f"{knob.name}: {value!r} not allowed: its block is skipped ({gate} keeps at most {b} blocks); "
                    "set it to None"
                )
            else:
                values[knob.name] = None
        return KnobConfig(tuple(values.items()))

    # ----- integer encoding -----------------------------------------------------------------------
    def encode(self, config: KnobConfig) -> tuple[int, ...]:
        """Choice indices aligned with :attr:`knob_names` (an inactive knob encodes as 0)."""
        config = self.validate(config)
        return tuple(0 if v is None else knob.choices.index(v) for knob, v in zip(self.knobs, config.values))

    def decode(self, codes: Sequence[int]) -> KnobConfig:
        """Inverse of :meth:`encode`.

        Raises:
          ConfigError: wrong length or an index out of range.
        """
        codes = [int(c) for c in codes]
        if len(codes) != len(self.knobs):
            raise ConfigError(f"expected {len(self.knobs)} codes ({self.knob_names}), got {len(codes)}")
        by_name = dict(zip(self.knob_names, codes))

        def choose(knob: KnobSpec, _: list[int]) -> Any:
            index = by_name[knob.name]
            if not 0 <= index < len(knob.choices):
                raise ConfigError(f"{knob.name}: code {index} out of range 0..{len(knob.choices) - 1}")
            return knob.choices[index]

        return self._build(choose)

    # ----- enumeration and search moves ---------------------------------------------------------------
    def enumerate(self, limit: int = 100_000) -> Iterator[KnobConfig]:
        """Yields every configuration, when the space has at most ``limit`` of them.

        Raises:
          ValueError: when the space is larger than ``limit``.
        """
        if self.size > limit:
            raise ValueError(f"space {self.name!r} has {self.size} configs > limit {limit}; use sample()")

        def rec(i: int, values: dict[str, Any]) -> Iterator[KnobConfig]:
            if i == len(self.knobs):
                yield KnobConfig(tuple(values.items()))
                return
            knob = self.knobs[i]
            for choice in knob.choices if self._is_active(knob, values) else (None,):
                yield from rec(i + 1, {**values, knob.name: choice})

        yield from rec(0, {})

    def neighbours(self, config: KnobConfig) -> list[KnobConfig]:
        """Configs one step away on exactly one active knob (newly activated knobs take their largest choice)."""
        config = self.validate(config)
        out = []
        for knob, value in zip(self.knobs, config.values):
            if value is None:
                continue
            i = knob.choices.index(value)
            for j in (i - 1, i + 1):
                if 0 <= j < len(knob.choices):
                    out.append(self.make({**config.as_dict(), knob.name: knob.choices[j]}))
        return out

    def mutate(self, config: KnobConfig, rng: random.Random, n_moves: int = 1) -> KnobConfig:
        """Applies ``n_moves`` random neighbour moves (unchanged when the space has a single config)."""
        for _ in range(n_moves):
            moves = self.neighbours(config)
            if moves:
                config = rng.choice(moves)
        return config

    # ----- ids and JSON --------------------------------------------------------------------------------
    def config_from_id(self, text: str) -> KnobConfig:
        """Parses a compact id produced by ``KnobConfig.id``.

        Raises:
          ConfigError: the id does not match this space's knobs.
        """
        tokens = [] if text == "-" else text.split(".")
        if len(tokens) != len(self.knobs):
            raise ConfigError(
                f"config id {text!r} has {len(tokens)} tokens; space {self.name!r} has knobs {self.knob_names}"
            )
        values: dict[str, Any] = {}
        for knob, token in zip(self.knobs, tokens):
            by_token = {knob.token(c): c for c in (*knob.choices, None)}
            if token not in by_token:
                raise ConfigError(
                    f"{knob.name}: token {token!r} of id {text!r} not allowed; choose one of {tuple(by_token)}"
                )
            values[knob.name] = by_token[token]
        return self.validate(KnobConfig(tuple(values.items())))

    def config_to_json(self, config: KnobConfig) -> dict[str, Any]:
        """Serialises a config with this space's name and version."""
        config = self.validate(config)
        return {"space": self.name, "space_version": self.version, "id": config.id, "knobs": config.as_dict()}

    def config_from_json(self, obj: dict[str, Any] | str) -> KnobConfig:
        """Parses :meth:`config_to_json` output (a dict or a JSON string).

        Raises:
          SchemaVersionError: the JSON belongs to another space or space version.
          ConfigError: the config is malformed or outside this space.
        """
        obj = parse_config_header(obj, self.name, self.version, "elastic model")
        knobs = obj.get("knobs")
        if not isinstance(knobs, dict):
            raise ConfigError("malformed config JSON: 'knobs' must be an object {knob: value}")
        return self.validate(KnobConfig(tuple((name, knobs.get(name)) for name in self.knob_names)))

    def to_json(self) -> dict[str, Any]:
        """Describes the space itself (knobs, choices, gates, size)."""
        return {
            "name": self.name,
            "version": self.version,
            "knobs": [
                {"name": k.name, "choices": list(k.choices), "gate": list(k.gate) if k.gate else None}
                for k in self.knobs
            ],
            "size": self.size,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> KnobSpace:
        """Inverse of :meth:`to_json`."""
        return cls(
            name=str(obj["name"]),
            knobs=tuple(
                KnobSpec(str(k["name"]), tuple(k["choices"]), tuple(k["gate"]) if k.get("gate") else None)  # type: ignore[arg-type]
                for k in obj["knobs"]
            ),
        )
