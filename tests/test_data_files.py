"""load_path: your own data from .npz, IDX folders, Kaggle-style CSV and image folders."""
import csv
import math
import re

import numpy as np
import pytest

from handgrad import models, nn
from handgrad.data import DataError, describe, file_identity, load_inputs, load_path, write_idx
from handgrad.optim import SGD
from handgrad.train import Trainer

PIL = pytest.importorskip("PIL.Image")


def pixels(n, classes=3, size=8, channels=None, seed=0):
    """uint8 images (n, [channels,] size, size): class c is a bright band in row block c, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    shape = (n, size, size) if channels is None else (n, channels, size, size)
    X = rng.integers(0, 40, size=shape).astype(np.uint8)
    band = size // classes
    for i, c in enumerate(y):
        X[i, ..., c * band:(c + 1) * band, :] = 200
    return X, y


def write_csv(path, X, y=None):
    flat = X.reshape(len(X), -1)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow((["label"] if y is not None else []) + [f"pixel{i}" for i in range(flat.shape[1])])
        for i, row in enumerate(flat):
            w.writerow(([int(y[i])] if y is not None else []) + row.tolist())


def write_images(root, X, y, classes, mode="L"):
    for i, (image, label) in enumerate(zip(X, y)):
        folder = root / classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        array = image if mode == "L" else image.transpose(1, 2, 0)
        PIL.fromarray(array, mode=mode).save(folder / f"{i}.png")


def trains(dataset):
    """One epoch of a zoo MLP through the Trainer: finite losses that go down."""
    model = models.mlp(in_features=math.prod(dataset.input_shape), hidden=(16,), out_features=dataset.num_classes)
    trainer = Trainer(model, nn.CrossEntropyLoss(), SGD(model.parameters(), lr=0.5), dataset.train,
                      val_data=dataset.test, epochs=2, batch_size=8)
    losses = trainer.fit()["iteration_loss"]
    assert np.isfinite(losses).all() and np.mean(losses[-3:]) < np.mean(losses[:3])


# -- each format loads and trains ---------------------------------------------------

def test_npz_with_test_split_and_class_names(tmp_path):
    X, y = pixels(40)
    Xt, yt = pixels(12, seed=1)
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=X, y_train=y.astype(np.int32), x_test=Xt, y_test=yt, classes=np.array(["a", "b", "c"]))
    ds = load_path(path)
    assert ds.name == "mine" and ds.classes == ["a", "b", "c"] and ds.input_shape == (8, 8)
    assert ds.train[0].dtype == np.float32 and ds.train[1].dtype == np.int64
    np.testing.assert_allclose(ds.train[0], X / 255, rtol=1e-6)
    np.testing.assert_array_equal(ds.test[1], yt)
    assert ds.input_scale == pytest.approx(1 / 255)
    assert describe(ds) == "mine: 40 train, 12 test, 3 classes, input shape (8, 8)"
    trains(ds)


def test_npz_float_inputs_kept_and_test_held_out_by_seed(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 2, 3)).astype(np.float64)
    y = np.arange(50) % 5
    np.savez(tmp_path / "f.npz", x_train=X, y_train=y.astype(float))
    ds = load_path(tmp_path / "f.npz", seed=1, test_fraction=0.2)
    assert len(ds.train[1]) == 40 and len(ds.test[1]) == 10 and ds.classes == list("01234")
    assert ds.input_scale == 1.0 and ds.train[0].dtype == np.float32
    np.testing.assert_array_equal(np.sort(np.concatenate([ds.train[0], ds.test[0]]), axis=0),
                                  np.sort(X.astype(np.float32), axis=0))
    again, other = load_path(tmp_path / "f.npz", seed=1), load_path(tmp_path / "f.npz", seed=2)
    np.testing.assert_array_equal(again.test[0], ds.test[0])
    assert not np.array_equal(other.test[0], ds.test[0])
    assert load_path(tmp_path / "f.npz", shape=(6,)).input_shape == (6,)


@pytest.mark.parametrize("gz", [".gz", ""])
def test_idx_folder_like_mnist(tmp_path, gz):
    X, y = pixels(30, size=7)
    Xt, yt = pixels(9, size=7, seed=2)
    write_idx(tmp_path / f"train-images-idx3-ubyte{gz}", X)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{gz}", y.astype(np.uint8))
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{gz}", Xt)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{gz}", yt.astype(np.uint8))
    ds = load_path(tmp_path, classes=["x", "y", "z"])
    assert ds.input_shape == (1, 7, 7) and ds.classes == ["x", "y", "z"]
    assert ds.train[0].shape == (30, 1, 7, 7) and len(ds.test[1]) == 9
    np.testing.assert_allclose(ds.test[0][:, 0], Xt / 255, rtol=1e-6)
    trains(ds)


def test_idx_folder_with_several_sets_needs_a_prefix(tmp_path):
    X, y = pixels(20)
    for prefix in ("emnist-digits-", "emnist-letters-"):
        write_idx(tmp_path / f"{prefix}train-images-idx3-ubyte.gz", X)
        write_idx(tmp_path / f"{prefix}train-labels-idx1-ubyte.gz", y.astype(np.uint8))
    with pytest.raises(DataError, match=r"several IDX data sets .*'emnist-digits-'.*prefix="):
        load_path(tmp_path)
    ds = load_path(tmp_path, prefix="emnist-letters-")
    assert len(ds.train[1]) + len(ds.test[1]) == 20  # no test files: a held-out split


def test_kaggle_csv_with_labels_and_a_test_csv_without(tmp_path):
    X, y = pixels(40)
    write_csv(tmp_path / "train.csv", X, y)
    ds = load_path(tmp_path / "train.csv")
    assert ds.input_shape == (1, 8, 8) and ds.classes == ["0", "1", "2"] and len(ds.test[1]) == 9  # 3 of each class
    assert ds.input_scale == pytest.approx(1 / 255)
    trains(ds)
    write_csv(tmp_path / "test.csv", X[:5])
    np.testing.assert_allclose(load_inputs(tmp_path / "test.csv", (1, 8, 8))[:, 0], X[:5] / 255, rtol=1e-6)
    assert load_path(tmp_path / "train.csv", shape=(2, 4, 8)).input_shape == (2, 4, 8)


def test_csv_of_float_features_is_kept_flat(tmp_path):
    path = tmp_path / "feats.csv"
    path.write_text("a,label,b,c\n0.5,1,2,3e2\n-1.5,0,0.25,1\n1,1,2,3\n0,0,0,0\n0,0,1,0\n")
    ds = load_path(path, test_fraction=0.4)
    assert ds.input_shape == (3,) and ds.input_scale == 1.0
    assert sorted(np.concatenate([ds.train[0], ds.test[0]])[:, 2].tolist()) == [0, 0, 1, 3, 300]


def test_image_folder_with_train_and_test(tmp_path):
    X, y = pixels(18, size=10)
    write_images(tmp_path / "train", X[:12], y[:12], ["cat", "dog", "eel"])
    write_images(tmp_path / "test", X[12:], y[12:], ["cat", "dog", "eel"])
    ds = load_path(tmp_path)
    assert ds.classes == ["cat", "dog", "eel"] and ds.input_shape == (1, 10, 10)
    assert len(ds.train[1]) == 12 and len(ds.test[1]) == 6
    np.testing.assert_allclose(np.sort(ds.train[0].ravel()), np.sort(X[:12].ravel() / 255), rtol=1e-6)
    small = load_path(tmp_path, shape=(3, 5, 4))
    assert small.train[0].shape == (12, 3, 5, 4)
    trains(small)


def test_image_folder_of_rgb_classes_with_held_out_split(tmp_path):
    X, y = pixels(20, size=6, channels=3)
    write_images(tmp_path / "pics", X, y, ["a", "b", "c"], mode="RGB")
    (tmp_path / "pics" / "a" / "notes.txt").write_text("not an image, ignored")
    ds = load_path(tmp_path / "pics", seed=0)
    assert ds.input_shape == (3, 6, 6) and len(ds.train[1]) + len(ds.test[1]) == 20
    assert ds.name == "pics"


def test_file_identity_of_files_and_folders(tmp_path):
    X, y = pixels(6)
    np.savez(tmp_path / "d.npz", x_train=X, y_train=y)
    ident = file_identity(tmp_path / "d.npz")
    assert ident["size"] == (tmp_path / "d.npz").stat().st_size and re.fullmatch("[0-9a-f]{64}", ident["sha256"])
    folder = tmp_path / "imgs"
    write_images(folder, X, y, ["a", "b", "c"])
    before = file_identity(folder)
    assert before["path"] == str(folder.resolve()) and before == file_identity(folder)
    (folder / "b").rename(folder / "bee")  # the same files in the same order, another class name
    renamed = file_identity(folder)
    assert renamed["sha256"] != before["sha256"] and renamed["size"] == before["size"]
    (folder / "a" / "0.png").rename(folder / "bee" / "0.png")  # same bytes, another class
    assert file_identity(folder)["sha256"] not in (before["sha256"], renamed["sha256"])
    (folder / "bee" / "0.png").rename(folder / "bee" / ".0.png")  # hidden files do not count
    assert file_identity(folder)["size"] < before["size"]
    (folder / "bee" / ".0.png").rename(folder / "bee" / "0.png")
    (folder / "bee" / "0.png").write_bytes((folder / "bee" / "0.png").read_bytes() + b"\0")
    assert file_identity(folder)["size"] == before["size"] + 1


# -- each damaged or inconsistent file gives one line naming it --------------------

def one_line(exc_info, path):
    message = str(exc_info.value)
    assert "\n" not in message and str(path) in message, message
    return message


def npz(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


X8, Y8 = pixels(8)


@pytest.mark.parametrize("arrays, expected", [
    ({"X_train": X8, "y_train": Y8}, "expected keys x_train, y_train .* found X_train, y_train"),
    ({"x_train": X8, "y_train": Y8, "x_test": X8}, "x_test, y_test together"),
    ({"x_train": X8, "y_train": Y8[:5]}, r"y_train must be 8 labels of shape \(8,\).* got shape \(5,\)"),
    ({"x_train": X8, "y_train": Y8 + 0.5}, "y_train must be integer class labels"),
    ({"x_train": X8, "y_train": Y8 - 1}, "y_train has label -1"),
    ({"x_train": X8, "y_train": Y8, "classes": np.array(["a", "b"])}, "label 2 out of range for 2 class names"),
    ({"x_train": X8.astype(np.int32) * 2, "y_train": Y8}, r"integers in \[0, 400\]"),
    ({"x_train": np.full((8, 2), np.nan), "y_train": Y8}, "NaN"),
    ({"x_train": X8, "y_train": Y8, "x_test": pixels(4, size=4)[0], "y_test": Y8[:4]}, "x_test samples"),
    ({"x_train": X8, "y_train": Y8, "x_test": X8 / 255, "y_test": Y8}, "x_train is uint8 and x_test float64"),
    ({"x_train": X8, "y_train": np.zeros(8, np.int64)}, "every sample has label 0; a classifier needs two classes"),
    ({"x_train": X8[:3], "y_train": Y8[:3]}, "3 samples are too few to hold out a test set of 0.2"),
])
def test_bad_npz(tmp_path, arrays, expected):
    path = npz(tmp_path, **arrays)
    with pytest.raises(DataError) as info:
        load_path(path)
    assert re.search(expected, one_line(info, path)), str(info.value)


def test_damaged_npz_and_unknown_files(tmp_path):
    path = tmp_path / "cut.npz"
    np.savez(path, x_train=X8, y_train=Y8)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="not a readable .npz") as info:
        load_path(path)
    one_line(info, path)
    other = tmp_path / "data.txt"
    other.write_text("1 2 3")
    with pytest.raises(DataError, match="no data set format recognised") as info:
        load_path(other)
    one_line(info, other)
    with pytest.raises(FileNotFoundError) as info:
        load_path(tmp_path / "nope.npz")
    one_line(info, tmp_path / "nope.npz")
    with pytest.raises(ValueError, match=r"cannot be reshaped to shape=\(1, 28, 28\)"):
        load_path(npz(tmp_path, x_train=X8, y_train=Y8), shape=(1, 28, 28))


@pytest.mark.parametrize("text, expected", [
    ("label,a,b\n1,2,3\n0,x,5\n", r"line 3, column 'a': not a number: 'x'"),
    ("label,a,b\n1,2,3\n0,4\n", "line 3 has 2 cells, the header has 3"),
    ("label,a,b\n1,2,3\n0,4,5,6\n", "line 3 has 4 cells, the header has 3"),
    ("label,a,b\n1,2\n0,4\n", "line 2 has 2 cells, the header has 3"),
    ("label,a,b\n1,2,3\n\n0,,5\n", r"line 4, column 'a': not a number: ''"),
    ("a,b\n1,2\n", "no 'label' column"),
    ("", "empty CSV file"),
    ("label,a,b\n1,2,3\n2.5,4,5\n", r"line 3, column 'label': 2.5 is not a class label"),
    ("label,a,b\n1,2,3\n-1,4,5\n", r"line 3, column 'label': -1 is not a class label"),
    ("label,a,b\n", "no data rows"),
    ("label,a,b\n1,2,300\n", r"integers in \[2, 300\]"),
])
def test_bad_csv(tmp_path, text, expected):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        load_path(path)
    assert re.search(expected, one_line(info, path)), str(info.value)


def test_bad_idx_folder(tmp_path):
    X, y = pixels(10)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", X)
    with pytest.raises(DataError, match="train images and labels must both be there") as info:
        load_path(tmp_path)
    one_line(info, tmp_path)
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(labels, y[:7].astype(np.uint8))
    with pytest.raises(DataError, match="must be 10 labels") as info:
        load_path(tmp_path)
    one_line(info, labels)
    labels.write_bytes(labels.read_bytes()[:20])
    with pytest.raises(DataError, match="gzip") as info:
        load_path(tmp_path)
    one_line(info, labels)


def test_bad_image_folders(tmp_path):
    X, y = pixels(6)
    write_images(tmp_path / "ok", X, y, ["a", "b", "c"])
    (tmp_path / "ok" / "d").mkdir()
    with pytest.raises(DataError, match="empty class folder") as info:
        load_path(tmp_path / "ok")
    one_line(info, tmp_path / "ok" / "d")
    (tmp_path / "ok" / "d").rmdir()
    broken = tmp_path / "ok" / "a" / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="not a readable image") as info:
        load_path(tmp_path / "ok")
    one_line(info, broken)
    broken.unlink()
    with pytest.raises(ValueError, match=r"C 1 \(greyscale\) or 3"):
        load_path(tmp_path / "ok", shape=(2, 8, 8))
    write_images(tmp_path / "split" / "train", X, y, ["a", "b", "c"])
    write_images(tmp_path / "split" / "test", X, y, ["a", "b", "zebra"])
    with pytest.raises(DataError, match="class folder.* zebra not in") as info:
        load_path(tmp_path / "split")
    one_line(info, tmp_path / "split" / "test")


def test_labels_that_leave_classes_empty_are_warned_about(tmp_path):
    """Labels 1..3 (or 0, 2): classes count from 0 to the largest label, so some are empty."""
    X, y = pixels(30)
    with pytest.warns(UserWarning, match=r"no sample has label 0 of 0..3: 1 of the 4 classes are empty"):
        data = load_path(npz(tmp_path, x_train=X, y_train=y + 1))
    assert data.classes == ["0", "1", "2", "3"]


def test_a_csv_saved_by_excel_with_a_byte_order_mark_reads(tmp_path):
    X, y = pixels(12)
    path = tmp_path / "excel.csv"
    write_csv(path, X, y)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    data = load_path(path)
    assert len(data.train[1]) + len(data.test[1]) == 12
