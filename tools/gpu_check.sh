#!/usr/bin/env bash
# The GPU check, run on the GPU machine through the device tool, with the bundle that
# tools/gpu_bundle.sh built here:
#   run(command="bash tools/gpu_check.sh", carry=["build-gpu/bundle.tgz"], timeout_s=420)
#   run(command="bash tools/gpu_check.sh gpt2", carry=["build-gpu/bundle.tgz"], timeout_s=420)
# The first runs stages 1-4, the second 1 and 5 (`all` runs every stage). It unpacks the bundle
# and, writing everything to $OUT (or ./gpu-check-out) and stdout:
#   1. lists the GPU and checks that ampc-gpu starts (ldd: glibc only);
#   2. checks the CUDA executor against the CPU executor on every bundled plan (the MLP, the CNN
#      and the causal transformer in fp32, bf16 and fp16 + dynamic loss scaling): one forward pass and 20
#      training steps from the same states on the same batches (ampc-gpu check);
#   3. trains the MLP for one FashionMNIST epoch in fp32, bf16 and fp16 on the GPU and on the CPU
#      executor (ampc-gpu train) and records the test accuracy of each;
#   4. benchmarks ampc on the MLP (batch 256, AdamW; with and without the CUDA Graph) beside
#      PyTorch eager fp32, eager AMP bf16 / fp16 + GradScaler and torch.compile AMP bf16
#      (tools/gpu_torch_bench.py), and prints the table of ratios;
#   5. (gpt2) checks a two-layer GPT-2 (vocabulary 50257, sequence 256) as in 2 (5 steps), then
#      benchmarks ampc on GPT-2 small (batch 8, sequence 1024, AdamW; synthetic weights)
#      in fp32, bf16 and fp16 beside the same PyTorch configurations of the same module:
#      tokens/s, MFU, peak device memory, and the ratios against eager AMP and torch.compile.
# Stages 4 and 5 also print AMPC_PROFILE's per-step GPU times of a short eager run (where the
# step's time goes, by step and by kind: GEMM, generated kernel, copy).
# Each stage has its own time limit, so that each run stays under 5 minutes. Exit code: 0 when
# every check passed, 1 otherwise (the benchmark's numbers are reported either way).
set -uo pipefail
STAGES=${1:-fixtures}
case "$STAGES" in
  fixtures | gpt2 | all) ;;
  *) echo "usage: gpu_check.sh [fixtures|gpt2|all]" >&2; exit 2 ;;
esac
want() { [ "$STAGES" = all ] || [ "$STAGES" = "$1" ]; }
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
[ -f build-gpu/bundle.tgz ] || { echo "gpu_check: no build-gpu/bundle.tgz (run tools/gpu_bundle.sh and carry it)"; exit 2; }
WORK=$(mktemp -d)
tar -xzf build-gpu/bundle.tgz -C "$WORK"
B=$WORK/bundle
# cuBLASLt is opened at run time: the toolkit's, else the one PyTorch's wheels bring.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
  $(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) + "/lib")' 2>/dev/null); do
  if ls "$d"/libcublasLt.so.1* >/dev/null 2>&1; then
    export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    break
  fi
done
echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | head -3
ldd "$B/ampc-gpu"
"$B/ampc-gpu" devices
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"

fail=0
if want fixtures; then
echo "== checks: CUDA executor vs CPU executor (one forward pass, 20 training steps)"
# relumlp: Linear -> ReLU -> Linear, its first GEMM with cuBLASLt's RELU_BIAS epilogue (MLP data);
# gelumlp: Linear -> GELU(tanh) -> Linear: GELU_AUX_BIAS forward, DGELU(_BGRAD) backward.
# gptsdpa: torch 2.15's opset-23 export of a GPT block, its Attention op decomposed into ONNX ops;
# cnnbn: torch 2.15's legacy export of a CNN, its training-mode BatchNorm decomposed likewise.
for plan in mlp_fp32 mlp_bf16 mlp_fp16 relumlp_fp32 relumlp_bf16 relumlp_fp16 gelumlp_fp32 \
  gelumlp_bf16 gelumlp_fp16 cnn_fp32 cnn_bf16 \
  cnn_fp16 transformer_fp32 transformer_bf16 transformer_fp16 gptsdpa_fp32 gptsdpa_bf16 \
  gptsdpa_fp16 cnnbn_fp32 cnnbn_bf16 cnnbn_fp16; do
  data=${plan%%_*}
  [ "$data" = relumlp ] || [ "$data" = gelumlp ] && data=mlp
  timeout 60 "$B/ampc-gpu" check "$B/plans/$plan.ampc" --data "$B/data/$data.npz" --steps 20
  rc=$?
  [ $rc -eq 0 ] || { echo "gpu_check: $plan: exit code $rc"; fail=1; }
done

echo "== accuracy: the MLP, one FashionMNIST epoch (batch 256, AdamW lr 1e-3), GPU and CPU"
for p in fp32 bf16 fp16; do
  for dev in cuda cpu; do
    AMPC_FASHION_MNIST_DIR="$B/fashion-mnist" timeout 60 "$B/ampc-gpu" train \
      "$B/plans/mlp_$p.ampc" --data fashion-mnist --epochs 1 --device $dev --label "mlp_${p}_$dev" |
      tee -a "$OUT/accuracy.jsonl"
  done
done

echo "== benchmark: the MLP, batch 256, AdamW"
: > "$OUT/bench.jsonl"
for p in fp32 bf16 fp16; do
  timeout 40 "$B/ampc-gpu" bench "$B/plans/mlp_$p.ampc" --data "$B/data/mlp.npz" --steps 500 \
    --label "mlp_$p" | tee -a "$OUT/bench.jsonl"
  timeout 40 "$B/ampc-gpu" bench "$B/plans/mlp_$p.ampc" --data "$B/data/mlp.npz" --steps 500 \
    --no-cuda-graph --label "mlp_${p}_nograph" | tee -a "$OUT/bench.jsonl"
done
echo "== profile: the MLP bf16, 20 eager steps timed per step (AMPC_PROFILE)"
AMPC_PROFILE=1 timeout 30 "$B/ampc-gpu" bench "$B/plans/mlp_bf16.ampc" --data "$B/data/mlp.npz" \
  --steps 20 --warmup 5 --label mlp_bf16_profile 2>&1 | head -30 | tee "$OUT/profile_mlp.txt"
timeout 150 python3 tools/gpu_torch_bench.py --data "$B/data/mlp.npz" --steps 500 \
  --ampc "$OUT/bench.jsonl" | tee -a "$OUT/bench_torch.txt"
fi

if want gpt2; then
echo "== checks: a two-layer GPT-2 (vocabulary 50257, sequence 256), CUDA vs CPU executor"
for p in fp32 bf16 fp16; do
  timeout 90 "$B/ampc-gpu" check "$B/plans/gpt2mini_$p.ampc" --data "$B/data/gpt2mini.npz" --steps 5
  rc=$?
  [ $rc -eq 0 ] || { echo "gpu_check: gpt2mini_$p: exit code $rc"; fail=1; }
done
echo "== benchmark: GPT-2 small (163M parameters), batch 8, sequence 1024, AdamW"
: > "$OUT/bench_gpt2.jsonl"
for p in bf16 fp16 fp32; do
  timeout 75 "$B/ampc-gpu" bench "$B/plans/gpt2_$p.ampc" --data "$B/data/gpt2.npz" --steps 10 \
    --warmup 3 --label "gpt2_$p" | tee -a "$OUT/bench_gpt2.jsonl"
  rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || { echo "gpu_check: gpt2_$p bench: exit code $rc"; fail=1; }
done
echo "== profile: GPT-2 small bf16, 2 eager steps timed per step (AMPC_PROFILE)"
AMPC_PROFILE=1 timeout 60 "$B/ampc-gpu" bench "$B/plans/gpt2_bf16.ampc" --data "$B/data/gpt2.npz" \
  --steps 2 --warmup 1 --label gpt2_bf16_profile 2>&1 | head -45 | tee "$OUT/profile_gpt2.txt"
timeout 200 python3 tools/gpu_torch_bench.py --model gpt2 --data "$B/data/gpt2.npz" --steps 10 \
  --warmup 3 --ampc "$OUT/bench_gpt2.jsonl" | tee -a "$OUT/bench_gpt2_torch.txt"
fi
echo "gpu_check: $([ $fail -eq 0 ] && echo 'all checks passed' || echo 'CHECKS FAILED')"
exit $fail
