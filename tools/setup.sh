#!/usr/bin/env bash
# Installs every dependency of ampc from Debian 12 packages, and the Python packages of the
# interoperability tests (onnxruntime, ...) into a virtual environment. Idempotent: safe to re-run.
# Why each package is needed is written in README.md ("Dependencies").
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config
  libonnx-dev libprotobuf-dev protobuf-compiler
  libgtest-dev libcli11-dev libfmt-dev nlohmann-json3-dev
  libopenblas-dev libdnnl-dev zlib1g-dev
  llvm-19-dev llvm-19-tools libmlir-19-dev mlir-19-tools
  dataset-fashion-mnist libonnx-testdata
  python3 python3-numpy python3-onnx python3-torch python3-torchvision python3-protobuf
  python3-venv gnuplot-nox
  clang-14 libclang-rt-14-dev
)
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi

# The interoperability tests (ctest label `interop`) load ampc's exported models in onnxruntime,
# which Debian does not package: a virtual environment with pinned versions from the Python
# package index. --system-site-packages keeps Debian's packages visible; numpy stays 1.x so that
# Debian's torch 1.13 (built against numpy 1.x) still imports there. Override the place with
# AMPC_VENV (and configure CMake with -DAMPC_VENV=... to match).
VENV="${AMPC_VENV:-/opt/ampc-venv}"
PINS=(onnxruntime==1.32.0 onnx==1.23.2 numpy==1.26.4 safetensors==0.8.0)
have_pins() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "${PINS[@]}" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version
sys.exit(any(version(p.split("==")[0]) != p.split("==")[1] for p in sys.argv[1:]))
PY
}
if have_pins; then
  echo "setup: $VENV has ${PINS[*]}"
else
  echo "setup: creating $VENV with ${PINS[*]}"
  $SUDO /usr/bin/python3 -m venv --system-site-packages "$VENV"
  $SUDO "$VENV/bin/pip" install -q --disable-pip-version-check "${PINS[@]}"
  have_pins || { echo "setup: $VENV lacks ${PINS[*]} after pip install" >&2; exit 1; }
fi
