"""Micro-benchmarks of the runtime: search decision, adapt (search + switch), evolve-mode switch, invoke
overhead, metadata read.

Every function returns a flat dict of numbers (microseconds unless the key says otherwise) so the
results can be written as JSON. Timings use ``time.perf_counter``; the garbage collector is paused
while timing.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from tflite_adaspring.context.snapshot import ENERGY_MODES, ContextSnapshot, Requirements
from tflite_adaspring.errors import ConfigError
from tflite_adaspring.metadata import ModelMetadata, ModelSource, read_metadata
from tflite_adaspring.runtime.backend import backend
from tflite_adaspring.runtime.interpreter import Interpreter
from tflite_adaspring.runtime.search import Policy, SearchState, SearchTable, decide


def _percentiles(seconds: np.ndarray, prefix: str) -> dict[str, float]:
    us = seconds * 1e6
    return {f"{prefix}_p50_us": float(np.median(us)), f"{prefix}_p99_us": float(np.percentile(us, 99))}


def _load(model: ModelSource) -> dict[str, Any]:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return {"model_content": bytes(model)}
    return {"model_path": str(model)}


def _timed(fn: Callable[[], Any], n: int) -> np.ndarray:
    out = np.empty(n)
    enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(n):
            start = time.perf_counter()
            fn()
            out[i] = time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()
    return out


def random_contexts(table: SearchTable, n: int, seed: int = 0) -> Iterator[ContextSnapshot]:
    """Random but plausible contexts around a table's latency and memory range.

    Args:
      table: the table whose ranges the budgets are drawn from.
      n: how many.
      seed: RNG seed.

    Yields:
      Snapshots with increasing timestamps (0.1 s apart); each field is unknown ~20-50 % of the time.
    """
    rng = np.random.default_rng(seed)
    lat_lo, lat_hi = float(table.latency_ms.min()), float(table.latency_ms.max())
    mem_lo, mem_hi = float(table.memory_bytes.min()), float(table.memory_bytes.max())
    acc_lo, acc_hi = float(table.accuracy.min()), float(table.accuracy.max())

    def maybe(p: float, value: Any) -> Any:
        return value if rng.random() < p else None

    for i in range(n):
        yield ContextSnapshot(
            timestamp=0.1 * i,
            battery_percent=maybe(0.8, float(rng.uniform(0, 100))),
            charging=bool(rng.random() < 0.3),
            cpu_contention=maybe(0.7, float(rng.uniform(1.0, 3.0))),
            cpu_freq_ratio=maybe(0.5, float(rng.uniform(0.3, 1.0))),
            memory_available_bytes=maybe(0.5, int(rng.uniform(0.5 * mem_lo, 1.5 * mem_hi))),
            requirements=Requirements(
                latency_budget_ms=maybe(0.8, float(rng.uniform(0.5 * lat_lo, 1.5 * lat_hi))),
                min_accuracy=maybe(0.5, float(rng.uniform(acc_lo - 0.05, min(1.0, acc_hi + 0.02)))),
                energy_mode=str(rng.choice(ENERGY_MODES)),
            ),
        )


def bench_search(metadata: ModelMetadata, n: int = 10_000, policy: Policy | None = None) -> dict[str, float]:
    """Cost of one :func:`decide` over ``n`` random contexts.

    Args:
      metadata: the configuration table.
      n: number of decisions.
      policy: search policy.

    Returns:
      ``search_p50_us``, ``search_p99_us``, ``configs``, ``infeasible_fraction``, ``switch_fraction``.
    """
    policy = policy or Policy()
    table = SearchTable.from_metadata(metadata, policy.energy_profile)
    contexts = list(random_contexts(table, n))
    state = SearchState.initial(table)
    times = np.empty(n)
    infeasible = switches = 0
    gc.disable()
    try:
        for i, context in enumerate(contexts):
            start = time.perf_counter()
            decision, state = decide(table, policy, context, state)
            times[i] = time.perf_counter() - start
            infeasible += decision.feasible == 0
            switches += decision.switched
    finally:
        gc.enable()
    return {
        **_percentiles(times, "search"),
        "configs": float(len(table)),
        "infeasible_fraction": infeasible / n,
        "switch_fraction": switches / n,
    }


def bench_switch(interpreter: Interpreter, n: int = 2_000) -> dict[str, float]:
    """Cost of a switch: :meth:`Interpreter.adapt` that changes configuration, and :meth:`set_active`.

    The interpreter's policy should have ``dwell_s=0`` so every other context forces a switch.

    Args:
      interpreter: an adaptive interpreter with at least two configurations.
      n: number of switches of each kind.

    Returns:
      ``adapt_switch_p50_us`` / ``_p99_us``, ``set_active_p50_us`` / ``_p99_us``, ``adapt_switched_fraction``.
    """
    loose = Requirements(energy_mode="performance")
    tight = Requirements(latency_budget_ms=1e-9, energy_mode="performance")
    contexts = [ContextSnapshot(timestamp=1e6 + i, requirements=tight if i % 2 else loose) for i in range(n)]
    it = iter(contexts)
    adapt_times = _timed(lambda: interpreter.adapt(next(it)), n)
    history = list(interpreter.history)[-n:]
    keys = [c.key for c in interpreter.configs]
    order = iter(keys[i % len(keys)] for i in range(1, n + 1))
    set_times = _timed(lambda: interpreter.set_active(next(order)), n)
    return {
        **_percentiles(adapt_times, "adapt_switch"),
        **_percentiles(set_times, "set_active"),
        "adapt_switched_fraction": sum(d.switched for d in history) / max(len(history), 1),
    }


def bench_adapt(model: ModelSource, n: int = 10_000, seed: int = 0, policy: Policy | None = None) -> dict[str, float]:
    """Cost of :meth:`Interpreter.adapt` (search + switch) over ``n`` random context changes.

    Args:
      model: an adaptive model (packed mode: a switch is a reference assignment).
      n: number of context changes.
      seed: RNG seed of the contexts.
      policy: search policy (default: no dwell, no margin, so contexts really switch).

    Returns:
      ``adapt_p50_us`` / ``_p99_us`` over all calls, ``switched_p50_us`` / ``_p99_us`` over the calls
      that switched, ``switched_fraction`` and ``contexts``.
    """
    policy = policy or Policy(dwell_s=0.0, switch_margin=0.0)
    interp = Interpreter(**_load(model), policy=policy, history_size=max(1, n))
    contexts = list(random_contexts(interp.table, n, seed))
    it = iter(contexts)
    times = _timed(lambda: interp.adapt(next(it)), n)
    switched = np.array([d.switched for d in interp.history], dtype=bool)
    out = {**_percentiles(times, "adapt"), "contexts": float(n)}
    if switched.any():
        out.update(_percentiles(times[switched], "switched"))
    out["switched_fraction"] = float(switched.mean())
    interp.close()
    return out


def bench_evolve_switch(model: ModelSource, n: int = 200, seed: int = 0, num_threads: int | None = None) -> dict:
    """Evolve mode: time from a switch request until the new configuration serves.

    ``cold``: a cache of one built configuration and targets that are never cached, so every switch
    derives weights and builds, allocates and warms an interpreter in the background. ``cached``: every
    configuration built once beforehand (cache as large as the table), so switches hit the cache.

    Args:
      model: an evolve-mode model with at least two configurations besides its primary.
      n: switches per variant.
      seed: RNG seed of the target sequence.
      num_threads: interpreter threads.

    Returns:
      ``cold_p50_ms`` / ``cold_p95_ms`` / ``cold_max_ms``, ``build_p50_ms`` / ``build_p95_ms`` (the
      builder thread's own time), ``cached_p50_ms`` / ``cached_p95_ms`` and ``switches``.

    Raises:
      ConfigError: the model is not evolve mode or has too few configurations.
    """
    rng = np.random.default_rng(seed)
    interp = Interpreter(**_load(model), num_threads=num_threads, cache_size=1)
    if interp.storage_mode != "evolve":
        raise ConfigError(f"bench_evolve_switch needs an evolve-mode model, got {interp.storage_mode}")
    built = [k for k in interp.metadata.keys if k != interp.active]
    if len(built) < 2:
        raise ConfigError("bench_evolve_switch needs at least two configurations besides the primary")

    def switch_times(target: Interpreter, keys: list[str]) -> np.ndarray:
        out = np.empty(n)
        for i in range(n):
            key = str(rng.choice([k for k in keys if k != target.active]))
            start = time.perf_counter()
            target.set_active(key)
            target.wait_until_active()
            out[i] = target.served_at - start  # the swap, not the waiter's wake-up
        return out

    cold = switch_times(interp, built) * 1e3
    build_ms = np.array(interp._storage.build_ms)
    interp.close()
    keys = list(interp.metadata.keys)
    warm = Interpreter(**_load(model), num_threads=num_threads, cache_size=len(keys))
    for key in keys:
        warm.set_active(key)
        warm.wait_until_active()
    cached = switch_times(warm, keys) * 1e3
    warm.close()
    return {
        "cold_p50_ms": float(np.median(cold)),
        "cold_p95_ms": float(np.percentile(cold, 95)),
        "cold_max_ms": float(cold.max()),
        "build_p50_ms": float(np.median(build_ms)),
        "build_p95_ms": float(np.percentile(build_ms, 95)),
        "cached_p50_ms": float(np.median(cached)),
        "cached_p95_ms": float(np.percentile(cached, 95)),
        "switches": float(n),
    }


def bench_build_interference(
    model: ModelSource, n: int = 3000, num_threads: int | None = None, min_builds: int = 5
) -> dict:
    """Evolve mode: invoke latency on the serving thread while the builder thread builds, vs idle.

    A fixed-key runner of the primary configuration is timed ``n`` times with nothing else running,
    then at least ``n`` times (and until ``min_builds`` builds finished) while another thread keeps
    switching between the other configurations with a one-slot cache (so builds run back to back).
    LiteRT's invoke releases the GIL; building does not always, so this shows what a build costs the
    serving thread.

    Args:
      model: an evolve-mode model with at least two configurations besides its primary.
      n: timed invokes per variant.
      num_threads: interpreter threads.
      min_builds: builds that must overlap the timed invokes.

    Returns:
      ``idle_p50_us`` / ``idle_p99_us``, ``during_builds_p50_us`` / ``during_builds_p99_us`` and
      ``builds`` (builds completed while timing).
    """
    interp = Interpreter(**_load(model), num_threads=num_threads, cache_size=1)
    primary = interp.active
    others = [k for k in interp.metadata.keys if k != primary]
    if interp.storage_mode != "evolve" or len(others) < 2:
        raise ConfigError("bench_build_interference needs an evolve-mode model with >= 3 configurations")
    runner = interp.get_signature_runner(primary)
    name, spec = next(iter(runner.get_input_details().items()))
    x = np.zeros(spec["shape"], spec["dtype"])
    idle = _timed(lambda: runner(**{name: x}), n)
    stop = threading.Event()

    def switcher() -> None:
        i = 0
        while not stop.is_set():
            interp.set_active(others[i % len(others)])
            interp.wait_until_active()
            i += 1

    thread = threading.Thread(target=switcher, daemon=True)
    before = len(interp._storage.build_ms)
    thread.start()
    chunks, deadline = [], time.monotonic() + 30.0
    while sum(len(c) for c in chunks) < n or len(interp._storage.build_ms) - before < min_builds:
        chunks.append(_timed(lambda: runner(**{name: x}), 100))
        if time.monotonic() > deadline:
            break
    busy = np.concatenate(chunks)
    builds = len(interp._storage.build_ms) - before
    stop.set()
    thread.join()
    interp.close()
    return {**_percentiles(idle, "idle"), **_percentiles(busy, "during_builds"), "builds": float(builds)}


def bench_invoke_overhead(
    model: ModelSource, key: str | None = None, n: int = 5_000, rounds: int = 5, num_threads: int | None = None
) -> dict[str, float]:
    """Wrapper invoke cost vs LiteRT's own ``SignatureRunner`` and plain API on the same signature.

    Raw LiteRT and the wrapper run interleaved in ``rounds`` blocks of ``n`` calls each in one process.

    Args:
      model: the adaptive model.
      key: configuration to run; default the one with the fewest MACs.
      n: calls per block.
      rounds: blocks per variant.
      num_threads: interpreter threads.

    Returns:
      Median per-call µs of ``raw_runner``, ``wrapper_runner`` (active-following), ``wrapper_fixed_runner``,
      ``raw_plain`` (LiteRT's native wrapper called directly on the signature's subgraph),
      ``raw_plain_api`` (LiteRT's public set_tensor/invoke/get_tensor; only when ``key`` is subgraph 0) and
      ``wrapper_plain`` (set_tensor + invoke + get_tensor), plus ``runner_ratio``, ``runner_overhead_us``,
      ``plain_ratio`` and ``plain_overhead_us`` (against ``raw_plain``).
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        load: dict[str, Any] = {"model_content": bytes(model)}
    else:
        load = {"model_path": str(model)}
    ours = Interpreter(**load, num_threads=num_threads)
    key = key or min(ours.configs, key=lambda c: c.macs).key
    ours.set_active(key)
    raw = backend().interpreter_class(**load, num_threads=num_threads)
    raw.allocate_tensors()
    detail = ours.get_signature_runner(key).get_input_details()
    name, spec = next(iter(detail.items()))
    x = np.random.default_rng(0).normal(size=spec["shape"]).astype(spec["dtype"])

    # plain API on the raw interpreter only addresses subgraph 0: drive it through the native wrapper
    wrapper = raw._interpreter
    subgraph = wrapper.GetSubgraphIndexFromSignature(key)
    signature = raw._get_full_signature_list()[key]
    raw_in, raw_out = signature["inputs"][name], next(iter(signature["outputs"].values()))
    port_in, port_out = ours.get_input_details()[0]["index"], ours.get_output_details()[0]["index"]

    def raw_plain() -> None:
        wrapper.SetTensor(raw_in, x, subgraph)
        wrapper.Invoke(subgraph)
        wrapper.GetTensor(raw_out, subgraph)

    def wrapper_plain() -> None:
        ours.set_tensor(port_in, x)
        ours.invoke()
        ours.get_tensor(port_out)

    # LiteRT's public plain API (subgraph 0 only) on its own interpreter: its invoke() refuses to run
    # while anything else (a runner, a local alias) references the native wrapper
    raw_api = backend().interpreter_class(**load, num_threads=num_threads)
    raw_api.allocate_tensors()
    raw_api_in, raw_api_out = raw_api.get_input_details()[0]["index"], raw_api.get_output_details()[0]["index"]

    def raw_plain_api() -> None:
        raw_api.set_tensor(raw_api_in, x)
        raw_api.invoke()
        raw_api.get_tensor(raw_api_out)

    raw_runner = raw.get_signature_runner(key)
    active_runner, fixed_runner = ours.get_signature_runner(), ours.get_signature_runner(key)
    variants: dict[str, Callable[[], Any]] = {
        "raw_runner": lambda: raw_runner(**{name: x}),
        "wrapper_runner": lambda: active_runner(**{name: x}),
        "wrapper_fixed_runner": lambda: fixed_runner(**{name: x}),
        "raw_plain": raw_plain,
        "wrapper_plain": wrapper_plain,
    }
    if subgraph == 0:
        variants["raw_plain_api"] = raw_plain_api
    for fn in variants.values():  # warm caches
        _timed(fn, 200)
    medians: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(rounds):
        for label, fn in variants.items():
            medians[label].append(float(np.median(_timed(fn, n))) * 1e6)
    out = {f"{label}_us": float(np.median(values)) for label, values in medians.items()}
    out["runner_ratio"] = out["wrapper_runner_us"] / out["raw_runner_us"]
    out["runner_overhead_us"] = out["wrapper_runner_us"] - out["raw_runner_us"]
    out["plain_ratio"] = out["wrapper_plain_us"] / out["raw_plain_us"]
    out["plain_overhead_us"] = out["wrapper_plain_us"] - out["raw_plain_us"]
    return out


def bench_metadata_read(model: ModelSource, n: int = 500) -> dict[str, float]:
    """Cost of :func:`read_metadata` with and without LiteRT's verifier.

    Args:
      model: model bytes or path.
      n: reads per variant.

    Returns:
      ``read_verified_p50_us`` / ``_p99_us`` and ``read_unverified_p50_us`` / ``_p99_us``.
    """
    return {
        **_percentiles(_timed(lambda: read_metadata(model), n), "read_verified"),
        **_percentiles(_timed(lambda: read_metadata(model, verify=False), n), "read_unverified"),
    }


def bench_creation(model: ModelSource, n: int = 50) -> dict[str, float]:
    """Cost of creating the wrapper (LiteRT load + allocate + metadata + slots) with and without warm-up.

    Args:
      model: model bytes or path.
      n: creations per variant.

    Returns:
      ``create_warm_p50_us`` / ``_p99_us`` and ``create_cold_p50_us`` / ``_p99_us``.
    """
    load = (
        {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray, memoryview)) else {"model_path": model}
    )
    return {
        **_percentiles(_timed(lambda: Interpreter(**load), n), "create_warm"),
        **_percentiles(_timed(lambda: Interpreter(**load, warm_up=False), n), "create_cold"),
    }


def _weight_bytes(model: ModelSource, key: str) -> int:
    """Bytes of the float32 constant tensors (the weights) of one signature of a model."""
    from tflite_adaspring.metadata import open_model_buffer, tflite_schema

    buf, _ = open_model_buffer(model)
    try:
        flat = tflite_schema().Model.GetRootAs(buf, 0)
        subgraph = next(
            flat.SignatureDefs(i).SubgraphIndex()
            for i in range(flat.SignatureDefsLength())
            if flat.SignatureDefs(i).SignatureKey().decode() == key
        )
        graph, total = flat.Subgraphs(subgraph), 0
        for i in range(graph.TensorsLength()):
            tensor = graph.Tensors(i)
            buffer = flat.Buffers(tensor.Buffer())
            if tensor.Type() == 0:
                total += buffer.DataLength() or (buffer.Size() if buffer.Offset() > 1 else 0)
        return int(total)
    finally:
        if hasattr(buf, "close"):
            buf.close()


def bench_shared(
    packed: ModelSource,
    evolve: ModelSource,
    switches: int = 10_000,
    n: int = 500,
    rounds: int = 15,
    num_threads: int | None = None,
) -> dict[str, Any]:
    """Shared mode against packed XNNPACK on the same configurations, in one process.

    Args:
      packed: the packed model of the configurations (XNNPACK reference).
      evolve: the evolve-mode model run with ``storage="shared"``.
      switches: ``set_active`` calls timed (cycling through every configuration).
      n: invokes per timing block.
      rounds: interleaved blocks per variant (packed and shared alternate).
      num_threads: interpreter and delegate threads.

    Returns:
      ``switch_p50_ms``/``switch_p99_ms``; per configuration (``configs``) and for the ``full`` (most
      MACs) and ``smallest`` configuration: packed and shared median µs per invoke (wall clock;
      ``_cpu_us``: the invoking thread's CPU time, insensitive to preemption on a busy machine), their
      ``ratio`` (``cpu_ratio``), whether the delegate computes it (``on_delegate``; the file's own
      primary graph runs on LiteRT's kernels) and its ``max_abs_diff`` to packed on 8 random inputs;
      the worst of those
      (``max_abs_diff``, ``max_delegate_ratio``); ``file_bytes``, ``backbone_weight_bytes`` (float32
      weights of the full configuration), ``file_ratio`` and ``weight_source_bytes``.

    Raises:
      ConfigError: shared mode is not available (the reason of the fallback is quoted).
    """
    import warnings

    from tflite_adaspring.metadata import open_model_buffer

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shared = Interpreter(**_load(evolve), num_threads=num_threads, storage="shared")
    if shared.storage_mode != "shared":
        raise ConfigError(f"shared mode is not available: {'; '.join(str(w.message) for w in caught)}")
    reference = backend().interpreter_class(**_load(packed), num_threads=num_threads)
    keys = shared.metadata.keys
    missing = set(keys) - set(reference.get_signature_list())
    if missing:
        raise ConfigError(f"the packed model lacks configurations {sorted(missing)} of the evolve model")
    storage = shared._storage
    primary = storage.primary().key

    cycle = [keys[i % len(keys)] for i in range(switches + 1)]
    position = iter(range(1, switches + 1))
    times = _timed(lambda: shared.set_active(cycle[next(position)]), switches)

    detail = reference.get_signature_runner(keys[0]).get_input_details()
    name, spec = next(iter(detail.items()))
    x = np.random.default_rng(0).normal(size=spec["shape"]).astype(spec["dtype"])
    configs = {}
    probes = np.random.default_rng(1).normal(size=(8, *spec["shape"])).astype(spec["dtype"])
    for row in shared.configs:
        ours = storage.ready(shared.metadata.keys.index(row.key)).interpreter.get_signature_runner(row.key)
        theirs = reference.get_signature_runner(row.key)
        diff = 0.0
        for probe in probes:
            expected, got = theirs(**{name: probe}), ours(**{name: probe})
            diff = max(diff, *(float(np.max(np.abs(got[k] - v))) for k, v in expected.items()))
        variants = {"packed": lambda r=theirs: r(**{name: x}), "shared": lambda r=ours: r(**{name: x})}
        for fn in variants.values():
            _timed(fn, 100)
        blocks: dict[str, list[float]] = {v: [] for v in variants}
        cpu: dict[str, list[float]] = {v: [] for v in variants}
        for _ in range(rounds):
            for label, fn in variants.items():
                start = time.thread_time()
                blocks[label].append(float(np.median(_timed(fn, n))) * 1e6)
                cpu[label].append((time.thread_time() - start) / n * 1e6)
        entry = {f"{label}_us": float(np.median(v)) for label, v in blocks.items()}
        entry.update({f"{label}_cpu_us": float(np.median(v)) for label, v in cpu.items()})
        entry["ratio"] = entry["shared_us"] / entry["packed_us"]
        entry["cpu_ratio"] = entry["shared_cpu_us"] / entry["packed_cpu_us"]
        entry.update(on_delegate=row.key != primary, macs=row.macs, max_abs_diff=diff)
        configs[row.key] = entry
    by_macs = sorted(shared.configs, key=lambda r: r.macs)
    full, smallest = by_macs[-1].key, by_macs[0].key
    buf, _ = open_model_buffer(evolve)
    file_bytes = len(buf)
    if hasattr(buf, "close"):
        buf.close()
    backbone = _weight_bytes(packed, full)
    us = times * 1e6
    on_delegate = [c["ratio"] for c in configs.values() if c["on_delegate"]]
    return {
        "configs": configs,
        "max_abs_diff": max(c["max_abs_diff"] for c in configs.values()),
        "max_delegate_ratio": max(on_delegate, default=float("nan")),
        "full": {"key": full, **configs[full]},
        "smallest": {"key": smallest, **configs[smallest]},
        "primary": primary,
        "switch_p50_ms": float(np.median(us)) / 1e3,
        "switch_p99_ms": float(np.percentile(us, 99)) / 1e3,
        "switches": switches,
        "file_bytes": file_bytes,
        "backbone_weight_bytes": backbone,
        "file_ratio": file_bytes / backbone,
        "weight_source_bytes": storage.weight_source_bytes,
        "delegate_threads": num_threads or 1,
    }
