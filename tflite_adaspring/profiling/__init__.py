"""Profiling of configurations: analytic cost, measured and predicted latency, energy, accuracy, Pareto search.

Submodules are imported on demand; only :mod:`~tflite_adaspring.profiling.lut` building,
:mod:`~tflite_adaspring.profiling.plan` (via a supernet) and accuracy measurement touch TensorFlow.
"""
