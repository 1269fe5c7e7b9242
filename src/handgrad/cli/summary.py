"""``handgrad summary MODEL``: print the per-layer table of a model from the zoo."""
from __future__ import annotations

from . import UsageError


def add_parser(subparsers):
    p = subparsers.add_parser("summary", help="print a model's layers, shapes and parameter counts")
    p.add_argument("model", help="a model name from the zoo, e.g. lenet5")
    p.add_argument("--input-shape", type=int, nargs="+", metavar="D",
                   help="one sample's shape, e.g. 1 28 28 (default: the model's own)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..models import MODELS, get_model
    from ..summary import summary

    if args.model not in MODELS:
        raise UsageError(f"unknown model {args.model!r}; known models: {', '.join(sorted(MODELS))}")
    summary(get_model(args.model), args.input_shape)
    return 0
