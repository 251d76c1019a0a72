"""A context thread switching configurations never tears an invoke running on another thread."""

from __future__ import annotations

import itertools
import time

import model_factory as mf
import numpy as np
from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter
from switch_storm import fine_thread_switching, run_storm

from tflite_adaspring.runtime import Interpreter, Policy

KEYS = mf.config_keys(len(mf.DEFAULT_WIDTHS))
SWITCHES = 12_000


def test_switch_storm_during_invokes() -> None:
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

    def invoke(n: int, j: int) -> np.ndarray:
        if n % 2:
            return runner(x=xs[j])["output_0"]
        interp.set_tensor(port_in, xs[j])
        time.sleep(0)  # app work between the calls: lets the switcher run in every gap
        interp.invoke()
        time.sleep(0)
        return interp.get_tensor(port_out)

    def pause(i: int) -> None:
        if i % 2:
            time.sleep(0)  # let the invoking thread run between switches

    with fine_thread_switching():
        storm = run_storm(interp, SWITCHES, lambda i: KEYS[i % len(KEYS)], invoke, owner, len(xs), pause)

    assert not storm.errors, storm.errors
    assert not storm.torn, storm.torn[:5]
    assert len(storm.requested) == SWITCHES
    assert sum(1 for a, b in itertools.pairwise(storm.requested) if a != b) >= 10_000
    assert storm.invokes >= 2000, storm.invokes  # invokes really overlapped the switches ...
    assert len({key for key, _ in storm.seen}) == len(KEYS)  # ... and ran on every configuration
    assert len(interp.history) == min(SWITCHES, 1024)
