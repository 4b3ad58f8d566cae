#!/usr/bin/env python3
"""CPU training throughput of ampc beside its peers, on the same model, data and threads, in one run.

The model is tests/fixtures/mlp_opset17.onnx (784-256-LayerNorm-GELU-10), trained with AdamW
(lr 1e-3, weight decay 0.01, PyTorch's defaults otherwise) on FashionMNIST batches in file order,
from the ONNX file's initial weights, by:
  ampc          `ampc train` (fp32 and bf16);
  PyTorch eager the same module built by tools/gen_fixtures.py with the ONNX weights loaded;
  torch.compile that module compiled;
  ORT Training  onnxruntime-training-cpu 1.19's on-device training artifacts of the same ONNX
                model (AdamW switched to torch's update rule, adam_mode=0).
Each peer runs in its own interpreter (PyTorch 2.x and ORT Training need different onnx
versions): --torch-python and --ort-python name them (virtual environments from the package
index, see ../shared/notes/toolchain-facts.md). Prints samples/s (median over the timed steps,
after warm-up) and each run's agreement with PyTorch eager's losses over the first 20 steps.

    python3 tests/bench/train_vs_peers.py --ampc build/ampc --torch-python V1/bin/python \\
        --ort-python V2/bin/python --threads 2 --steps 300 --batch 256
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODEL = os.path.join(ROOT, "tests", "fixtures", "mlp_opset17.onnx")
WARMUP = 10

TORCH_RUNNER = r'''
import json, sys, time
import numpy as np, onnx, onnx.numpy_helper, torch
model_path, data, steps, batch, threads, compiled = sys.argv[1:7]
steps, batch, threads = int(steps), int(batch), int(threads)
torch.set_num_threads(threads)
nn = torch.nn
model = nn.Sequential(nn.Linear(784, 256), nn.LayerNorm(256), nn.GELU(approximate="none"),
                      nn.Linear(256, 10))
init = {t.name: torch.from_numpy(onnx.numpy_helper.to_array(t).copy())
        for t in onnx.load(model_path).graph.initializer}
model.load_state_dict(init, strict=True)
d = np.load(data)
x, y = torch.from_numpy(d["input"]), torch.from_numpy(d["labels"])
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
fwd = torch.compile(model) if compiled == "1" else model
def step(i):
    xb, yb = x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]
    loss = torch.nn.functional.cross_entropy(fwd(xb), yb)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()
losses, times = [], []
for i in range(steps):
    t0 = time.perf_counter()
    losses.append(step(i))
    times.append(time.perf_counter() - t0)
print(json.dumps({"losses": losses[:20], "step_s": times[%d:]}))
''' % WARMUP

ORT_RUNNER = r'''
import json, os, sys, time
import types
import numpy as np, onnx
# onnxruntime.training's __init__ imports its torch-only optimizer package; the on-device API
# used here does not need it (and torch is not in this environment).
sys.modules["onnxruntime.training.optim"] = types.ModuleType("onnxruntime.training.optim")
from onnxruntime.training import artifacts
from onnxruntime.training.api import CheckpointState, Module, Optimizer
model_path, data, steps, batch, threads, work = sys.argv[1:7]
steps, batch = int(steps), int(batch)
m = onnx.load(model_path)
# ORT's LayerNormalization gradient needs the optional Mean and InvStdDev outputs.
for n in m.graph.node:
    if n.op_type == "LayerNormalization" and len(n.output) == 1:
        n.output.extend([n.name + "_mean", n.name + "_inv_std"])
params = [t.name for t in m.graph.initializer]
os.makedirs(work, exist_ok=True)
artifacts.generate_artifacts(m, requires_grad=params, frozen_params=[],
                             loss=artifacts.LossType.CrossEntropyLoss,
                             optimizer=artifacts.OptimType.AdamW, artifact_directory=work)
opt_path = os.path.join(work, "optimizer_model.onnx")
om = onnx.load(opt_path)
for n in om.graph.node:  # torch.optim.AdamW's update, not Hugging Face's
    for a in n.attribute:
        if a.name == "adam_mode": a.i = 0
        if a.name == "weight_decay": a.f = 0.01
        if a.name == "epsilon": a.f = 1e-8
onnx.save(om, opt_path)
os.environ["OMP_NUM_THREADS"] = threads
state = CheckpointState.load_checkpoint(os.path.join(work, "checkpoint"))
module = Module(os.path.join(work, "training_model.onnx"), state, os.path.join(work, "eval_model.onnx"))
opt = Optimizer(opt_path, module)
opt.set_learning_rate(1e-3)
d = np.load(data)
x, y = d["input"], d["labels"]
module.train()
losses, times = [], []
for i in range(steps):
    t0 = time.perf_counter()
    loss = module(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch])
    opt.step()
    module.lazy_reset_grad()
    losses.append(float(loss))
    times.append(time.perf_counter() - t0)
print(json.dumps({"losses": losses[:20], "step_s": times[%d:]}))
''' % WARMUP


def fashion_mnist(n):
    base = "/usr/share/datasets/fashion-mnist"
    with gzip.open(os.path.join(base, "train-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16)[: n * 784]
    with gzip.open(os.path.join(base, "train-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return images.reshape(n, 784).astype(np.float32) / 255.0, labels.astype(np.int64)


def run_python(python, code, args, env=None):
    out = subprocess.run([python, "-c", code, *map(str, args)], capture_output=True, text=True,
                         env=env)
    if out.returncode != 0:
        sys.exit(f"train_vs_peers: {python} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_ampc(ampc, data, steps, batch, threads, precision, work):
    metrics = os.path.join(work, f"ampc_{precision}.jsonl")
    subprocess.run([ampc, "train", MODEL, "--data", data, "--batch-size", str(batch), "--steps",
                    str(steps), "--optimizer", "adamw", "--lr", "0.001", "--no-shuffle", "--quiet",
                    "--threads", str(threads), "--precision", precision, "--metrics", metrics,
                    "--force"], check=True)
    lines = [json.loads(l) for l in open(metrics) if '"loss"' in l]
    return {"losses": [l["loss"] for l in lines[:20]],
            "step_s": [batch / l["samples_per_s"] for l in lines[WARMUP:]]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ampc", default=os.path.join(ROOT, "build", "ampc"))
    ap.add_argument("--torch-python", required=True)
    ap.add_argument("--ort-python")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=256)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ampc_peers_")
    x, y = fashion_mnist(a.steps * a.batch)
    data = os.path.join(work, "data.npz")
    np.savez(data, input=x, labels=y)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    args = (MODEL, data, a.steps, a.batch, a.threads)
    runs = {}
    runs["PyTorch eager"] = run_python(a.torch_python, TORCH_RUNNER, (*args, 0), env)
    runs["torch.compile"] = run_python(a.torch_python, TORCH_RUNNER, (*args, 1), env)
    if a.ort_python:
        runs["ORT Training 1.19"] = run_python(a.ort_python, ORT_RUNNER,
                                               (*args, os.path.join(work, "ort")), env)
    for p in ("fp32", "bf16"):
        runs[f"ampc {p}"] = run_ampc(a.ampc, data, a.steps, a.batch, a.threads, p, work)
    ref = runs["PyTorch eager"]["losses"]
    best_peer = max(a.batch / statistics.median(r["step_s"]) for k, r in runs.items()
                    if not k.startswith("ampc"))
    print(f"MLP 784-256-LN-GELU-10, AdamW, batch {a.batch}, {a.threads} threads, "
          f"{a.steps} steps (median of steps {WARMUP + 1}..{a.steps})")
    print(f"{'run':<20}{'samples/s':>12}{'vs best peer':>14}{'max rel loss diff (20 steps)':>30}")
    for k, r in runs.items():
        sps = a.batch / statistics.median(r["step_s"])
        diff = max(abs(p - q) / abs(q) for p, q in zip(r["losses"], ref))
        print(f"{k:<20}{sps:>12,.0f}{sps / best_peer:>13.2f}x{diff:>30.2e}")


if __name__ == "__main__":
    main()
