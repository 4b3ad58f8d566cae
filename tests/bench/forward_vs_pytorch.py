#!/usr/bin/python3
"""Benchmark (not a test): ampc's CPU runtime vs PyTorch 1.13 CPU on inference forward passes.

Runs, in one process and with the same thread count, the fixture MLP (batch 256) and CNN
(batch 64) in fp32 and bf16 storage: PyTorch on the models built by tools/gen_fixtures.py
(same seed, hence the same weights as the ONNX files), ampc through `ampc bench` on the ONNX
files. Prints median milliseconds per forward pass and the speed ratio ampc / PyTorch.

    /usr/bin/python3 tests/bench/forward_vs_pytorch.py --ampc build/ampc --threads 2
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import gen_fixtures  # noqa: E402  (model definitions shared with the fixture exporter)


def torch_median_ms(model, x, iters, warmup):
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ampc", default=os.path.join(ROOT, "build", "ampc"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cases = [("mlp", gen_fixtures.build_mlp, (256, 784)), ("cnn", gen_fixtures.build_cnn, (64, 1, 28, 28))]
    print(f"threads {args.threads}, torch {torch.__version__}, median of {args.iters} calls")
    print(f"{'model':6} {'batch':>5} {'prec':5} {'ampc ms':>9} {'torch ms':>9} {'ampc/torch speed':>17}")
    for name, build, shape in cases:
        torch.manual_seed(0)
        model = build(torch.nn).eval()
        x = torch.rand(*shape, generator=torch.Generator().manual_seed(2))
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "input_0.pb"), "wb") as f:
                f.write(numpy_helper.from_array(x.numpy(), "input").SerializeToString())
            onnx_path = os.path.join(ROOT, "tests", "fixtures", f"{name}_opset17.onnx")
            for prec in ("fp32", "bf16"):
                out = subprocess.run([args.ampc, "bench", onnx_path, "--inputs", d, "--precision", prec,
                                      "--threads", str(args.threads), "--iters", str(args.iters),
                                      "--warmup", str(args.warmup), "--json"],
                                     check=True, capture_output=True, text=True).stdout
                ampc_ms = json.loads(out)["median_ms"]
                if prec == "fp32":
                    t_ms = torch_median_ms(model, x, args.iters, args.warmup)
                else:
                    t_ms = torch_median_ms(model.to(torch.bfloat16), x.to(torch.bfloat16),
                                           args.iters, args.warmup)
                    model.float()
                print(f"{name:6} {shape[0]:5d} {prec:5} {ampc_ms:9.3f} {t_ms:9.3f} {t_ms / ampc_ms:16.2f}x")


if __name__ == "__main__":
    main()
