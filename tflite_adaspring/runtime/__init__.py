"""On-device runtime: the drop-in adaptive ``Interpreter`` and the Runtime3C search.

Needs only numpy and ai-edge-litert; never imports TensorFlow.
"""

from tflite_adaspring.runtime.interpreter import (
    ActiveSignatureRunner,
    InputMismatchError,
    Interpreter,
    SignatureRunner,
)
from tflite_adaspring.runtime.search import (
    Decision,
    Policy,
    SearchState,
    SearchTable,
    decide,
    energy_weight,
    latency_factor,
    observe_latency,
)

__all__ = [
    "ActiveSignatureRunner",
    "Decision",
    "InputMismatchError",
    "Interpreter",
    "Policy",
    "SearchState",
    "SearchTable",
    "SignatureRunner",
    "decide",
    "energy_weight",
    "latency_factor",
    "observe_latency",
]
