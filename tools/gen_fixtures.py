#!/usr/bin/python3
"""Generate the ONNX test fixtures used by the ampc test suite.

Models are built with fixed random initialisation (torch.manual_seed(0)
before each model is constructed) and exported with torch.onnx.export, so
rerunning the script reproduces the same files.  Every written file is
validated with onnx.checker and onnx.shape_inference, and one summary line
is printed per file.

Run it with Debian's interpreter (/usr/bin/python3), which has python3-torch,
python3-torchvision and python3-onnx available:

    /usr/bin/python3 tools/gen_fixtures.py --out tests/fixtures

produces the committed small fixtures (mlp, cnn, transformer at opsets 13 and
17, the transformer also at opset 11, the CNN also in training mode, and the
onnx.helper-built extras).  The large torchvision models are not committed;
the test suite creates them on demand with e.g.

    /usr/bin/python3 tools/gen_fixtures.py --out BUILD/fixtures \
        --models resnet18,mobilenet_v2 --opsets 17
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from transformer_model import make_transformer_classes  # noqa: E402

SMALL_MODELS = ["mlp", "cnn", "transformer"]
BIG_MODELS = ["resnet18", "mobilenet_v2"]
# Made on request only (--models relu_mlp --opsets 17): Linear -> ReLU -> Linear, the pattern
# the CUDA runtime runs as one cuBLASLt call with the RELU_BIAS epilogue.
EXTRA_MODELS = ["relu_mlp"]
ALL_MODELS = SMALL_MODELS + BIG_MODELS + EXTRA_MODELS


# --------------------------------------------------------------------------
# Model definitions (torch is imported lazily so --help stays fast).
# --------------------------------------------------------------------------

def build_mlp(nn):
    return nn.Sequential(
        nn.Linear(784, 256),
        nn.LayerNorm(256),
        nn.GELU(approximate="none"),
        nn.Linear(256, 10),
    )


def build_relu_mlp(nn):
    return nn.Sequential(
        nn.Linear(784, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def build_cnn(nn):
    return nn.Sequential(
        nn.Conv2d(1, 8, kernel_size=3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, kernel_size=3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(16, 16, kernel_size=1),
        nn.ReLU6(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )


# make_transformer_classes lives in tools/transformer_model.py (the GPU benchmark imports it on
# a machine without onnx).


# --------------------------------------------------------------------------
# Export helpers
# --------------------------------------------------------------------------

def describe(path):
    """Validate the file and return (size, node count, sorted op types)."""
    onnx.checker.check_model(path)  # path form also resolves external data
    model = onnx.load(path)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    ops = sorted({n.op_type for n in model.graph.node})
    return os.path.getsize(path), len(model.graph.node), ops


def report(path, all_ops):
    size, count, ops = describe(path)
    all_ops.update(ops)
    print(f"{os.path.basename(path):32s} {size:>10d} B {count:>5d} nodes  "
          f"ops: {' '.join(ops)}", flush=True)


def export_torch(torch, model_name, opset, out_dir, training=False, fold=True):
    """Build `model_name` with seed 0 and export it; return the file path.

    fold=False keeps BatchNormalization in eval mode (torch otherwise folds it into Conv)."""
    nn = torch.nn
    torch.manual_seed(0)
    if model_name in ("mlp", "relu_mlp"):
        model = build_mlp(nn) if model_name == "mlp" else build_relu_mlp(nn)
        args = (torch.randn(2, 784),)
        inputs, outputs = ["input"], ["logits"]
        dyn = {"input": {0: "batch"}, "logits": {0: "batch"}}
    elif model_name == "cnn":
        model = build_cnn(nn)
        args = (torch.randn(2, 1, 28, 28),)
        inputs, outputs = ["input"], ["logits"]
        dyn = {"input": {0: "batch"}, "logits": {0: "batch"}}
    elif model_name == "transformer":
        tiny_gpt = make_transformer_classes(torch, nn)
        model = tiny_gpt(use_trilu=opset >= 14)
        args = (torch.randint(0, 64, (2, 16), dtype=torch.long),)
        inputs, outputs = ["idx"], ["logits"]
        dyn = {"idx": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}}
    elif model_name in BIG_MODELS:
        import torchvision
        model = getattr(torchvision.models, model_name)(weights=None)
        args = (torch.randn(1, 3, 64, 64),)
        inputs, outputs = ["input"], ["logits"]
        dyn = None
    else:
        raise ValueError(f"unknown model {model_name!r}")

    stem = f"{model_name}_train" if training else model_name
    if not training and not fold:
        stem = f"{model_name}_bn_eval"
    path = os.path.join(out_dir, f"{stem}_opset{opset}.onnx")
    mode = torch.onnx.TrainingMode.TRAINING if training else torch.onnx.TrainingMode.EVAL
    if not training and not fold:
        mode = torch.onnx.TrainingMode.PRESERVE  # EVAL would fold BatchNorm into Conv
    if training:
        model.train()
    else:
        model.eval()
    torch.onnx.export(
        model, args, path,
        export_params=True,
        opset_version=opset,
        training=mode,
        do_constant_folding=fold and not training,
        input_names=inputs,
        output_names=outputs,
        dynamic_axes=dyn,
    )
    if not training and model_name in SMALL_MODELS:
        write_reference_data(torch, model, model_name, path)
    return path


def write_reference_data(torch, model, model_name, onnx_path):
    """PyTorch's own outputs for a fresh input, the oracle for `ampc eval` tests.

    Writes DIR/input_0.pb, DIR/output_0.pb (the fp32 model's output) and DIR/output_0_f64.pb (the
    same model in float64, the reference for half-precision storage) next to the model, in the
    layout of ONNX's backend test data.
    """
    from onnx import numpy_helper
    gen = torch.Generator().manual_seed(1)
    if model_name in ("mlp", "relu_mlp"):
        x = torch.rand(4, 784, generator=gen)
    elif model_name == "cnn":
        x = torch.rand(3, 1, 28, 28, generator=gen)
    else:
        x = torch.randint(0, 64, (3, 12), generator=gen, dtype=torch.long)
    model.eval()
    with torch.no_grad():
        y = model(x)
        x64 = x.double() if x.is_floating_point() else x
        y64 = model.double()(x64)
        model.float()
    data_dir = onnx_path[:-len(".onnx")] + "_data"
    os.makedirs(data_dir, exist_ok=True)
    for name, t in (("input_0", x), ("output_0", y), ("output_0_f64", y64)):
        proto = numpy_helper.from_array(t.numpy(), name)
        with open(os.path.join(data_dir, name + ".pb"), "wb") as f:
            f.write(proto.SerializeToString())


# --------------------------------------------------------------------------
# Extras built directly with onnx.helper
# --------------------------------------------------------------------------

def write_extdata(out_dir):
    """MatMul y = x @ w where w's bytes live in the external file w.bin."""
    ext_dir = os.path.join(out_dir, "extdata")
    os.makedirs(ext_dir, exist_ok=True)
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    raw = w.astype("<f4").tobytes()
    assert len(raw) == 48
    with open(os.path.join(ext_dir, "w.bin"), "wb") as f:
        f.write(raw)

    w_init = TensorProto()
    w_init.name = "w"
    w_init.data_type = TensorProto.FLOAT
    w_init.dims.extend([3, 4])
    w_init.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "w.bin"), ("offset", "0"), ("length", "48")):
        entry = w_init.external_data.add()
        entry.key = key
        entry.value = value

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul")],
        "extdata_matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        initializer=[w_init],
    )
    model = helper.make_model(graph, producer_name="ampc-gen_fixtures",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = os.path.join(ext_dir, "model.onnx")
    # Serialise directly: onnx.save would try to (re)write external data.
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return [path]


def write_legacy_opset11(out_dir):
    """Opset-11 chain using the attribute-axes forms of the legacy ops.

    x[3,4] -Unsqueeze(axes=[0])-> [1,3,4] -Squeeze(axes=[0])-> [3,4]
      -Softmax(axis=1)-> [3,4] -Split(axis=1, split=[2,2])-> a[3,2], b[3,2]
      -Add-> [3,2] -ReduceSum(axes=[1], keepdims=0)-> y[3]
    Every row of a softmax sums to 1, so y is all ones for any x.
    """
    nodes = [
        helper.make_node("Unsqueeze", ["x"], ["x_unsq"], name="unsqueeze", axes=[0]),
        helper.make_node("Squeeze", ["x_unsq"], ["x_sq"], name="squeeze", axes=[0]),
        helper.make_node("Softmax", ["x_sq"], ["probs"], name="softmax", axis=1),
        helper.make_node("Split", ["probs"], ["probs_a", "probs_b"], name="split",
                         axis=1, split=[2, 2]),
        helper.make_node("Add", ["probs_a", "probs_b"], ["pair_sum"], name="add"),
        helper.make_node("ReduceSum", ["pair_sum"], ["y"], name="reduce_sum",
                         axes=[1], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "legacy_ops_opset11",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
    )
    model = helper.make_model(graph, producer_name="ampc-gen_fixtures",
                              opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6
    path = os.path.join(out_dir, "legacy_ops_opset11.onnx")
    onnx.save(model, path)
    return [path]


def write_training_info(out_dir):
    """A model that already is a training graph (ONNX TrainingInfoProto).

    Inference graph: y = x @ W, loss = mean((y - t)^2).  training_info[0].algorithm:
    dW = Gradient(xs=[W], y=loss); (W', V') = ai.onnx.preview.training.Momentum(R, T, W, dW, V)
    with alpha 0.9, beta 1.0, norm_coefficient 0.01, standard mode; update_binding W <- W',
    V <- V'.  The algorithm's inputs R (learning rate) and T (update count) are what `ampc train`
    feeds from its schedule and step counter.

    Writes training_info_momentum.onnx and training_info_momentum_data/ with data.npz (x, t) and
    expected.json: the loss and W of each of 5 full-batch steps at R = 0.1, computed here with
    numpy from ONNX's Momentum definition (the test's independent reference).
    """
    rng = np.random.default_rng(7)
    n, d = 8, 3
    x = rng.standard_normal((n, d)).astype(np.float32)
    t = rng.standard_normal((n, 1)).astype(np.float32)
    w0 = rng.standard_normal((d, 1)).astype(np.float32)
    alpha, beta, norm = 0.9, 1.0, 0.01
    main_nodes = [
        helper.make_node("MatMul", ["x", "W"], ["y"], name="matmul"),
        helper.make_node("Sub", ["y", "t"], ["err"], name="sub"),
        helper.make_node("Mul", ["err", "err"], ["sq"], name="square"),
        helper.make_node("ReduceMean", ["sq"], ["loss"], name="mean", keepdims=0),
    ]
    graph = helper.make_graph(
        main_nodes, "linear_regression",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", d]),
         helper.make_tensor_value_info("t", TensorProto.FLOAT, ["n", 1])],
        [helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])],
        initializer=[numpy_helper.from_array(w0, "W"),
                     numpy_helper.from_array(np.zeros_like(w0), "V")])
    training = "ai.onnx.preview.training"
    algo_nodes = [
        helper.make_node("Gradient", ["W", "x", "t"], ["dW"], name="gradient", domain=training,
                         xs=["W"], y="loss", zs=["x", "t"]),
        helper.make_node("Momentum", ["R", "T", "W", "dW", "V"], ["W_new", "V_new"],
                         name="momentum", domain=training, alpha=alpha, beta=beta,
                         norm_coefficient=norm, mode="standard"),
    ]
    algo = helper.make_graph(
        algo_nodes, "sgd_momentum",
        [helper.make_tensor_value_info("R", TensorProto.FLOAT, []),
         helper.make_tensor_value_info("T", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("W_new", TensorProto.FLOAT, [d, 1]),
         helper.make_tensor_value_info("V_new", TensorProto.FLOAT, [d, 1])])
    info = onnx.TrainingInfoProto()
    info.algorithm.CopyFrom(algo)
    for key, value in (("W", "W_new"), ("V", "V_new")):
        b = info.update_binding.add()
        b.key, b.value = key, value
    model = helper.make_model(graph, producer_name="ampc-gen_fixtures",
                              opset_imports=[helper.make_opsetid("", 17),
                                             helper.make_opsetid(training, 1)])
    model.training_info.append(info)
    model.ir_version = 8
    path = os.path.join(out_dir, "training_info_momentum.onnx")
    onnx.save(model, path)

    # Reference: ONNX Momentum (standard): beta is 1 on the first update (T == 0),
    # G' = norm * W + G, V' = alpha * V + beta * G', W' = W - R * V'.
    w, v = w0.astype(np.float64), np.zeros((d, 1))
    xd, td = x.astype(np.float64), t.astype(np.float64)
    losses, weights = [], []
    for step in range(5):
        err = xd @ w - td
        losses.append(float(np.mean(err * err)))
        g = 2.0 * xd.T @ err / err.size
        g_reg = norm * w + g
        b = 1.0 if step == 0 else beta
        v = alpha * v + b * g_reg
        w = w - 0.1 * v
        weights.append(w.ravel().tolist())
    data_dir = os.path.join(out_dir, "training_info_momentum_data")
    os.makedirs(data_dir, exist_ok=True)
    np.savez(os.path.join(data_dir, "data.npz"), x=x, t=t)
    with open(os.path.join(data_dir, "expected.json"), "w") as f:
        json.dump({"lr": 0.1, "losses": losses, "W": weights}, f, indent=1)
    return [path]


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def parse_list(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--models", default=None,
                        help="comma list from: " + ",".join(ALL_MODELS) +
                        " (default: " + ",".join(SMALL_MODELS) + ")")
    parser.add_argument("--opsets", default="13,17",
                        help="comma list of opsets for every selected model (default 13,17)")
    parser.add_argument("--extra-exports", default="transformer@11",
                        help="additional MODEL@OPSET exports, applied only when MODEL "
                        "is selected (default transformer@11; '' disables)")
    parser.add_argument("--cnn-train", action=argparse.BooleanOptionalAction, default=True,
                        help="also export cnn_train_opsetN.onnx (TrainingMode.TRAINING)")
    parser.add_argument("--extras", action=argparse.BooleanOptionalAction, default=None,
                        help="write extdata/ and legacy_ops_opset11.onnx "
                        "(default: on only when --models is not given)")
    args = parser.parse_args(argv)

    models = parse_list(args.models) if args.models is not None else list(SMALL_MODELS)
    for m in models:
        if m not in ALL_MODELS:
            parser.error(f"unknown model {m!r}; choose from {','.join(ALL_MODELS)}")
    opsets = [int(o) for o in parse_list(args.opsets)]
    extras = args.extras if args.extras is not None else args.models is None

    jobs = []  # (model, opset, training)
    for m in models:
        for o in opsets:
            jobs.append((m, o, False))
            if m == "cnn" and args.cnn_train:
                jobs.append((m, o, True))
            if m == "cnn" and o >= 14:
                jobs.append((m, o, "bn_eval"))
    for item in parse_list(args.extra_exports):
        m, _, o = item.partition("@")
        if m not in ALL_MODELS or not o.isdigit():
            parser.error(f"bad --extra-exports entry {item!r}")
        if m in models and (m, int(o), False) not in jobs:
            jobs.append((m, int(o), False))
    jobs.sort(key=lambda j: (models.index(j[0]), str(j[2]), j[1]))

    os.makedirs(args.out, exist_ok=True)
    all_ops = set()
    if jobs:
        import torch
        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
        for model_name, opset, training in jobs:
            start = time.perf_counter()
            if training == "bn_eval":
                path = export_torch(torch, model_name, opset, args.out, fold=False)
            else:
                path = export_torch(torch, model_name, opset, args.out, training)
            elapsed = time.perf_counter() - start
            report(path, all_ops)
            if model_name in BIG_MODELS:
                print(f"  (export took {elapsed:.1f} s)", flush=True)
    if extras:
        for path in (write_extdata(args.out) + write_legacy_opset11(args.out) +
                     write_training_info(args.out)):
            report(path, all_ops)
    print(f"distinct op types ({len(all_ops)}): {' '.join(sorted(all_ops))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
