#!/usr/bin/env python3
"""The bad-input corpus test: runs every case of cases.txt against the ampc and ampc-opt under
test and checks that each hostile input gets the expected exit code and a one-line error holding
the expected text, with no crash, no sanitizer report, no more memory than --max-address-space
allows, and without touching the user's existing files.

cases.txt, one case a line:  NAME | EXIT | EXPECTED STDERR SUBSTRING | [VAR=VALUE ...] COMMAND
Placeholders in the command: {ampc} {ampc_opt} {files} (files/, made by make_bad_inputs.py)
{fixtures} (tests/fixtures) {setup} (inputs made here from what this ampc writes: see Setup)
{tmp} (an empty folder of the case's own, holding existing.onnx, a file no case may change).

    run_bad_inputs.py --ampc build/ampc --ampc-opt build/ampc-opt [--only REGEX]
"""
import argparse
import json
import os
import re
import resource
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(os.path.dirname(HERE), "fixtures")
SENTINEL = b"the user's own model: no failed command may change this file\n"


def npy_f32(rows, cols, value):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, cols)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return (b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() +
            struct.pack("<%df" % (rows * cols), *([value] * (rows * cols))))


def varint(v):
    out = b""
    while True:
        b, v = v & 0x7F, v >> 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def plan_header(b):
    return dict(zip(["format", "header_bytes", "message_offset", "message_bytes", "data_offset",
                     "data_bytes"], struct.unpack_from("<IIQQQQ", b, 8)))


def with_field(plan, field, value):
    """The plan with one more field in its message (protobuf: the last value wins): a varint, or
    a length-delimited field when `value` is bytes."""
    h = plan_header(plan)
    if isinstance(value, bytes):
        extra = varint(field << 3 | 2) + varint(len(value)) + value
    else:
        extra = varint(field << 3) + varint(value)
    end = h["message_offset"] + h["message_bytes"]
    assert end + len(extra) <= h["data_offset"], "no room before the data section"
    b = bytearray(plan)
    b[end:end + len(extra)] = extra
    struct.pack_into("<Q", b, 24, h["message_bytes"] + len(extra))
    return bytes(b)


def safetensors_edit(path, edit):
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack_from("<Q", b)[0]
    head = json.loads(b[8:8 + n])
    data = b[8 + n:]
    data = edit(head, data)
    h = json.dumps(head).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def setup(ampc, s):
    """Valid inputs written by the ampc under test, then broken one thing at a time."""
    os.makedirs(os.path.join(s, "in"))
    with open(os.path.join(s, "in", "x.npy"), "wb") as f:
        f.write(npy_f32(2, 3, 1.0))
    with zipfile.ZipFile(os.path.join(s, "good.npz"), "w") as z:
        z.writestr("x.npy", npy_f32(8, 3, 1.0))
        z.writestr("labels.npy", npy_f32(8, 4, 0.0))
    model = os.path.join(FIXTURES, "extdata", "model.onnx")
    run = lambda *a: subprocess.run([ampc, *a], check=True, stdout=subprocess.DEVNULL)
    run("train", model, "--data", os.path.join(s, "good.npz"), "--loss", "mse", "--batch-size",
        "2", "--steps", "2", "--quiet", "--kernels", "per-op",  # arena size fixed (plan_limit)
        "--save-plan", os.path.join(s, "train.ampc"),
        "--checkpoint-dir", os.path.join(s, "ckpt"))
    with open(os.path.join(s, "train.ampc"), "rb") as f:
        plan = f.read()
    put = lambda name, b: open(os.path.join(s, name), "wb").write(b)
    put("plan_truncated.ampc", plan[:200])
    put("plan_old_format.ampc", plan[:8] + struct.pack("<I", 2) + plan[12:])
    put("plan_new_format.ampc", plan[:8] + struct.pack("<I", 99) + plan[12:])
    put("plan_huge_arena.ampc", with_field(plan, 11, 1 << 50))  # arena_bytes = 1 PiB
    put("plan_bad_utf8.ampc", with_field(plan, 2, b"\xff\xfe"))  # producer: not UTF-8
    put("plan_data_past_end.ampc", plan[:40] + struct.pack("<Q", 1 << 40) + plan[48:])
    step = os.path.join(s, "ckpt", "step-00000002")

    def checkpoint(name, file, edit=None, raw=None):
        d = os.path.join(s, name)
        shutil.copytree(step, os.path.join(d, "step-00000002"))
        path = os.path.join(d, "step-00000002", file)
        if raw is not None:
            open(path, "wb").write(raw)
        else:
            safetensors_edit(path, edit)

    def format_edit(head, data):
        head["__metadata__"]["format"] = "ampc-checkpoint-999"
        return data

    def extra_tensor(head, data):
        head["evil"] = {"dtype": "F32", "shape": [1], "data_offsets": [len(data), len(data) + 4]}
        return data + bytes(4)

    def shape_edit(head, data):  # every tensor declares 2^40 times its elements
        for k, v in head.items():
            if k != "__metadata__":
                v["shape"] = [1 << 40] + v["shape"]
        return data

    checkpoint("ckpt_format", "training.safetensors", format_edit)
    checkpoint("ckpt_extra_tensor", "model.safetensors", extra_tensor)
    checkpoint("ckpt_shapes", "model.safetensors", shape_edit)
    checkpoint("ckpt_header_len", "training.safetensors",
               raw=struct.pack("<Q", 1 << 40) + b"{}")
    checkpoint("ckpt_truncated", "model.safetensors", raw=b"\x10\x00")


def parse_cases(path):
    cases = []
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|", 3)]
        if len(parts) != 4:
            sys.exit("%s:%d: expected NAME | EXIT | SUBSTRING | COMMAND" % (path, n))
        cases.append((parts[0], int(parts[1]), parts[2], parts[3]))
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ampc", required=True)
    ap.add_argument("--ampc-opt", required=True)
    ap.add_argument("--only", default="", help="regex: run the cases whose name matches")
    ap.add_argument("--max-address-space-mb", type=int, default=0,
                    help="RLIMIT_AS of each case (0: none; sanitizer builds reserve terabytes)")
    ap.add_argument("--timeout", type=int, default=120)
    args = ap.parse_args()
    cases = [c for c in parse_cases(os.path.join(HERE, "cases.txt")) if re.search(args.only, c[0])]
    work = tempfile.mkdtemp(prefix="ampc-bad-inputs-")
    failures = []
    try:
        s = os.path.join(work, "setup")
        setup(os.path.abspath(args.ampc), s)
        subs = {"ampc": os.path.abspath(args.ampc), "ampc_opt": os.path.abspath(args.ampc_opt),
                "files": os.path.join(HERE, "files"), "fixtures": FIXTURES, "setup": s}

        def limit():
            if args.max_address_space_mb:
                lim = args.max_address_space_mb << 20
                resource.setrlimit(resource.RLIMIT_AS, (lim, lim))

        for name, want_exit, want, command in cases:
            tmp = os.path.join(work, "case-" + name)
            os.makedirs(tmp)
            with open(os.path.join(tmp, "existing.onnx"), "wb") as f:
                f.write(SENTINEL)
            words = [w.format(tmp=tmp, **subs) for w in shlex.split(command)]
            env = dict(os.environ)
            while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
                k, v = words.pop(0).split("=", 1)
                env[k] = v
            try:
                r = subprocess.run(words, env=env, capture_output=True, text=True, errors="replace",
                                   timeout=args.timeout, preexec_fn=limit)
                code, err = r.returncode, r.stderr
            except subprocess.TimeoutExpired:
                code, err = "timeout", ""
            problems = []
            if code != want_exit:
                problems.append("exit code %s, expected %d" % (code, want_exit))
            if want not in err:
                problems.append("stderr lacks %r" % want)
            # One error line and nothing else, but for the progress lines of bench (`bench: `).
            lines = [l for l in err.splitlines() if not l.startswith("bench: ")]
            if want_exit != 0 and (len(lines) != 1 or ": error: " not in lines[0]):
                problems.append("stderr is not one error line")
            if re.search(r"Sanitizer|runtime error:|Segmentation|terminate called|Aborted", err):
                problems.append("crash or sanitizer report")
            with open(os.path.join(tmp, "existing.onnx"), "rb") as f:
                if f.read() != SENTINEL:
                    problems.append("changed {tmp}/existing.onnx")
            left = [f for f in os.listdir(tmp) if ".tmp" in f or f.startswith(".")]
            if left:
                problems.append("left temporary files %s" % left)
            print("%-32s %s" % (name, "ok" if not problems else "FAILED: " + "; ".join(problems)))
            if problems:
                failures.append(name)
                print("    command: %s\n    stderr: %s" % (" ".join(words), err.strip()[:2000]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d of %d bad-input cases passed" % (len(cases) - len(failures), len(cases)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
