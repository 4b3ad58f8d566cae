#!/usr/bin/env python3
"""Writes the checked-in seed corpora of the fuzz targets that have no fixture of their own kind
(tests/fuzz/seeds/TARGET/): small valid inputs, made with the standard library only (and a
plan compiled by the ampc binary given), so each target starts from inputs that get deep.
The fixtures (ONNX models, .npz files, lit tests) are added by tools/fuzz.sh at run time.

    tests/fuzz/make_seeds.py --ampc build/ampc
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write(target, name, data):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy(descr, shape, payload):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload


def safetensors(tensors, metadata):
    head, data = {}, b""
    for name, (dtype, shape, payload) in tensors.items():
        head[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    if metadata:
        head["__metadata__"] = metadata
    h = json.dumps(head).encode()
    return struct.pack("<Q", len(h)) + h + data


def idx(dims, payload):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ampc", required=True, help="the ampc binary (compiles the plan seeds)")
    args = ap.parse_args()

    # npy/npz: one of each dtype the reader knows; the npz seeds come from the fixtures.
    write("npy_npz", "f32.npy", npy("<f4", "(2, 3)", struct.pack("<6f", *range(6))))
    write("npy_npz", "i64.npy", npy("<i8", "(3,)", struct.pack("<3q", 1, 2, 3)))
    write("npy_npz", "u8_scalar.npy", npy("|u1", "()", b"\x07"))

    images = idx([2, 28, 28], bytes(range(256)) * 6 + bytes(2 * 784 - 1536))
    write("idx", "images.idx", images)
    write("idx", "images.idx.gz", gzip.compress(images, mtime=0))
    write("idx", "labels.idx.gz", gzip.compress(idx([2], b"\x03\x09"), mtime=0))

    write("amp_config", "lists.json", json.dumps({
        "allow": ["MatMul"], "deny": ["Softmax"], "infer": ["Relu"], "clear": ["Reshape"],
        "remove": {"allow": ["Conv"], "deny": ["Exp"]}, "fp32_nodes": "^(head|fc[0-9]+)$"}).encode())
    write("amp_config", "empty.json", b"{}")

    # checkpoint: 4-byte little-endian length of training.safetensors, it, then model.safetensors,
    # matching the plan in checkpoint_fuzz.cc.
    meta = {"format": "ampc-checkpoint-1", "steps_done": "7", "seed": "42",
            "compile_options": json.dumps({"precision": "bf16", "optimizer": "adamw",
                                           "loss_scale": "none"})}
    training = safetensors({"adam.m.fc.bias": ("F32", [2], struct.pack("<2f", 0.5, -1))}, meta)
    model = safetensors({"fc.weight": ("F32", [2, 3], struct.pack("<6f", *range(6))),
                         "fc.bias": ("F32", [2], struct.pack("<2f", 1, 2)),
                         "bn.num_batches_tracked": ("I64", [], struct.pack("<q", 7))}, None)
    write("checkpoint", "step7", struct.pack("<I", len(training)) + training + model)

    # plan: the external-data fixture (a 2x3 @ 3x4 MatMul) compiled for inference in fp32 and bf16.
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "in"))
        with open(os.path.join(tmp, "in", "x.npy"), "wb") as f:
            f.write(npy("<f4", "(2, 3)", struct.pack("<6f", *range(6))))
        for precision in ("fp32", "bf16"):
            plan = os.path.join(tmp, precision + ".ampc")
            subprocess.run([args.ampc, "eval", os.path.join(ROOT, "tests/fixtures/extdata/model.onnx"),
                            "--inputs", os.path.join(tmp, "in"), "--out", os.path.join(tmp, "out" + precision),
                            "--precision", precision, "--save-plan", plan], check=True,
                           stdout=subprocess.DEVNULL)
            with open(plan, "rb") as f:
                write("plan_load", "matmul_%s.ampc" % precision, f.read())


if __name__ == "__main__":
    main()
