#!/usr/bin/env bash
# Install Fashion-MNIST from Debian's `dataset-fashion-mnist` package when it is missing.
set -euo pipefail
dir="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
if [ -f "$dir/train-images-idx3-ubyte.gz" ] && [ -f "$dir/t10k-labels-idx1-ubyte.gz" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Fashion-MNIST is missing from $dir and this system has no apt-get." >&2
  echo "Put the four *-ubyte.gz files in a folder and point starquad at it with --data-dir DIR or STARQUAD_DATA=DIR." >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "Fashion-MNIST is missing from $dir; installing it needs root: run 'apt-get install -y dataset-fashion-mnist' as root." >&2
    exit 1
  fi
fi
echo "Installing Fashion-MNIST (Debian package dataset-fashion-mnist) into $dir ..."
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y -q dataset-fashion-mnist >/dev/null; then
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q dataset-fashion-mnist >/dev/null
fi
[ -f "$dir/train-images-idx3-ubyte.gz" ] || { echo "dataset-fashion-mnist installed, but $dir has no data files" >&2; exit 1; }
