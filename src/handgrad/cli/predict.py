"""``handgrad predict``: predicted labels of a trained model, written as CSV.

Two outputs, either or both: ``--out`` (columns id, label, class; ids count from 0,
the sample's position in the input; the class name as :func:`handgrad.metrics.display_name`
spells it, so a newline class is ``\n``) and ``--submission``, a Kaggle-style file
(``Id,Category`` by default; ids count from 1, the category is the label number).
"""
from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np

from . import UsageError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("predict", help="predict labels with a trained model and write them as CSV",
                              description="Predict with a trained model (a run directory, model.npz or "
                                          "checkpoint.npz). The CSV of --out has columns id, label, class; "
                                          "--submission writes a Kaggle-style CSV (Id,Category, ids from 1).")
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR_OR_FILE")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", metavar="FILE.npy|FILE.csv",
                        help="inputs as a .npy array (N, *input_shape) or (N, H, W); integer pixels are scaled by 1/255")
    source.add_argument("--data", help="a data set name or a data file/folder (use with --split)")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--out", metavar="PREDS.csv", help="CSV of id (from 0), label and class name")
    p.add_argument("--submission", metavar="FILE.csv",
                   help="Kaggle-style CSV: one row per predicted sample, ids from 1, the predicted label number")
    p.add_argument("--id-column", default="Id", metavar="NAME", help="header of the submission's id column (default Id)")
    p.add_argument("--label-column", default="Category", metavar="NAME",
                   help="header of the submission's label column (default Category)")
    p.add_argument("--skip-nonfinite", action="store_true",
                   help="leave out images holding NaN or inf (and say how many) instead of refusing the file")
    p.add_argument("--batch-size", type=int, default=256, metavar="N", help="samples per forward pass (default 256)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="where the model runs: cpu (default) or cuda (needs CuPy and a GPU)")
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
    if not isinstance(X, np.ndarray):
        raise ValueError(f"{path}: an .npz archive, expected a single .npy array")
    shape = tuple(input_shape)
    if X.shape == shape:
        X = X[None]
    elif X.ndim == len(shape) and math.prod(X.shape[1:]) == math.prod(shape):
        X = X.reshape((len(X), *shape))
    if X.shape[1:] != shape:
        raise ValueError(f"{path}: expected images of shape (N, {', '.join(map(str, shape))}), got {X.shape}")
    if len(X) == 0:
        raise ValueError(f"{path}: holds no images")
    if X.dtype.kind in "iu":
        X = X / 255.0
    elif X.dtype.kind != "f":
        raise ValueError(f"{path}: expected numeric images, got dtype {X.dtype}")
    return X.astype(get_default_dtype())


def read_inputs(path, input_shape) -> np.ndarray:
    """Unlabelled inputs: a ``.npy`` array (:func:`read_images`) or a CSV of pixels
    with or without a ``label`` column, as Kaggle's test.csv."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        from ..data import load_inputs

        return load_inputs(path, input_shape)
    if suffix != ".npy":
        raise ValueError(f"--images {path}: expected a .npy array or a .csv of pixels (a folder of images: "
                         f"--data FOLDER)")
    return read_images(path, input_shape)


def nonfinite_samples(path, X: np.ndarray, skip: bool) -> np.ndarray:
    """Indices of the samples of ``X`` (read from ``path``) holding NaN or inf. Unless
    ``skip``, any such sample is an error saying how many there are and where."""
    bad = np.flatnonzero(~np.isfinite(X.reshape(len(X), -1)).all(axis=1))
    if len(bad) and not skip:
        where = ", ".join(map(str, bad[:5].tolist())) + (", ..." if len(bad) > 5 else "")
        raise ValueError(f"{path}: {len(bad)} of {len(X)} images hold NaN or inf (at index {where}); "
                         f"fix them or pass --skip-nonfinite to leave them out")
    return bad


def write_submission(path, ids, labels, id_column: str, label_column: str) -> None:
    """Atomically write a Kaggle-style CSV: header ``id_column,label_column``, one row per sample."""
    from ..atomic import atomic_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([id_column, label_column])
        writer.writerows(zip(ids, labels))


def run(args) -> int:
    from ..atomic import atomic_file
    from ..metrics import display_name
    from ..train.restore import load_trained
    from .evaluate import load_split, predict_batched, progress

    if args.out is None and args.submission is None:
        raise UsageError("give --out, --submission or both")
    if args.batch_size <= 0:
        raise UsageError(f"--batch-size must be positive, got {args.batch_size}")
    for flag, name in (("--id-column", args.id_column), ("--label-column", args.label_column)):
        if not name.strip():
            raise UsageError(f"{flag} must not be empty")
    model, metadata = load_trained(args.checkpoint)
    model.to(args.device)  # inputs follow the model there; results come back to the host
    classes = metadata.get("classes")
    if args.images:
        shape = metadata.get("input_shape") or getattr(model, "input_shape", None)
        X = read_inputs(args.images, shape)
        skipped = nonfinite_samples(args.images, X, args.skip_nonfinite)
    else:
        dataset, (X, _) = load_split(metadata, args.data, args.split, model)
        classes = list(dataset.classes)
        skipped = np.array([], dtype=int)
    ids = np.setdiff1d(np.arange(len(X)), skipped)
    if len(ids) == 0:
        raise ValueError(f"{args.images}: all {len(X)} images hold NaN or inf; nothing to predict")
    pred = predict_batched(model, X[ids], args.batch_size, progress(args, "predicting")).tolist()
    if classes and max(pred) >= len(classes):
        raise ValueError(f"--data {args.data}: has {len(classes)} classes, but the model predicts label {max(pred)}")
    if len(skipped):
        print(f"skipped {len(skipped)} of {len(X)} images holding NaN or inf", file=sys.stderr)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(out, "w") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["id", "label", "class"])
            for i, label in zip(ids.tolist(), pred):
                writer.writerow([i, label, display_name(classes[label]) if classes else label])
        print(f"wrote {len(pred)} predictions to {out}")
    if args.submission:
        write_submission(args.submission, (ids + 1).tolist(), pred, args.id_column, args.label_column)
        print(f"wrote a submission of {len(pred)} rows to {args.submission}")
    return 0
