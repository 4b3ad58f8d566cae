#!/usr/bin/python3
"""torch.optim reference trajectories for the com.ampc SGD and Adam kernels.

The oracle of tests/unit/optimizer_kernels_test.cc. For a fixed list of seeded cases it runs
torch.optim.SGD / Adam / AdamW (PyTorch 1.13, foreach=False: the single-tensor loops that ampc's
kernels reproduce) for a few steps on one parameter whose gradient is set by hand each step, and
writes OUT/optimizer_refs.json:

    {"torch": "<version>", "sgd": [case, ...], "adam": [case, ...]}

Each case holds its hyper-parameters, `start_step` (the number of updates already applied, i.e.
ampc's `step` input on the first recorded step), the initial parameter and states, and per step
the learning rate, the gradient and torch's parameter and states after the step. Arrays are
{"dtype": "f32"|"f64", "shape": [...], "hex": "<little-endian bytes>"} so that every value is
exact. Hyper-parameters are rounded to float32 before torch sees them, because ampc carries them
as f32 ONNX attributes (and lr as an f32 tensor): the comparison then checks the update rule, not
the precision of the attribute format.

    /usr/bin/python3 tools/optimizer_reference.py --out build/generated_fixtures/optimizer_refs
"""

import argparse
import json
import os

import numpy as np
import torch


def f32(x):
    return float(np.float32(x))


def enc(t):
    a = t.detach().cpu().numpy()
    dt, le = {np.dtype(np.float32): ("f32", "<f4"), np.dtype(np.float64): ("f64", "<f8")}[a.dtype]
    return {"dtype": dt, "shape": list(a.shape), "hex": np.ascontiguousarray(a, le).tobytes().hex()}


# name, dtype, shape, steps, lrs (one per step, cycled), gradient scale, seed, torch.optim.SGD
# keyword arguments[, start_step: the updates already applied, with a stored momentum buffer].
SGD_CASES = [
    ("plain", torch.float32, [3, 5], 4, [0.1], 1.0, 1, dict()),
    ("weight_decay", torch.float32, [17], 4, [0.05], 1.0, 2, dict(weight_decay=0.01)),
    ("momentum", torch.float32, [4, 6], 5, [0.1], 1.0, 3, dict(momentum=0.9)),
    ("momentum_dampening_wd", torch.float32, [33], 5, [0.05, 0.02, 0.08], 2.0, 4,
     dict(momentum=0.8, dampening=0.3, weight_decay=1e-3)),
    ("nesterov_wd", torch.float32, [2, 3, 4], 5, [0.1], 1.0, 5,
     dict(momentum=0.9, nesterov=True, weight_decay=5e-4)),
    # A resumed run: the momentum buffer exists, so the first recorded step uses it.
    ("momentum_resumed", torch.float32, [9], 3, [0.03], 1.0, 6,
     dict(momentum=0.7, dampening=0.1), 4),
    ("nesterov_resumed", torch.float32, [9], 3, [0.03], 1.0, 7,
     dict(momentum=0.9, nesterov=True), 2),
    # Large enough for ParallelFor to split it (kernels_optimizer.cc's grain is 2^14).
    ("momentum_wd_large", torch.float32, [33000], 2, [0.1, 0.05], 1.0, 8,
     dict(momentum=0.9, weight_decay=1e-2)),
    ("f64_nesterov_wd", torch.float64, [4, 5], 5, [0.1, 0.07], 1.0, 9,
     dict(momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("f64_dampening", torch.float64, [11], 4, [0.2], 3.0, 10, dict(momentum=0.5, dampening=0.5)),
    ("f64_plain", torch.float64, [6], 3, [0.5], 1.0, 11, dict()),
]

# The same, then whether it is AdamW (decoupled weight decay)[, start_step with stored moments].
ADAM_CASES = [
    ("adam_default", torch.float32, [3, 5], 5, [1e-3], 1.0, 21, dict(), False),
    ("adam_l2", torch.float32, [19], 5, [2e-3, 1e-3], 1.0, 22,
     dict(betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01), False),
    ("adam_big_grads", torch.float32, [4, 4], 4, [0.01], 50.0, 23, dict(eps=1e-8), False),
    ("adamw", torch.float32, [2, 7], 5, [1e-3], 1.0, 24, dict(weight_decay=0.01), True),
    ("adamw_schedule", torch.float32, [13], 5, [0.05, 0.01, 0.002], 0.5, 25,
     dict(betas=(0.5, 0.9), eps=1e-4, weight_decay=0.1), True),
    # Resumed at step 7 with existing moments: bias correction uses step + 1 = 8 first.
    ("adam_resumed", torch.float32, [10], 3, [1e-3], 1.0, 26, dict(weight_decay=1e-3), False, 7),
    ("adamw_resumed", torch.float32, [10], 3, [3e-3], 1.0, 27,
     dict(betas=(0.85, 0.995), weight_decay=0.05), True, 100),
    ("adamw_large", torch.float32, [33000], 2, [1e-3], 1.0, 28, dict(weight_decay=0.01), True),
    ("f64_adam_l2", torch.float64, [3, 4], 5, [1e-2], 1.0, 29,
     dict(betas=(0.9, 0.99), eps=1e-7, weight_decay=0.02), False),
    ("f64_adamw", torch.float64, [8], 5, [5e-3, 1e-3], 2.0, 30, dict(weight_decay=0.1), True),
    ("f64_adam_default", torch.float64, [5], 3, [1e-3], 1.0, 31, dict(), False),
]


def sgd_case(name, dtype, shape, steps, lrs, gscale, seed, hp, start_step=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g, dtype=dtype)
    hp = {k: (f32(v) if isinstance(v, float) else v) for k, v in hp.items()}
    p = torch.nn.Parameter(w.clone())
    opt = torch.optim.SGD([p], lr=f32(lrs[0]), foreach=False, **hp)
    case = {"name": name, "momentum": hp.get("momentum", 0.0),
            "dampening": hp.get("dampening", 0.0), "nesterov": bool(hp.get("nesterov", False)),
            "weight_decay": hp.get("weight_decay", 0.0), "start_step": start_step, "w0": enc(w)}
    if start_step > 0:
        m0 = torch.randn(shape, generator=g, dtype=dtype) * 0.1
        opt.state[p]["momentum_buffer"] = m0.clone()
        case["m0"] = enc(m0)
    case["steps"] = []
    for k in range(steps):
        lr = f32(lrs[k % len(lrs)])
        opt.param_groups[0]["lr"] = lr
        grad = torch.randn(shape, generator=g, dtype=dtype) * gscale
        p.grad = grad.clone()
        opt.step()
        s = {"lr": lr, "g": enc(grad), "w": enc(p)}
        if hp.get("momentum", 0.0) != 0.0:
            s["m"] = enc(opt.state[p]["momentum_buffer"])
        case["steps"].append(s)
    return case


def adam_case(name, dtype, shape, steps, lrs, gscale, seed, hp, decoupled, start_step=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g, dtype=dtype)
    betas = tuple(f32(b) for b in hp.get("betas", (0.9, 0.999)))
    eps = f32(hp.get("eps", 1e-8))
    wd = f32(hp.get("weight_decay", 0.0))
    p = torch.nn.Parameter(w.clone())
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    opt = cls([p], lr=f32(lrs[0]), betas=betas, eps=eps, weight_decay=wd, foreach=False)
    if start_step > 0:
        m0 = torch.randn(shape, generator=g, dtype=dtype) * 0.1
        v0 = torch.rand(shape, generator=g, dtype=dtype) * 0.01
    else:
        m0 = torch.zeros(shape, dtype=dtype)
        v0 = torch.zeros(shape, dtype=dtype)
    if start_step > 0:
        opt.state[p]["step"] = torch.tensor(float(start_step))
        opt.state[p]["exp_avg"] = m0.clone()
        opt.state[p]["exp_avg_sq"] = v0.clone()
    case = {"name": name, "beta1": betas[0], "beta2": betas[1], "epsilon": eps, "weight_decay": wd,
            "decoupled": decoupled, "start_step": start_step, "w0": enc(w), "m0": enc(m0),
            "v0": enc(v0), "steps": []}
    for k in range(steps):
        lr = f32(lrs[k % len(lrs)])
        opt.param_groups[0]["lr"] = lr
        grad = torch.randn(shape, generator=g, dtype=dtype) * gscale
        p.grad = grad.clone()
        opt.step()
        st = opt.state[p]
        assert int(st["step"].item()) == start_step + k + 1
        case["steps"].append({"lr": lr, "g": enc(grad), "w": enc(p), "m": enc(st["exp_avg"]),
                              "v": enc(st["exp_avg_sq"])})
    return case


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for optimizer_refs.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = {"torch": torch.__version__,
           "sgd": [sgd_case(*c) for c in SGD_CASES],
           "adam": [adam_case(*c) for c in ADAM_CASES]}
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "optimizer_refs.json")
    with open(path + ".tmp", "w") as f:
        json.dump(out, f)
    os.replace(path + ".tmp", path)
    print(f"wrote {len(out['sgd'])} SGD and {len(out['adam'])} Adam cases to {path}")


if __name__ == "__main__":
    main()
