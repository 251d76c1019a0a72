"""How configurations are stored in the model and made runnable (the storage-mode strategy).

A storage strategy turns an exported model into one :class:`ConfigSlot` per configuration. A slot is
everything the interpreter's hot path needs to run that configuration: the LiteRT interpreter wrapper,
the subgraph index and the tensor indices of its inputs and outputs. The interpreter switches
configuration by swapping one slot reference, so a strategy whose slots need work before they can run
(patching weights, building an interpreter) does that work in :meth:`StorageStrategy.prepare`.

Implemented here: ``packed`` (every configuration is its own signature of one multi-signature model).
"""

from __future__ import annotations

import sys
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


class StorageStrategy(Protocol):
    """What the interpreter needs from a storage mode."""

    mode: str

    def slots(self) -> tuple[ConfigSlot, ...]:
        """One slot per metadata row, in table order."""
        ...

    def interpreters(self) -> tuple[Any, ...]:
        """Every LiteRT interpreter the slots run on."""
        ...

    def prepare(self, slot: ConfigSlot) -> ConfigSlot:
        """Makes ``slot`` runnable before it becomes active; returns the slot to activate."""
        ...


def _port(interpreter: Any, name: str, index: int, subgraph: int) -> Port:
    w = interpreter._interpreter
    return Port(
        name=name,
        index=int(index),
        shape=tuple(int(d) for d in w.TensorSize(index, subgraph)),
        shape_signature=tuple(int(d) for d in w.TensorSizeSignature(index, subgraph)),
        dtype=w.TensorType(index, subgraph),
    )


class PackedStorage:
    """``packed`` mode: each configuration is one signature (subgraph) of a single interpreter.

    Every subgraph's weights are loaded (and packed by XNNPACK) up front, so switching is free.
    """

    mode = "packed"

    def __init__(self, interpreter: Any, metadata: ModelMetadata):
        """Builds the slots.

        Args:
          interpreter: a LiteRT ``Interpreter`` over the model.
          metadata: the model's metadata.

        Raises:
          ModelFormatError: a metadata key is not a signature of the model, or configurations
            disagree on their input/output names.
        """
        self._interpreter = interpreter
        signatures = interpreter._get_full_signature_list()
        wrapper = interpreter._interpreter
        slots = []
        for row, info in enumerate(metadata.signatures):
            sig = signatures.get(info.key)
            if sig is None:
                raise ModelFormatError(
                    f"metadata names configuration {info.key!r} but the model has no such signature "
                    f"(signatures: {', '.join(signatures)})"
                )
            subgraph = int(wrapper.GetSubgraphIndexFromSignature(info.key))
            inputs = [
                _port(interpreter, n, i, subgraph) for n, i in sorted(sig["inputs"].items(), key=lambda kv: kv[1])
            ]
            outputs = [
                _port(interpreter, n, i, subgraph) for n, i in sorted(sig["outputs"].items(), key=lambda kv: kv[1])
            ]
            slots.append(ConfigSlot(info.key, row, interpreter, subgraph, inputs, outputs))
        first = slots[0]
        for slot in slots[1:]:
            if set(slot.inputs) != set(first.inputs) or set(slot.outputs) != set(first.outputs):
                raise ModelFormatError(
                    f"configurations {first.key} and {slot.key} disagree on inputs/outputs: "
                    f"{sorted(first.inputs)} -> {sorted(first.outputs)} vs "
                    f"{sorted(slot.inputs)} -> {sorted(slot.outputs)}"
                )
        self._slots = tuple(slots)

    def slots(self) -> tuple[ConfigSlot, ...]:
        """One slot per metadata row, in table order."""
        return self._slots

    def interpreters(self) -> tuple[Any, ...]:
        """The single interpreter every slot runs on."""
        return (self._interpreter,)

    def prepare(self, slot: ConfigSlot) -> ConfigSlot:
        """Packed slots are always ready."""
        return slot


STORAGE_MODES: dict[str, type] = {"packed": PackedStorage}
