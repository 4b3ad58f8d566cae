#!/usr/bin/env python3
"""`ampc export` read by other tools (ctest `interop_onnxruntime`, label `interop`).

Trains ampc's fixture models briefly, exports inference models with `ampc export` and checks them
with tools that are not ampc: ONNX's own checker (full check, with strict shape inference),
onnxruntime, and the safetensors reference implementation.

  * MLP on FashionMNIST: the fp32 export run by onnxruntime matches `ampc eval` of the same file
    within 1e-5 (relative + absolute) on all 10,000 test images and is as accurate as the
    training run's own validation; the fp16 export's top-1 agrees with the fp32 export's on at
    least 99% of them, with real float16 weights, Cast nodes and f32 inputs/outputs; the bf16
    export passes the checker and agrees likewise (in onnxruntime if its CPU provider runs bf16,
    which 1.32 does not for Gemm; otherwise in `ampc eval`, against onnxruntime's fp32 answers).
  * CNN with BatchNormalization (training form in the file): the export is in inference form
    (one output per BatchNormalization) and onnxruntime agrees with `ampc eval`.
  * Transformer trained with --untie-shared: the untied copies' names map onto the model.
  * Safetensors checkpoints written by the `safetensors` package export the same model as the
    plan they came from; a wrong shape or an unknown name is a one-line error naming the tensor.

Runs under the virtual environment tools/setup.sh creates (it re-executes itself there); fails,
saying so, when that environment is missing.
"""
import argparse
import gzip
import os
import subprocess
import sys
import tempfile

FASHION = "/usr/share/datasets/fashion-mnist"


def enter_venv(venv):
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return
    py = os.path.join(venv, "bin", "python")
    if not os.access(py, os.X_OK):
        print(f"interop: the Python environment {venv} is missing; run `bash tools/setup.sh` "
              "(it installs onnxruntime, onnx, numpy and safetensors there)")
        sys.exit(1)
    os.execv(py, [py, os.path.abspath(__file__)] + sys.argv[1:])


def read_idx(name):
    import numpy as np
    with gzip.open(os.path.join(FASHION, name), "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class Suite:
    def __init__(self, ampc, fixtures, gen, tmp):
        self.ampc, self.fixtures, self.gen, self.tmp = ampc, fixtures, gen, tmp
        self.passed = self.failed = 0

    def check(self, ok, what):
        print(("ok    " if ok else "FAIL  ") + what, flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok

    def run(self, *args, expect=0):
        r = subprocess.run([self.ampc, *args], capture_output=True, text=True)
        if r.returncode != expect:
            raise RuntimeError(f"ampc {' '.join(args)}: exit {r.returncode} (expected {expect})\n"
                               f"{r.stdout}{r.stderr}")
        return r

    def path(self, name):
        return os.path.join(self.tmp, name)

    def ampc_eval(self, model, inputs, tag):
        """`ampc eval` on arrays named like the model's inputs; returns output 0."""
        import numpy as np
        import onnx
        from onnx import numpy_helper
        d_in, d_out = self.path(tag + "_in"), self.path(tag + "_out")
        os.makedirs(d_in, exist_ok=True)
        for name, a in inputs.items():
            np.save(os.path.join(d_in, name + ".npy"), a)
        self.run("eval", model, "--inputs", d_in, "--out", d_out, "--force")
        return numpy_helper.to_array(onnx.load_tensor(os.path.join(d_out, "output_0.pb")))


def checker_accepts(path):
    import onnx
    onnx.checker.check_model(onnx.load(path), full_check=True)
    return True


def session(path):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def initializer_types(path):
    import onnx
    return {t.name: t.data_type for t in onnx.load(path).graph.initializer}


def test_mlp(s):
    import numpy as np
    import onnx
    model = os.path.join(s.fixtures, "mlp_opset17.onnx")
    plan, metrics = s.path("mlp.ampc"), s.path("mlp.jsonl")
    # bf16 training (ampc's default): the plan holds fp32 master weights.
    s.run("train", model, "--data", "fashion-mnist", "--steps", "300", "--batch-size", "64",
          "--lr", "0.05", "--momentum", "0.9", "--save-plan", plan, "--metrics", metrics,
          "--quiet")
    import json
    val_acc = [json.loads(l) for l in open(metrics)][-1]["val_accuracy"]
    outs = {p: s.path(f"mlp_{p}.onnx") for p in ("fp32", "fp16", "bf16")}
    for p, out in outs.items():
        s.run("export", model, "--weights", plan, "-o", out, "--precision", p)
        s.check(checker_accepts(out), f"mlp {p}: ONNX checker (full check) accepts the export")
    x = (read_idx("t10k-images-idx3-ubyte.gz").reshape(-1, 784) / np.float32(255)).astype(
        np.float32)
    labels = read_idx("t10k-labels-idx1-ubyte.gz").astype(np.int64)

    y32 = session(outs["fp32"]).run(None, {"input": x})[0]
    acc32 = float((y32.argmax(1) == labels).mean())
    s.check(acc32 > 0.7 and abs(acc32 - val_acc) < 0.01,
            f"mlp fp32: onnxruntime accuracy {acc32:.4f} on 10,000 test images, training's own "
            f"validation {val_acc:.4f} (bf16)")
    ya = s.ampc_eval(outs["fp32"], {"input": x}, "mlp_fp32")
    err = np.abs(ya - y32) - (1e-5 + 1e-5 * np.abs(y32))
    s.check(ya.shape == y32.shape and (err <= 0).all(),
            f"mlp fp32: ampc eval == onnxruntime within 1e-5 rel+abs (max |diff| "
            f"{np.abs(ya - y32).max():.2e})")

    sess16 = session(outs["fp16"])
    io_types = [v.type for v in sess16.get_inputs() + sess16.get_outputs()]
    s.check(io_types == ["tensor(float)", "tensor(float)"],
            f"mlp fp16: inputs and outputs keep f32 ({io_types})")
    types16 = initializer_types(outs["fp16"])
    n_half = sum(t == onnx.TensorProto.FLOAT16 for t in types16.values())
    n_cast = sum(n.op_type == "Cast" for n in onnx.load(outs["fp16"]).graph.node)
    s.check(types16.get("0.weight") == onnx.TensorProto.FLOAT16 and n_cast >= 2,
            f"mlp fp16: {n_half} float16 initializers (0.weight among them), {n_cast} Casts")
    y16 = sess16.run(None, {"input": x})[0]
    agree = float((y16.argmax(1) == y32.argmax(1)).mean())
    s.check(agree >= 0.99, f"mlp fp16: onnxruntime top-1 agrees with fp32 on {agree:.2%}")
    ya16 = s.ampc_eval(outs["fp16"], {"input": x}, "mlp_fp16")
    agree = float((ya16.argmax(1) == y32.argmax(1)).mean())
    s.check(agree >= 0.99, f"mlp fp16: ampc eval top-1 agrees with onnxruntime fp32 on {agree:.2%}")

    types_bf = initializer_types(outs["bf16"])
    s.check(types_bf.get("0.weight") == onnx.TensorProto.BFLOAT16,
            "mlp bf16: the weights are bfloat16 initializers")
    try:
        ybf = session(outs["bf16"]).run(None, {"input": x})[0]
        where = "onnxruntime"
    except Exception as e:  # onnxruntime's CPU provider has no bf16 Gemm kernel
        print(f"note  mlp bf16: onnxruntime's CPU provider does not run it "
              f"({str(e).splitlines()[0][:120]}); checking with ampc eval instead")
        ybf, where = s.ampc_eval(outs["bf16"], {"input": x}, "mlp_bf16"), "ampc eval"
    agree = float((ybf.argmax(1) == y32.argmax(1)).mean())
    s.check(agree >= 0.99,
            f"mlp bf16: {where} top-1 agrees with onnxruntime fp32 on {agree:.2%}")
    return outs["fp32"], y32, x


def test_cnn(s):
    import numpy as np
    import onnx
    model = os.path.join(s.fixtures, "cnn_train_opset17.onnx")
    plan = s.path("cnn.ampc")
    s.run("train", model, "--data", "fashion-mnist", "--steps", "40", "--batch-size", "64",
          "--lr", "0.05", "--momentum", "0.9", "--precision", "fp32", "--save-plan", plan,
          "--quiet")
    x = (read_idx("t10k-images-idx3-ubyte.gz")[:2000].reshape(-1, 1, 28, 28) /
         np.float32(255)).astype(np.float32)
    for p in ("fp32", "fp16"):
        out = s.path(f"cnn_{p}.onnx")
        s.run("export", model, "--weights", plan, "-o", out, "--precision", p)
        checker_accepts(out)
        bns = [n for n in onnx.load(out).graph.node if n.op_type == "BatchNormalization"]
        s.check(bns and all(len(n.output) == 1 for n in bns),
                f"cnn {p}: {len(bns)} BatchNormalization nodes in inference form (one output)")
        y = session(out).run(None, {"input": x})[0]
        ya = s.ampc_eval(out, {"input": x}, f"cnn_{p}")
        if p == "fp32":
            ok = bool(np.allclose(ya, y, rtol=1e-4, atol=1e-4))
            s.check(ok, f"cnn fp32: ampc eval == onnxruntime within 1e-4 (max |diff| "
                        f"{np.abs(ya - y).max():.2e})")
        else:
            agree = float((ya.argmax(1) == y.argmax(1)).mean())
            s.check(agree >= 0.98, f"cnn fp16: ampc eval and onnxruntime top-1 agree on "
                                   f"{agree:.2%}")


def test_untied_transformer(s):
    import numpy as np
    model = os.path.join(s.fixtures, "transformer_opset17.onnx")
    data = os.path.join(s.gen, "train_refs", "transformer_sgd", "data.npz")
    plan = s.path("tf.ampc")
    s.run("train", model, "--data", data, "--steps", "3", "--batch-size", "4", "--lr", "0.1",
          "--untie-shared", "--precision", "fp32", "--save-plan", plan, "--quiet")
    out = s.path("tf.onnx")
    s.run("export", model, "--weights", plan, "-o", out)
    checker_accepts(out)
    before = set(initializer_types(model))
    untied = sorted(set(initializer_types(out)) - before)
    s.check(len(untied) > 0, f"transformer --untie-shared: the export holds the untied copies "
                             f"({', '.join(untied[:3])}, ...)")
    idx = np.load(data)["idx"][:8]
    y = session(out).run(None, {"idx": idx})[0]
    ya = s.ampc_eval(out, {"idx": idx}, "tf")
    s.check(bool(np.allclose(ya, y, rtol=1e-4, atol=1e-4)),
            f"transformer --untie-shared: onnxruntime == ampc eval within 1e-4 (max |diff| "
            f"{np.abs(ya - y).max():.2e})")


def test_safetensors(s, fp32_export, y32, x):
    import numpy as np
    import onnx
    from onnx import numpy_helper
    from safetensors.numpy import save_file
    model = os.path.join(s.fixtures, "mlp_opset17.onnx")
    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(fp32_export).graph.initializer}
    ckpt = s.path("mlp.safetensors")
    save_file(weights, ckpt, metadata={"format": "pt"})
    out = s.path("mlp_st.onnx")
    s.run("export", model, "--weights", ckpt, "-o", out)
    y = session(out).run(None, {"input": x})[0]
    s.check(np.array_equal(y, y32),
            "safetensors checkpoint (written by the safetensors package) exports the same model")
    half = {k: v.astype(np.float16) for k, v in weights.items()}
    save_file(half, s.path("half.safetensors"))
    s.run("export", model, "--weights", s.path("half.safetensors"), "-o", s.path("h.onnx"))
    got = {t.name: numpy_helper.to_array(t) for t in onnx.load(s.path("h.onnx")).graph.initializer}
    s.check(all(np.array_equal(got[k], half[k].astype(np.float32)) for k in half),
            "safetensors F16 tensors widen exactly into the f32 model")

    def refused(tensors, name, needle):
        path = s.path(name)
        save_file(tensors, path)
        r = s.run("export", model, "--weights", path, "-o", s.path("bad.onnx"), expect=2)
        lines = r.stderr.strip().splitlines()
        return (len(lines) == 1 and needle in lines[0] and
                not os.path.exists(s.path("bad.onnx"))), lines

    wrong = dict(weights, **{"0.weight": np.zeros((128, 784), np.float32)})
    ok, lines = refused(wrong, "wrong.safetensors", "'0.weight' is f32[128,784]")
    s.check(ok, f"safetensors with a wrong shape: one-line error, exit 2 ({lines})")
    extra = dict(weights, **{"encoder.weight": np.zeros((3,), np.float32)})
    ok, lines = refused(extra, "extra.safetensors", "'encoder.weight' is not an initializer")
    s.check(ok, f"safetensors of another model: one-line error, exit 2 ({lines})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", required=True)
    ap.add_argument("--ampc", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--gen", required=True, help="generated fixtures (train_refs)")
    a = ap.parse_args()
    enter_venv(a.venv)
    try:
        import numpy, onnx, onnxruntime, safetensors  # noqa: F401
    except ImportError as e:
        print(f"interop: {a.venv} lacks a package ({e}); run `bash tools/setup.sh`")
        return 1
    print(f"onnxruntime {onnxruntime.__version__}, onnx {onnx.__version__}, numpy "
          f"{numpy.__version__}, safetensors {safetensors.__version__}")
    with tempfile.TemporaryDirectory(prefix="ampc_interop_") as tmp:
        s = Suite(a.ampc, a.fixtures, a.gen, tmp)

        def guarded(fn, *args):
            # An unexpected exit code or a tool's exception fails that part, not the others.
            try:
                return fn(s, *args)
            except Exception as e:
                s.check(False, f"{fn.__name__}: {type(e).__name__}: {e}")

        mlp = guarded(test_mlp)
        if mlp:
            guarded(test_safetensors, *mlp)
        guarded(test_cnn)
        guarded(test_untied_transformer)
    print(f"{s.passed} passed, {s.failed} failed")
    return 1 if s.failed or not s.passed else 0


if __name__ == "__main__":
    sys.exit(main())
