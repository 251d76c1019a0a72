"""How configurations are stored in the model and made runnable (the storage-mode strategies).

* ``packed`` (:class:`PackedStorage`): every configuration is its own signature of one multi-signature
  model; every slot exists and is warm from the start, so a switch is one reference assignment.
* ``evolve`` (:class:`~tflite_adaspring.runtime.evolve.EvolveStorage`): the backbone weights are stored
  once; a configuration's weights are derived and its interpreter built in the background on demand.

The slot types and the strategy interface live in :mod:`tflite_adaspring.runtime.slots`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tflite_adaspring.errors import ModelFormatError
from tflite_adaspring.runtime.evolve import EvolveStorage
from tflite_adaspring.runtime.slots import (
    BuildDone,
    ConfigSlot,
    ModelHandle,
    Port,
    StorageStrategy,
    check_same_ports,
    signature_slot,
)

__all__ = ["STORAGE_MODES", "ConfigSlot", "EvolveStorage", "ModelHandle", "PackedStorage", "Port", "StorageStrategy"]


class PackedStorage:
    """``packed`` mode: each configuration is one signature (subgraph) of a single interpreter.

    Every subgraph's weights are loaded (and packed by XNNPACK) up front, so switching is free.

    Args:
      model: the opened model.

    Raises:
      ModelFormatError: a metadata key is not a signature of the model, or configurations disagree on
        their input/output names.
    """

    mode = "packed"
    fixed_slots = True

    def __init__(self, model: ModelHandle):
        interpreter = model.interpreter
        self._interpreter = interpreter
        signatures = interpreter._get_full_signature_list()
        slots = []
        for row, info in enumerate(model.metadata.signatures):
            signature = signatures.get(info.key)
            if signature is None:
                raise ModelFormatError(
                    f"metadata names configuration {info.key!r} but the model has no such signature "
                    f"(signatures: {', '.join(signatures)})"
                )
            slots.append(signature_slot(interpreter, info.key, row, signature))
        for slot in slots[1:]:
            check_same_ports(slots[0], slot)
        self._slots = tuple(slots)
        self._primary = min(slots, key=lambda s: s.subgraph)

    def primary(self) -> ConfigSlot:
        """The slot of subgraph 0 (or the lowest subgraph any configuration uses)."""
        return self._primary

    def slots(self) -> tuple[ConfigSlot, ...]:
        """One slot per metadata row, in table order."""
        return self._slots

    def ready(self, row: int) -> ConfigSlot:
        """Packed slots are always runnable."""
        return self._slots[row]

    def request(self, row: int, done: BuildDone) -> ConfigSlot:
        """Packed slots are always runnable: returns the slot, never calls ``done``."""
        return self._slots[row]

    def build(self, row: int) -> ConfigSlot:
        """Packed slots are always runnable."""
        return self._slots[row]

    def set_input_size(self, name: str, size: np.ndarray) -> None:
        """Nothing to remember: every slot exists and is resized by the interpreter."""

    def interpreters(self) -> tuple[Any, ...]:
        """The single interpreter every slot runs on."""
        return (self._interpreter,)

    def close(self) -> None:
        """Nothing runs in the background."""


STORAGE_MODES: dict[str, type] = {"packed": PackedStorage, "evolve": EvolveStorage}
