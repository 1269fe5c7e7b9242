"""``handgrad evaluate``: accuracy, classification report and plots of a trained model."""
from __future__ import annotations

import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="accuracy, classification report and plots of a trained model",
                              description="Evaluate a trained model (a run directory, model.npz or "
                                          "checkpoint.npz) on a data set split.")
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR_OR_FILE", help="run directory or model/checkpoint file")
    p.add_argument("--data", help="data set name (default: the one the model was trained on)")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--out", metavar="DIR", help="where to write the report and plots "
                                                "(default: RUN_DIR/eval-DATA-SPLIT)")
    p.set_defaults(run=run)


def load_split(metadata: dict, data, split: str):
    """``(dataset, (X, y))`` of ``split``; the model's own data set is loaded with
    the seed and options it was trained with, so its test split is the same."""
    from ..data import load_dataset

    name = data or metadata["data"]
    same = name == metadata["data"]
    dataset = load_dataset(name, seed=metadata["seed"] if same else 0, **(metadata["data_kwargs"] if same else {}))
    return dataset, dataset.train if split == "train" else dataset.test


def run(args) -> int:
    from ..train.evaluate import predict
    from ..plots import NO_MATPLOTLIB, can_plot
    from ..train.report import write_evaluation
    from ..train.restore import load_trained

    model, metadata = load_trained(args.checkpoint)
    dataset, (X, y) = load_split(metadata, args.data, args.split)
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
        X, y, pred = loader.inputs, loader.targets, predict(model, loader)
        loss = evaluate(model, TemporalCrossEntropyLoss(), loader)["loss"]
    else:
        pred = predict(model, X)
    result = write_evaluation(out, X, y, pred, list(dataset.classes), f"{dataset.name} {args.split} set")
    print(result["report"])
    print(f"results in: {out}")
    if not can_plot():
        print(NO_MATPLOTLIB, file=sys.stderr)
    if loss is not None:
        print(f"loss: {loss:.4f} nats per character")
    print(f"accuracy: {result['accuracy']:.4f}")
    return 0
