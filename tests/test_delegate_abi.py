"""The load-time ABI self-check: it passes on this runtime, and a simulated layout mismatch is refused
cleanly (nothing claimed, the runtime's kernels compute the same result). No TensorFlow."""

from __future__ import annotations

from pathlib import Path

import pytest
from delegate_helpers import assert_close, conv_fc_model, delegate_library, run_model, run_python

from tflite_adaspring import delegates


@pytest.fixture(scope="module")
def library() -> Path:
    return delegate_library()


def load_raw(library: Path, options: dict[str, str]):
    from ai_edge_litert.interpreter import load_delegate

    return load_delegate(str(library), options)


def test_healthy_runtime_passes_the_check(library):
    model = conv_fc_model(seed=4)
    delegate = load_raw(library, {})
    (output,) = run_model(model.content, [model.input], [delegate])
    assert_close(output, model.expected, "delegate")
    stats = delegates.stats(delegate, library)
    assert stats.abi_refusals == 0 and stats.claimed_nodes == 3


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("tensor", "dims/dims_signature are not readable arrays"),
        ("true", "dims/dims_signature are not readable arrays"),
        ("params", "(DEPTHWISE_CONV_2D)"),
    ],
)
def test_simulated_mismatch_is_refused_and_the_model_still_runs(library, mode, reason):
    model = conv_fc_model(seed=5)
    delegate = load_raw(library, {"debug_simulate_abi_mismatch": mode})
    (output,) = run_model(model.content, [model.input], [delegate])
    assert_close(output, model.expected, f"builtin kernels after refusal ({mode})")
    stats = delegates.stats(delegate, library)
    assert stats.prepare_calls == 1 and stats.abi_refusals == 1
    assert stats.claimed_nodes == 0 and stats.partitions == 0 and stats.node_invokes == 0
    message = delegates.last_message(delegate, library)
    assert message.startswith("ABI self-check failed, no node claimed") and reason in message


def test_refusal_is_reported_at_info_level_on_stderr(library):
    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from delegate_helpers import conv_fc_model, run_model
from ai_edge_litert.interpreter import load_delegate
model = conv_fc_model()
delegate = load_delegate({str(library)!r}, {{"debug_simulate_abi_mismatch": "tensor", "log_level": "info"}})
run_model(model.content, [model.input], [delegate])
print("done")
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("done")
    assert "[adaspring-delegate] ABI self-check failed, no node claimed" in result.stderr
