#!/bin/sh
# Stand-in for Bazel's Java coverage tools, which are a download and so unavailable offline.
echo "bazel coverage is not supported in this offline workspace (Bazel's coverage tools are a download); use bazel test" >&2
exit 1
