"""Your own data: a data set read from a file or folder, in the format found there.

The API that ``--data PATH`` is built on::

    dataset = load_path(path, seed=0, **options)   # a FileDataset (a Dataset)
    record["data_file"] = file_identity(path)       # {"path", "size", "sha256"}
    print(describe(dataset))   # "mine: 800 train, 200 test, 10 classes, input shape (1, 28, 28)"

``file_identity`` is what a run stores, so ``evaluate`` / ``predict`` can compare
it with the file's identity now and warn when the data changed. ``load_inputs``
reads unlabelled inputs (a Kaggle test CSV) for ``predict``.

Formats, recognised from what is at ``path``:

* ``name.npz`` with ``x_train``, ``y_train`` and optionally ``x_test``, ``y_test``
  (both or neither) and ``classes`` (names, a string array); inputs of any shape
  ``(N, ...)``;
* a folder with the four IDX files of MNIST, Fashion-MNIST, KMNIST or EMNIST
  (``[prefix]train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``; ``test`` for ``t10k``
  and ``.idx3-ubyte`` are accepted too; several sets in one folder need ``prefix=``);
* ``name.csv`` as in Kaggle's digit competitions: a header line, a ``label``
  column and one column per pixel; the image shape is ``shape=`` or, when the
  pixel count is a perfect square s * s, ``(1, s, s)``, else ``(pixels,)``;
* a folder of images (PNG, JPEG, BMP, GIF; needs Pillow: ``pip install
  "handgrad[images]"``), one sub-folder per class: either ``root/train/<class>/``
  and ``root/test/<class>/``, or ``root/<class>/`` with a held-out test split.
  Images are resized to ``shape=`` (C, H, W), C = 1 for greyscale or 3 for RGB;
  by default the size and colour of the first image.

Inputs become float (the default dtype): integer inputs are pixels in [0, 255],
multiplied by 1/255 (``dataset.input_scale``); float inputs are kept
(``input_scale`` 1). Labels are integers in [0, number of classes) -> int64;
without class names the classes are "0", "1", ... up to the largest label.

Options: ``test_fraction`` (default 0.2) of the samples, stratified and chosen
from ``seed``, make the test split when the data has none; ``shape`` (see above;
arrays are reshaped to it, their sizes must agree); ``classes`` (names that
replace those found); ``prefix`` (IDX only). Every problem raises a one-line
``FileNotFoundError`` or :class:`DataError` (a ValueError) naming the file.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backend import get_default_dtype
from .datasets import Dataset, check_dataset
from .download import sha256_file
from .idx import DataError, read_idx
from .transforms import train_val_split

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test", "classes")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_IDX_NAME = re.compile(r"(?P<prefix>.*?)(?P<split>train|t10k|test)-(?P<kind>images|labels)[-.]idx[13]-ubyte(\.gz)?")


@dataclass(repr=False)
class FileDataset(Dataset):
    """A :class:`Dataset` read by :func:`load_path`. ``input_scale``: the factor the
    raw values were multiplied by (1/255 for integer pixels, 1 for float inputs),
    which a deployed model's inputs need too."""

    input_scale: float = 1.0


def load_path(path, seed: int = 0, *, test_fraction: float = 0.2, shape=None, classes=None,
              prefix=None) -> FileDataset:
    """Read the data set at ``path`` (see the module docstring for the formats and options)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"{path}: test_fraction must be in (0, 1), got {test_fraction!r}")
    if shape is not None:
        shape = _check_shape(path, shape)
    if prefix is not None and not (path.is_dir() and _idx_sets(path)):
        raise ValueError(f"{path}: the option prefix= applies to folders of IDX files only")
    if path.is_file() and path.suffix.lower() == ".npz":
        train, test, found, scale = _read_npz(path)
    elif path.is_file() and path.suffix.lower() == ".csv":
        (X, y), scale = _read_csv(path, labelled=True)
        train, test, found = (X, y), None, None
    elif path.is_dir() and _idx_sets(path):
        train, test, scale = _read_idx_folder(path, prefix)
        found = None
    elif path.is_dir() and _has_subfolders(path):
        train, test, found = _read_image_folder(path, shape)
        scale = 1 / 255
    else:
        raise DataError(f"{path}: no data set format recognised (expected a .npz or .csv file, a folder of "
                        f"IDX files, or a folder of images with one sub-folder per class)")
    if shape is not None:
        train = _reshape(path, train, shape)
        test = None if test is None else _reshape(path, test, shape)
    names = _class_names(path, classes if classes is not None else found, train, test)
    if test is None:
        try:
            train, test = train_val_split(*train, test_fraction, seed=seed, stratify=True)
        except ValueError:
            raise DataError(f"{path}: {len(train[1])} samples are too few to hold out a test set of "
                            f"{test_fraction:g} of them (give x_test and y_test, or more samples)") from None
    name = path.stem if path.is_file() else path.name
    return check_dataset(FileDataset(name=name, train=train, test=test, classes=names,
                                     input_shape=tuple(train[0].shape[1:]), input_scale=scale))


def load_inputs(path, input_shape) -> np.ndarray:
    """Inputs (N, *input_shape) from a CSV of pixels with or without a ``label``
    column (Kaggle's test.csv), scaled as :func:`load_path` scales them."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() != ".csv":
        raise DataError(f"{path}: expected a .csv file of pixels, one row per input")
    (X, _), _ = _read_csv(path, labelled=False)
    return _reshape(path, (X, None), _check_shape(path, input_shape))[0]


def file_identity(path) -> dict:
    """``{"path", "size", "sha256"}`` of a file, or of a folder: its total size and a
    hash over its files' sorted relative paths, sizes and contents (hidden files
    and folders, whose names start with '.', left out)."""
    path = Path(path)
    if path.is_file():
        return {"path": str(path.resolve()), "size": path.stat().st_size, "sha256": sha256_file(path)}
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    digest, total = hashlib.sha256(), 0
    for file in _files(path):
        size = file.stat().st_size
        total += size
        digest.update(f"{file.relative_to(path).as_posix()}\0{size}\0{sha256_file(file)}\n".encode())
    return {"path": str(path.resolve()), "size": total, "sha256": digest.hexdigest()}


def describe(dataset: Dataset) -> str:
    """One line: "name: N train, M test, C classes, input shape (...)"."""
    return (f"{dataset.name}: {len(dataset.train[1])} train, {len(dataset.test[1])} test, "
            f"{dataset.num_classes} classes, input shape {tuple(dataset.input_shape)}")


# -- shapes, scaling, labels ---------------------------------------------------

def _check_shape(path, shape) -> tuple:
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: shape must be a tuple of positive ints such as (1, 28, 28), got {shape!r}") from None
    if not shape or min(shape) <= 0:
        raise ValueError(f"{path}: shape must be a tuple of positive ints such as (1, 28, 28), got {shape!r}")
    return shape


def _reshape(path, split, shape):
    X, y = split
    if math.prod(X.shape[1:]) != math.prod(shape):
        raise DataError(f"{path}: inputs of shape {X.shape[1:]} ({math.prod(X.shape[1:])} values) "
                        f"cannot be reshaped to shape={shape}")
    return X.reshape((len(X), *shape)), y


def _scaled(path, what, X):
    """(float inputs, scale): integers are pixels in [0, 255], times 1/255; floats kept."""
    if X.dtype.kind in "iu":
        _check_pixels(path, what, X)
        return np.divide(X, 255, dtype=get_default_dtype()), 1 / 255
    if X.dtype.kind != "f":
        raise DataError(f"{path}: {what} must be numeric, got dtype {X.dtype}")
    if not np.isfinite(X).all():
        raise DataError(f"{path}: {what} contains NaN or infinite values")
    return X.astype(get_default_dtype()), 1.0


def _check_pixels(path, what, X):
    if X.size and (X.min() < 0 or X.max() > 255):
        raise DataError(f"{path}: {what} holds integers in [{X.min():g}, {X.max():g}]; integer inputs are "
                        f"pixels in [0, 255] (store floats to keep other values as they are)")


def _labels(path, what, y, n):
    """Labels as int64 (n,); whole-number floats are accepted."""
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{path}: {what} must be {n} labels of shape ({n},) to match the inputs, got shape {y.shape}")
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise DataError(f"{path}: {what} must be integer class labels, got {y.dtype} values")
    if y.size and y.min() < 0:
        raise DataError(f"{path}: {what} has label {y.min()}; labels must be >= 0")
    return y.astype(np.int64)


def _class_names(path, names, train, test) -> list:
    top = max(int(y.max(initial=-1)) for _, y in (train, test or train))
    present = np.unique(np.concatenate([y.ravel() for _, y in (train, test or train)]))
    if len(present) < 2:
        raise DataError(f"{path}: every sample has label {present[0] if len(present) else '(none)'}; "
                        f"a classifier needs two classes or more")
    if names is None:
        unused = sorted(set(range(top + 1)) - set(present.tolist()))
        if unused:  # classes are 0..largest label: the labels not used are classes no sample has
            shown = ", ".join(map(str, unused[:10])) + (", ..." if len(unused) > 10 else "")
            warnings.warn(f"{path}: no sample has label {shown} of 0..{top}: {len(unused)} of the "
                          f"{top + 1} classes are empty (labels count from 0; renumber them to remove these)")
        return [str(c) for c in range(top + 1)]
    names = [str(c) for c in names]
    if top >= len(names):
        raise DataError(f"{path}: label {top} out of range for {len(names)} class names")
    return names


# -- .npz ------------------------------------------------------------------------

def _read_npz(path):
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz archive ({exc})") from None
    unknown = sorted(set(arrays) - set(NPZ_KEYS))
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if unknown or missing or ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{path}: expected keys x_train, y_train (and x_test, y_test together, classes optional), "
                        f"found {', '.join(sorted(arrays)) or 'none'}")
    if "x_test" in arrays and (arrays["x_train"].dtype.kind in "iu") != (arrays["x_test"].dtype.kind in "iu"):
        raise DataError(f"{path}: x_train is {arrays['x_train'].dtype} and x_test {arrays['x_test'].dtype}; "
                        f"store both as integer pixels or both as floats, so that they are scaled alike")
    splits, scale = [], 1.0
    for split in ("train", "test") if "x_test" in arrays else ("train",):
        X = arrays[f"x_{split}"]
        if X.ndim < 2 or len(X) == 0:
            raise DataError(f"{path}: x_{split} must be (N, ...) with N >= 1 samples, got shape {X.shape}")
        X, scale = _scaled(path, f"x_{split}", X)
        splits.append((X, _labels(path, f"y_{split}", arrays[f"y_{split}"], len(X))))
    if len(splits) == 2 and splits[0][0].shape[1:] != splits[1][0].shape[1:]:
        raise DataError(f"{path}: x_train samples have shape {splits[0][0].shape[1:]}, "
                        f"x_test samples {splits[1][0].shape[1:]}")
    classes = arrays.get("classes")
    if classes is not None and (classes.ndim != 1 or classes.dtype.kind != "U"):
        raise DataError(f"{path}: classes must be a 1-D array of strings, got {classes.dtype} {classes.shape}")
    return splits[0], (splits[1] if len(splits) == 2 else None), (None if classes is None else classes.tolist()), scale


# -- CSV -------------------------------------------------------------------------

def _read_csv(path, labelled: bool):
    """((X, y), scale) from a CSV with a header; y is None when ``labelled`` is
    False (a ``label`` column, if any, is then dropped). Lines count from 1, the header."""
    with open(path, newline="", encoding="utf-8-sig") as f:  # (-sig: Excel's "CSV UTF-8" starts with a BOM)
        header = [h.strip().lower() for h in next(csv.reader(f), [])]
        body = f.read()
    if not header:
        raise DataError(f"{path}: empty CSV file")
    if labelled and "label" not in header:
        raise DataError(f"{path}: no 'label' column in the header line (it starts {', '.join(header[:4])})")
    if not body.strip():
        raise DataError(f"{path}: no data rows after the header line")
    try:  # numpy's C parser: a Kaggle-sized file (42,000 x 785) in seconds, without a Python object per cell
        values = np.loadtxt(io.StringIO(body), delimiter=",", dtype=get_default_dtype(), ndmin=2, comments=None,
                            quotechar='"')
    except ValueError as exc:
        _find_bad_cell(path, header, body)
        raise DataError(f"{path}: not a CSV of numbers ({exc})") from None
    if values.shape[1] != len(header):
        raise DataError(f"{path}: line 2 has {values.shape[1]} cells, the header has {len(header)}")
    if "label" in header:
        col = header.index("label")
        y, values = values[:, col], np.delete(values, col, axis=1)
        bad = np.flatnonzero((y != np.round(y)) | (y < 0))
        if labelled and bad.size:
            raise DataError(f"{path}: line {bad[0] + 2}, column 'label': {y[bad[0]]:g} is not a class "
                            f"label (an integer >= 0)")
    if values.shape[1] == 0:
        raise DataError(f"{path}: no pixel columns besides 'label'")
    # integer cells (no decimal point or exponent) are pixels; anything else stays float
    if re.search(r"[^\d\s,+-]", body) is None:
        _check_pixels(path, "pixels", values)
        X, scale = values / values.dtype.type(255), 1 / 255
    else:
        X, scale = _scaled(path, "pixels", values)
    side = math.isqrt(X.shape[1])
    X = X.reshape(len(X), 1, side, side) if side * side == X.shape[1] else X
    return (X, _labels(path, "column 'label'", y, len(X)) if labelled else None), scale


def _find_bad_cell(path, header, body):
    """Raise a DataError naming the first ragged row or non-numeric cell of ``body``
    (read after numpy's parser failed; returns when it finds none)."""
    reader = csv.reader(io.StringIO(body))
    for row in reader:
        line = reader.line_num + 1
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(f"{path}: line {line} has {len(row)} cells, the header has {len(header)}")
        for name, cell in zip(header, row):
            try:
                float(cell)
            except ValueError:
                raise DataError(f"{path}: line {line}, column {name!r}: not a number: {cell!r}") from None


# -- IDX folders -----------------------------------------------------------------

def _idx_sets(folder: Path) -> dict:
    """{prefix: {(split, kind): path}} of the IDX files in ``folder``."""
    sets: dict = {}
    for file in sorted(folder.iterdir()):
        m = _IDX_NAME.fullmatch(file.name)
        if m and file.is_file():
            split = "train" if m["split"] == "train" else "test"
            sets.setdefault(m["prefix"], {})[split, m["kind"]] = file
    return sets


def _read_idx_folder(folder: Path, prefix):
    sets = _idx_sets(folder)
    if prefix is None and len(sets) > 1:
        raise DataError(f"{folder}: holds several IDX data sets ({', '.join(repr(p) for p in sets)}); "
                        f"choose one with the option prefix=")
    files = sets.get(prefix if prefix is not None else next(iter(sets)))
    if files is None:
        raise DataError(f"{folder}: no IDX files with prefix {prefix!r} (found: {', '.join(repr(p) for p in sets)})")
    for split in ("train", "test"):
        have = [(split, kind) in files for kind in ("images", "labels")]
        if not all(have) and (any(have) or split == "train"):
            raise DataError(f"{folder}: {split} images and labels must both be there, found only "
                            f"{', '.join(f.name for (s, _), f in files.items() if s == split)}")
    splits, scale = [], 1.0
    for split in ("train", "test") if ("test", "images") in files else ("train",):
        images, labels = files[split, "images"], files[split, "labels"]
        X = read_idx(images)
        if X.ndim < 2 or len(X) == 0:
            raise DataError(f"{images}: expected images (N, H, W) with N >= 1, got shape {X.shape}")
        X, scale = _scaled(images, "the images", X[:, None] if X.ndim == 3 else X)
        splits.append((X, _labels(labels, "the labels", read_idx(labels), len(X))))
    return splits[0], (splits[1] if len(splits) == 2 else None), scale


# -- image folders ---------------------------------------------------------------

def _files(folder: Path):
    """Every file under ``folder``, sorted, hidden names (starting with '.') left out."""
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if not name.startswith("."):
                yield Path(root) / name


def _subfolders(folder: Path) -> list:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _has_subfolders(folder: Path) -> bool:
    return bool(_subfolders(folder))


def _read_image_folder(root: Path, shape):
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ImportError(f'{root}: reading a folder of images needs Pillow: pip install "handgrad[images]"') from None
    if shape is not None and (len(shape) != 3 or shape[0] not in (1, 3)):
        raise ValueError(f"{root}: shape for images must be (C, H, W) with C 1 (greyscale) or 3 (RGB), got {shape}")
    split_dirs = {p.name: p for p in _subfolders(root)}
    if "train" in split_dirs and "test" in split_dirs:
        train_root, test_root = split_dirs["train"], split_dirs["test"]
    else:
        train_root, test_root = root, None
    classes = [p.name for p in _subfolders(train_root)]
    if not classes:
        raise DataError(f"{train_root}: no class sub-folders")
    if test_root is not None:
        extra = sorted({p.name for p in _subfolders(test_root)} - set(classes))
        if extra:
            raise DataError(f"{test_root}: class folder(s) {', '.join(extra)} not in {train_root}")
    state = {"shape": shape}  # the first image fixes the shape when none is given

    def read(file: Path):
        try:
            with Image.open(file) as image:
                image.load()
                if state["shape"] is None:
                    grey = image.mode in ("1", "L", "I", "I;16", "F")
                    state["shape"] = (1 if grey else 3, image.height, image.width)
                channels, height, width = state["shape"]
                image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
            raise DataError(f"{file}: not a readable image ({exc})") from None
        pixels = np.asarray(image, dtype=np.uint8)
        return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)

    splits = []
    for split_root in (train_root, test_root) if test_root is not None else (train_root,):
        images, labels = [], []
        for label, name in enumerate(classes):
            folder = split_root / name
            files = [f for f in _files(folder) if f.suffix.lower() in IMAGE_SUFFIXES] if folder.is_dir() else []
            if not files and split_root is train_root:
                raise DataError(f"{folder}: empty class folder (no {', '.join(IMAGE_SUFFIXES)} images)")
            images += [read(f) for f in files]
            labels += [label] * len(files)
        if not images:
            raise DataError(f"{split_root}: no images in its class folders")
        X, _ = _scaled(split_root, "images", np.stack(images))
        splits.append((X, np.array(labels, dtype=np.int64)))
    return splits[0], (splits[1] if len(splits) == 2 else None), classes


def is_data_path(name: str) -> bool:
    """Whether ``name`` (a ``--data`` value) names a file or folder rather than a
    registered data set: it is not registered and exists on disk."""
    from .datasets import DATASETS

    return name not in DATASETS and Path(name).exists()


def meant_as_path(name: str) -> bool:
    """Whether a ``--data`` value that is neither registered nor on disk was meant as a
    path (it has a folder separator or a data file's suffix), so "no such file" is the
    right answer rather than "unknown data set"."""
    return "/" in name or name.lower().endswith((".npz", ".csv"))


def open_data(name: str, seed: int = 0, **options) -> Dataset:
    """The registered data set ``name`` (:func:`~handgrad.data.load_dataset`), or the
    data set in the file or folder ``name`` (:func:`load_path`)."""
    from .datasets import DATASETS, load_dataset

    if is_data_path(name):
        return load_path(name, seed=seed, **options)
    if name not in DATASETS and meant_as_path(name):
        raise FileNotFoundError(f"--data {name}: no such file or folder")
    return load_dataset(name, seed=seed, **options)
