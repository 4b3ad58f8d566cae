#!/usr/bin/env python3
"""Exports the GPU benchmark's GPT-2-small-sized causal transformer to ONNX.

The model is tools/transformer_model.py's TinyGPT (the transformer fixture's module: pre-LayerNorm
blocks, causal self-attention written out as MatMul/Softmax, erf GELU, an untied LM head) at
GPT-2 small's size: 12 layers, width 768, 12 heads, context 1024, vocabulary 50257; 163M
parameters (GPT-2 small's 124M plus the untied 38.6M LM head). Seed 0, PyTorch's default
initialisation, the legacy exporter at opset 17 with the batch and sequence axes symbolic, as
the fixture. tools/gpu_torch_bench.py builds the same module for the PyTorch baseline.

Usage: export_gpt2.py OUT.onnx [--layers N --width N --heads N --context N --vocab N]
Runs with Debian's python3 (torch 1.13), as tools/gen_fixtures.py does.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from transformer_model import make_transformer_classes  # noqa: E402

GPT2_SMALL = dict(layers=12, width=768, heads=12, context=1024, vocab=50257)


def build(torch, layers, width, heads, context, vocab):
    tiny_gpt = make_transformer_classes(torch, torch.nn)
    return tiny_gpt(vocab=vocab, context=context, d_model=width, n_heads=heads,
                    n_layers=layers, use_trilu=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    for k, v in GPT2_SMALL.items():
        ap.add_argument("--" + k, type=int, default=v)
    a = ap.parse_args()
    import torch
    torch.manual_seed(0)
    model = build(torch, a.layers, a.width, a.heads, a.context, a.vocab).eval()
    idx = torch.randint(0, a.vocab, (2, 16), dtype=torch.long)
    torch.onnx.export(model, (idx,), a.out, export_params=True, opset_version=17,
                      do_constant_folding=True, input_names=["idx"], output_names=["logits"],
                      dynamic_axes={"idx": {0: "batch", 1: "seq"},
                                    "logits": {0: "batch", 1: "seq"}})
    params = sum(p.numel() for p in model.parameters())
    print(f"export_gpt2: {a.out}: {params / 1e6:.1f}M parameters, "
          f"{os.path.getsize(a.out) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
