"""Data sets, verified downloads and mini-batch loading.

``load_dataset(name)`` returns a :class:`Dataset` with ``train`` and ``test``
``(X, y)`` arrays; ``DataLoader`` iterates over them in (shuffled) batches.
Registered data sets: mnist, fashion-mnist, digits, synth, text (see ``DATASETS``).
``load_path(path)`` reads your own data from a file or folder (.npz, IDX, CSV,
image folders; see :mod:`handgrad.data.files`).
"""
from .datasets import DATASETS, Dataset, load_dataset, register_dataset
from .digits import default_dataset
from .download import cache_dir, fetch, sha256_file
from .files import FileDataset, describe, file_identity, is_data_path, load_inputs, load_path, open_data
from .idx import DataError, read_idx, write_idx
from .loader import BatchSource, DataLoader
from .mnist import fashion_mnist_installed
from .synth import make_synth
from .transforms import mean_std, one_hot, standardize, subset, train_val_split
from .text import CharVocab, StreamLoader, load_text, read_corpus, sequence_pairs, split_ids, stream_ids
