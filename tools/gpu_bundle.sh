#!/usr/bin/env bash
# Builds the GPU bundle on this machine (no GPU needed) into build-gpu/bundle/:
#   ampc-gpu      the runtime-only binary (cmake --preset gpu-bundle: static protobuf, OpenBLAS,
#                 zlib, cudart, libstdc++; it needs glibc >= 2.36 and opens the GPU machine's
#                 libcublasLt.so.13 at run time), stripped
#   plans/        the fixture models' training plans compiled for cuda:sm_90 by build/ampc, and
#                 GPT-2 small's (tools/export_gpt2.py; batch 8, sequence 1024) with synthetic
#                 weights (ampc compile --synthetic-weights: 2 MB plans that make their 2 GB of
#                 weights and Adam moments when they load)
#   data/         their data (FashionMNIST samples, the token corpus of tests/bench, random
#                 GPT-2 tokens)
#   fashion-mnist/  Debian's FashionMNIST files, for the accuracy runs (ampc-gpu train)
# packed as build-gpu/bundle.tgz. The device tool carries it to the GPU machine
# (carry: ["build-gpu/bundle.tgz"]), where tools/gpu_check.sh unpacks it and runs the checks and
# the benchmark. Needs build/ampc (cmake --preset default).
set -euo pipefail
cd "$(dirname "$0")/.."
AMPC=${AMPC:-build/ampc}
OUT=build-gpu/bundle
[ -x "$AMPC" ] || { echo "gpu_bundle: $AMPC not built (cmake --preset default && cmake --build --preset default)" >&2; exit 2; }
cmake --preset gpu-bundle >/dev/null
cmake --build --preset gpu-bundle
rm -rf "$OUT"
mkdir -p "$OUT/plans" "$OUT/data"
strip -o "$OUT/ampc-gpu" build-gpu/ampc-gpu
mkdir -p "$OUT/fashion-mnist"
cp tests/fixtures/torch2_train/gpt_data.npz "$OUT/data/gptsdpa.npz"
cp tests/fixtures/torch2_train/cnn_data.npz "$OUT/data/cnnbn.npz"
cp "${AMPC_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"/*-ubyte.gz "$OUT/fashion-mnist/"
/usr/bin/python3 - "$OUT/data" <<'PY'
import sys
sys.path.insert(0, "tests/bench")
import train_vs_peers as t
t.write_data("mlp", 2048, sys.argv[1] + "/mlp.npz")
t.write_data("cnn", 2048, sys.argv[1] + "/cnn.npz")
t.write_data("transformer", 2048, sys.argv[1] + "/transformer.npz")
import numpy as np
rng = np.random.default_rng(0)
tokens = rng.integers(0, 50257, size=(32, 1025), dtype=np.int64)
np.savez(sys.argv[1] + "/gpt2.npz", idx=tokens[:, :-1], labels=tokens[:, 1:])
np.savez(sys.argv[1] + "/gpt2mini.npz", idx=tokens[:, :256], labels=tokens[:, 1:257])
PY
# GPT-2 small, and a two-layer version at sequence 256 that the CPU executor checks in seconds.
GPT2=build-gpu/gpt2/gpt2.onnx
GPT2MINI=build-gpu/gpt2/gpt2mini.onnx
mkdir -p build-gpu/gpt2
[ -f "$GPT2" ] || /usr/bin/python3 tools/export_gpt2.py "$GPT2"
[ -f "$GPT2MINI" ] || /usr/bin/python3 tools/export_gpt2.py "$GPT2MINI" --layers 2 --context 256
compile() {  # NAME MODEL ARGS...
  local name=$1 model=$2
  shift 2
  "$AMPC" compile "$model" -o "$OUT/plans/$name.ampc" --target cuda:sm_90 --force "$@" >/dev/null
}
for p in fp32 bf16 fp16; do
  compile "mlp_$p" tests/fixtures/mlp_opset17.onnx --batch-size 256 --optimizer adamw --lr 1e-3 \
    --precision "$p"
  compile "relumlp_$p" tests/fixtures/relu_mlp_opset17.onnx --batch-size 256 --optimizer adamw \
    --lr 1e-3 --precision "$p"
  compile "gelumlp_$p" tests/fixtures/gelu_tanh_mlp_opset20.onnx --batch-size 256 \
    --optimizer adamw --lr 1e-3 --precision "$p"
  compile "cnn_$p" tests/fixtures/cnn_opset17.onnx --batch-size 64 --optimizer adamw --lr 1e-3 \
    --precision "$p"
  compile "transformer_$p" tests/fixtures/transformer_opset17.onnx --batch-size 64 --dim seq=16 \
    --untie-shared --class-axis 2 --optimizer adamw --lr 1e-3 --precision "$p"
  # torch 2.15's exports: a CNN with training-mode BatchNorm and a GPT block with opset 23's
  # Attention op, both as the ONNX ops that define them (--composite-ops auto, for cuda)
  compile "cnnbn_$p" tests/fixtures/torch2_train/cnn_legacy17.onnx --batch-size 8 \
    --optimizer adamw --lr 1e-3 --precision "$p"
  compile "gptsdpa_$p" tests/fixtures/torch2_train/gpt_dynamo23.onnx --batch-size 8 --untie-shared \
    --class-axis 2 --freeze '^(cos|sin)$' --optimizer adamw --lr 1e-3 --precision "$p"
  compile "gpt2_$p" "$GPT2" --batch-size 8 --dim seq=1024 --untie-shared --class-axis 2 \
    --optimizer adamw --lr 1e-4 --precision "$p" --synthetic-weights 1
  compile "gpt2mini_$p" "$GPT2MINI" --batch-size 2 --dim seq=256 --untie-shared --class-axis 2 \
    --optimizer adamw --lr 1e-4 --precision "$p" --synthetic-weights 1
done
tar -czf build-gpu/bundle.tgz -C build-gpu bundle
echo "gpu_bundle: build-gpu/bundle.tgz, $(du -k build-gpu/bundle.tgz | cut -f1) KiB (the device tool carries 64 MiB)"
