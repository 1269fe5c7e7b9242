"""MNIST and Fashion-MNIST: 70,000 28x28 greyscale images in 10 classes
(60,000 train, 10,000 test), stored as four gzip IDX files.

Fashion-MNIST is read from ``/usr/share/datasets/fashion-mnist/`` (Debian
package ``dataset-fashion-mnist``) when present, else from the cache, else
downloaded. MNIST is downloaded into the cache. Downloads and cached copies
are verified against the SHA-256 digests of the original files below; the
mirror list can be replaced with the ``mirrors=`` option or the environment
variables ``HANDGRAD_MNIST_MIRRORS`` / ``HANDGRAD_FASHION_MNIST_MIRRORS``
(base URLs separated by spaces or commas).

Images become float (default dtype) in [0, 1] with shape (N, 1, 28, 28),
labels int64 (N,).
"""
from __future__ import annotations

import os

import numpy as np

from ..backend import get_default_dtype
from .datasets import Dataset, register_dataset
from .download import cache_dir, fetch
from .idx import DataError, read_idx

TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"

MNIST_SHA256 = {
    TRAIN_IMAGES: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    TRAIN_LABELS: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    TEST_IMAGES: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    TEST_LABELS: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MNIST_CLASSES = [str(d) for d in range(10)]

FASHION_SHA256 = {
    TRAIN_IMAGES: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    TRAIN_LABELS: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    TEST_IMAGES: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    TEST_LABELS: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
FASHION_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
FASHION_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"


def fashion_mnist_installed(directory=FASHION_SYSTEM_DIR) -> bool:
    """True when the four Fashion-MNIST files of the Debian package are in ``directory``."""
    return all(os.path.isfile(os.path.join(directory, f)) for f in FASHION_SHA256)


@register_dataset("mnist")
def load_mnist(root=None, seed=0, mirrors=None, sha256=None):
    """MNIST handwritten digits, downloaded into ``<root>/mnist`` and verified.
    ``sha256`` replaces the table of expected digests (filename -> hex)."""
    files = _fetch_all("mnist", root, _mirrors("MNIST", mirrors, MNIST_MIRRORS), sha256 or MNIST_SHA256)
    return _build("mnist", files, MNIST_CLASSES)


@register_dataset("fashion-mnist")
def load_fashion_mnist(root=None, seed=0, mirrors=None, sha256=None):
    """Fashion-MNIST (Zalando article images): from the Debian package when
    installed, else from ``<root>/fashion-mnist``, downloaded and verified if needed."""
    if fashion_mnist_installed():
        files = {name: os.path.join(FASHION_SYSTEM_DIR, name) for name in FASHION_SHA256}
    else:
        mirrors = _mirrors("FASHION_MNIST", mirrors, FASHION_MIRRORS)
        files = _fetch_all("fashion-mnist", root, mirrors, sha256 or FASHION_SHA256)
    return _build("fashion-mnist", files, FASHION_CLASSES)


def _mirrors(env_name: str, given, default):
    if given is not None:
        return list(given)
    env = os.environ.get(f"HANDGRAD_{env_name}_MIRRORS")
    if env:
        return env.replace(",", " ").split()
    return list(default)


def _fetch_all(name, root, mirrors, sha256):
    directory = os.path.join(cache_dir(root), name)
    missing = sorted(set(MNIST_SHA256) - set(sha256))
    if missing:
        raise ValueError(f"{name}: sha256 table has no digest for {', '.join(missing)}")
    return {f: fetch(f, directory, mirrors, sha256[f]) for f in MNIST_SHA256}


def _build(name, files, classes):
    dtype = get_default_dtype()
    splits = []
    for images_file, labels_file in ((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)):
        images, labels = read_idx(files[images_file]), read_idx(files[labels_file])
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(f"{files[images_file]}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}")
        if labels.shape != images.shape[:1] or labels.dtype != np.uint8:
            raise DataError(f"{files[labels_file]}: expected {images.shape[0]} uint8 labels, got {labels.dtype} {labels.shape}")
        if labels.max(initial=0) >= len(classes):
            raise DataError(f"{files[labels_file]}: label {labels.max()} out of range for {len(classes)} classes")
        X = np.divide(images[:, None], dtype.type(255), dtype=dtype)
        splits.append((X, labels.astype(np.int64)))
    (train, test), shape = splits, splits[0][0].shape[1:]
    return Dataset(name=name, train=train, test=test, classes=list(classes), input_shape=shape)
