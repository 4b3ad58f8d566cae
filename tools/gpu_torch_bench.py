#!/usr/bin/env python3
"""PyTorch's side of the GPU benchmark (run by tools/gpu_check.sh on the GPU machine).

Trains the fixture MLP (tests/fixtures/mlp_opset17.onnx's module: Linear 784-256, LayerNorm,
GELU (erf), Linear 256-10; cross-entropy; AdamW lr 1e-3) at batch 256 on the same FashionMNIST
samples as ampc-gpu bench, each batch copied from pinned host memory as a DataLoader with
pin_memory would, in these configurations:
  eager fp32, eager AMP bf16 (autocast), eager AMP fp16 (autocast + GradScaler),
  torch.compile AMP bf16.
Prints one JSON line per configuration (samples/s, ms per step, peak allocated and reserved
device bytes), then, given ampc-gpu's JSON lines (--ampc FILE), a table with ampc's ratios
against PyTorch eager AMP of the same precision and the best PyTorch configuration.
"""
import argparse
import json
import sys
import time


def bench(torch, name, x_host, y_host, batch, steps, warmup, precision, compile_model):
    import torch.nn as nn

    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = nn.Sequential(nn.Linear(784, 256), nn.LayerNorm(256), nn.GELU(approximate="none"),
                          nn.Linear(256, 10)).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    fwd = torch.compile(model) if compile_model else model
    n = x_host.shape[0] // batch

    def step(k):
        i = k % n
        xb = x_host[i * batch:(i + 1) * batch].to(dev, non_blocking=True)
        yb = y_host[i * batch:(i + 1) * batch].to(dev, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        if dtype is None:
            loss = loss_fn(fwd(xb), yb)
        else:
            with torch.autocast("cuda", dtype=dtype):
                loss = loss_fn(fwd(xb), yb)
        if scaler:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        return loss

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t_compile = time.perf_counter()
    for k in range(warmup):
        loss = step(k)
    torch.cuda.synchronize()
    t_compile = time.perf_counter() - t_compile
    t0 = time.perf_counter()
    for k in range(steps):
        loss = step(warmup + k)
    torch.cuda.synchronize()
    s = time.perf_counter() - t0
    return {"tool": "torch", "label": name, "batch": batch, "steps": steps, "seconds": s,
            "samples_per_s": batch * steps / s, "ms_per_step": 1e3 * s / steps,
            "device_bytes": torch.cuda.max_memory_allocated(),
            "device_reserved": torch.cuda.max_memory_reserved(), "warmup_s": t_compile,
            "last_loss": float(loss.item()), "torch": torch.__version__}


def table(rows):
    torch_rows = {r["label"]: r for r in rows if r["tool"] == "torch"}
    best = max((r["samples_per_s"] for r in torch_rows.values()), default=0)
    print("\n| config | samples/s | ms/step | device MiB | vs eager (same precision) | vs best PyTorch |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        label = r["tool"] + " " + r["label"]
        ratio_eager = ratio_best = ""
        if r["tool"] == "ampc":
            prec = r["label"].split("_")[1] if "_" in r["label"] else ""
            peer = {"fp32": "eager_fp32", "bf16": "eager_amp_bf16", "fp16": "eager_amp_fp16"}.get(prec)
            if peer in torch_rows:
                ratio_eager = "%.2fx" % (r["samples_per_s"] / torch_rows[peer]["samples_per_s"])
            if best:
                ratio_best = "%.2fx" % (r["samples_per_s"] / best)
        print("| %s | %.0f | %.4f | %.1f | %s | %s |" % (label, r["samples_per_s"], r["ms_per_step"],
                                                      r["device_bytes"] / 2**20, ratio_eager, ratio_best))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the .npz ampc-gpu bench trained on")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--ampc", help="ampc-gpu bench's JSON lines, for the table")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    a = ap.parse_args()
    import numpy as np
    import torch

    d = np.load(a.data)
    x = torch.from_numpy(d["input"].astype(np.float32)).pin_memory()
    y = torch.from_numpy(d["labels"].astype(np.int64)).pin_memory()
    rows = []
    configs = [("eager_fp32", None, False), ("eager_amp_bf16", "bf16", False),
               ("eager_amp_fp16", "fp16", False)]
    if not a.no_compile:
        configs.append(("compile_amp_bf16", "bf16", True))
    for name, precision, comp in configs:
        try:
            r = bench(torch, name, x, y, a.batch, a.steps, a.warmup, precision, comp)
        except Exception as e:  # one failing configuration does not hide the others
            print(json.dumps({"tool": "torch", "label": name, "error": str(e).splitlines()[0]}))
            continue
        print(json.dumps(r), flush=True)
        rows.append(r)
    if a.ampc:
        ampc_rows = []
        with open(a.ampc) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    r = json.loads(line)
                    if r.get("tool") == "ampc":
                        ampc_rows.append(r)
        table(ampc_rows + rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
