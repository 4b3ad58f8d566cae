#!/usr/bin/env python3
"""Exports the PyTorch 2.x fixtures and their reference training losses (issue [torch2]).

Run with PyTorch 2.x from the package index, in a virtual environment (not part of the test
run; the outputs are committed under tests/fixtures/torch2_train/):

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch onnx onnxscript numpy
    /tmp/venv/bin/python tools/export_torch2_fixtures.py --out tests/fixtures/torch2_train

Three small models, each exported with both of today's exporters:
  mlp  Linear -> LayerNorm -> GELU -> Linear
  cnn  Conv -> BatchNorm (training mode) -> ReLU -> MaxPool -> Linear
  gpt  one pre-norm GPT block: RMSNorm, causal scaled_dot_product_attention with rotary
       embeddings, a SiLU MLP, a tied-free LM head
Exports: the legacy exporter (dynamo=False) at opsets 17 and 18, training mode, no constant
folding (it cannot export nn.RMSNorm, so the GPT block writes RMSNorm out); the dynamo exporter
at its default opset and at 23, with optimize=False and with the default optimize=True.
For each model: data.npz (inputs named like the model's inputs, `labels`), and ref.json: PyTorch's
per-step fp32 losses for 20 AdamW steps (lr 1e-3, PyTorch's defaults otherwise) on those batches
in order, from the exported initial weights. index.json lists every export with its model.
"""
import argparse
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

STEPS, BATCH, LR = 20, 8, 1e-3


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.ln = nn.LayerNorm(32)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(32, 5)

    def forward(self, x):
        return self.fc2(self.act(self.ln(self.fc1(x))))


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.fc(h.flatten(1))


class RmsNorm(nn.Module):
    """nn.RMSNorm written out (the legacy exporter cannot export aten::rms_norm)."""

    def __init__(self, d, native):
        super().__init__()
        self.native = native
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = 1e-6

    def forward(self, x):
        if self.native:
            return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate(x, cos, sin):
    a, b = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return x * cos + torch.cat((-b, a), dim=-1) * sin


class Gpt(nn.Module):
    def __init__(self, native_rms, vocab=32, d=16, heads=2, context=8):
        super().__init__()
        self.heads, self.context = heads, context
        self.emb = nn.Embedding(vocab, d)
        self.norm1 = RmsNorm(d, native_rms)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.norm2 = RmsNorm(d, native_rms)
        self.up = nn.Linear(d, 2 * d)
        self.down = nn.Linear(2 * d, d)
        self.norm_f = RmsNorm(d, native_rms)
        self.head = nn.Linear(d, vocab, bias=False)
        hd = d // heads
        inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.outer(torch.arange(context).float(), inv)
        self.register_buffer("cos", torch.cat((ang.cos(), ang.cos()), -1), persistent=False)
        self.register_buffer("sin", torch.cat((ang.sin(), ang.sin()), -1), persistent=False)

    def forward(self, idx):
        b, t = idx.shape
        x = self.emb(idx)
        q, k, v = self.qkv(self.norm1(x)).split(x.shape[-1], dim=-1)
        shape = (b, t, self.heads, -1)
        q, k, v = (z.reshape(shape).transpose(1, 2) for z in (q, k, v))
        q, k = rotate(q, self.cos[:t], self.sin[:t]), rotate(k, self.cos[:t], self.sin[:t])
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, -1))
        x = x + self.down(F.silu(self.up(self.norm2(x))))
        return self.head(self.norm_f(x))


def data(name, rng):
    n = STEPS * BATCH
    if name == "mlp":
        return {"x": rng.standard_normal((n, 16)).astype(np.float32),
                "labels": rng.integers(0, 5, n).astype(np.int64)}
    if name == "cnn":
        return {"x": rng.standard_normal((n, 1, 8, 8)).astype(np.float32),
                "labels": rng.integers(0, 5, n).astype(np.int64)}
    idx = rng.integers(0, 32, (n, 8)).astype(np.int64)
    return {"idx": idx, "labels": np.roll(idx, -1, axis=1)}


def build(name, native_rms):
    torch.manual_seed(0)
    return {"mlp": Mlp, "cnn": Cnn}[name]() if name != "gpt" else Gpt(native_rms)


def reference_losses(model, arrays, name):
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    key = "idx" if name == "gpt" else "x"
    losses = []
    for s in range(STEPS):
        x = torch.from_numpy(arrays[key][s * BATCH:(s + 1) * BATCH])
        y = torch.from_numpy(arrays["labels"][s * BATCH:(s + 1) * BATCH])
        out = model(x)
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def export(model, name, path, dynamo, opset, optimize):
    key = "idx" if name == "gpt" else "x"
    example = torch.zeros((2, 8), dtype=torch.long) if name == "gpt" else (
        torch.randn(2, 16) if name == "mlp" else torch.randn(2, 1, 8, 8))
    model.train()
    if dynamo:
        batch = torch.export.Dim("batch", min=2, max=1024)
        kwargs = {"dynamo": True, "optimize": optimize, "dynamic_shapes": {key: {0: batch}},
                  "external_data": True}
        if opset:
            kwargs["opset_version"] = opset
        torch.onnx.export(model, (example,), path, input_names=[key], output_names=["logits"],
                          **kwargs)
    else:
        torch.onnx.export(model, (example,), path, dynamo=False, opset_version=opset,
                          training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                          input_names=[key], output_names=["logits"],
                          dynamic_axes={key: {0: "batch"}, "logits": {0: "batch"}})


def export_gelu_mlp(path):
    """Linear(784, 128) -> GELU(approximate='tanh') -> Linear(128, 10) at opset 20 (one Gelu node
    with approximate="tanh", which torch 1.13 cannot write): the CUDA runtime's GELU epilogues."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.GELU(approximate="tanh"),
                                torch.nn.Linear(128, 10))
    torch.onnx.export(model, (torch.randn(2, 784),), path, opset_version=20, dynamo=False,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--gelu-mlp", metavar="FILE",
                    help="write only tests/fixtures/gelu_tanh_mlp_opset20.onnx's model to FILE")
    a = ap.parse_args()
    if a.gelu_mlp:
        export_gelu_mlp(a.gelu_mlp)
        return
    os.makedirs(a.out, exist_ok=True)
    index = {"torch": torch.__version__, "steps": STEPS, "batch": BATCH, "lr": LR, "exports": []}
    variants = [("legacy17", False, 17, False), ("legacy18", False, 18, False),
                ("dynamo", True, None, False), ("dynamo_opt", True, None, True),
                ("dynamo23", True, 23, False), ("dynamo23_opt", True, 23, True)]
    for name in ("mlp", "cnn", "gpt"):
        rng = np.random.default_rng(0)
        arrays = data(name, rng)
        np.savez(os.path.join(a.out, f"{name}_data.npz"), **arrays)
        refs = {}
        for tag, dynamo, opset, optimize in variants:
            native = dynamo  # the legacy exporter needs RMSNorm written out
            model = build(name, native)
            path = os.path.join(a.out, f"{name}_{tag}.onnx")
            try:
                export(model, name, path, dynamo, opset, optimize)
            except Exception as e:  # recorded, not hidden: the index says which export failed
                index["exports"].append({"model": name, "export": tag, "error": str(e)[:300]})
                continue
            if native not in refs:
                refs[native] = reference_losses(build(name, native), arrays, name)
            index["exports"].append({"model": name, "export": tag, "file": os.path.basename(path),
                                     "data": f"{name}_data.npz", "losses": refs[native]})
            print(name, tag, "ok", flush=True)
    with open(os.path.join(a.out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)


if __name__ == "__main__":
    main()
