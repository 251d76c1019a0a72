"""A switch storm: one thread switches configurations while the caller's thread keeps invoking.

Shared by the packed (tests/test_runtime_threads.py) and evolve (tests/test_runtime_evolve.py) stress
tests: every output must equal the output of one whole configuration for the input that was set.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from tflite_adaspring.context.snapshot import ContextSnapshot, Requirements


@dataclasses.dataclass
class StormResult:
    """What a storm saw.

    Attributes:
      requested: the interpreter's target after each switch request.
      seen: (configuration, input number) -> how many outputs came from it.
      torn: (invoke number, owner or None) of every output no single configuration produces.
      errors: exceptions raised on the switching thread.
      invokes: invokes run.
    """

    requested: list[str] = dataclasses.field(default_factory=list)
    seen: dict[tuple[str, int], int] = dataclasses.field(default_factory=dict)
    torn: list[tuple[int, tuple[str, int] | None]] = dataclasses.field(default_factory=list)
    errors: list[BaseException] = dataclasses.field(default_factory=list)
    invokes: int = 0


@contextmanager
def fine_thread_switching() -> Iterator[None]:
    """Interleaves threads as finely as CPython allows."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_storm(
    interp,
    switches: int,
    key_for: Callable[[int], str],
    invoke: Callable[[int, int], np.ndarray],
    owner: dict[bytes, tuple[str, int]],
    inputs: int,
    pause: Callable[[int], None] = lambda i: None,
    min_invokes: int = 0,
) -> StormResult:
    """Runs the storm.

    Args:
      interp: the adaptive interpreter.
      switches: switch requests; every 10th is an ``adapt`` (alternately tight and loose budget), the rest
        ``set_active(key_for(i))``.
      key_for: the configuration of request ``i``.
      invoke: ``(invoke number, input number) -> output`` on the caller's thread.
      owner: output bytes -> (configuration, input number), each configuration computed alone.
      inputs: how many inputs there are (invoke ``n`` uses input ``n % inputs``).
      pause: called after request ``i`` on the switching thread.
      min_invokes: keep invoking until at least this many ran.

    Returns:
      The :class:`StormResult`.
    """
    result = StormResult()
    done = threading.Event()

    def switcher() -> None:
        try:
            loose, tight = Requirements(energy_mode="performance"), Requirements(latency_budget_ms=1e-6)
            for i in range(switches):
                if i % 10 == 9:
                    interp.adapt(ContextSnapshot(timestamp=float(i), requirements=tight if i % 20 == 9 else loose))
                else:
                    interp.set_active(key_for(i))
                result.requested.append(interp.target)
                pause(i)
        except BaseException as exc:
            result.errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=switcher)
    thread.start()
    n = 0
    while not done.is_set() or n < min_invokes:
        j = n % inputs
        who = owner.get(invoke(n, j).tobytes())
        if who is None or who[1] != j:
            result.torn.append((n, who))
        else:
            result.seen[who] = result.seen.get(who, 0) + 1
        n += 1
    thread.join()
    result.invokes = n
    return result
