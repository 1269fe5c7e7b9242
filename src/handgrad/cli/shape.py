"""``handgrad shape``: the convolution/pooling size arithmetic of one dimension.

Given the input size and either the kernel size or the output size it prints
the other, by O = floor((I + 2P - D(K - 1) - 1) / S) + 1 (see handgrad.shapes)::

    handgrad shape --input 32 --output 28        # kernel size 5
    handgrad shape --input 32 --kernel 5         # output size 28
"""
from __future__ import annotations

from . import UsageError


def add_parser(subparsers):
    p = subparsers.add_parser("shape", help="solve O = floor((I + 2P - D(K-1) - 1)/S) + 1 for the kernel or output size")
    p.add_argument("--input", type=int, required=True, metavar="I", help="input size along one dimension")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--output", type=int, metavar="O", help="output size: print the kernel size(s) that give it")
    what.add_argument("--kernel", type=int, metavar="K", help="kernel size: print the output size")
    p.add_argument("--stride", type=int, default=1, metavar="S", help="stride (default 1)")
    p.add_argument("--padding", type=int, default=0, metavar="P", help="zeros on each side (default 0)")
    p.add_argument("--dilation", type=int, default=1, metavar="D", help="dilation (default 1)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..shapes import conv_output_size, kernel_sizes
    from ..validate import positive_int

    for flag in ("input", "stride", "dilation", "kernel", "output"):
        if getattr(args, flag) is not None:
            positive_int(getattr(args, flag), f"--{flag}")
    if args.padding < 0:
        raise UsageError(f"--padding must be >= 0, got {args.padding}")
    sizes = (args.input, args.stride, args.padding, args.dilation)
    if args.kernel is not None:
        print(f"output size {conv_output_size(args.input, args.kernel, *sizes[1:])}")
        return 0
    found = kernel_sizes(args.input, args.output, *sizes[1:])
    if not found:
        raise UsageError(
            f"no integer kernel size K >= 1 gives output {args.output} from input {args.input} at stride {args.stride}, "
            f"padding {args.padding}, dilation {args.dilation} (O = floor((I + 2P - D(K - 1) - 1) / S) + 1; "
            f"K = 1 gives {conv_output_size(args.input, 1, *sizes[1:])})"
        )
    if len(found) == 1:
        print(f"kernel size {found[0]}")
    else:
        print(f"kernel sizes {', '.join(map(str, found))} (the floor division gives output {args.output} for each)")
    return 0
