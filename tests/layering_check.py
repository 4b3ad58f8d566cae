#!/usr/bin/env python3
"""Checks the layering of ampc's folders on #include lines (ctest `layering`).

    tools -> compiler -> frontend, passes, codegen -> the Plan (codegen/plan*) -> ir
    tools -> runtime -> the Plan -> ir

A file may include its own folder and the folders below it, never one above or beside it, so
that the runtime builds and ships without ONNX, the passes or the compiler (the GPU machine has
only the runtime), and passes stay independent of how graphs are imported. Also: the training
loop (runtime/train.cc) names no backend type (cpu::), so it runs on any Executor.
Prints one line per violation and exits 1 if there is any.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PLAN = "codegen/plan"  # codegen/plan.h, plan.pb.h, plan_target.h: the Plan library

# folder -> what its files may include (besides the standard and third-party headers)
ALLOWED = {
    "ir": ["ir/"],
    PLAN: ["ir/", PLAN],
    "frontend": ["ir/", "frontend/"],
    "passes": ["ir/", "passes/"],
    "codegen": ["ir/", "codegen/"],
    "compiler": ["ir/", "frontend/", "passes/", "codegen/", "compiler/"],
    "runtime": ["ir/", PLAN, "runtime/"],
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer(path: str) -> str | None:
    if path.startswith(PLAN):
        return PLAN
    top = path.split("/", 1)[0]
    return top if top in ALLOWED else None


def main() -> int:
    bad = []
    for f in sorted(ROOT.rglob("*")):
        if f.suffix not in (".h", ".cc") or "build" in f.relative_to(ROOT).parts[0]:
            continue
        rel = f.relative_to(ROOT).as_posix()
        if rel.endswith("_test.cc"):
            continue  # tests may use anything
        src = layer(rel)
        if src is None:
            continue
        for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
            m = INCLUDE.match(line)
            if not m or "/" not in m.group(1):
                continue
            inc = m.group(1)
            if layer(inc) is None and not inc.startswith(("tools/", "tests/")):
                continue  # generated or third-party
            if not any(inc.startswith(a) for a in ALLOWED[src]):
                bad.append(f"{rel}:{n}: {src}/ may not include \"{inc}\"")
    train = ROOT / "runtime" / "train.cc"
    for n, line in enumerate(train.read_text().splitlines(), 1):
        if re.search(r"\bcpu::", line):
            bad.append(f"runtime/train.cc:{n}: the training loop names a backend type (cpu::)")
    for b in bad:
        print(b)
    print(f"layering: {len(bad)} violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
