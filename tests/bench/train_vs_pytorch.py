#!/usr/bin/python3
"""Benchmark (not a test): FashionMNIST training, `ampc train` vs PyTorch 1.13 CPU, same run.

Both train the fixture MLP (tests/fixtures/mlp_opset17.onnx; PyTorch rebuilds it with the same
seed, so the initial weights are identical) on Debian's FashionMNIST with the same settings:
batch size, epochs, SGD with momentum, cross-entropy, data reshuffled every epoch, the last
partial batch dropped, the same thread count. Reported: wall time of the training loop (data
already in memory for both), training samples/s, and test accuracy after the last epoch.

    /usr/bin/python3 tests/bench/train_vs_pytorch.py --ampc build/ampc --threads 2 --epochs 3
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import gen_fixtures  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def torch_train(args):
    xs = torch.from_numpy(read_idx("train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255)
    ys = torch.from_numpy(read_idx("train-labels-idx1-ubyte.gz").astype(np.int64))
    xt = torch.from_numpy(read_idx("t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255)
    yt = torch.from_numpy(read_idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
    torch.manual_seed(0)
    model = gen_fixtures.build_mlp(torch.nn)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(args.seed)
    steps = 0
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xs), generator=gen)
        for b in range(len(xs) // args.batch):
            idx = perm[b * args.batch:(b + 1) * args.batch]
            opt.zero_grad()
            loss = loss_fn(model(xs[idx]), ys[idx])
            loss.backward()
            opt.step()
            steps += 1
    seconds = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    return seconds, steps * args.batch / seconds, acc


def ampc_train(args):
    with tempfile.TemporaryDirectory() as d:
        metrics = os.path.join(d, "m.jsonl")
        cmd = [args.ampc, "train", os.path.join(ROOT, "tests", "fixtures", "mlp_opset17.onnx"),
               "--data", "fashion-mnist", "--batch-size", str(args.batch), "--epochs", str(args.epochs),
               "--optimizer", "sgd", "--lr", str(args.lr), "--momentum", str(args.momentum),
               "--seed", str(args.seed), "--threads", str(args.threads), "--metrics", metrics, "--quiet",
               "--precision", args.precision]
        subprocess.run(cmd, check=True)
        lines = [json.loads(line) for line in open(metrics)]
    epochs = [j for j in lines if "val_accuracy" in j]
    steps = [j for j in lines if "loss" in j]
    seconds = epochs[-1]["train_s"]  # time in training steps (batch gathering included)
    return seconds, len(steps) * args.batch / seconds, epochs[-1]["val_accuracy"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ampc", default=os.path.join(ROOT, "build", "ampc"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", default="fp32", help="ampc's precision (PyTorch runs fp32)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    a_s, a_sps, a_acc = ampc_train(args)
    t_s, t_sps, t_acc = torch_train(args)
    print(f"FashionMNIST MLP, {args.epochs} epochs, batch {args.batch}, SGD lr {args.lr} momentum "
          f"{args.momentum}, {args.threads} threads, torch {torch.__version__}")
    print(f"{'':8} {'seconds':>8} {'samples/s':>10} {'test acc':>9}")
    print(f"{'ampc ' + args.precision:8} {a_s:8.2f} {a_sps:10.0f} {a_acc:9.4f}")
    print(f"{'pytorch':8} {t_s:8.2f} {t_sps:10.0f} {t_acc:9.4f}")
    print(f"speed ampc/pytorch: {a_sps / t_sps:.2f}x   accuracy difference: {100 * (a_acc - t_acc):+.2f} points")


if __name__ == "__main__":
    main()
