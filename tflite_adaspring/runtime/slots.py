"""What the interpreter's hot path runs: configuration slots, their ports, and the storage-strategy interface.

A storage strategy turns an exported model into one :class:`ConfigSlot` per configuration. A slot is
everything the hot path needs to run that configuration: the LiteRT interpreter wrapper, the subgraph
index and the tensor indices of its inputs and outputs. The interpreter switches configuration by
swapping one slot reference, so a slot is complete (allocated, warmed up) before anyone can see it.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from tflite_adaspring.errors import ModelFormatError
from tflite_adaspring.metadata import ModelMetadata


class Port:
    """One named input or output tensor of a configuration.

    Attributes:
      name: signature input/output name.
      index: tensor index inside the configuration's subgraph.
      shape: current shape (changes with resizing).
      shape_signature: shape with -1 for resizable dimensions.
      dtype: numpy dtype.
    """

    __slots__ = ("dtype", "index", "name", "shape", "shape_signature")

    def __init__(self, name: str, index: int, shape: tuple[int, ...], shape_signature: tuple[int, ...], dtype: Any):
        self.name = name
        self.index = index
        self.shape = shape
        self.shape_signature = shape_signature
        self.dtype = np.dtype(dtype)

    def accepts_shape(self, shape: tuple[int, ...]) -> bool:
        """True when ``shape`` matches the signature (``-1`` dimensions take any size)."""
        sig = self.shape_signature
        return len(shape) == len(sig) and all(s in (-1, d) for s, d in zip(sig, shape))


class ConfigSlot:
    """A runnable configuration.

    Attributes:
      key: signature key.
      row: row in the metadata table.
      interpreter: the LiteRT ``Interpreter`` that runs it.
      wrapper: that interpreter's native wrapper (hot-path calls go here).
      subgraph: subgraph index of the configuration.
      inputs: port name -> :class:`Port`, in the model's input order.
      outputs: port name -> :class:`Port`, in the model's output order.
      output_items: ``(name, index)`` pairs of the outputs (for building result dicts).
      busy_s: total seconds spent in ``Invoke`` (written only by the invoking thread).
      invokes: number of recorded invokes.
      folded_s / folded_n: the part of ``busy_s`` / ``invokes`` already folded into the search state.
      safe_refs: reference count of ``wrapper`` when no numpy view into its tensors is alive (set by
        the interpreter once the slots are built; LiteRT refuses to invoke while a view is alive).
    """

    __slots__ = (
        "busy_s",
        "folded_n",
        "folded_s",
        "input_list",
        "inputs",
        "interpreter",
        "invokes",
        "key",
        "output_items",
        "output_list",
        "outputs",
        "row",
        "safe_refs",
        "subgraph",
        "wrapper",
    )

    def __init__(self, key: str, row: int, interpreter: Any, subgraph: int, inputs: list[Port], outputs: list[Port]):
        self.key = key
        self.row = row
        self.interpreter = interpreter
        self.wrapper = interpreter._interpreter
        self.subgraph = subgraph
        self.input_list = tuple(inputs)
        self.output_list = tuple(outputs)
        self.inputs = {p.name: p for p in inputs}
        self.outputs = {p.name: p for p in outputs}
        self.output_items = tuple((p.name, p.index) for p in outputs)
        self.busy_s = 0.0
        self.invokes = 0
        self.folded_s = 0.0
        self.folded_n = 0
        self.safe_refs = sys.maxsize

    def refresh_shapes(self) -> None:
        """Re-reads the current shapes of every port (after resizing and allocation)."""
        for port in (*self.input_list, *self.output_list):
            port.shape = tuple(int(d) for d in self.wrapper.TensorSize(port.index, self.subgraph))

    def details(self, port: Port) -> dict[str, Any]:
        """LiteRT's tensor-details dict of one port (as ``Interpreter.get_input_details`` items)."""
        return self.interpreter._get_tensor_details(port.index, self.subgraph)


@dataclasses.dataclass(frozen=True)
class ModelHandle:
    """What a storage strategy gets to open a model.

    Attributes:
      interpreter: a LiteRT ``Interpreter`` over the model file.
      metadata: the model's ``adaspring`` metadata.
      source: the model bytes or its path.
      make_interpreter: builds another LiteRT ``Interpreter`` (same options) from model bytes.
      cache_size: how many built configurations a strategy that builds them may keep.
    """

    interpreter: Any
    metadata: ModelMetadata
    source: bytes | str
    make_interpreter: Callable[[bytes], Any]
    cache_size: int = 4


BuildDone = Callable[[int, "ConfigSlot | None", "BaseException | None"], Any]
"""``done(row, slot, error)``: a background build finished (``slot`` set) or failed (``error`` set)."""


class StorageStrategy(Protocol):
    """What the interpreter needs from a storage mode.

    Attributes:
      mode: the ``storage_mode`` it implements.
      fixed_slots: True when every configuration's slot exists for the strategy's lifetime (runners
        may then bind to a slot instead of resolving it per call).
    """

    mode: str
    fixed_slots: bool

    def primary(self) -> ConfigSlot:
        """The slot of the model file's own first subgraph (the indices a plain LiteRT program uses)."""
        ...

    def slots(self) -> tuple[ConfigSlot, ...]:
        """Every slot that is runnable now."""
        ...

    def ready(self, row: int) -> ConfigSlot | None:
        """Row's slot if it is runnable now, else None (never blocks on a build)."""
        ...

    def request(self, row: int, done: BuildDone) -> ConfigSlot | None:
        """Row's slot if runnable now; else starts making it runnable in the background and returns None.

        ``done`` is then called on the background thread, outside any lock of the strategy.
        """
        ...

    def build(self, row: int) -> ConfigSlot:
        """Row's slot, made runnable on the calling thread if needed (blocks)."""
        ...

    def set_input_size(self, name: str, size: np.ndarray) -> None:
        """Records an input resize so slots built later get it too (built slots are resized by the caller)."""
        ...

    def close(self) -> None:
        """Stops background work."""
        ...


class AlwaysReadySlots:
    """The slot bookkeeping of a storage whose every configuration is runnable from the start.

    A subclass sets ``self._slots`` (one per metadata row, table order) and ``self._primary``.
    """

    fixed_slots = True
    _slots: tuple[ConfigSlot, ...]
    _primary: ConfigSlot

    def primary(self) -> ConfigSlot:
        """The configuration the model file runs itself."""
        return self._primary

    def slots(self) -> tuple[ConfigSlot, ...]:
        """One slot per metadata row, in table order."""
        return self._slots

    def ready(self, row: int) -> ConfigSlot:
        """Every slot is runnable."""
        return self._slots[row]

    def request(self, row: int, done: BuildDone) -> ConfigSlot:
        """Every slot is runnable: returns it, never calls ``done``."""
        return self._slots[row]

    def build(self, row: int) -> ConfigSlot:
        """Every slot is runnable."""
        return self._slots[row]

    def set_input_size(self, name: str, size: np.ndarray) -> None:
        """Nothing to remember: every slot exists and is resized by the interpreter."""

    def close(self) -> None:
        """Nothing runs in the background."""


def make_port(interpreter: Any, name: str, index: int, subgraph: int) -> Port:
    """The :class:`Port` of one tensor of a LiteRT interpreter."""
    w = interpreter._interpreter
    return Port(
        name=name,
        index=int(index),
        shape=tuple(int(d) for d in w.TensorSize(index, subgraph)),
        shape_signature=tuple(int(d) for d in w.TensorSizeSignature(index, subgraph)),
        dtype=w.TensorType(index, subgraph),
    )


def signature_slot(interpreter: Any, key: str, row: int, signature: dict[str, dict[str, int]]) -> ConfigSlot:
    """Builds the slot of one signature.

    Args:
      interpreter: the LiteRT interpreter holding the signature.
      key: signature key.
      row: the configuration's row in the metadata table.
      signature: the signature's ``{"inputs": {name: index}, "outputs": {name: index}}``.

    Returns:
      The slot (not yet allocated or warmed up).
    """
    subgraph = int(interpreter._interpreter.GetSubgraphIndexFromSignature(key))

    def ports(kind: str) -> list[Port]:
        return [
            make_port(interpreter, n, i, subgraph) for n, i in sorted(signature[kind].items(), key=lambda kv: kv[1])
        ]

    return ConfigSlot(key, row, interpreter, subgraph, ports("inputs"), ports("outputs"))


def check_same_ports(reference: ConfigSlot, slot: ConfigSlot) -> None:
    """Raises :class:`ModelFormatError` when two configurations disagree on their input/output names."""
    if set(slot.inputs) != set(reference.inputs) or set(slot.outputs) != set(reference.outputs):
        raise ModelFormatError(
            f"configurations {reference.key} and {slot.key} disagree on inputs/outputs: "
            f"{sorted(reference.inputs)} -> {sorted(reference.outputs)} vs "
            f"{sorted(slot.inputs)} -> {sorted(slot.outputs)}"
        )


def seal(slot: ConfigSlot) -> ConfigSlot:
    """Records the wrapper's reference count with no numpy view alive (see ``ConfigSlot.safe_refs``)."""
    slot.safe_refs = sys.getrefcount(slot.wrapper)
    return slot
