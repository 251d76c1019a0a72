"""Drop-in ``Interpreter`` that runs the configuration the Runtime3C search picks for the context.

``tflite_adaspring.runtime.Interpreter`` takes the constructor arguments and offers the methods of
``ai_edge_litert.interpreter.Interpreter``; every method acts on the **active** configuration:

* The plain tensor API (``get_input_details`` / ``set_tensor`` / ``invoke`` / ``get_tensor`` /
  ``tensor``) addresses the model's inputs and outputs by **port indices**: the tensor indices of the
  primary signature (subgraph 0), i.e. exactly the indices an ``ai_edge_litert`` program sees. The
  wrapper maps them to the active configuration's subgraph. ``invoke`` reads the active configuration
  once; inputs set while another configuration was active are carried over, and ``get_tensor`` reads
  the configuration that last ran - so a switch on another thread never mixes two configurations.
* ``get_signature_runner()`` returns a runner that always follows the active configuration;
  ``get_signature_runner(key)`` one that runs ``key``.

Extras: :attr:`Interpreter.active`, :attr:`Interpreter.configs`, :meth:`Interpreter.adapt`,
:attr:`Interpreter.history`, :meth:`Interpreter.add_switch_callback`, :meth:`Interpreter.set_active`,
:attr:`Interpreter.target`, :meth:`Interpreter.wait_until_active`.

Storage modes (the metadata's ``storage_mode``): ``packed`` models hold every configuration as a
signature, so a switch is immediate. ``evolve`` models hold the backbone weights once; a switch to a
configuration that is not built yet returns at once and the previous configuration keeps serving until a
background thread has derived the new weights and built, allocated and warmed its interpreter, which is
then swapped in atomically (:attr:`target` names the configuration asked for, :attr:`active` the one
serving; :meth:`wait_until_active` blocks until they agree).

``shared`` (``Interpreter(..., storage="shared")`` on an evolve file): every configuration is built at
creation and computes from one copy of the backbone weights through the AdaSpring delegate
(:mod:`tflite_adaspring.runtime.shared`), so a switch is immediate and copies no weight. When the delegate
is not available (library missing, ABI self-check refused, ...) a ``RuntimeWarning`` says why and the model
runs in evolve mode.

Every configuration is warmed up (one invoke with zeros) when the wrapper is created: the first invoke
of a signature costs 0.15-0.35 ms on real models, and warming lazily would either put that cost on the
first inference after a switch or run the interpreter from the adapting thread while another thread
invokes it (measured on the 4-configuration test model: creation 0.51 ms warmed vs 0.45 ms not).

Threads: one thread may invoke (LiteRT's own rule) while any other thread calls :meth:`adapt` or
:meth:`set_active`; a switch is one reference assignment, the hot path takes no lock. Call
:meth:`close` to stop an evolve model's builder thread early (it also exits on its own when idle).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tflite_adaspring.context.snapshot import ContextSnapshot, Requirements
from tflite_adaspring.errors import (
    ConfigError,
    DataValidationError,
    DelegateError,
    InputMismatchError,
    ModelFormatError,
)
from tflite_adaspring.metadata import ModelMetadata, SignatureInfo, read_metadata
from tflite_adaspring.runtime.backend import backend
from tflite_adaspring.runtime.search import (
    Decision,
    Policy,
    SearchState,
    SearchTable,
    decide,
    latency_factor,
    observe_latency,
)
from tflite_adaspring.runtime.slots import ConfigSlot, ModelHandle, Port, StorageStrategy, seal
from tflite_adaspring.runtime.storage import STORAGE_MODES, STORAGE_OVERRIDES

_perf_counter = time.perf_counter

ContextSource = ContextSnapshot | Requirements | Callable[[], ContextSnapshot] | Any


class SignatureRunner:
    """Runs one configuration by signature input names, like LiteRT's ``SignatureRunner``.

    Call it with every input as a keyword argument; returns ``{output name: array}``.
    """

    __slots__ = ("_key", "_owner", "_row", "_slot")

    def __init__(self, owner: Interpreter, key: str, row: int, slot: ConfigSlot | None):
        self._owner = owner
        self._key = key
        self._row = row
        self._slot = slot  # None: resolved per call (evolve mode builds it on first use, blocking)

    @property
    def key(self) -> str:
        """The signature key this runner runs."""
        return self._key

    def _resolve(self) -> ConfigSlot:
        return self._slot or self._owner._storage.build(self._row)

    def __call__(self, **inputs: Any) -> dict[str, np.ndarray]:
        return self._owner._run(self._slot or self._owner._storage.build(self._row), inputs)

    def get_input_details(self) -> dict[str, dict[str, Any]]:
        """Input name -> tensor details (indices are the configuration's own subgraph indices)."""
        slot = self._resolve()
        return {p.name: slot.details(p) for p in slot.input_list}

    def get_output_details(self) -> dict[str, dict[str, Any]]:
        """Output name -> tensor details."""
        slot = self._resolve()
        return {p.name: slot.details(p) for p in slot.output_list}


class ActiveSignatureRunner:
    """A runner that always runs the configuration active at the moment of the call."""

    __slots__ = ("_owner",)

    def __init__(self, owner: Interpreter):
        self._owner = owner

    @property
    def key(self) -> str:
        """The key of the configuration the next call will run."""
        return self._owner._active.key

    def __call__(self, **inputs: Any) -> dict[str, np.ndarray]:
        owner = self._owner
        return owner._run(owner._active, inputs)

    def get_input_details(self) -> dict[str, dict[str, Any]]:
        """Input name -> tensor details of the active configuration."""
        slot = self._owner._active
        return {p.name: slot.details(p) for p in slot.input_list}

    def get_output_details(self) -> dict[str, dict[str, Any]]:
        """Output name -> tensor details of the active configuration."""
        slot = self._owner._active
        return {p.name: slot.details(p) for p in slot.output_list}


class Interpreter:
    """Context-adaptive drop-in for ``ai_edge_litert.interpreter.Interpreter``.

    Args:
      model_path: path of an exported adaptive .tflite.
      model_content: the model bytes (instead of ``model_path``).
      num_threads: interpreter threads (as in LiteRT).
      experimental_delegates: delegates (as in LiteRT).
      context: where :meth:`adapt` reads the context when called without one: an object with a
        ``snapshot()`` method, a callable returning a :class:`ContextSnapshot`, a fixed
        :class:`ContextSnapshot` or :class:`Requirements` (re-stamped with ``time.monotonic()`` on every
        call), or None for an unconstrained static context.
      policy: search policy (default :class:`Policy()`).
      initial_key: configuration active before the first :meth:`adapt`; default the primary signature
        (subgraph 0), the one a plain LiteRT program addresses.
      history_size: how many decisions :attr:`history` keeps.
      warm_up: run every configuration once with zeros at creation (evolve mode: every one built).
      cache_size: evolve mode: how many built configurations to keep besides the primary.
      storage: how to run an evolve-mode file: None or ``"evolve"`` (build configurations on demand) or
        ``"shared"`` (every configuration computes from one copy of the weights through the AdaSpring
        delegate; falls back to evolve mode with a ``RuntimeWarning`` when the delegate is unavailable).
        Packed files only accept None or ``"packed"``.
      **interpreter_kwargs: further LiteRT ``Interpreter`` arguments (``experimental_op_resolver_type`` ...).

    Raises:
      FileNotFoundError: ``model_path`` does not exist.
      ModelFormatError: the model is corrupted, lacks ``adaspring`` metadata, or its storage mode is
        not supported by this runtime.
      ConfigError: ``storage`` does not apply to the model's storage mode.
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        model_content: bytes | None = None,
        num_threads: int | None = None,
        experimental_delegates: list[Any] | None = None,
        context: ContextSource | None = None,
        policy: Policy | None = None,
        initial_key: str | None = None,
        history_size: int = 1024,
        warm_up: bool = True,
        cache_size: int = 4,
        storage: str | None = None,
        **interpreter_kwargs: Any,
    ):
        if (model_path is None) == (model_content is None):
            raise ValueError("pass exactly one of model_path or model_content")
        if history_size < 1:
            raise ValueError(f"history_size must be >= 1, got {history_size}")
        if model_path is not None and not os.path.exists(model_path):
            raise FileNotFoundError(f"model file not found: {model_path}")
        source = model_content if model_content is not None else model_path
        kwargs = dict(interpreter_kwargs, num_threads=num_threads, experimental_delegates=experimental_delegates)
        load = {"model_content": bytes(model_content)} if model_content is not None else {"model_path": str(model_path)}
        try:
            raw = backend().interpreter_class(**load, **kwargs)
        except ValueError as exc:
            name = "model_content" if model_path is None else str(model_path)
            raise ModelFormatError(f"{name}: LiteRT cannot load the model (truncated or corrupted?): {exc}") from exc
        self._metadata = read_metadata(source, verify=False)
        strategy_class = STORAGE_MODES.get(self._metadata.storage_mode)
        if strategy_class is None:
            raise ModelFormatError(
                f"storage_mode {self._metadata.storage_mode!r} is not supported by this runtime "
                f"(supported: {', '.join(STORAGE_MODES)}); upgrade tflite-adaspring"
            )
        lite = backend().interpreter_class

        def make_interpreter(content: bytes) -> Any:
            return lite(model_content=content, **kwargs)

        handle = ModelHandle(raw, self._metadata, source, make_interpreter, cache_size)
        mode = self._metadata.storage_mode
        if storage not in (None, mode, *STORAGE_OVERRIDES.get(mode, ())):
            allowed = ", ".join(repr(m) for m in (mode, *STORAGE_OVERRIDES.get(mode, ())))
            raise ConfigError(f"storage={storage!r} does not apply to a {mode} model; use None or {allowed}")
        if storage == "shared":
            user_delegates = list(experimental_delegates or [])

            def open_interpreter(path: str, extra: Sequence[Any]) -> Any:
                return lite(model_path=path, **dict(kwargs, experimental_delegates=[*extra, *user_delegates]))

            try:
                self._storage: StorageStrategy = STORAGE_OVERRIDES[mode]["shared"](
                    handle, open_interpreter, num_threads or 1
                )
            except DelegateError as exc:
                warnings.warn(f"shared storage unavailable, running in evolve mode: {exc}", RuntimeWarning, 2)
                self._storage = strategy_class(handle)
        else:
            self._storage = strategy_class(handle)
        self._rows = {info.key: row for row, info in enumerate(self._metadata.signatures)}
        self._policy = policy or Policy()
        self._table = SearchTable.from_metadata(self._metadata, self._policy.energy_profile)
        self._context = context

        primary = self._storage.primary()
        self._primary = primary
        self._in_name, self._out_name = self._port_maps(primary)
        self._active: ConfigSlot = primary
        self._last: ConfigSlot | None = None
        self.allocate_tensors()
        if warm_up:
            self._warm_up()

        first_row = self._rows.get(initial_key or primary.key)
        if first_row is None:
            raise ConfigError(f"unknown initial_key {initial_key!r}; known keys: {', '.join(self._rows)}")
        self._active = self._storage.build(first_row)
        self._target = first_row
        self._served_at = _perf_counter()
        self._factor = 1.0  # latency factor of the context the invokes since the last decision ran under
        self._failure: tuple[int, BaseException] | None = None
        self._staged: dict[str, ConfigSlot] = {}
        self._staged_slot: ConfigSlot | None = None
        self._views_issued = False
        self._state = SearchState.initial(self._table, first_row)
        self._lock = threading.Lock()
        self._served = threading.Condition(self._lock)
        self._history: collections.deque[Decision] = collections.deque(maxlen=history_size)
        self._callbacks: tuple[Callable[[Decision], Any], ...] = ()
        self._active_runner = ActiveSignatureRunner(self)
        fixed = self._storage.fixed_slots
        self._runners = {
            key: SignatureRunner(self, key, row, self._storage.ready(row) if fixed else None)
            for key, row in self._rows.items()
        }
        for slot in self._storage.slots():
            seal(slot)

    # ------------------------------------------------------------------------------------------
    # construction helpers

    @staticmethod
    def _port_maps(primary: ConfigSlot) -> tuple[dict[int, str], dict[int, str]]:
        """Port index -> name maps, ordered like the primary subgraph's LiteRT details."""
        w = primary.wrapper
        by_index_in = {p.index: p.name for p in primary.input_list}
        by_index_out = {p.name: p.index for p in primary.output_list}
        if primary.subgraph == 0:
            order_in = [int(i) for i in w.InputIndices() if int(i) in by_index_in]
            order_out = [int(i) for i in w.OutputIndices() if int(i) in by_index_out.values()]
        else:
            order_in, order_out = sorted(by_index_in), sorted(by_index_out.values())
        names_out = {i: n for n, i in by_index_out.items()}
        return {i: by_index_in[i] for i in order_in}, {i: names_out[i] for i in order_out}

    def _live_slots(self) -> Sequence[ConfigSlot]:
        """Every runnable slot, plus the active and last-run ones (which an evolve cache may have evicted)."""
        slots = self._storage.slots()
        if self._storage.fixed_slots:  # packed: every slot is always there
            return slots
        slots = list(slots)
        for extra in (self._active, self._last):
            if extra is not None and all(extra is not s for s in slots):
                slots.append(extra)
        return slots

    def _warm_up(self) -> None:
        for slot in self._storage.slots():
            for port in slot.input_list:
                slot.wrapper.SetTensor(port.index, np.zeros(port.shape, port.dtype), slot.subgraph)
            slot.wrapper.Invoke(slot.subgraph)

    # ------------------------------------------------------------------------------------------
    # hot path

    def _run(self, slot: ConfigSlot, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        """Runs ``slot`` on named inputs (the body of every signature runner)."""
        ports = slot.inputs
        if len(inputs) != len(ports):
            raise InputMismatchError(f"{slot.key} takes inputs {list(ports)}, got {list(inputs)}")
        w = slot.wrapper
        subgraph = slot.subgraph
        for name, value in inputs.items():
            port = ports.get(name)
            if port is None:
                raise InputMismatchError(f"{slot.key} has no input {name!r}; inputs: {list(ports)}")
            if value.__class__ is not np.ndarray or value.shape != port.shape or value.dtype != port.dtype:
                value = self._conform(slot, port, value, resize=True)
            w.SetTensor(port.index, value, subgraph)
        start = _perf_counter()
        w.Invoke(subgraph)
        slot.busy_s += _perf_counter() - start
        slot.invokes += 1
        return {name: w.GetTensor(index, subgraph) for name, index in slot.output_items}

    def _conform(self, slot: ConfigSlot, port: Port, value: Any, resize: bool) -> np.ndarray:
        """Checks (and for runners, resizes to) an input that is not exactly the port's shape/dtype."""
        if not isinstance(value, np.ndarray):
            value = np.asarray(value, dtype=port.dtype)
        if value.dtype != port.dtype:
            raise InputMismatchError(
                f"input {port.name!r} of {slot.key}: expected dtype {port.dtype.name}, got {value.dtype.name}"
            )
        if value.shape != port.shape:
            if not (resize and port.accepts_shape(value.shape)):
                hint = "" if resize else " (call resize_tensor_input first)"
                raise InputMismatchError(
                    f"input {port.name!r} of {slot.key}: expected shape {port.shape} "
                    f"(signature {port.shape_signature}), got {value.shape}{hint}"
                )
            slot.wrapper.ResizeInputTensor(port.index, np.array(value.shape, np.int32), False, slot.subgraph)
            slot.wrapper.AllocateTensors(slot.subgraph)
            slot.refresh_shapes()
        return value

    def invoke(self) -> None:
        """Runs the active configuration on the inputs given with :meth:`set_tensor` / :meth:`tensor`.

        Raises:
          RuntimeError: a numpy view from :meth:`tensor` is still alive (as in LiteRT).
        """
        slot = self._active
        if self._staged_slot is not slot:
            self._carry_inputs(slot)
        if self._views_issued:  # only tensor() hands out views; without them there is nothing to guard
            self._ensure_safe(slot)
        start = _perf_counter()
        slot.wrapper.Invoke(slot.subgraph)
        slot.busy_s += _perf_counter() - start
        slot.invokes += 1
        self._last = slot

    def _carry_inputs(self, slot: ConfigSlot) -> None:
        """Copies inputs staged in other configurations into ``slot`` (after a switch)."""
        for name, source in self._staged.items():
            if source is slot:
                continue
            src, dst = source.inputs[name], slot.inputs[name]
            value = source.wrapper.GetTensor(src.index, source.subgraph)
            if value.shape != dst.shape:
                self._conform(slot, dst, value, resize=True)
            slot.wrapper.SetTensor(dst.index, value, slot.subgraph)
            self._staged[name] = slot
        self._staged_slot = slot

    @staticmethod
    def _ensure_safe(slot: ConfigSlot) -> None:
        """Refuses to run while a numpy view from :meth:`tensor` is alive (as LiteRT does)."""
        if sys.getrefcount(slot.wrapper) > slot.safe_refs:
            raise RuntimeError(
                "There is at least 1 reference to internal data in the interpreter in the form of a numpy "
                "array or slice. Only hold the function returned from tensor(), not the array it returns."
            )

    # ------------------------------------------------------------------------------------------
    # the LiteRT Interpreter API

    def allocate_tensors(self) -> None:
        """Allocates the tensors of every configuration (evolve mode: every one built; later ones allocate
        when built)."""
        for slot in self._live_slots():
            self._ensure_safe(slot)
            slot.wrapper.AllocateTensors(slot.subgraph)
            slot.refresh_shapes()

    def _input_port(self, index: int) -> str:
        name = self._in_name.get(index)
        if name is None:
            raise DataValidationError(f"tensor index {index} is not a model input; inputs: {self._in_name}")
        return name

    def get_input_details(self) -> list[dict[str, Any]]:
        """Input tensor details of the active configuration, ``index`` being the port index."""
        slot = self._active
        return [dict(slot.details(slot.inputs[name]), index=index) for index, name in self._in_name.items()]

    def get_output_details(self) -> list[dict[str, Any]]:
        """Output tensor details of the active configuration, ``index`` being the port index."""
        slot = self._active
        return [dict(slot.details(slot.outputs[name]), index=index) for index, name in self._out_name.items()]

    def set_tensor(self, tensor_index: int, value: Any) -> None:
        """Copies ``value`` into an input of the active configuration.

        Args:
          tensor_index: a port index from :meth:`get_input_details`.
          value: array of the input's exact shape and dtype.

        Raises:
          InputMismatchError: wrong shape or dtype (message says expected vs got).
          DataValidationError: ``tensor_index`` is not an input.
        """
        name = self._in_name.get(tensor_index)
        if name is None:
            self._input_port(tensor_index)
        slot = self._active
        port = slot.inputs[name]
        if value.__class__ is not np.ndarray or value.shape != port.shape or value.dtype != port.dtype:
            value = self._conform(slot, port, value, resize=False)
        slot.wrapper.SetTensor(port.index, value, slot.subgraph)
        if self._staged.get(name) is not slot:
            self._stage(name, slot)

    def _stage(self, name: str, slot: ConfigSlot) -> None:
        """Records that input ``name`` now lives in ``slot``."""
        staged = self._staged
        staged[name] = slot
        self._staged_slot = slot if all(s is slot for s in staged.values()) else None

    def get_tensor(self, tensor_index: int, subgraph_index: int | None = None) -> np.ndarray:
        """A copy of an output of the configuration that ran last (or of a staged input).

        Args:
          tensor_index: a port index from :meth:`get_output_details` / :meth:`get_input_details`.
          subgraph_index: when given, read raw tensor ``tensor_index`` of that subgraph instead.

        Returns:
          The array.
        """
        slot = self._last or self._active
        if subgraph_index is not None:
            return slot.wrapper.GetTensor(tensor_index, subgraph_index)
        name = self._out_name.get(tensor_index)
        if name is not None:
            return slot.wrapper.GetTensor(slot.outputs[name].index, slot.subgraph)
        name = self._input_port(tensor_index)
        slot = self._staged.get(name, self._active)
        return slot.wrapper.GetTensor(slot.inputs[name].index, slot.subgraph)

    def tensor(self, tensor_index: int) -> Callable[[], np.ndarray]:
        """A function returning a numpy view of an input or output of the active configuration.

        Writing into an input view stages that input for :meth:`invoke`. Do not keep the returned
        arrays across :meth:`invoke` (as in LiteRT).
        """
        out_name = self._out_name.get(tensor_index)
        in_name = None if out_name is not None else self._input_port(tensor_index)
        self._views_issued = True

        def view() -> np.ndarray:
            if out_name is not None:
                slot = self._last or self._active
                port = slot.outputs[out_name]
            else:
                slot = self._active
                port = slot.inputs[in_name]
                self._stage(in_name, slot)
            return slot.wrapper.tensor(slot.wrapper, port.index, slot.subgraph)

        return view

    def resize_tensor_input(self, input_index: int, tensor_size: Any, strict: bool = False) -> None:
        """Resizes an input in every configuration (call :meth:`allocate_tensors` afterwards).

        Args:
          input_index: a port index from :meth:`get_input_details`.
          tensor_size: the new shape.
          strict: only resize dimensions that are -1 in the signature.
        """
        name = self._input_port(input_index)
        size = np.array(tensor_size, dtype=np.int32)
        slots = self._live_slots()
        for slot in slots:
            self._ensure_safe(slot)
        self._storage.set_input_size(name, size)
        for slot in slots:
            slot.wrapper.ResizeInputTensor(slot.inputs[name].index, size, strict, slot.subgraph)

    def get_signature_list(self) -> dict[str, dict[str, list[str]]]:
        """Signature key -> ``{"inputs": [...], "outputs": [...]}`` of every configuration."""
        primary = self._primary
        ports = {"inputs": [p.name for p in primary.input_list], "outputs": [p.name for p in primary.output_list]}
        return {key: {k: list(v) for k, v in ports.items()} for key in self._rows}

    def get_signature_runner(self, signature_key: str | None = None) -> SignatureRunner | ActiveSignatureRunner:
        """A runner for one configuration, or (no key) one that follows the active configuration.

        Raises:
          ConfigError: unknown key (the message lists the known keys).
        """
        if signature_key is None:
            return self._active_runner
        runner = self._runners.get(signature_key)
        if runner is None:
            raise ConfigError(f"unknown signature key {signature_key!r}; known keys: {', '.join(self._runners)}")
        return runner

    def num_subgraphs(self) -> int:
        """Number of subgraphs of the underlying model."""
        return self._primary.interpreter.num_subgraphs()

    # ------------------------------------------------------------------------------------------
    # adaptation

    @property
    def active(self) -> str:
        """Key of the configuration serving invokes now."""
        return self._active.key

    @property
    def target(self) -> str:
        """Key of the configuration the last switch asked for (differs from :attr:`active` while an
        evolve-mode build is in progress)."""
        return self._metadata.signatures[self._target].key

    @property
    def served_at(self) -> float:
        """``time.perf_counter()`` when the serving configuration last changed (the swap itself, not when
        a waiter noticed it)."""
        return self._served_at

    @property
    def storage_mode(self) -> str:
        """How the model runs: ``packed``, ``evolve`` or ``shared``."""
        return self._storage.mode

    def wait_until_active(self, timeout: float | None = None) -> bool:
        """Blocks until the configuration of the last switch serves (returns at once in packed mode).

        Args:
          timeout: seconds to wait at most (None: no limit).

        Returns:
          True when :attr:`active` equals :attr:`target`, False on timeout.

        Raises:
          ModelFormatError: building the requested configuration failed (the previous one keeps serving).
        """
        with self._served:
            wanted = self._target
            done = self._served.wait_for(lambda: self._active.row == self._target, timeout)
            failure = self._failure
        if failure is not None and failure[0] == wanted:
            key = self._metadata.signatures[wanted].key
            raise ModelFormatError(f"building configuration {key} failed: {failure[1]}") from failure[1]
        return done

    def close(self) -> None:
        """Stops background work (evolve mode's builder thread); the interpreter keeps serving."""
        self._storage.close()

    @property
    def active_config(self) -> SignatureInfo:
        """Metadata row of the active configuration."""
        return self._metadata.signatures[self._active.row]

    @property
    def configs(self) -> tuple[SignatureInfo, ...]:
        """The metadata table, one row per configuration."""
        return self._metadata.signatures

    @property
    def metadata(self) -> ModelMetadata:
        """The model's ``adaspring`` metadata."""
        return self._metadata

    @property
    def policy(self) -> Policy:
        """The search policy."""
        return self._policy

    @property
    def table(self) -> SearchTable:
        """The precomputed search table."""
        return self._table

    @property
    def state(self) -> SearchState:
        """The search state after the last decision."""
        return self._state

    @property
    def history(self) -> collections.deque[Decision]:
        """The most recent decisions, oldest first (bounded)."""
        return self._history

    def add_switch_callback(self, fn: Callable[[Decision], Any]) -> None:
        """Calls ``fn(decision)`` after every switch (on the thread that switched)."""
        self._callbacks = (*self._callbacks, fn)

    def remove_switch_callback(self, fn: Callable[[Decision], Any]) -> None:
        """Stops calling ``fn``; unknown functions are ignored."""
        self._callbacks = tuple(f for f in self._callbacks if f != fn)

    def _snapshot(self, context: ContextSource | None) -> ContextSnapshot:
        if isinstance(context, ContextSnapshot):
            return context
        source = self._context if context is None else context
        if source is None:
            return ContextSnapshot(timestamp=time.monotonic())
        if isinstance(source, Requirements):
            return ContextSnapshot(timestamp=time.monotonic(), requirements=source)
        if isinstance(source, ContextSnapshot):
            return dataclasses.replace(source, timestamp=time.monotonic())
        snapshot = source.snapshot() if hasattr(source, "snapshot") else source() if callable(source) else source
        if not isinstance(snapshot, ContextSnapshot):
            raise DataValidationError(
                f"context must be a ContextSnapshot, Requirements, an object with snapshot() or a callable "
                f"returning a ContextSnapshot; got {type(snapshot).__name__}"
            )
        return snapshot

    def _fold_observations(self, state: SearchState, factor: float) -> SearchState:
        alpha = self._policy.ema_alpha
        for slot in self._live_slots():
            n = slot.invokes - slot.folded_n
            if n > 0:
                busy = slot.busy_s - slot.folded_s
                slot.folded_n += n
                slot.folded_s += busy
                state = observe_latency(self._table, state, slot.row, busy * 1e3 / n, n, factor, alpha)
        return state

    def adapt(self, context: ContextSource | None = None) -> Decision:
        """Reads the context, runs the search and switches configuration if it says so.

        Args:
          context: a :class:`ContextSnapshot` to decide on, or a source as in the constructor;
            None uses the constructor's ``context``.

        Returns:
          The decision (also appended to :attr:`history`).
        """
        snapshot = self._snapshot(context)
        with self._lock:
            # invokes since the last decision ran under the previous context: divide by its factor
            state = self._fold_observations(self._state, self._factor)
            self._factor = latency_factor(snapshot)
            decision, state = decide(self._table, self._policy, snapshot, state)
            self._state = state
            if decision.switched:
                self._switch(decision.index)
            self._history.append(decision)
        if decision.switched:
            for fn in self._callbacks:
                fn(decision)
        return decision

    def record_latency(self, latency_ms: float, count: int = 1, key: str | None = None) -> None:
        """Folds latencies timed outside :meth:`invoke` into the latency model, as invokes would be.

        For apps that time their own inference (an asynchronous pipeline, a remote call) and for trace
        replays; the runtime's own invokes are counted without this. The latency is taken to have been
        measured under the context of the last :meth:`adapt` (its slowdown is divided out).

        Args:
          latency_ms: mean latency of ``count`` runs.
          count: runs averaged in ``latency_ms``.
          key: the configuration that ran (default: the active one).

        Raises:
          ConfigError: an unknown key.
          DataValidationError: a latency that is not a positive finite number, or ``count`` < 1.
        """
        if not (isinstance(latency_ms, (int, float)) and math.isfinite(latency_ms) and latency_ms > 0):
            raise DataValidationError(f"latency_ms must be a positive finite number (ms), got {latency_ms!r}")
        if not isinstance(count, int) or count < 1:
            raise DataValidationError(f"count must be an integer >= 1, got {count!r}")
        row = self._rows.get(self.active if key is None else key)
        if row is None:
            raise ConfigError(f"unknown configuration {key!r}; known keys: {', '.join(self._rows)}")
        with self._lock:
            self._state = observe_latency(self._table, self._state, row, float(latency_ms), count, self._factor,
                                          self._policy.ema_alpha)  # fmt: skip

    def set_active(self, key: str, timestamp: float | None = None) -> Decision:
        """Switches to ``key`` by hand (the search's dwell time counts from here).

        Args:
          key: signature key.
          timestamp: time of the switch in the context's clock; default ``time.monotonic()``.

        Returns:
          The manual decision (``feasible`` is -1: not evaluated).

        Raises:
          ConfigError: unknown key.
        """
        row = self._rows.get(key)
        if row is None:
            raise ConfigError(f"unknown configuration {key!r}; known keys: {', '.join(self._rows)}")
        now = time.monotonic() if timestamp is None else timestamp
        with self._lock:
            previous = self._target
            switched = row != previous
            if switched:
                self._state = self._state.with_current(row, now)
                self._switch(row)
            decision = Decision(
                key=key,
                index=row,
                switched=switched,
                previous=self._metadata.signatures[previous].key,
                reason="manual",
                feasible=-1,
                predicted_latency_ms=float(self._table.latency_ms[row] * self._state.effective_ratio[row]),
                objective=float("nan"),
                timestamp=now,
            )
            self._history.append(decision)
        if switched:
            for fn in self._callbacks:
                fn(decision)
        return decision

    def _switch(self, row: int) -> None:
        """Makes ``row`` the target and serves it as soon as it is runnable (call with the lock held)."""
        self._target = row
        self._failure = None
        if self._active.row == row:
            return
        slot = self._storage.request(row, self._built)
        if slot is not None:
            self._active = slot
            self._served_at = _perf_counter()
            self._served.notify_all()

    def _built(self, row: int, slot: ConfigSlot | None, error: BaseException | None) -> None:
        """A background build finished: swap it in if it is still the target (builder thread)."""
        with self._lock:
            if error is not None:
                if self._target == row:  # keep serving (and searching from) the configuration that runs
                    self._failure = (row, error)
                    self._target = self._active.row
                    self._state = self._state.with_current(self._active.row, self._state.last_switch_s)
            elif self._target == row and self._active is not slot:
                self._active = slot
                self._served_at = _perf_counter()
            self._served.notify_all()
