#!/usr/bin/env python3
"""A checkpoint written by `ampc train --checkpoint-dir` loads into the PyTorch module the ONNX
model came from, with model.load_state_dict(safetensors.torch.load_file(f), strict=True), and
that module computes the logits ampc computes for the same trained weights.

The fixture transformer (tools/gen_fixtures.py's TinyGPT, exported by torch 1.13's legacy
exporter) is the hard case: its Linear weights were folded into transposed onnx::MatMul_N
initializers and equal LayerNorm weights were merged behind Identity nodes, so the checkpoint
must rename, transpose and duplicate them back.

Usage: checkpoint_torch.py AMPC FIXTURES_DIR TRAIN_REFS_DIR WORK_DIR  (run by ctest with a Python
that has Debian's torch and the safetensors package: the venv tools/setup.sh makes).
"""
import os
import subprocess
import sys

import numpy as np
import onnx
import onnx.numpy_helper
import torch
from safetensors.torch import load_file


def main():
    ampc, fixtures, refs, work = sys.argv[1:5]
    sys.path.insert(0, os.path.join(os.path.dirname(fixtures.rstrip("/")), "..", "tools"))
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
    import gen_fixtures

    os.makedirs(work, exist_ok=True)
    ck = os.path.join(work, "ck")
    exported = os.path.join(work, "trained.onnx")
    subprocess.run([ampc, "train", os.path.join(fixtures, "transformer_opset17.onnx"), "--data",
                    os.path.join(refs, "transformer_adamw", "data.npz"), "--batch-size", "8",
                    "--steps", "5", "--optimizer", "adamw", "--lr", "0.01", "--precision", "fp32",
                    "--quiet", "--force", "--checkpoint-dir", ck, "--export", exported], check=True)
    state = load_file(os.path.join(ck, "step-00000005", "model.safetensors"))
    torch.manual_seed(0)
    model = gen_fixtures.make_transformer_classes(torch, torch.nn)(use_trilu=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(state, strict=True)  # raises on a missing or unexpected key
    moved = sum(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert moved > 0, "the checkpoint holds the initial weights"
    model.eval()
    idx = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = model(idx).numpy()
    inputs = os.path.join(work, "in")
    os.makedirs(inputs, exist_ok=True)
    np.save(os.path.join(inputs, "idx.npy"), idx.numpy())
    out = os.path.join(work, "out")
    subprocess.run([ampc, "eval", exported, "--inputs", inputs, "--out", out, "--force"],
                   check=True, stdout=subprocess.DEVNULL)
    t = onnx.TensorProto()
    with open(os.path.join(out, "output_0.pb"), "rb") as f:
        t.ParseFromString(f.read())
    got = onnx.numpy_helper.to_array(t)
    # fp32 both ways, different summation orders: |d| <= 1e-5 + 1e-4 |want| (numpy.allclose-style).
    excess = np.max(np.abs(got - want) - (1e-5 + 1e-4 * np.abs(want)))
    print(f"{moved} tensors trained; PyTorch with the checkpoint vs ampc: max abs diff "
          f"{np.max(np.abs(got - want)):.2e} over logits up to {np.max(np.abs(want)):.2f}")
    assert excess <= 0, excess


if __name__ == "__main__":
    main()
