"""``handgrad predict``: predicted labels of a trained model, written as CSV."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("predict", help="predict labels with a trained model and write them as CSV",
                              description="Predict with a trained model (a run directory, model.npz or "
                                          "checkpoint.npz). The CSV has columns id, label, class.")
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR_OR_FILE")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", metavar="FILE.npy",
                        help="inputs as a .npy array (N, *input_shape) or (N, H, W); integer pixels are scaled by 1/255")
    source.add_argument("--data", help="a data set name (use with --split)")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--out", required=True, metavar="PREDS.csv")
    p.set_defaults(run=run)


def read_images(path, input_shape) -> np.ndarray:
    """Load ``path`` (no pickle) and shape it to (N, *input_shape) for the model."""
    from ..backend import get_default_dtype

    try:
        X = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npy array ({exc})") from None
    shape = tuple(input_shape)
    if X.shape == shape:
        X = X[None]
    elif X.ndim == len(shape) and math.prod(X.shape[1:]) == math.prod(shape):
        X = X.reshape((len(X), *shape))
    if X.shape[1:] != shape:
        raise ValueError(f"{path}: expected images of shape (N, {', '.join(map(str, shape))}), got {X.shape}")
    if X.dtype.kind in "iu":
        X = X / 255.0
    elif X.dtype.kind != "f":
        raise ValueError(f"{path}: expected numeric images, got dtype {X.dtype}")
    return X.astype(get_default_dtype())


def run(args) -> int:
    from ..atomic import atomic_file
    from ..train.evaluate import predict
    from ..train.restore import load_trained
    from .evaluate import load_split

    model, metadata = load_trained(args.checkpoint)
    classes = metadata.get("classes")
    if args.images:
        shape = metadata.get("input_shape") or getattr(model, "input_shape", None)
        X = read_images(args.images, shape)
    else:
        dataset, (X, _) = load_split(metadata, args.data, args.split)
        classes = list(dataset.classes)
    pred = predict(model, X)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "label", "class"])
        for i, label in enumerate(pred.tolist()):
            writer.writerow([i, label, classes[label] if classes else label])
    print(f"wrote {len(pred)} predictions to {out}")
    return 0
