"""``adaspring demo``: a simulated day on the adaptive runtime under real CPU contention (no TensorFlow)."""
