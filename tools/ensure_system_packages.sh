#!/usr/bin/env bash
# Install the Debian packages tflite-adaspring needs, only those that are missing.
# Usage: tools/ensure_system_packages.sh [fashion-mnist] [bazel] [eigen] [compiler] [npm]
# Without apt (or without root) it prints the exact command to run instead and exits non-zero.
set -euo pipefail

want=()
for item in "$@"; do
  case "$item" in
    fashion-mnist)
      [ -f "${ADASPRING_DATA_DIR:-/usr/share/datasets/fashion-mnist}/train-images-idx3-ubyte.gz" ] \
        || want+=(dataset-fashion-mnist) ;;
    bazel) command -v bazel >/dev/null 2>&1 || want+=(bazel-bootstrap) ;;
    eigen) [ -f /usr/include/eigen3/Eigen/Core ] || want+=(libeigen3-dev) ;;
    compiler) command -v g++ >/dev/null 2>&1 || want+=(g++) ;;
    npm) command -v npm >/dev/null 2>&1 || want+=(npm) ;;
    *) echo "ensure_system_packages: unknown item '$item'" >&2; exit 2 ;;
  esac
done
[ ${#want[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== installing Debian packages: ${want[*]}"
  # A fresh machine has no package lists; refresh them once per run.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
  echo "== installing Debian packages with sudo: ${want[*]}"
  sudo apt-get update -qq
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
else
  echo "Missing system packages: ${want[*]}" >&2
  echo "Install them with:  sudo apt-get install --no-install-recommends ${want[*]}" >&2
  echo "(Fashion-MNIST elsewhere: point ADASPRING_DATA_DIR at a folder with the four IDX .gz files.)" >&2
  exit 1
fi
