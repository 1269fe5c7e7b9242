"""``handgrad gradcheck``: check every layer's backward pass against finite differences."""
from __future__ import annotations

from . import UsageError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "gradcheck",
        help="check every layer's gradients against finite differences",
        description="Run the library's gradient checks in float64 and print the worst relative "
        "error of every tensor. Exits 0 only if every error is below the tolerance.",
    )
    p.add_argument("--layer", action="append", metavar="NAME",
                   help="check only this layer class, e.g. Linear (repeatable; case-insensitive)")
    p.add_argument("--seed", type=int, default=0, help="seed for inputs, weights, dout and dropout masks (default 0)")
    p.add_argument("--tol", type=float, default=None, help="largest relative error that passes (default 1e-6)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..gradcheck import TOLERANCE, library_cases

    tol = TOLERANCE if args.tol is None else args.tol
    cases = library_cases()
    if args.layer:
        wanted = {name.lower() for name in args.layer}
        unknown = wanted - {c.layer.lower() for c in cases}
        if unknown:
            known = ", ".join(sorted({c.layer for c in cases}))
            raise UsageError(f"no gradient check for layer {', '.join(sorted(unknown))}; known layers: {known}")
        cases = [c for c in cases if c.layer.lower() in wanted]

    rows = []
    for case in cases:
        try:
            rows += [(case.name, tensor, f"{err:10.2e}", "ok" if err < tol else "FAIL")
                     for tensor, err in case.run(args.seed).items()]
        except Exception as exc:  # a layer that crashes is reported as a failed case, and the rest still run
            rows.append((case.name, "-", f"{'error':>10}", f"FAIL {type(exc).__name__}: {exc}"))
    width = max(len(r[0]) for r in rows)
    tensor_width = max(len("tensor"), *(len(r[1]) for r in rows))
    print(f"{'case':<{width}}  {'tensor':<{tensor_width}}  {'rel. error':>10}  result")
    for name, tensor, err, result in rows:
        print(f"{name:<{width}}  {tensor:<{tensor_width}}  {err}  {result}")
    failed = sum(r[3] != "ok" for r in rows)
    print(f"{len(cases)} cases, {len(rows)} tensors checked, {failed} failed (tolerance {tol:g}, seed {args.seed})")
    return 1 if failed else 0
