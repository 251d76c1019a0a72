"""Offline stand-in for `@rules_java//java:defs.bzl`: the names @bazel_tools loads, forwarded to the native rules."""

def java_binary(**attrs):
    """Bazel's native java_binary, unchanged."""
    native.java_binary(**attrs)  # buildifier: disable=native-java-binary

def java_import(**attrs):
    """Bazel's native java_import, unchanged."""
    native.java_import(**attrs)  # buildifier: disable=native-java-import

def java_library(**attrs):
    """Bazel's native java_library, unchanged."""
    native.java_library(**attrs)  # buildifier: disable=native-java-library

def java_proto_library(**attrs):
    """Bazel's native java_proto_library, unchanged."""
    native.java_proto_library(**attrs)  # buildifier: disable=native-java-proto

def java_runtime(**attrs):
    """Bazel's native java_runtime, unchanged."""
    native.java_runtime(**attrs)  # buildifier: disable=native-java-runtime

def java_toolchain(**attrs):
    """Bazel's native java_toolchain, unchanged."""
    native.java_toolchain(**attrs)  # buildifier: disable=native-java-toolchain
