"""Offline stand-in for `@rules_python//python:defs.bzl`, forwarded to the native rules.

The native rules run the `python3` found on PATH (Bazel's autodetecting toolchain), so the virtualenv
whose bin/ comes first on PATH decides the interpreter and the site-packages (pytest, numpy, ...) tests see.
"""

def py_binary(**attrs):
    """Bazel's native py_binary, unchanged."""
    native.py_binary(**attrs)  # buildifier: disable=native-py

def py_library(**attrs):
    """Bazel's native py_library, unchanged."""
    native.py_library(**attrs)  # buildifier: disable=native-py

def py_test(**attrs):
    """Bazel's native py_test, unchanged."""
    native.py_test(**attrs)  # buildifier: disable=native-py
