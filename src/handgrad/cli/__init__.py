"""The ``handgrad`` command. Each sub-command lives in a module of this package
that defines ``add_parser(subparsers)`` and ``run(args) -> int``."""
from __future__ import annotations

import argparse
import json
import importlib
import os
import signal
import sys
import warnings

from .. import __version__
from ..heap import keep_freed_memory

COMMANDS = ("train", "evaluate", "predict", "generate", "summary", "shape", "gradcheck", "sweep", "export")


class UsageError(Exception):
    """A problem with what the user asked for: printed as one line, exit status 2."""


def parse_setting(item: str, what: str = "--set") -> tuple:
    """``KEY=VALUE`` -> ``(key, value)``: the value is JSON (``0.01``, ``[300, 100]``,
    ``true``, ``"adam"``) or else a bare word (``adam``); text that starts like JSON
    (``[``, ``{``, a quote) but is not JSON is an error naming it."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise UsageError(f"{what}: expected KEY=VALUE, got '{item}'")
    try:
        return key, json.loads(text)
    except json.JSONDecodeError as exc:
        if text[:1] in ('[', '{', '"') or not text:
            raise UsageError(f"{what} {key}: '{text}' is not valid JSON ({exc.msg})") from None
        return key, text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handgrad",
        description="Deep learning from scratch in NumPy: train, evaluate and inspect networks.",
    )
    parser.add_argument("--version", action="version", version=f"handgrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).add_parser(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"handgrad: warning: {message}", file=sys.stderr)  # one line, as the errors


def main(argv=None) -> int:
    warnings.showwarning = _show_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    keep_freed_memory()  # every batch allocates the same arrays: no page faults for them
    try:
        return args.run(args)
    except BrokenPipeError:  # the reader went away (handgrad sweep --list | head): stop quietly,
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (so the exit's flush cannot fail)
        return 128 + signal.SIGPIPE  # with the status of a program that SIGPIPE stopped, as `yes | head`
    except (UsageError, ValueError, KeyError, ImportError, OSError) as exc:
        if os.environ.get("HANDGRAD_DEBUG"):
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"handgrad {args.command}: error: {message}", file=sys.stderr)
        return 2
    except MemoryError as exc:
        if os.environ.get("HANDGRAD_DEBUG"):
            raise
        detail = f" ({exc})" if str(exc) else ""
        print(f"handgrad {args.command}: error: out of memory{detail}; try a smaller --batch-size or model",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"handgrad {args.command}: interrupted", file=sys.stderr)
        return 130
