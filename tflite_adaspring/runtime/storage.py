"""How configurations are stored in the model and made runnable (the storage-mode strategies).

* ``packed`` (:class:`PackedStorage`): every configuration is its own signature of one multi-signature
  model; every slot exists and is warm from the start, so a switch is one reference assignment.
* ``evolve`` (:class:`~tflite_adaspring.runtime.evolve.EvolveStorage`): the backbone weights are stored
  once; a configuration's weights are derived and its interpreter built in the background on demand.
* ``shared`` (:class:`~tflite_adaspring.runtime.shared.SharedStorage`): an evolve file run through the
  AdaSpring delegate; every configuration computes from one copy of the backbone weights (opt-in with
  ``Interpreter(..., storage="shared")``).

The slot types and the strategy interface live in :mod:`tflite_adaspring.runtime.slots`.
"""

from __future__ import annotations

from typing import Any

from tflite_adaspring.errors import ModelFormatError
from tflite_adaspring.runtime.evolve import EvolveStorage
from tflite_adaspring.runtime.shared import SharedStorage
from tflite_adaspring.runtime.slots import (
    AlwaysReadySlots,
    ConfigSlot,
    ModelHandle,
    Port,
    StorageStrategy,
    check_same_ports,
    signature_slot,
)

__all__ = [
    "STORAGE_MODES",
    "STORAGE_OVERRIDES",
    "ConfigSlot",
    "EvolveStorage",
    "ModelHandle",
    "PackedStorage",
    "Port",
    "SharedStorage",
    "StorageStrategy",
]


class PackedStorage(AlwaysReadySlots):
    """``packed`` mode: each configuration is one signature (subgraph) of a single interpreter.

    Every subgraph's weights are loaded (and packed by XNNPACK) up front, so switching is free.

    Args:
      model: the opened model.

    Raises:
      ModelFormatError: a metadata key is not a signature of the model, or configurations disagree on
        their input/output names.
    """

    mode = "packed"

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
        self._primary = min(slots, key=lambda s: s.subgraph)  # subgraph 0, or the lowest one any row uses

    def interpreters(self) -> tuple[Any, ...]:
        """The single interpreter every slot runs on."""
        return (self._interpreter,)


STORAGE_MODES: dict[str, type] = {"packed": PackedStorage, "evolve": EvolveStorage}
"""Strategy per file ``storage_mode``."""

STORAGE_OVERRIDES: dict[str, dict[str, type]] = {"evolve": {"shared": SharedStorage}}
"""File storage mode -> the other modes ``Interpreter(storage=...)`` may run it in, and their strategies."""
