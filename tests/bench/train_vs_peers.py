#!/usr/bin/env python3
"""CPU training throughput of ampc beside its peers, on the same models, data and threads, in one run.

Models (--model mlp|cnn|transformer|all, default all), each trained with AdamW (lr 1e-3, weight
decay 0.01, PyTorch's defaults otherwise), batches in file order, from the ONNX file's initial
weights, cross-entropy loss (mean):
  mlp          tests/fixtures/mlp_opset17.onnx: 784-256-LayerNorm-GELU-10 on FashionMNIST
               (input f32[B,784]); batch 256 by default.
  cnn          tests/fixtures/cnn_opset17.onnx: Conv(1->8,3x3)-ReLU-MaxPool-Conv(8->16,3x3)-ReLU-
               AvgPool-Conv(16->16,1x1)-ReLU6-GlobalAvgPool-Linear(16,10) on FashionMNIST (input
               f32[B,1,28,28]); exported in eval mode, so each BatchNorm is folded into its conv.
               Batch 128 by default.
  transformer  tests/fixtures/transformer_opset17.onnx: TinyGPT (vocab 64, context 16, d_model 32,
               4 heads, 2 layers) on a deterministic synthetic corpus: token sequences drawn from a
               fixed random Markov chain (numpy default_rng(0), each token has 4 likely
               successors), idx = tokens 0..15 of a 17-token row, labels = tokens 1..16 (next-token
               targets); cross-entropy over the vocabulary axis, averaged over all B*16 tokens.
               Batch 64 by default.
Runners, each in its own interpreter (PyTorch 2.x and ORT Training need different onnx versions;
--torch-python and --ort-python name them, virtual environments from the package index, see
../shared/notes/toolchain-facts.md):
  ampc fp32/bf16     `ampc train --precision fp32|bf16 --untie-shared` (the transformer's five
                     LayerNorms share one initializer in the ONNX file; torch trains them apart);
  PyTorch eager      the module built by tools/gen_fixtures.py (build_mlp, build_cnn with its two
                     BatchNorms replaced by Identity since the ONNX file has them folded into the
                     convs, make_transformer_classes) with the ONNX initializers loaded, strict:
                     by name, exporter-named weights (onnx::MatMul_N, onnx::Conv_N) by the module
                     scope of the node that consumes them (MatMul weights transposed), Identity
                     aliases of a merged initializer as copies. Its forward is checked against the
                     fixture's reference output before training;
  PyTorch eager bf16 the same under torch.autocast("cpu", dtype=torch.bfloat16);
  torch.compile      the same module compiled (fp32);
  ORT Training       onnxruntime-training-cpu 1.19's on-device training artifacts of the same ONNX
                     model (fp32; AdamW switched to torch's update rule, adam_mode=0; merged
                     initializers untied; the batch dimension fixed to the run's batch size, since
                     ORT 1.19 dies with SIGFPE in the CNN's first step when it is symbolic; the
                     transformer's logits flattened to [B*16, 64] so that ORT's cross-entropy
                     takes the vocabulary as its class axis; intra-op threads = --threads).
A runner that fails on a model (say ORT cannot build a gradient) gets a "failed: reason" row.
Prints, per model, samples/s (median over the timed steps, after 10 warm-up steps; with
--rounds N, every run is repeated round by round, each round starting one run later, and keeps
its fastest round), the ratio to
the best peer (ampc runs excluded), achieved GFLOP/s, and each run's agreement with PyTorch eager
fp32's losses over the first 20 steps. Then the roofline, one line per model: the training step's
matmul/conv FLOPs (forward 2*M*N*K; backward twice that, input and weight gradients, but once for
a first layer, whose input is data and needs no gradient; attention's q@k^T and p@v at full
T x T; elementwise work, norms, softmax and the optimizer left out), cross-checked with torch's
FlopCounterMode on one step, and each ampc run's achieved GFLOP/s as a percentage of the machine's
peak measured in the same run: torch.matmul of 1024x1024, fp32 and (where the CPU has avx512_bf16
or amx_bf16) bf16, same threads, best of 10, measured before and after the runs, the higher
counting (the machine may be shared). ampc bf16 is set against the bf16 peak where there is one.
Last, where there is a bf16 peak, a bf16 ceiling line per model: ampc's fp32 step run with
AMPC_PROFILE=all (60 steps, before and after the rounds, the faster run counting), the share of its time in GEMM/conv steps (MatMul, Gemm, Conv,
ConvTranspose, Einsum, ConvGrad, Attention and its gradient, counted whole), and Amdahl's bound
on ampc bf16 / fp32 were those steps sped up by the measured bf16/fp32 peak ratio and the rest
left as it is (the CPU computes every other op in fp32 whatever the storage type).
The header names the CPU and its avx2/avx512f/avx512_bf16/amx_bf16/avx512_fp16 flags.
--json FILE also writes everything as JSON. --batch N sets every model's batch size, --batch
cnn=64,transformer=32 some of them; FashionMNIST has 60000 training images, so --steps x batch
must stay within that for mlp and cnn (the script stops with the largest --steps that fits).

    python3 tests/bench/train_vs_peers.py --ampc build/ampc --torch-python V1/bin/python \\
        --ort-python V2/bin/python --threads 2 --steps 150 [--model all] [--batch mlp=256,cnn=128]
"""
import argparse
import gzip
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
WARMUP = 10
LOSS_STEPS = 20
FASHION_MNIST_TRAIN = 60000

MODELS = {
    "mlp": {"file": "mlp_opset17.onnx", "batch": 256, "input": "input",
            "title": "MLP 784-256-LN-GELU-10 (FashionMNIST)"},
    "cnn": {"file": "cnn_opset17.onnx", "batch": 128, "input": "input",
            "title": "CNN conv3x3(8)-conv3x3(16)-conv1x1(16)-fc10, BN folded (FashionMNIST)"},
    "transformer": {"file": "transformer_opset17.onnx", "batch": 64, "input": "idx",
                    "title": "TinyGPT V64 T16 C32 H4 L2 (synthetic next-token corpus)"},
}
SEQ, VOCAB, D_MODEL, HEADS, LAYERS = 16, 64, 32, 4, 2
PEAK_N, PEAK_REPS = 1024, 10

TORCH_RUNNER = r'''
import copy, json, os, sys, time
import numpy as np, onnx, onnx.numpy_helper, torch
key, model_path, data, steps, batch, threads, mode, root = sys.argv[1:9]
steps, batch, threads = int(steps), int(batch), int(threads)
torch.set_num_threads(threads)
sys.path.insert(0, os.path.join(root, "tools"))
import gen_fixtures
nn = torch.nn
if key == "mlp":
    model = gen_fixtures.build_mlp(nn)
elif key == "cnn":
    model = gen_fixtures.build_cnn(nn)
    # The eval-mode export folded each BatchNorm into the conv before it.
    for i in (1, 5):
        assert isinstance(model[i], nn.BatchNorm2d), model
        model[i] = nn.Identity()
else:
    model = gen_fixtures.make_transformer_classes(torch, nn)(use_trilu=True)

def onnx_weights(model, path):
    """The module's state_dict from the ONNX initializers: [(key, onnx name, how)]."""
    g = onnx.load(path).graph
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    sd = model.state_dict()
    src = {k: (k, "name") for k in sd if k in inits}
    for n in g.node:  # torch merged identical tensors and re-created the others as Identity
        if n.op_type == "Identity" and n.input[0] in inits and n.output[0] in sd:
            src.setdefault(n.output[0], (n.input[0], "alias"))
    for n in g.node:  # exporter-named weights: the module is the consuming node's name scope
        scope = n.name.rsplit("/", 1)[0].strip("/").replace("/", ".")
        for pos, name in enumerate(n.input):
            if name not in inits or name in sd:
                continue
            transb = next((a.i for a in n.attribute if a.name == "transB"), 0)
            role = {("MatMul", 1): ("weight", "transposed"), ("Conv", 1): ("weight", "scope"),
                    ("Conv", 2): ("bias", "scope"),
                    ("Gemm", 1): ("weight", "scope" if transb else "transposed"),
                    ("Gemm", 2): ("bias", "scope"), ("Gather", 0): ("weight", "scope"),
                    ("Add", 0): ("bias", "scope"), ("Add", 1): ("bias", "scope")}.get(
                        (n.op_type, pos))
            k = role and f"{scope}.{role[0]}"
            if not role or k not in sd or k in src:
                raise SystemExit(f"{path}: cannot place initializer {name} "
                                 f"(input {pos} of {n.op_type} {n.name})")
            src[k] = (name, role[1])
    missing = [k for k in sd if k not in src]
    if missing:
        raise SystemExit(f"{path}: no ONNX initializer for {', '.join(missing)}")
    used = {s for s, _ in src.values()}
    unused = [n for n, a in inits.items() if n not in used and a.dtype.kind == "f" and a.size > 1]
    if unused:
        raise SystemExit(f"{path}: initializers not in the module: {', '.join(unused)}")
    state = {}
    for k, (name, how) in src.items():
        a = inits[name].T if how == "transposed" else inits[name]
        if tuple(a.shape) != tuple(sd[k].shape):
            raise SystemExit(f"{path}: {name} {a.shape} does not fit {k} {tuple(sd[k].shape)}")
        state[k] = torch.from_numpy(np.array(a, order="C"))  # a writable copy
    model.load_state_dict(state, strict=True)
    return [(k, *src[k]) for k in sd]

mapping = onnx_weights(model, model_path)
ref_dir = model_path[:-len(".onnx")] + "_data"
def ref_tensor(name):
    return onnx.numpy_helper.to_array(onnx.load_tensor(os.path.join(ref_dir, name))).copy()
rx, ry = torch.from_numpy(ref_tensor("input_0.pb")), ref_tensor("output_0.pb")
with torch.no_grad():
    fwd_diff = float(np.abs(model(rx).numpy() - ry).max())
if not fwd_diff < 1e-4:
    raise SystemExit(f"module output differs from the fixture's reference output by {fwd_diff:.2e}")
model.train()
d = np.load(data)
x = torch.from_numpy(d["idx" if key == "transformer" else "input"])
y = torch.from_numpy(d["labels"])
def loss_of(logits, yb):
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1))
flops_counted = None
if mode == "eager":  # FLOPs of one training step (forward + backward), as torch counts them
    from torch.utils.flop_counter import FlopCounterMode
    m2 = copy.deepcopy(model)
    with FlopCounterMode(display=False) as fc:
        loss_of(m2(x[:batch]), y[:batch]).backward()
    flops_counted = fc.get_total_flops()
    del m2
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
fwd = torch.compile(model) if mode == "compile" else model
def step(i):
    xb, yb = x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]
    if mode == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = loss_of(fwd(xb), yb)
    else:
        loss = loss_of(fwd(xb), yb)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()
losses, times = [], []
for i in range(steps):
    t0 = time.perf_counter()
    losses.append(step(i))
    times.append(time.perf_counter() - t0)
print(json.dumps({"losses": losses[:%d], "step_s": times[%d:], "version": torch.__version__,
                  "mapping": mapping, "fwd_check_max_abs": fwd_diff,
                  "flops_counted": flops_counted}))
''' % (LOSS_STEPS, WARMUP)

ORT_RUNNER = r'''
import json, os, sys, time
import types
import numpy as np, onnx
from onnx import TensorProto, helper
# onnxruntime.training's __init__ imports its torch-only optimizer package; the on-device API
# used here does not need it (and torch is not in this environment).
sys.modules["onnxruntime.training.optim"] = types.ModuleType("onnxruntime.training.optim")
import onnxruntime
from onnxruntime.training import artifacts
from onnxruntime.training.api import CheckpointState, Module, Optimizer
key, model_path, data, steps, batch, threads, work = sys.argv[1:8]
steps, batch, threads = int(steps), int(batch), int(threads)
m = onnx.load(model_path)
g = m.graph
# torch merged identical initializers (the transformer's LayerNorm weights) and re-created the
# others with Identity; give each its own copy, as the torch module has.
inits = {t.name: t for t in g.initializer}
nodes = []
for n in g.node:
    if n.op_type == "Identity" and n.input[0] in inits:
        t = TensorProto()
        t.CopyFrom(inits[n.input[0]])
        t.name = n.output[0]
        g.initializer.append(t)
    else:
        nodes.append(n)
del g.node[:]
g.node.extend(nodes)
# ORT's LayerNormalization gradient needs the optional Mean and InvStdDev outputs.
for n in g.node:
    if n.op_type == "LayerNormalization" and len(n.output) == 1:
        n.output.extend([n.name + "_mean", n.name + "_inv_std"])
# Fixed batch (and sequence) sizes: ORT 1.19 dies with SIGFPE in the CNN's first training step
# when the batch dimension is symbolic. Every run uses the one batch size anyway.
fixed = {"batch": batch, "seq": 16}
for vi in [*g.input, *g.output, *g.value_info]:
    for dim in vi.type.tensor_type.shape.dim:
        if dim.dim_param in fixed:
            dim.dim_value = fixed[dim.dim_param]
if key == "transformer":  # SoftmaxCrossEntropyLoss takes classes on axis 1: flatten the tokens
    out = g.output[0]
    vocab = out.type.tensor_type.shape.dim[-1].dim_value
    g.node.extend([
        helper.make_node("Constant", [], ["bench_flat_shape"],
                         value=helper.make_tensor("v", TensorProto.INT64, [2], [-1, vocab])),
        helper.make_node("Reshape", [out.name, "bench_flat_shape"], ["logits_flat"])])
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info("logits_flat", TensorProto.FLOAT,
                                                   [batch * 16, vocab])])
params = [t.name for t in g.initializer
          if t.data_type == TensorProto.FLOAT and np.prod(t.dims) > 1]
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
so = onnxruntime.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
state = CheckpointState.load_checkpoint(os.path.join(work, "checkpoint"))
module = Module(os.path.join(work, "training_model.onnx"), state,
                os.path.join(work, "eval_model.onnx"), session_options=so)
opt = Optimizer(opt_path, module)
opt.set_learning_rate(1e-3)
d = np.load(data)
x = d["idx" if key == "transformer" else "input"]
y = d["labels"]
module.train()
losses, times = [], []
for i in range(steps):
    t0 = time.perf_counter()
    loss = module(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch].reshape(-1))
    opt.step()
    module.lazy_reset_grad()
    losses.append(float(loss))
    times.append(time.perf_counter() - t0)
print(json.dumps({"losses": losses[:%d], "step_s": times[%d:],
                  "version": onnxruntime.__version__}))
''' % (LOSS_STEPS, WARMUP)

PEAK_RUNNER = r'''
import json, sys, time, torch
threads, with_bf16 = int(sys.argv[1]), sys.argv[2] == "1"
torch.set_num_threads(threads)
N, REPS, INNER = %d, %d, 10
def peak(dtype):
    a, b = torch.randn(N, N).to(dtype), torch.randn(N, N).to(dtype)
    c = torch.empty(N, N, dtype=dtype)
    for _ in range(3):
        torch.matmul(a, b, out=c)
    best = 0.0
    for _ in range(REPS):
        t0 = time.perf_counter()
        for _ in range(INNER):
            torch.matmul(a, b, out=c)
        best = max(best, 2.0 * N ** 3 * INNER / (time.perf_counter() - t0))
    return best
out = {"fp32": peak(torch.float32), "version": torch.__version__}
if with_bf16:
    out["bf16"] = peak(torch.bfloat16)
print(json.dumps(out))
''' % (PEAK_N, PEAK_REPS)


def cpu_info():
    name, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k = k.strip()
                if k == "model name" and name == "unknown":
                    name = v.strip()
                elif k == "flags" and not flags:
                    flags = set(v.split())
    except OSError:
        pass
    isa = {f: f in flags for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16")}
    return name, isa


def step_flops(key, batch):
    """Matmul/conv FLOPs of one training step: [(layer, forward FLOPs, passes)].

    passes = 3 (forward, input gradient, weight gradient), or 2 for a first layer, whose input
    (the data) needs no gradient. Elementwise work, norms, softmax and the optimizer are left out.
    """
    b = batch
    if key == "mlp":
        return [("fc1 784x256", 2 * b * 784 * 256, 2), ("fc2 256x10", 2 * b * 256 * 10, 3)]
    if key == "cnn":
        return [("conv1 1->8 3x3 @28x28", 2 * b * 8 * 28 * 28 * 1 * 9, 2),
                ("conv2 8->16 3x3 @14x14", 2 * b * 16 * 14 * 14 * 8 * 9, 3),
                ("conv3 16->16 1x1 @7x7", 2 * b * 16 * 7 * 7 * 16, 3),
                ("fc 16x10", 2 * b * 16 * 10, 3)]
    t, c = b * SEQ, D_MODEL  # the first matmul sees LayerNorm(embeddings): trained, so 3 passes
    per_layer = [("qkv", 2 * t * c * 3 * c), ("proj", 2 * t * c * c), ("fc1", 2 * t * c * 4 * c),
                 ("fc2", 2 * t * 4 * c * c),
                 ("q@k^T", 2 * b * HEADS * SEQ * SEQ * (c // HEADS)),  # full, masked after
                 ("p@v", 2 * b * HEADS * SEQ * SEQ * (c // HEADS))]
    return ([(f"L{i}.{n}", f, 3) for i in range(LAYERS) for n, f in per_layer] +
            [("lm_head", 2 * t * c * VOCAB, 3)])


def fashion_mnist(n):
    base = os.environ.get("AMPC_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
    with gzip.open(os.path.join(base, "train-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16)[: n * 784]
    with gzip.open(os.path.join(base, "train-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return images.reshape(n, 784).astype(np.float32) / 255.0, labels.astype(np.int64)


def token_corpus(n):
    """n rows of 17 tokens from a fixed random Markov chain (4 likely successors per token)."""
    rng = np.random.default_rng(0)
    succ = rng.integers(0, VOCAB, (VOCAB, 4))
    pick = rng.choice(4, size=(n, SEQ), p=[0.5, 0.25, 0.15, 0.1])
    rows = np.empty((n, SEQ + 1), np.int64)
    rows[:, 0] = rng.integers(0, VOCAB, n)
    for j in range(SEQ):
        rows[:, j + 1] = succ[rows[:, j], pick[:, j]]
    return rows[:, :SEQ].copy(), rows[:, 1:].copy()


def write_data(key, n, path):
    if key == "transformer":
        idx, labels = token_corpus(n)
        np.savez(path, idx=idx, labels=labels)
    else:
        x, y = fashion_mnist(n)
        np.savez(path, input=x.reshape(n, 1, 28, 28) if key == "cnn" else x, labels=y)


def failure(returncode, stderr):
    """One line saying why a runner failed: its exception's message, or the signal."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", l).strip() for l in stderr.splitlines()]
    lines = [l for l in lines if l and not re.search(r"\[[IWV]:onnxruntime", l)]
    exc = [l for l in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b", l)]
    line = exc[-1] if exc else (lines[-1] if lines else "")
    if returncode < 0:
        sig = signal.Signals(-returncode).name
        line = f"killed by {sig}" + (f": {line}" if line else "")
    line = line or f"exit code {returncode}"
    return line if len(line) <= 160 else line[:157] + "..."


def run_python(python, code, args, env):
    try:
        out = subprocess.run([python, "-c", code, *map(str, args)], capture_output=True,
                             text=True, env=env)
    except OSError as e:
        return {"error": str(e)}
    if out.returncode != 0:
        return {"error": failure(out.returncode, out.stderr), "stderr": out.stderr[-3000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def ampc_train(ampc, model, data, steps, batch, threads, precision, metrics, extra):
    """The `ampc train` command line every ampc run of this benchmark uses."""
    return [ampc, "train", model, "--data", data, "--batch-size", str(batch), "--steps",
            str(steps), "--optimizer", "adamw", "--lr", "0.001", "--no-shuffle", "--quiet",
            "--threads", str(threads), "--precision", precision, "--metrics", metrics, "--force",
            "--untie-shared", *extra]


def run_ampc(ampc, model, data, steps, batch, threads, precision, work, extra):
    metrics = os.path.join(work, f"ampc_{precision}.jsonl")
    if os.path.exists(metrics):
        os.remove(metrics)
    try:
        out = subprocess.run(ampc_train(ampc, model, data, steps, batch, threads, precision,
                                        metrics, extra), capture_output=True, text=True)
    except OSError as e:
        return {"error": str(e)}
    if out.returncode != 0:
        return {"error": failure(out.returncode, out.stderr + out.stdout),
                "stderr": out.stderr[-3000:]}
    lines = [json.loads(l) for l in open(metrics)]
    lines = [l for l in lines if "step" in l and "loss" in l and "samples_per_s" in l]
    return {"losses": [l["loss"] for l in lines[:LOSS_STEPS]],
            "step_s": [batch / l["samples_per_s"] for l in lines[WARMUP:]]}


# The steps that multiply through GEMMs (runtime/cpu: MatMul, Gemm, Conv, ConvTranspose, Einsum,
# ConvGrad, Attention and its gradient, which also hold their softmax: counted whole, so the share
# is an upper bound). Every other step (fused kernels, norms, pools, copies, the optimizer) is
# precision-independent work that bf16 cannot shorten on the CPU.
GEMM_OPS = re.compile(r"\((?:com\.ampc::)?(?:MatMul|Gemm|Conv|ConvTranspose|Einsum|ConvGrad|"
                      r"Attention|AttentionGrad)\)$")


def gemm_share(ampc, model, data, batch, threads, extra):
    """Share of ampc's fp32 step spent in GEMM/conv steps, from AMPC_PROFILE=all (60 steps)."""
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(ampc_train(ampc, model, data, 60, batch, threads, "fp32",
                                        os.path.join(d, "m.jsonl"), extra),
                             capture_output=True, text=True,
                             env=dict(os.environ, AMPC_PROFILE="all"))
    if out.returncode != 0:
        return {"error": failure(out.returncode, out.stderr)}
    total = gemm = 0.0
    for line in out.stderr.splitlines():
        m = re.match(r"\s*([\d.]+) us\s+[\d.]+%\s+(?:\[[^]]*\] )?step \d+ node .*", line)
        if m:
            total += float(m.group(1))
            gemm += float(m.group(1)) if GEMM_OPS.search(line.strip()) else 0.0
    if total <= 0:
        return {"error": "no AMPC_PROFILE table on stderr"}
    return {"share": gemm / total, "step_us": total}


def bf16_ceiling(key, m, peak):
    """Amdahl's bound on ampc bf16 / fp32: GEMM/conv steps sped up by the bf16/fp32 peak ratio,
    everything else unchanged."""
    g, runs = m["gemm_share"], m["runs"]
    if "error" in g:
        print(f"{key:<12} bf16 ceiling: the AMPC_PROFILE run failed: {g['error']}")
        return
    if not peak.get("bf16") or not peak.get("fp32"):
        return  # no bf16 peak: the roofline line says so
    ratio = peak["bf16"] / peak["fp32"]
    bound = 1.0 / ((1.0 - g["share"]) + g["share"] / ratio)
    g["peak_ratio"], g["bf16_bound"] = ratio, bound
    measured = ""
    fp32, bf16 = runs["ampc fp32"], runs["ampc bf16"]
    if "error" not in fp32 and "error" not in bf16:
        measured = f" (measured {bf16['samples_per_s'] / fp32['samples_per_s']:.2f}x)"
    print(f"{key:<12} bf16 ceiling: GEMM/conv steps are {100 * g['share']:.0f}% of ampc's fp32 "
          f"step ({g['step_us'] / 1e3:.2f} ms, AMPC_PROFILE=all); at the bf16/fp32 peak ratio "
          f"{ratio:.2f} and the rest unchanged, bf16 is at most {bound:.2f}x fp32{measured}")


def parse_batch(text):
    sizes = {k: m["batch"] for k, m in MODELS.items()}
    if text is None:
        return sizes
    if "=" not in text:
        return {k: int(text) for k in sizes}
    for item in text.split(","):
        k, _, v = item.partition("=")
        if k.strip() not in sizes:
            sys.exit(f"train_vs_peers: --batch: unknown model {k.strip()!r}")
        sizes[k.strip()] = int(v)
    return sizes


def bench_model(a, key, batch, env, work, ort_version):
    spec = MODELS[key]
    model = os.path.join(FIXTURES, spec["file"])
    mwork = os.path.join(work, key)
    os.makedirs(mwork, exist_ok=True)
    data = os.path.join(mwork, "data.npz")
    write_data(key, a.steps * batch, data)
    args = (key, model, data, a.steps, batch, a.threads)
    extra = ["--class-axis", "2"] if key == "transformer" else []
    ort = " ".join(["ORT Training", ".".join((ort_version or "").split(".")[:2])]).strip()
    # Every run of a round, then the next round, each round starting one run later: a burst of
    # load from the machine's neighbours (or the kernel reclaiming memory after torch.compile's
    # run) lands on different runs in different rounds, and each run keeps its fastest round.
    plan = [("PyTorch eager", lambda: run_python(a.torch_python, TORCH_RUNNER,
                                                 (*args, "eager", ROOT), env)),
            ("PyTorch eager bf16", lambda: run_python(a.torch_python, TORCH_RUNNER,
                                                      (*args, "bf16", ROOT), env)),
            ("torch.compile", lambda: run_python(a.torch_python, TORCH_RUNNER,
                                                 (*args, "compile", ROOT), env))]
    if a.ort_python:
        plan.append((ort, lambda: run_python(a.ort_python, ORT_RUNNER,
                                             (*args, os.path.join(mwork, "ort")), env)))
    for p in ("fp32", "bf16"):
        plan.append((f"ampc {p}", lambda p=p: run_ampc(a.ampc, model, data, a.steps, batch,
                                                       a.threads, p, mwork, extra)))
    runs = {k: None for k, _ in plan}  # printed in this order
    # The bf16 ceiling's profile run, before the rounds and after them; the faster one counts (a
    # neighbour's load, or torch.compile's workers winding down, slows a run and skews its mix).
    shares = [gemm_share(a.ampc, model, data, batch, a.threads, extra)]
    for rnd in range(a.rounds):
        this = {}
        for k, run in plan[rnd % len(plan):] + plan[:rnd % len(plan)]:
            this[k] = run()
        for k, r in this.items():
            old = runs.get(k)
            if old is None or "error" in old or (
                    "error" not in r and
                    statistics.median(r["step_s"]) < statistics.median(old["step_s"])):
                runs[k] = r

    terms = step_flops(key, batch)
    flops = sum(f * passes for _, f, passes in terms)
    for r in runs.values():
        if "error" not in r:
            r["samples_per_s"] = batch / statistics.median(r["step_s"])
            r["gflops"] = flops / statistics.median(r["step_s"]) / 1e9
    ref = runs["PyTorch eager"].get("losses")
    peers = [r["samples_per_s"] for k, r in runs.items()
             if not k.startswith("ampc") and "error" not in r]
    best_peer = max(peers) if peers else None
    print(f"\n{spec['title']}: batch {batch}, AdamW, {a.steps} steps "
          f"(median of steps {WARMUP + 1}..{a.steps}"
          + (f", fastest of {a.rounds} rounds)" if a.rounds > 1 else ")"))
    print(f"{'run':<20}{'samples/s':>12}{'vs best peer':>14}{'GFLOP/s':>10}"
          f"{'max rel loss diff (20 steps)':>30}")
    for k, r in runs.items():
        if "error" in r:
            print(f"{k:<20}  failed: {r['error']}")
            continue
        sps = r["samples_per_s"]
        vs = f"{sps / best_peer:>13.2f}x" if best_peer else f"{'-':>14}"
        if ref:
            diff = max(abs(p - q) / abs(q) for p, q in zip(r["losses"], ref))
            r["max_rel_loss_diff"] = diff
            diff_s = f"{diff:>30.2e}"
        else:
            diff_s = f"{'-':>30}"
        if best_peer:
            r["vs_best_peer"] = sps / best_peer
        print(f"{k:<20}{sps:>12,.0f}{vs}{r['gflops']:>10.1f}{diff_s}")

    mapping = runs["PyTorch eager"].get("mapping")
    if mapping:
        hows = [h for _, _, h in mapping]
        print(f"  torch weights from ONNX: {len(mapping)} tensors, {hows.count('name')} by name, "
              f"{hows.count('transposed')} transposed + {hows.count('scope')} as-is from "
              f"exporter names, {hows.count('alias')} copied from Identity aliases; forward "
              f"check max |diff| {runs['PyTorch eager']['fwd_check_max_abs']:.1e}")
    for r in runs.values():
        r.pop("stderr", None)
    shares.append(gemm_share(a.ampc, model, data, batch, a.threads, extra))
    good = [g for g in shares if "error" not in g]
    share = min(good, key=lambda g: g["step_us"]) if good else shares[0]
    return {"title": spec["title"], "fixture": spec["file"], "batch": batch, "steps": a.steps,
            "gemm_share": share,
            "step_flops": flops, "flops_terms": terms,
            "flops_counted_by_torch": runs["PyTorch eager"].get("flops_counted"), "runs": runs}


def measure_peak(a, env, with_bf16):
    peak = run_python(a.torch_python, PEAK_RUNNER, (a.threads, int(with_bf16)), env)
    if "error" in peak:
        print(f"peak measurement failed: {peak['error']}")
        return {}
    return {k: v for k, v in peak.items() if k != "stderr"}


def roofline(key, m, peak):
    """One line per model: the step's FLOPs, then each ampc run's rate against the peak."""
    flops, counted = m["step_flops"], m["flops_counted_by_torch"]
    check = ""
    if counted is not None:
        check = ("; torch's FlopCounterMode agrees" if counted == flops else
                 f"; torch's FlopCounterMode counts {counted / 1e9:.4f}")
    parts = []
    for p in ("fp32", "bf16"):
        r = m["runs"][f"ampc {p}"]
        if "error" in r:
            parts.append(f"ampc {p} failed")
            continue
        pk = p if p in peak else "fp32"
        part = f"ampc {p} {r['gflops']:.1f} GFLOP/s"
        if peak.get(pk):
            r["peak_used"] = pk
            r["pct_of_peak"] = 100 * r["gflops"] * 1e9 / peak[pk]
            part += f" = {r['pct_of_peak']:.1f}% of {pk} peak"
        parts.append(part)
    print(f"{key:<12} step {flops / 1e9:.4f} GFLOP (matmul/conv, fwd+bwd{check}): "
          + "; ".join(parts))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ampc", default=os.path.join(ROOT, "build", "ampc"))
    ap.add_argument("--torch-python", required=True)
    ap.add_argument("--ort-python", help="omit to skip ORT Training")
    ap.add_argument("--model", choices=["mlp", "cnn", "transformer", "all"], default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", help="one size for every model, or MODEL=N,... "
                    "(defaults: mlp=256, cnn=128, transformer=64)")
    ap.add_argument("--json", help="also write all results here as JSON")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run everything this many times, round by round, and keep each run's "
                         "fastest round (a shared machine's noise)")
    a = ap.parse_args()
    keys = list(MODELS) if a.model == "all" else [a.model]
    batches = parse_batch(a.batch)
    if a.steps <= WARMUP:
        sys.exit(f"train_vs_peers: --steps must exceed the {WARMUP} warm-up steps")
    for k in keys:
        if k != "transformer" and a.steps * batches[k] > FASHION_MNIST_TRAIN:
            sys.exit(f"train_vs_peers: {k}: --steps {a.steps} x batch {batches[k]} = "
                     f"{a.steps * batches[k]} samples, more than FashionMNIST's "
                     f"{FASHION_MNIST_TRAIN} (at most {FASHION_MNIST_TRAIN // batches[k]} steps "
                     f"at this batch size)")

    name, isa = cpu_info()
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    with_bf16 = isa["avx512_bf16"] or isa["amx_bf16"]
    peak0 = measure_peak(a, env, with_bf16)
    ort_version = None
    if a.ort_python:
        v = run_python(a.ort_python, "import json, onnxruntime; "
                       "print(json.dumps({'version': onnxruntime.__version__}))", (), env)
        ort_version = v.get("version")
    print(f"CPU: {name}, {os.cpu_count()} logical CPUs; "
          + " ".join(f"{f}={'yes' if v else 'no'}" for f, v in isa.items()))
    print(f"{a.threads} threads for every run; torch {peak0.get('version', '?')}, "
          f"onnxruntime-training {ort_version or '-'}, ampc {a.ampc}")
    print("batch sizes: " + ", ".join(f"{k} {batches[k]}" for k in keys))

    work = tempfile.mkdtemp(prefix="ampc_peers_")
    results = {"cpu": name, "isa": isa, "threads": a.threads, "steps": a.steps,
               "warmup": WARMUP, "torch_version": peak0.get("version"),
               "ort_version": ort_version, "models": {}}
    for k in keys:
        results["models"][k] = bench_model(a, k, batches[k], env, work, ort_version)

    # The peak again after the runs: the machine may be shared; the higher of the two counts.
    peak1 = measure_peak(a, env, with_bf16)
    dtypes = [d for d in ("fp32", "bf16") if d in peak0 or d in peak1]
    peak = {d: max(peak0.get(d, 0.0), peak1.get(d, 0.0)) for d in dtypes}
    results["peak_flops"] = peak
    results["peak_flops_before_after"] = {d: [peak0.get(d), peak1.get(d)] for d in dtypes}
    print(f"\nRoofline: peak = torch.matmul {PEAK_N}x{PEAK_N}, {a.threads} threads, best of "
          f"{PEAK_REPS}, measured before and after the runs, the higher: "
          + ", ".join(f"{d} {peak[d] / 1e9:.0f} GFLOP/s ({(peak0.get(d) or 0) / 1e9:.0f} before, "
                      f"{(peak1.get(d) or 0) / 1e9:.0f} after)" for d in dtypes)
          + ("" if "bf16" in peak else
             " (no bf16 peak: the CPU has neither avx512_bf16 nor amx_bf16; bf16 runs are "
             "measured against the fp32 peak)"))
    for k in keys:
        roofline(k, results["models"][k], peak)
    for k in keys:
        bf16_ceiling(k, results["models"][k], peak)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
