"""``evolve`` storage mode: derive a configuration's weights and build its interpreter in the background.

The model file runs one configuration itself (the primary, always ready). Asking for another one
(:meth:`EvolveStorage.request`) returns at once; one background thread derives its weights with numpy
(:mod:`tflite_adaspring.runtime.evolve_store`), writes them behind its skeleton, builds a LiteRT
interpreter, allocates it and runs it once, then hands the finished slot to the interpreter, which
swaps it in with one reference assignment (double buffering: the previous configuration serves until
then, and nobody ever sees a half-built one). Only the most recent request is built: a request made
while a build runs replaces the pending one. Built slots are kept in a small LRU cache.
"""

from __future__ import annotations

import collections
import mmap
import threading
import time
import weakref
from typing import Any

import numpy as np

from tflite_adaspring.errors import ModelFormatError
from tflite_adaspring.metadata import find_metadata_entry, open_model_buffer, tflite_schema
from tflite_adaspring.runtime.evolve_store import (
    EVOLVE_METADATA_NAME,
    EvolveContainer,
    WeightDeriver,
    assemble,
    resolve_graph_tensors,
    unpack_container,
)
from tflite_adaspring.runtime.slots import BuildDone, ConfigSlot, ModelHandle, check_same_ports, seal, signature_slot

IDLE_EXIT_S = 30.0  # the builder thread exits after this long without work (restarted on demand)
_POLL_S = 1.0  # how often an idle builder checks whether its storage still exists


def read_evolve_container(source: bytes | str) -> EvolveContainer:
    """Reads the ``adaspring_evolve`` entry of a model, graph tensors resolved from the model's graph.

    Args:
      source: model bytes or path.

    Returns:
      The decoded container (its ``tensors`` include the unfolded graph tensors).

    Raises:
      ModelFormatError: the entry is missing or malformed.
    """
    buf, name = open_model_buffer(source)
    try:
        raw = find_metadata_entry(buf, EVOLVE_METADATA_NAME)
        if raw is None:
            raise ModelFormatError(
                f"{name}: storage_mode is 'evolve' but the model has no '{EVOLVE_METADATA_NAME}' entry; "
                "re-export it with `adaspring export --mode evolve`"
            )
        container = unpack_container(raw)
        return resolve_graph_tensors(container, lambda index: _graph_constant(buf, index, name))
    finally:
        if isinstance(buf, mmap.mmap):
            buf.close()


def _graph_constant(buf: Any, index: int, name: str) -> np.ndarray:
    """A float32 constant of subgraph 0 (a copy: the buffer may be an mmap that is closed afterwards)."""
    model = tflite_schema().Model.GetRootAs(buf, 0)
    graph = model.Subgraphs(0)
    if graph is None or not 0 <= index < graph.TensorsLength():
        raise ModelFormatError(f"{name}: evolve graph tensor {index} does not exist; re-export the model")
    tensor = graph.Tensors(index)
    buffer = model.Buffers(tensor.Buffer())
    shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    if buffer.DataLength():
        data = buffer.DataAsNumpy().tobytes()
    elif buffer.Offset() > 1:
        data = bytes(buf[buffer.Offset() : buffer.Offset() + buffer.Size()])
    else:
        data = b""
    if tensor.Type() != 0 or len(data) != 4 * int(np.prod(shape)):
        raise ModelFormatError(f"{name}: evolve graph tensor {index} is not a float32 constant of shape {shape}")
    return np.frombuffer(data, np.float32).reshape(shape).copy()


def _skeleton_ports(flatbuffer: bytes) -> tuple[str, set[str], set[str]]:
    """Signature key and input/output names of a skeleton (flatbuffer read API; no interpreter)."""
    model = tflite_schema().Model.GetRootAs(flatbuffer, 0)
    if model.SignatureDefsLength() != 1:
        raise ModelFormatError(f"an evolve skeleton must have one signature, found {model.SignatureDefsLength()}")
    sig = model.SignatureDefs(0)
    inputs = {sig.Inputs(i).Name().decode() for i in range(sig.InputsLength())}
    outputs = {sig.Outputs(i).Name().decode() for i in range(sig.OutputsLength())}
    return sig.SignatureKey().decode(), inputs, outputs


class _Builder:
    """The background thread: builds the most recently submitted row of its storage.

    It holds its storage only through a weak reference, so an interpreter that is dropped without
    :meth:`EvolveStorage.close` is still collected (the thread then exits within ``_POLL_S``).
    """

    def __init__(self, storage: EvolveStorage):
        self._storage = weakref.ref(storage)
        self._cond = threading.Condition()
        self._job: tuple[int, BuildDone] | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, row: int, done: BuildDone) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the interpreter was closed")
            self._job = (row, done)  # replaces a pending job: only the latest request matters
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="adaspring-evolve-builder", daemon=True)
                self._thread.start()
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._job = None
            self._cond.notify()

    def _run(self) -> None:
        idle_since = time.monotonic()
        while True:
            with self._cond:
                if self._job is None and not self._closed:
                    self._cond.wait(_POLL_S)
                job, self._job = self._job, None
                gone = self._storage() is None
                if self._closed or gone or (job is None and time.monotonic() - idle_since > IDLE_EXIT_S):
                    self._thread = None
                    return
            if job is None:
                continue
            storage = self._storage()
            if storage is not None:
                storage._serve(*job)
            del storage
            idle_since = time.monotonic()


class EvolveStorage:
    """``evolve`` mode (see the module docstring).

    Args:
      model: the opened model; its interpreter runs the primary configuration.

    Raises:
      ModelFormatError: the evolve entry is missing or malformed, a configuration has no skeleton, or
        configurations disagree on their input/output names.
    """

    mode = "evolve"
    fixed_slots = False

    def __init__(self, model: ModelHandle):
        if model.cache_size < 1:
            raise ValueError(f"cache_size must be >= 1, got {model.cache_size}")
        self._container = read_evolve_container(model.source)
        self._deriver = WeightDeriver(self._container.tensors)
        self._keys = model.metadata.keys
        signatures = model.interpreter._get_full_signature_list()
        if len(signatures) != 1 or next(iter(signatures)) not in self._keys:
            raise ModelFormatError(
                f"an evolve model runs exactly one configuration of its table itself; its signatures are "
                f"{list(signatures)}, the table has {list(self._keys)}"
            )
        key = next(iter(signatures))
        self._primary = signature_slot(model.interpreter, key, self._keys.index(key), signatures[key])
        for other in self._keys:
            if other == key:
                continue
            skeleton = self._container.skeletons.get(other)
            if skeleton is None:
                raise ModelFormatError(f"evolve model: configuration {other!r} has no skeleton")
            sig_key, inputs, outputs = _skeleton_ports(skeleton.flatbuffer)
            if sig_key != other or inputs != set(self._primary.inputs) or outputs != set(self._primary.outputs):
                raise ModelFormatError(
                    f"evolve skeleton {other!r} has signature {sig_key!r} {sorted(inputs)} -> {sorted(outputs)}; "
                    f"expected {other!r} {sorted(self._primary.inputs)} -> {sorted(self._primary.outputs)}"
                )
        for skeleton in self._container.skeletons.values():  # SVD factors once per model (~1-3 ms), not per switch
            for b in skeleton.buffers:
                if b.recipe["kind"].startswith("svd_"):
                    self._deriver.derive(b.recipe, b.dtype)
        self._make_interpreter = model.make_interpreter
        self._cache_size = int(model.cache_size)
        self._cache: collections.OrderedDict[int, ConfigSlot] = collections.OrderedDict()
        self._input_sizes: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._builder = _Builder(self)
        self.build_ms: collections.deque[float] = collections.deque(maxlen=1024)

    @property
    def container(self) -> EvolveContainer:
        """The decoded evolve entry."""
        return self._container

    def primary(self) -> ConfigSlot:
        """The configuration the model file runs itself."""
        return self._primary

    def slots(self) -> tuple[ConfigSlot, ...]:
        """The primary and every cached built slot."""
        with self._lock:
            return (self._primary, *self._cache.values())

    def interpreters(self) -> tuple[Any, ...]:
        """The LiteRT interpreters of :meth:`slots`."""
        return tuple(s.interpreter for s in self.slots())

    def ready(self, row: int) -> ConfigSlot | None:
        """Row's slot when it is the primary or cached (marks it recently used), else None."""
        if row == self._primary.row:
            return self._primary
        with self._lock:
            slot = self._cache.get(row)
            if slot is not None:
                self._cache.move_to_end(row)
            return slot

    def request(self, row: int, done: BuildDone) -> ConfigSlot | None:
        """Row's slot if ready; else queues its build (replacing any queued one) and returns None."""
        slot = self.ready(row)
        if slot is None:
            self._builder.submit(row, done)
        return slot

    def build(self, row: int) -> ConfigSlot:
        """Row's slot, built on the calling thread when not cached."""
        slot = self.ready(row)
        if slot is None:
            slot = self._insert(row, self._build(row))
        return slot

    def set_input_size(self, name: str, size: np.ndarray) -> None:
        """Remembers an input resize for slots built from now on."""
        with self._lock:
            self._input_sizes[name] = np.array(size, np.int32)

    def close(self) -> None:
        """Stops the builder thread (a build in progress finishes; nothing new starts)."""
        self._builder.close()

    # ------------------------------------------------------------------------------------------
    # building

    def _serve(self, row: int, done: BuildDone) -> None:
        """Builds ``row`` unless cached, then reports to ``done`` (called on the builder thread)."""
        slot, error = self.ready(row), None
        if slot is None:
            try:
                slot = self._insert(row, self._build(row))
            except Exception as exc:  # reported to the interpreter, which keeps serving the previous config
                slot, error = None, exc
        done(row, slot, error)

    def _insert(self, row: int, slot: ConfigSlot) -> ConfigSlot:
        with self._lock:
            existing = self._cache.get(row)
            if existing is not None:  # built twice concurrently: keep the first
                self._cache.move_to_end(row)
                return existing
            self._cache[row] = slot
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return slot

    def _build(self, row: int) -> ConfigSlot:
        """Derives the weights, builds, resizes, allocates and warms up ``row``'s interpreter."""
        start = time.perf_counter()
        key = self._keys[row]
        content = assemble(self._container.skeletons[key], self._deriver)
        interpreter = self._make_interpreter(content)
        slot = signature_slot(interpreter, key, row, interpreter._get_full_signature_list()[key])
        check_same_ports(self._primary, slot)
        with self._lock:
            sizes = dict(self._input_sizes)
        wrapper = slot.wrapper
        for name, size in sizes.items():
            wrapper.ResizeInputTensor(slot.inputs[name].index, size, False, slot.subgraph)
        wrapper.AllocateTensors(slot.subgraph)
        slot.refresh_shapes()
        for port in slot.input_list:
            wrapper.SetTensor(port.index, np.zeros(port.shape, port.dtype), slot.subgraph)
        wrapper.Invoke(slot.subgraph)  # the first invoke of a graph is slow: pay it here, not when serving
        del wrapper
        self.build_ms.append((time.perf_counter() - start) * 1e3)
        return seal(slot)
