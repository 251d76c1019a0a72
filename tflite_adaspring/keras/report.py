"""What ``make_elastic`` did to each layer of a user's model, and why."""

from __future__ import annotations

import dataclasses
from typing import Any

ROLE_WIDTH = "width"  # output channels elastic (owns a width knob)
ROLE_RANK = "rank"  # low-rank factorised (owns a rank knob)
ROLE_FOLLOWS = "follows"  # channels follow a producer's width knob (BN, pooling, depthwise, consumer's input)
ROLE_DEPTH = "depth"  # the Add of a residual block in a run with a depth knob
ROLE_KEPT = "kept"  # left as it is


@dataclasses.dataclass(frozen=True)
class LayerEntry:
    """One layer of the user's model.

    Attributes:
      layer: the layer's name.
      type: its class name.
      role: one of ``width``, ``rank``, ``follows``, ``depth``, ``kept``.
      knob: the knob it owns or follows (None for kept layers).
      detail: how or why (for kept layers: why nothing applies).
      block: ``<run> block <b+1>/<n>`` when the layer is inside a skippable residual block.
      supported: False when make_elastic does not know the layer type at all (it is copied unchanged).
    """

    layer: str
    type: str
    role: str
    knob: str | None
    detail: str
    block: str | None = None
    supported: bool = True


@dataclasses.dataclass(frozen=True)
class ElasticReport:
    """Per-layer outcome of ``make_elastic``.

    Attributes:
      entries: one per layer, in graph order.
      runs: per run of skippable residual blocks, its depth knob and the Add layers of its blocks.
    """

    entries: tuple[LayerEntry, ...]
    runs: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __getitem__(self, layer: str) -> LayerEntry:
        for entry in self.entries:
            if entry.layer == layer:
                return entry
        raise KeyError(f"no layer {layer!r} in the report")

    @property
    def elastic(self) -> tuple[LayerEntry, ...]:
        """Layers that own or follow a knob."""
        return tuple(e for e in self.entries if e.role != ROLE_KEPT)

    @property
    def kept(self) -> tuple[LayerEntry, ...]:
        """Layers left as they are, with the reason."""
        return tuple(e for e in self.entries if e.role == ROLE_KEPT)

    @property
    def unsupported(self) -> tuple[LayerEntry, ...]:
        """Layers whose type make_elastic does not handle (copied unchanged)."""
        return tuple(e for e in self.entries if not e.supported)

    def __str__(self) -> str:
        rows = [("layer", "type", "role", "knob", "detail")]
        for e in self.entries:
            detail = e.detail + (f" [{e.block}]" if e.block else "")
            rows.append((e.layer, e.type, e.role, e.knob or "", detail))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
        for knob, adds in self.runs:
            lines.append(f"{knob}: blocks ending at {', '.join(adds)} (every block after the first can be skipped)")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "layers": [dataclasses.asdict(e) for e in self.entries],
            "runs": [{"knob": knob, "adds": list(adds)} for knob, adds in self.runs],
        }
