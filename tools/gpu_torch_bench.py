#!/usr/bin/env python3
"""PyTorch's side of the GPU benchmark (run by tools/gpu_check.sh on the GPU machine).

--model mlp (default) trains the fixture MLP (tests/fixtures/mlp_opset17.onnx's module: Linear 784-256, LayerNorm,
GELU (erf), Linear 256-10; cross-entropy; AdamW lr 1e-3) at batch 256 on the same FashionMNIST
samples as ampc-gpu bench, each batch copied from pinned host memory as a DataLoader with
pin_memory would, in these configurations:
  eager fp32, eager AMP bf16 (autocast), eager AMP fp16 (autocast + GradScaler),
  torch.compile AMP bf16.
Prints one JSON line per configuration (samples/s, ms per step, peak allocated and reserved
device bytes), then, given ampc-gpu's JSON lines (--ampc FILE), a table with ampc's ratios
against PyTorch eager AMP of the same precision and the best PyTorch configuration.

--model gpt2 trains tools/transformer_model.py's TinyGPT at GPT-2 small's size (12 layers,
width 768, 12 heads, context 1024, vocabulary 50257, untied LM head: the module
tools/export_gpt2.py exported for ampc) on the same token batches (batch 8, sequence 1024,
cross-entropy over every position, AdamW lr 1e-4), in the same configurations, and reports
tokens/s and MFU beside samples/s: the model FLOPs of a step (6 N per token for the N
parameters outside the embeddings, plus 12 L T d per token for the attention products, which
this module computes in full) over the time, against --peak-tflops (default: 989, an H100 or
H200 SXM's dense bf16 tensor peak). The table's ratios for ampc's gpt2 rows are against torch
eager AMP of the same precision and against torch.compile AMP bf16.
"""
import argparse
import json
import os
import sys
import time


GPT2 = dict(vocab=50257, context=1024, d_model=768, n_heads=12, n_layers=12)


def build(torch, model_name):
    """The module, its learning rate, and a loss(outputs, labels) over the whole batch."""
    import torch.nn as nn

    if model_name == "mlp":
        model = nn.Sequential(nn.Linear(784, 256), nn.LayerNorm(256), nn.GELU(approximate="none"),
                              nn.Linear(256, 10))
        return model, 1e-3, nn.CrossEntropyLoss()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from transformer_model import make_transformer_classes
    model = make_transformer_classes(torch, nn)(use_trilu=True, **GPT2)
    ce = nn.CrossEntropyLoss()
    return model, 1e-4, lambda logits, y: ce(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def model_flops_per_token(model, seq):
    """6 N for the parameters outside the embedding tables, plus the attention products."""
    n = sum(p.numel() for name, p in model.named_parameters() if "emb" not in name)
    return 6 * n + 12 * GPT2["n_layers"] * seq * GPT2["d_model"]


def bench(torch, model_name, name, x_host, y_host, batch, steps, warmup, precision, compile_model):
    torch.manual_seed(0)
    dev = torch.device("cuda")
    model, lr, loss_fn = build(torch, model_name)
    model = model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
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
    r = {"tool": "torch", "label": name, "batch": batch, "steps": steps, "seconds": s,
         "samples_per_s": batch * steps / s, "ms_per_step": 1e3 * s / steps,
         "device_bytes": torch.cuda.max_memory_allocated(),
         "device_reserved": torch.cuda.max_memory_reserved(), "warmup_s": t_compile,
         "last_loss": float(loss.item()), "torch": torch.__version__}
    if model_name == "gpt2":
        r["flops_per_token"] = model_flops_per_token(model, x_host.shape[1])
    return r


def table(rows, seq=None, flops_per_token=None, peak=None):
    """Markdown: one row per configuration; ampc's ratios against PyTorch eager AMP of the same
    precision and against the best PyTorch configuration (gpt2: torch.compile AMP bf16)."""
    torch_rows = {r["label"]: r for r in rows if r["tool"] == "torch"}
    best_label = "compile_amp_bf16" if seq else None
    best = (torch_rows[best_label]["samples_per_s"] if best_label in torch_rows else
            max((r["samples_per_s"] for r in torch_rows.values()), default=0))
    versus = "vs torch.compile AMP bf16" if seq else "vs best PyTorch"
    extra = " tokens/s | MFU |" if seq else ""
    print(f"\n| config | samples/s |{extra} ms/step | device MiB | vs eager (same precision) | {versus} |")
    print("|---|---|" + ("---|---|" if seq else "") + "---|---|---|---|")
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
        cols = ""
        if seq:
            tokens = r["samples_per_s"] * seq
            mfu = tokens * flops_per_token / (peak * 1e12) if flops_per_token else float("nan")
            cols = " %.0f | %.1f%% |" % (tokens, 100 * mfu)
        print("| %s | %.1f |%s %.4f | %.1f | %s | %s |" % (
            label, r["samples_per_s"], cols, r["ms_per_step"], r["device_bytes"] / 2**20,
            ratio_eager, ratio_best))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["mlp", "gpt2"], default="mlp")
    ap.add_argument("--data", required=True, help="the .npz ampc-gpu bench trained on")
    ap.add_argument("--batch", type=int, help="default: 256 (mlp), 8 (gpt2)")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--ampc", help="ampc-gpu bench's JSON lines, for the table")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--configs", help="comma-separated subset of the configurations")
    ap.add_argument("--peak-tflops", type=float, default=989.0,
                    help="the GPU's dense bf16 tensor peak, for MFU (gpt2)")
    a = ap.parse_args()
    import numpy as np
    import torch

    batch = a.batch or (8 if a.model == "gpt2" else 256)
    d = np.load(a.data)
    if a.model == "gpt2":
        x = torch.from_numpy(d["idx"].astype(np.int64)).pin_memory()
    else:
        x = torch.from_numpy(d["input"].astype(np.float32)).pin_memory()
    y = torch.from_numpy(d["labels"].astype(np.int64)).pin_memory()
    rows = []
    configs = [("eager_fp32", None, False), ("eager_amp_bf16", "bf16", False),
               ("eager_amp_fp16", "fp16", False)]
    if not a.no_compile:
        configs.append(("compile_amp_bf16", "bf16", True))
    if a.configs:
        configs = [c for c in configs if c[0] in a.configs.split(",")]
    for name, precision, comp in configs:
        try:
            r = bench(torch, a.model, name, x, y, batch, a.steps, a.warmup, precision, comp)
        except Exception as e:  # one failing configuration does not hide the others
            print(json.dumps({"tool": "torch", "label": name, "error": str(e).splitlines()[0]}))
            continue
        finally:
            torch.cuda.empty_cache()
        print(json.dumps(r), flush=True)
        rows.append(r)
    if a.ampc:
        ampc_rows = []
        with open(a.ampc) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    r = json.loads(line)
                    if r.get("tool") == "ampc" and "samples_per_s" in r:
                        ampc_rows.append(r)
        seq = x.shape[1] if a.model == "gpt2" else None
        fpt = next((r["flops_per_token"] for r in rows if "flops_per_token" in r), None)
        table(ampc_rows + rows, seq, fpt, a.peak_tflops)
    return 0


if __name__ == "__main__":
    sys.exit(main())
