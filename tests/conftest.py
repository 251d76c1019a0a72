"""Shared pytest setup: tf_keras for TFMOT must be selected before TensorFlow is imported; numpy's
OpenBLAS runs single-threaded (its worker threads stall for seconds on a busy 2-core machine)."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
