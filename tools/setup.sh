#!/usr/bin/env bash
# Installs every dependency of ampc from Debian 12 packages. Idempotent: safe to re-run.
# Why each package is needed is written in README.md ("Dependencies").
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config
  libonnx-dev libprotobuf-dev protobuf-compiler
  libgtest-dev libcli11-dev libfmt-dev nlohmann-json3-dev
  libopenblas-dev zlib1g-dev
  llvm-19-dev llvm-19-tools libmlir-19-dev mlir-19-tools
  dataset-fashion-mnist libonnx-testdata
  python3 python3-numpy python3-onnx python3-torch python3-torchvision python3-protobuf
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi
