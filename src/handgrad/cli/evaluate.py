"""``handgrad evaluate``: accuracy, classification report and plots of a trained model."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from . import UsageError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="accuracy, classification report and plots of a trained model",
                              description="Evaluate a trained model (a run directory, model.npz or "
                                          "checkpoint.npz) on a data set split.")
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR_OR_FILE", help="run directory or model/checkpoint file")
    p.add_argument("--data", help="data set name (default: the one the model was trained on)")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--out", metavar="DIR", help="where to write the report and plots "
                                                "(default: RUN_DIR/eval-DATA-SPLIT)")
    p.add_argument("--batch-size", type=int, default=256, metavar="N", help="samples per forward pass (default 256)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="where the model runs: cpu (default) or cuda (needs CuPy and a GPU)")
    p.set_defaults(run=run)


def load_split(metadata: dict, data, split: str, model):
    """``(dataset, (X, y))`` of ``split``: a registered data set or a file or folder
    (``--data PATH``). The model's own data set is loaded with the seed and options
    it was trained with, so its test split is the same; when it is a file whose
    contents changed since training, a warning says so. ``model`` is tried on one
    sample first: data it cannot take is an error naming both."""
    from ..data import is_data_path, open_data
    from ..train.build import check_fits

    trained_on = metadata.get("data")
    name = data or trained_on
    if name is None:
        raise UsageError("the model file does not say which data set it was trained on; give --data")
    same = name == trained_on
    options = (metadata.get("data_kwargs") or {}) if same else {}
    dataset = open_data(name, seed=(metadata.get("seed") or 0) if same else 0, **options)
    if same and is_data_path(name):
        warn_if_changed(name, metadata.get("data_identity"))
    check_fits(model, metadata.get("model") or "?", dataset)
    return dataset, dataset.train if split == "train" else dataset.test


def warn_if_changed(path, identity) -> None:
    """Warn when the data file at ``path`` is not the one the model was trained on
    (its size or SHA-256 differ from the run's record)."""
    from ..data import file_identity

    recorded = (identity or {}).get("file") if isinstance(identity, dict) else None
    if not isinstance(recorded, dict):
        return
    now = file_identity(path)
    if (now["size"], now["sha256"]) != (recorded.get("size"), recorded.get("sha256")):
        print(f"handgrad: warning: {path} changed since the model was trained on it "
              f"(SHA-256 {recorded.get('sha256', '?')[:12]}... then, {now['sha256'][:12]}... now)", file=sys.stderr)


def progress(args, desc: str):
    """The progress wrapper of an evaluation pass: none with ``--quiet``."""
    from ..train.progress import tracker

    return tracker(desc, "none" if args.quiet else "auto")


def predict_batched(model, X, batch_size: int, progress=None):
    """Predicted labels of ``X`` (an array or a StreamLoader), ``batch_size`` samples
    at a time, each batch shared by worker processes as in training (``workers="auto"``;
    streams and models off the CPU run here); a batch too large for memory is an error
    that says so."""
    from ..parallel import DataParallel, resolve_workers
    from ..train.evaluate import predict

    # "auto" is 1 for a model off the CPU (see check_parallel); streams carry their state here
    workers = resolve_workers(model, "auto") if isinstance(X, np.ndarray) else 1
    try:
        with DataParallel(model, workers) as net:
            return predict(net if workers > 1 else model, X, batch_size, progress)
    except MemoryError as exc:
        what = f"a batch of {min(batch_size, len(X))} samples" if isinstance(X, np.ndarray) \
            else "one chunk of the text streams"
        raise UsageError(f"--batch-size {batch_size}: {what} did not fit in memory ({exc}); "
                         f"try a smaller --batch-size") from None


def run(args) -> int:
    from ..plots import NO_MATPLOTLIB, can_plot
    from ..train.report import write_evaluation
    from ..train.restore import load_trained

    if args.batch_size <= 0:
        raise UsageError(f"--batch-size must be positive, got {args.batch_size}")
    model, metadata = load_trained(args.checkpoint)
    model.to(args.device)  # inputs follow the model there; results come back to the host
    dataset, (X, y) = load_split(metadata, args.data, args.split, model)
    source = Path(args.checkpoint)
    run_dir = source if source.is_dir() else source.parent
    out = Path(args.out) if args.out else run_dir / f"eval-{dataset.name}-{args.split}"
    loss = None
    streams = metadata.get("streams")
    if streams and dataset.sequential and getattr(model, "stateful", False):
        # as in training: the text read as streams, the state carried from chunk to chunk
        from ..data.text import StreamLoader, stream_ids
        from ..nn import TemporalCrossEntropyLoss
        from ..train.evaluate import evaluate

        loader = StreamLoader(stream_ids((X, y)), streams, dataset.input_shape[0], drop_last=False)
        X, y = loader.inputs, loader.targets
        pred = predict_batched(model, loader, args.batch_size, progress(args, "predicting"))
        loss = evaluate(model, TemporalCrossEntropyLoss(), loader, progress=progress(args, "loss"))["loss"]
    else:
        pred = predict_batched(model, X, args.batch_size, progress(args, "predicting"))
    result = write_evaluation(out, X, y, pred, list(dataset.classes), f"{dataset.name} {args.split} set")
    print(result["report"])
    print(f"results in: {out}")
    if not can_plot():
        print(NO_MATPLOTLIB, file=sys.stderr)
    if loss is not None:
        print(f"loss: {loss:.4f} nats per character")
    print(f"accuracy: {result['accuracy']:.4f}")
    return 0
