"""``handgrad generate``: sample text from a trained character model."""
from __future__ import annotations

import sys
from pathlib import Path

from . import UsageError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "generate", help="sample text from a trained character model (char_lstm)",
        description="Continue a prime string with a character model trained by 'handgrad train "
                    "--model char_lstm --data text': each generated character is fed back as the "
                    "next input. The same --seed gives the same text.",
    )
    p.add_argument("--checkpoint", required=True, metavar="RUN",
                   help="run directory written by 'handgrad train' (or its model.npz)")
    p.add_argument("--prime", default=None, help="text to start from (default: a newline)")
    p.add_argument("--length", type=int, default=500, help="characters to generate (default 500)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="divide the logits by this before sampling: < 1 is more conservative (default 1)")
    p.add_argument("--greedy", action="store_true", help="always take the most likely character")
    p.add_argument("--seed", type=int, default=0, help="random seed of the sampling (default 0)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="where the model runs: cpu (default) or cuda (needs CuPy and a GPU)")
    p.set_defaults(run=run)


def load_char_model(checkpoint):
    """(model, vocabulary) from a run directory or a model file written by ``handgrad train``."""
    from ..data.text import CharVocab
    from ..io import load_model

    path = Path(checkpoint)
    if path.is_dir():
        path = path / "model.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint}: no such run directory or model file")
    model, metadata = load_model(path)
    if not hasattr(model, "sample") or "classes" not in metadata:
        raise UsageError(f"{path}: holds a {metadata.get('model')!r} model, not a character model (char_lstm)")
    return model, CharVocab(metadata["classes"])


def run(args) -> int:
    if args.length < 0:
        raise UsageError(f"--length must be >= 0, got {args.length}")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    if not args.greedy and not args.temperature > 0:
        raise UsageError(f"--temperature must be > 0, got {args.temperature:g}")
    model, vocab = load_char_model(args.checkpoint)
    model.to(args.device)  # inputs follow the model there; results come back to the host
    prime = args.prime if args.prime is not None else "\n"
    if prime == "":
        raise UsageError("--prime must not be empty")
    unknown = sorted(set(prime) - set(vocab.chars))
    if unknown:
        raise UsageError(f"--prime has characters the model was not trained on: {''.join(unknown)!r}")
    ids = model.sample(vocab.encode(prime), args.length, temperature=args.temperature,
                       greedy=args.greedy, rng=args.seed)
    sys.stdout.write(prime + vocab.decode(ids) + "\n")
    return 0
