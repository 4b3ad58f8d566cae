#!/usr/bin/env python3
"""Generated kernels vs the per-op kernels, measured in one run on this machine.

1. Training throughput: `ampc train` on the fixture MLP (FashionMNIST, batch 256, AdamW) and the
   causal-transformer fixture (its trajectory data, batch 8), fp32 and bf16, alternating
   --kernels generated / per-op runs; the median samples/s of each and their ratio.
2. Compile time of `ampc compile -o` for --target cpu and --target cuda: cold (an empty kernel
   cache) and cached (the same cache again), per fixture.

Usage: tests/bench/generated_kernels.py BUILD_DIR [--runs N] [--threads T]
Prints a Markdown table. Timings are wall-clock medians; compare the ratios, not the absolute
numbers (the machines are shared).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), r.stderr))
    return r.stdout + r.stderr


def throughput(ampc, args, mode, cache):
    out = run([ampc, "train"] + args + ["--kernels", mode, "--cache-dir", cache])
    m = re.search(r"\(([0-9.]+) samples/s\)", out)
    if not m:
        sys.exit("no samples/s in: " + out)
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    ampc = os.path.join(a.build, "ampc")
    refs = os.path.join(a.build, "generated_fixtures", "train_refs")
    mlp = os.path.join(FIXTURES, "mlp_opset17.onnx")
    tr = os.path.join(FIXTURES, "transformer_opset17.onnx")
    cases = [
        ("MLP 784-256-LN-GELU-10, batch 256", [mlp, "--data", "fashion-mnist", "--steps", "300",
                                               "--batch-size", "256", "--optimizer", "adamw"]),
        ("causal transformer, batch 8", [tr, "--data", os.path.join(refs, "transformer_adamw",
                                                                    "data.npz"),
                                         "--steps", "60", "--batch-size", "8", "--optimizer",
                                         "adamw", "--untie-shared"]),
    ]
    print("| model | precision | generated samples/s | per-op samples/s | generated / per-op |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as cache:
        for name, args in cases:
            for prec in ("fp32", "bf16"):
                full = args + ["--precision", prec, "--threads", str(a.threads)]
                throughput(ampc, full, "generated", cache)  # fills the cache
                gen, per = [], []
                for _ in range(a.runs):
                    gen.append(throughput(ampc, full, "generated", cache))
                    per.append(throughput(ampc, full, "per-op", cache))
                g, p = statistics.median(gen), statistics.median(per)
                ratios = sorted(x / y for x, y in zip(gen, per))
                print("| %s | %s | %.0f | %.0f | %.2fx (pairs %.2f-%.2f) |"
                      % (name, prec, g, p, statistics.median(ratios), ratios[0], ratios[-1]))
    print()
    print("| fixture | target | cold compile s | cached compile s | kernels |")
    print("|---|---|---|---|---|")
    compiles = [
        ("MLP", [mlp, "--batch-size", "256", "--optimizer", "adamw"]),
        ("causal transformer", [tr, "--batch-size", "8", "--dim", "seq=16", "--optimizer", "adamw",
                                "--untie-shared", "--class-axis", "2"]),
    ]
    for name, args in compiles:
        for target in ("cpu", "cuda"):
            with tempfile.TemporaryDirectory() as tmp:
                cache = os.path.join(tmp, "cache")
                times, kernels = [], ""
                for _ in range(2):
                    t0 = time.monotonic()
                    out = run([ampc, "compile"] + args + ["--target", target, "-o",
                                                          os.path.join(tmp, "p.ampc"), "--force",
                                                          "--kernels", "generated", "--cache-dir",
                                                          cache])
                    times.append(time.monotonic() - t0)
                    m = re.search(r"\((\d+) kernels", out)
                    kernels = m.group(1) if m else "?"
                print("| %s | %s | %.2f | %.2f | %s |" % (name, target, times[0], times[1], kernels))


if __name__ == "__main__":
    main()
