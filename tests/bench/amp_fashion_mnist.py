#!/usr/bin/python3
"""Benchmark (not a test): FashionMNIST, the fixture MLP, N epochs on the CPU in fp32, fp16
(dynamic loss scaling) and bf16 with the same seed, shuffling and hyperparameters; prints each
run's final test accuracy, training time and throughput, and the accuracy gap to fp32.

    /usr/bin/python3 tests/bench/amp_fashion_mnist.py --ampc build/ampc --epochs 5 --threads 2
"""
import argparse
import json
import os
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def run(args, precision):
    with tempfile.TemporaryDirectory() as d:
        metrics = os.path.join(d, "m.jsonl")
        cmd = [args.ampc, "train", os.path.join(ROOT, "tests", "fixtures", "mlp_opset17.onnx"),
               "--data", "fashion-mnist", "--batch-size", str(args.batch), "--epochs", str(args.epochs),
               "--optimizer", "sgd", "--lr", str(args.lr), "--momentum", "0.9", "--seed", str(args.seed),
               "--threads", str(args.threads), "--precision", precision, "--metrics", metrics, "--quiet"]
        subprocess.run(cmd, check=True)
        lines = [json.loads(line) for line in open(metrics)]
    epochs = [j for j in lines if "val_accuracy" in j]
    steps = [j for j in lines if "loss" in j]
    skipped = sum(1 for j in steps if j.get("skipped"))
    return epochs, len(steps), skipped, steps[-1].get("loss_scale")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ampc", default=os.path.join(ROOT, "build", "ampc"))
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    print(f"FashionMNIST MLP, {args.epochs} epochs, batch {args.batch}, SGD lr {args.lr} momentum 0.9, "
          f"seed {args.seed}, {args.threads} threads")
    print(f"{'precision':10} {'test acc':>9} {'vs fp32':>8} {'train s':>8} {'samples/s':>10} {'skipped':>8} {'final scale':>12}")
    base = None
    for p in ("fp32", "fp16", "bf16"):
        epochs, steps, skipped, scale = run(args, p)
        acc = epochs[-1]["val_accuracy"]
        base = acc if base is None else base
        secs = epochs[-1]["train_s"]
        print(f"{p:10} {acc:9.4f} {100 * (acc - base):+7.2f}p {secs:8.2f} {steps * args.batch / secs:10.0f} "
              f"{skipped:8d} {scale if scale is not None else '-':>12}")
        print("  per epoch: " + " ".join(f"{e['val_accuracy']:.4f}" for e in epochs), flush=True)


if __name__ == "__main__":
    main()
