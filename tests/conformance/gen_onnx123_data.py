#!/usr/bin/env python3
"""Writes ONNX 1.23's backend node tests for the ops and op versions ampc added or changed for
opsets 18-23 into tests/conformance/data/onnx-1.23/node (model.onnx + test_data_set_0/*.pb, the
layout of `backend-test-tools generate-data`), for the conformance run's second root.

Run with a Python that has onnx 1.23 (python3 -m venv V && V/bin/pip install onnx==1.23.* numpy):
  V/bin/python tests/conformance/gen_onnx123_data.py [--out DIR]

The reference outputs are ONNX's own: each case's inputs and outputs are exactly what ONNX's
test-case code (onnx/backend/test/case/node/*.py) produces. Two adjustments, both checked here:
  * a case ONNX stamps with an opset newer than 23 (its op has a version > 23 that only adds types
    or inputs the case does not use) is restamped to opset 23; the restamped model must pass
    onnx.checker's full check at 23, and ONNX's reference evaluator must reproduce the stored
    outputs from it (so the outputs are those of the version in force at 23). Cases that fail
    either check are left out.
  * GroupNormalization version 18 (per-group scale and bias) has no case in ONNX 1.23; two are
    made here from the version-21 cases' inputs, with outputs computed by ONNX's reference
    evaluator at opset 18.
"""
import argparse
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.case import node as node_cases
from onnx.reference import ReferenceEvaluator

MAX_OPSET = 23

# Ops new to ampc, ops whose opset 18-23 versions changed what ampc reads, and ops whose versions
# up to 23 only added types (imported as they are; their cases check that the newer versions
# are accepted).
NEW = "Gelu Mish GroupNormalization RMSNormalization RotaryEmbedding Attention Sin Cos".split()
CHANGED = """ReduceMean ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSumExp
ReduceSumSquare Split Pad AveragePool""".split()
TYPES_ONLY = """Cast CastLike Constant ConstantOfShape Conv ConvTranspose Dropout Elu Equal Flatten
GlobalAveragePool GlobalMaxPool HardSigmoid Identity IsInf IsNaN MaxPool NegativeLogLikelihoodLoss
Reshape Selu Shape Size Softplus Squeeze Transpose Unsqueeze""".split()
OPS = set(NEW + CHANGED + TYPES_ONLY)


MAX_BYTES = 96 << 10  # keeps the committed data small; a few big pooling cases are left out
SUPPORTED = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
             onnx.TensorProto.DOUBLE, onnx.TensorProto.INT64, onnx.TensorProto.INT32,
             onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.BOOL}


def supported(vi):
    return vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type in SUPPORTED


def opset_of(model):
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return None


def arrays(values, infos):
    out = []
    for v, vi in zip(values, infos):
        out.append(numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else np.asarray(v))
    return out


def same(got, want):
    if got.dtype != want.dtype or got.shape != want.shape:
        return False
    if np.issubdtype(want.dtype, np.floating):
        return np.allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)
    return np.array_equal(got, want)


def restamp(case):
    """The case's model at opset 23, or None (with the reason printed) if that changes it."""
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = MAX_OPSET
    if model.ir_version > 11:
        model.ir_version = 11  # the IR version of ONNX 1.18, the release of opset 23
    try:
        onnx.checker.check_model(model, full_check=True)
        inputs, outputs = case.data_sets[0]
        names = [i.name for i in model.graph.input]
        feeds = dict(zip(names, arrays(inputs, model.graph.input)))
        got = ReferenceEvaluator(model).run(None, feeds)
    except Exception as e:  # noqa: BLE001 - any failure means: not valid at 23
        print(f"  left out {case.name}: not valid at opset 23 ({type(e).__name__})")
        return None
    want = arrays(outputs, model.graph.output)
    if len(got) != len(want) or not all(same(np.asarray(g), w) for g, w in zip(got, want)):
        print(f"  left out {case.name}: opset 23's reference gives other outputs")
        return None
    return model


def write_case(root, name, model, inputs, outputs):
    d = os.path.join(root, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    for kind, values, infos in (("input", inputs, model.graph.input),
                                ("output", outputs, model.graph.output)):
        for j, (v, vi) in enumerate(zip(values, infos)):
            t = v if isinstance(v, onnx.TensorProto) else numpy_helper.from_array(
                np.asarray(v), vi.name)
            with open(os.path.join(d, "test_data_set_0", f"{kind}_{j}.pb"), "wb") as f:
                f.write(t.SerializeToString())


def group_norm_18_cases():
    """GroupNormalization-18 cases: per-group scale/bias, outputs from ONNX's reference."""
    rng = np.random.default_rng(0)
    out = []
    for name, groups, eps in (("example", 2, None), ("epsilon", 2, 1e-2)):
        x = rng.standard_normal((3, 4, 2, 2)).astype(np.float32)
        scale = rng.standard_normal((groups,)).astype(np.float32)
        bias = rng.standard_normal((groups,)).astype(np.float32)
        attrs = {"num_groups": groups}
        if eps is not None:
            attrs["epsilon"] = eps
        node = onnx.helper.make_node("GroupNormalization", ["x", "scale", "bias"], ["y"], **attrs)
        graph = onnx.helper.make_graph(
            [node], f"test_group_normalization_{name}_opset18",
            [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, a.shape)
             for n, a in (("x", x), ("scale", scale), ("bias", bias))],
            [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, x.shape)])
        model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)],
                                       producer_name="backend-test")
        model.ir_version = 8
        # ONNX 1.23's checker refuses version 18 as deprecated (the per-group scale was a spec
        # bug fixed by version 21), so it is not run; the reference evaluator still has it.
        (y,) = ReferenceEvaluator(model).run(None, {"x": x, "scale": scale, "bias": bias})
        out.append((graph.name, model, [x, scale, bias], [y]))
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(here, "data", "onnx-1.23", "node"))
    args = ap.parse_args()
    if onnx.__version__.split(".")[:2] != ["1", "23"]:
        sys.exit(f"needs onnx 1.23, found {onnx.__version__}")
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    cases = node_cases.collect_testcases()
    # A case is chosen by its op: the one node of a plain case; a function-expanded case
    # ("<case>_expanded...") goes with its plain case when that op is new or changed (it tests
    # the decomposition, written with other ops at the same opset).
    op_of = {c.name: c.model.graph.node[0].op_type for c in cases if len(c.model.graph.node) == 1}
    kept = left_out = 0
    typed = {}  # TYPES_ONLY op -> its cases
    for case in cases:
        plain = case.name.split("_expanded")[0]
        op = op_of.get(case.name) if plain == case.name else op_of.get(plain)
        if op is None or op not in OPS or (plain != case.name and op in TYPES_ONLY):
            continue
        if op == "Attention" and (plain != case.name or "past" in case.name):
            # Its function-expanded cases (3 MB) test ONNX's decomposition rather than the op,
            # and ampc's Attention has no KV cache (past_key / past_value), for training.
            continue
        if not all(supported(vi) for vi in list(case.model.graph.input) +
                   list(case.model.graph.output)):
            continue  # types ampc does not have (float8, int4, strings, sequences, ...)
        model = case.model
        if opset_of(model) is None or opset_of(model) > MAX_OPSET:
            model = restamp(case)
            if model is None:
                left_out += 1
                continue
        size = model.ByteSize() + sum(
            t.ByteSize() if isinstance(t, onnx.TensorProto) else np.asarray(t).nbytes
            for ds in case.data_sets for t in ds[0] + ds[1])
        if size > MAX_BYTES:
            print(f"  left out {case.name}: larger than {MAX_BYTES} bytes")
            left_out += 1
            continue
        if op in TYPES_ONLY:  # a few cases show that the version is accepted
            typed.setdefault(op, []).append((size, case.name, model, case.data_sets[0]))
            continue
        inputs, outputs = case.data_sets[0]
        write_case(args.out, case.name, model, inputs, outputs)
        kept += 1
    for op, found in typed.items():
        for _, name, model, (inputs, outputs) in sorted(found, key=lambda f: (f[0], f[1]))[:3]:
            write_case(args.out, name, model, inputs, outputs)
            kept += 1
    for name, model, inputs, outputs in group_norm_18_cases():
        write_case(args.out, name, model, inputs, outputs)
        kept += 1
    print(f"wrote {kept} cases to {args.out} ({left_out} left out)")


if __name__ == "__main__":
    main()
