"""A context thread switching configurations never tears an invoke running on another thread."""

from __future__ import annotations

import itertools
import sys
import threading
import time

import model_factory as mf
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter

from tflite_adaspring.context.snapshot import ContextSnapshot, Requirements
from tflite_adaspring.runtime import Interpreter, Policy

KEYS = mf.config_keys(len(mf.DEFAULT_WIDTHS))
SWITCHES = 12_000


@pytest.fixture()
def fast_thread_switching():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # interleave the two threads as finely as CPython allows
    yield
    sys.setswitchinterval(old)


def test_switch_storm_during_invokes(fast_thread_switching: None) -> None:
    model = mf.build_adaspring_model()
    rng = np.random.default_rng(11)
    xs = [rng.normal(size=(1, *mf.INPUT_SHAPE)).astype(np.float32) for _ in range(3)]
    raw = LiteRTInterpreter(model_content=model)
    owner = {}  # output bytes -> (configuration, input number)
    for key in KEYS:
        for j, x in enumerate(xs):
            owner[raw.get_signature_runner(key)(x=x)["output_0"].tobytes()] = (key, j)
    assert len(owner) == len(KEYS) * len(xs)

    interp = Interpreter(model_content=model, policy=Policy(dwell_s=0.0, switch_margin=0.0))
    runner = interp.get_signature_runner()
    port_in, port_out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    done = threading.Event()
    switched = []
    errors: list[BaseException] = []

    def switcher() -> None:
        try:
            loose = Requirements(energy_mode="performance")
            tight = Requirements(latency_budget_ms=1e-6)
            for i in range(SWITCHES):
                if i % 10 == 9:
                    interp.adapt(ContextSnapshot(timestamp=float(i), requirements=tight if i % 20 == 9 else loose))
                else:
                    interp.set_active(KEYS[i % len(KEYS)])
                switched.append(interp.active)
                if i % 2:
                    time.sleep(0)  # let the invoking thread run between switches
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=switcher)
    seen: dict[tuple[str, int], int] = {}
    torn = []
    n = 0
    thread.start()
    while not done.is_set():
        j = n % len(xs)
        if n % 2:
            out = runner(x=xs[j])["output_0"]
        else:
            interp.set_tensor(port_in, xs[j])
            time.sleep(0)  # app work between the calls: lets the switcher run in every gap
            interp.invoke()
            time.sleep(0)
            out = interp.get_tensor(port_out)
        who = owner.get(out.tobytes())
        if who is None or who[1] != j:
            torn.append((n, who))
        else:
            seen[who] = seen.get(who, 0) + 1
        n += 1
    thread.join()

    assert not errors, errors
    assert not torn, torn[:5]
    assert len(switched) == SWITCHES
    assert sum(1 for a, b in itertools.pairwise(switched) if a != b) >= 10_000
    assert n >= 2000, n  # invokes really overlapped the switches ...
    assert len({key for key, _ in seen}) == len(KEYS)  # ... and ran on every configuration
    assert len(interp.history) == min(SWITCHES, 1024)
