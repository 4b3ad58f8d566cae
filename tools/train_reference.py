#!/usr/bin/python3
"""PyTorch reference trajectories for `ampc train` (the oracle of tests/unit/train_trajectory_test).

For each (model, optimizer) case this script rebuilds the fixture model exactly as
tools/gen_fixtures.py exported it (same seed, so the same initial weights, which it checks against
the ONNX file's initializers), generates a fixed data set, trains for STEPS steps in file order
with torch.optim, and writes into OUT/<case>/:

    data.npz      the training arrays, named like the ONNX inputs (`input`/`idx`, `labels`)
    ref.npz       `losses` (float64[STEPS], the loss of each step before its update) and one
                  array per ONNX initializer after the last step, named `param:<onnx name>`
                  (torch parameters matched to ONNX initializers by their initial values,
                  transposed where torch's exporter folded a weight transpose)
    case.json     the `ampc train` options that reproduce the run

and OUT/index.json listing the cases.  Run with Debian's interpreter:

    /usr/bin/python3 tools/train_reference.py --fixtures tests/fixtures --out build/train_refs
"""

import argparse
import importlib.util
import json
import os
import re
import sys

import numpy as np
import onnx
from onnx import numpy_helper

STEPS = 20

# name, fixture file, builder key, batch size, optimizer kwargs (ampc flag names)
CASES = [
    ("mlp_sgd", "mlp_opset17.onnx", "mlp", 32,
     {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9}),
    ("mlp_adamw", "mlp_opset17.onnx", "mlp", 32,
     {"optimizer": "adamw", "lr": 1e-3, "weight-decay": 0.01}),
    ("mlp_sgd_nesterov_wd", "mlp_opset17.onnx", "mlp", 32,
     {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight-decay": 1e-3}),
    ("mlp_adam_l2_clip", "mlp_opset17.onnx", "mlp", 32,
     {"optimizer": "adam", "lr": 2e-3, "weight-decay": 1e-4, "clip-grad-norm": 0.5}),
    ("cnn_sgd", "cnn_train_opset17.onnx", "cnn", 16,
     {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9}),
    # The conv biases feeding BatchNorm have an exactly zero gradient (BatchNorm subtracts the
    # channel mean), so their float gradients are rounding noise that Adam's normalised update
    # turns into steps of arbitrary sign in both frameworks. They are frozen here, as models built
    # for BatchNorm usually do (bias=False); the SGD case trains them.
    ("cnn_adamw", "cnn_train_opset17.onnx", "cnn", 16,
     {"optimizer": "adamw", "lr": 1e-3, "weight-decay": 0.01, "freeze": "^(0|4)\\.bias$"}),
    # torch.onnx.export merged the five freshly initialised LayerNorm weights (and biases) into one
    # initializer; --untie-shared gives each module its own copy again, as in the torch model.
    ("transformer_sgd", "transformer_opset17.onnx", "transformer", 8,
     {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "untie-shared": True}),
    ("transformer_adamw", "transformer_opset17.onnx", "transformer", 8,
     {"optimizer": "adamw", "lr": 1e-3, "weight-decay": 0.01, "untie-shared": True}),
]


def load_gen_fixtures():
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("gen_fixtures", os.path.join(here, "gen_fixtures.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build(torch, gen, key):
    nn = torch.nn
    torch.manual_seed(0)  # as gen_fixtures.export_torch does before building
    if key == "mlp":
        return gen.build_mlp(nn)
    if key == "cnn":
        return gen.build_cnn(nn)
    return gen.make_transformer_classes(torch, nn)(use_trilu=True)


def make_data(torch, key, batch):
    g = torch.Generator().manual_seed(1234)
    n = batch * STEPS
    if key == "mlp":
        x = torch.rand(n, 784, generator=g)
        y = torch.randint(0, 10, (n,), generator=g)
        return "input", x, y
    if key == "cnn":
        x = torch.rand(n, 1, 28, 28, generator=g)
        y = torch.randint(0, 10, (n,), generator=g)
        return "input", x, y
    x = torch.randint(0, 64, (n, 16), generator=g)
    y = torch.randint(0, 64, (n, 16), generator=g)
    return "idx", x, y


def match_initializers(torch, model, onnx_path, untie=False):
    """ONNX initializer name -> (torch state_dict key, transposed?).

    Tensors with the same name must have the same shape; torch's values are then replaced by the
    ONNX ones (exporting a model in train() mode runs it once, which moves BatchNorm's running
    statistics). Folded weight transposes are matched by value."""
    sd = model.state_dict()
    state = {k: v.detach().numpy() for k, v in sd.items()}
    mapping = {}
    for init in onnx.load(onnx_path).graph.initializer:
        arr = numpy_helper.to_array(init)
        if init.name in state and state[init.name].shape == arr.shape:
            with torch.no_grad():
                sd[init.name].copy_(torch.from_numpy(arr.copy()))
            mapping[init.name] = (init.name, False)
            continue
        found = [k for k, v in state.items()
                 if v.ndim == 2 and v.T.shape == arr.shape and np.array_equal(v.T, arr)]
        if len(found) != 1:
            if arr.dtype.kind == "f" and arr.size > 1:
                raise SystemExit(f"{onnx_path}: initializer {init.name} matches no torch tensor")
            continue  # exporter constants
        mapping[init.name] = (found[0], True)
    if untie:  # ampc --untie-shared recreates the merged tensors under the torch names
        used = {k for k, _ in mapping.values()}
        for k, _ in model.named_parameters():
            if k not in used:
                mapping[k] = (k, False)
    return mapping


def make_optimizer(torch, params, o):
    kind = o["optimizer"]
    wd = o.get("weight-decay", 0.0)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o.get("momentum", 0.0),
                               nesterov=o.get("nesterov", False), weight_decay=wd)
    if kind == "adam":
        return torch.optim.Adam(params, lr=o["lr"], weight_decay=wd)
    return torch.optim.AdamW(params, lr=o["lr"], weight_decay=wd)


def run_case(torch, gen, fixtures, out, case):
    name, fixture, key, batch, opts = case
    onnx_path = os.path.join(fixtures, fixture)
    model = build(torch, gen, key)
    mapping = match_initializers(torch, model, onnx_path, opts.get("untie-shared", False))
    model.train()
    in_name, x, y = make_data(torch, key, batch)
    if "freeze" in opts:
        for k, p in model.named_parameters():
            if re.search(opts["freeze"], k):
                p.requires_grad_(False)
    opt = make_optimizer(torch, [p for p in model.parameters() if p.requires_grad], opts)
    loss_fn = torch.nn.CrossEntropyLoss()
    losses = []
    max_grad = {}
    for step in range(STEPS):
        xb = x[step * batch:(step + 1) * batch]
        yb = y[step * batch:(step + 1) * batch]
        opt.zero_grad()
        logits = model(xb)
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]) if key == "transformer" else logits,
                       yb.reshape(-1) if key == "transformer" else yb)
        loss.backward()
        for k, p in model.named_parameters():
            if p.grad is not None:
                max_grad[k] = max(max_grad.get(k, 0.0), p.grad.abs().max().item())
        if "clip-grad-norm" in opts:
            torch.nn.utils.clip_grad_norm_(model.parameters(), opts["clip-grad-norm"])
        opt.step()
        losses.append(loss.item())
    case_dir = os.path.join(out, name)
    os.makedirs(case_dir, exist_ok=True)
    np.savez(os.path.join(case_dir, "data.npz"), **{in_name: x.numpy(), "labels": y.numpy()})
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    ref = {"losses": np.array(losses, dtype=np.float64)}
    for onnx_name, (key_name, transposed) in mapping.items():
        v = state[key_name]
        ref["param:" + onnx_name] = v.T.copy() if transposed else v
    np.savez(os.path.join(case_dir, "ref.npz"), **ref)
    args = {"model": fixture, "batch-size": batch, "steps": STEPS}
    args.update(opts)
    # Parameters whose exact gradient is zero (a conv bias followed by BatchNorm, which subtracts
    # the per-channel mean): their float gradients are rounding noise, which Adam's normalised
    # update turns into O(lr) steps of arbitrary sign, in PyTorch and in ampc alike. The test
    # checks those against the bound on the update size instead of the trajectory.
    top = max(max_grad.values())
    noise = [onnx_name for onnx_name, (k, _) in mapping.items()
             if k in max_grad and max_grad[k] <= 1e-5 * top]
    case = {"args": args, "gradient_noise_params": sorted(noise)}
    with open(os.path.join(case_dir, "case.json"), "w") as f:
        json.dump(case, f, indent=1, sort_keys=True)
    print(f"{name:24s} loss {losses[0]:.5f} -> {losses[-1]:.5f}  ({len(mapping)} tensors)", flush=True)
    return name


def write_schedules(torch, out):
    """torch.optim.lr_scheduler's rate at each step, for ampc's LrSchedule (schedules.json)."""
    sched = torch.optim.lr_scheduler
    cases = []

    def run(name, make, steps, spec):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=spec["base"])
        s = make(opt)
        lrs = []
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            s.step()
        cases.append(dict(name=name, lrs=lrs, **spec))

    run("step", lambda o: sched.StepLR(o, step_size=3, gamma=0.5), 10,
        {"kind": "step", "base": 0.1, "step_size": 3, "gamma": 0.5})
    run("cosine", lambda o: sched.CosineAnnealingLR(o, T_max=12, eta_min=0.001), 12,
        {"kind": "cosine", "base": 0.1, "total_steps": 12, "min_lr": 0.001})
    # ampc's warm-up (rate base * (t + 1) / W for t < W) is LinearLR from 1/W over W - 1 steps.
    run("warmup", lambda o: sched.LinearLR(o, start_factor=1 / 4, end_factor=1.0, total_iters=3), 8,
        {"kind": "constant", "base": 0.1, "warmup_steps": 4})
    run("linear", lambda o: sched.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=10), 12,
        {"kind": "linear", "base": 0.1, "total_steps": 10, "min_lr": 0.0})
    with open(os.path.join(out, "schedules.json"), "w") as f:
        json.dump(cases, f, indent=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fixtures", required=True, help="folder with the ONNX fixtures")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--cases", default="", help="comma list of case names (default: all)")
    args = parser.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    gen = load_gen_fixtures()
    wanted = [c for c in args.cases.split(",") if c]
    os.makedirs(args.out, exist_ok=True)
    names = [run_case(torch, gen, args.fixtures, args.out, c)
             for c in CASES if not wanted or c[0] in wanted]
    write_schedules(torch, args.out)
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump({"steps": STEPS, "cases": names}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
