"""Offline stand-in for `@rules_cc//cc:defs.bzl`: the names @bazel_tools loads, forwarded to the native rules."""

def cc_binary(**attrs):
    """Bazel's native cc_binary, unchanged."""
    native.cc_binary(**attrs)  # buildifier: disable=native-cc-binary

def cc_library(**attrs):
    """Bazel's native cc_library, unchanged."""
    native.cc_library(**attrs)  # buildifier: disable=native-cc-library

def cc_proto_library(**attrs):
    """Bazel's native cc_proto_library, unchanged."""
    native.cc_proto_library(**attrs)  # buildifier: disable=native-cc-proto

def cc_test(**attrs):
    """Bazel's native cc_test, unchanged."""
    native.cc_test(**attrs)  # buildifier: disable=native-cc-test

def cc_toolchain(**attrs):
    """Bazel's native cc_toolchain, unchanged."""
    native.cc_toolchain(**attrs)  # buildifier: disable=native-cc-toolchain

def cc_toolchain_suite(**attrs):
    """Bazel's native cc_toolchain_suite, unchanged."""
    native.cc_toolchain_suite(**attrs)  # buildifier: disable=native-cc-toolchain-suite

def objc_library(**attrs):
    """Bazel's native objc_library, unchanged."""
    native.objc_library(**attrs)  # buildifier: disable=native-cc-objc-library
