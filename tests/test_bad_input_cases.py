"""Bad input and damaged files, run as a user would (``python -m handgrad ...`` on
real files): each case must exit with status 2, print ONE line on stderr naming
the file, flag or tensor at fault, and leave every file that was there unchanged
(and write none)."""
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import handgrad
from handgrad import models
from handgrad.io import read_npz, save_model
from handgrad.train.checkpoint import save_checkpoint

SRC = str(Path(handgrad.__file__).resolve().parents[1])
KWARGS = {"in_features": 2, "hidden": [8], "out_features": 2}
METADATA = {"model": "mlp", "model_kwargs": KWARGS, "data": "synth", "classes": ["class 0", "class 1"],
            "input_shape": [2], "seed": 0, "data_kwargs": {}}
BIG = 2_000_000  # hidden width of the model whose big batches do not fit under MEMORY_LIMIT
MEMORY_LIMIT = 1_000_000_000  # bytes of address space for the out-of-memory cases


def handgrad_cli(*args, cwd, memory_limit=None):
    env = {k: v for k, v in os.environ.items() if k != "HANDGRAD_DEBUG"}
    env.update(PYTHONPATH=SRC, OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg", HANDGRAD_DATA=str(cwd / "data-cache"))

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    return subprocess.run([sys.executable, "-m", "handgrad", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300, preexec_fn=limit if memory_limit else None)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small model file (and a big one for the memory cases), shared by all cases."""
    root = tmp_path_factory.mktemp("models")
    save_model(root / "good.npz", models.get_model("mlp", **KWARGS, rng=0), METADATA)
    big = {**KWARGS, "hidden": [BIG]}
    save_model(root / "big.npz", models.get_model("mlp", **big, rng=0), {**METADATA, "model_kwargs": big})
    return root


def _snapshot(*roots):
    return {p: p.read_bytes() for root in roots for p in sorted(Path(root).rglob("*")) if p.is_file()}


def rewrite(src, dst, arrays=None, **metadata):
    """Copy the model file ``src`` to ``dst`` with some arrays and metadata keys replaced
    (np.savez directly: these files are what save_model would never write)."""
    old_arrays, old_meta = read_npz(src)
    payload = {**old_arrays, **(arrays or {})}
    document = json.dumps({**old_meta, **metadata}).encode()
    payload["__metadata__"] = np.frombuffer(document, dtype=np.uint8)
    with open(dst, "wb") as f:
        np.savez(f, **payload)
    return dst


def weight(files, transform):
    """good.npz with its first weight matrix (tensor '1.weight') replaced by transform(weight)."""
    w = read_npz(files / "good.npz")[0]["1.weight"]
    return {"1.weight": transform(w.copy())}


def with_nan(w):
    w[0, 1] = np.nan
    return w


def images(tmp, values=None, n=10):
    x = np.random.default_rng(0).normal(size=(n, 2)).astype(np.float32)
    for index, value in values or ():
        x[index] = value
    np.save(tmp / "x.npy", x)
    return tmp / "x.npy"


def char_model(tmp):
    vocab = list("\n abcdefgh")
    kwargs = {"vocab_size": len(vocab), "hidden_size": 8, "embedding_dim": 4}
    save_model(tmp / "char.npz", models.get_model("char_lstm", **kwargs, rng=0),
               {"model": "char_lstm", "model_kwargs": kwargs, "classes": vocab})
    return tmp / "char.npz"


def bad_model(**metadata):
    """A case: ``command`` run on good.npz with metadata keys replaced."""
    def make(files, tmp):
        return rewrite(files / "good.npz", tmp / "m.npz", **metadata)
    return make


def bad_weight(transform):
    def make(files, tmp):
        return rewrite(files / "good.npz", tmp / "m.npz", weight(files, transform))
    return make


def nan_checkpoint(files, tmp):
    arrays, _ = read_npz(files / "good.npz")
    arrays["1.bias"][1] = np.inf
    config = {"model": "mlp", "model_kwargs": KWARGS, "data": "synth", "seed": 0, "data_kwargs": {}, "batch_size": 4}
    return save_checkpoint(tmp / "checkpoint.npz", {"config": config, "model": arrays, "step": 1})


def truncated(files, tmp):
    (tmp / "m.npz").write_bytes((files / "good.npz").read_bytes()[:700])
    return tmp / "m.npz"


def npy_not_npz(files, tmp):
    np.save(tmp / "m.npy", np.zeros(3))
    return tmp / "m.npy"


def predict(make, extra=()):
    return lambda files, tmp: ["predict", "--checkpoint", make(files, tmp), "--images", images(tmp),
                               "--out", tmp / "preds.csv", "--submission", tmp / "sub.csv", *extra]


def evaluate(make, extra=()):
    return lambda files, tmp: ["evaluate", "--checkpoint", make(files, tmp), "--out", tmp / "eval", *extra]


def export(make):
    return lambda files, tmp: ["export", "--checkpoint", make(files, tmp), "--out", tmp / "m.onnx"]


def good(files, tmp):
    return files / "good.npz"


def big(files, tmp):
    return files / "big.npz"


# (case id, argv builder (files, tmp) -> args, strings stderr must contain)
CASES = [
    ("nan-weight-evaluate", evaluate(bad_weight(with_nan)), ["m.npz", "tensor '1.weight'", "1 NaN/inf", "(0, 1)"]),
    ("nan-weight-predict", predict(bad_weight(with_nan)), ["m.npz", "tensor '1.weight'", "NaN/inf"]),
    ("inf-bias-in-checkpoint", predict(nan_checkpoint), ["checkpoint.npz", "tensor '1.bias'", "NaN/inf", "(1,)"]),
    ("string-weights", predict(bad_weight(lambda w: w.astype("U3"))), ["m.npz", "'1.weight'", "dtype <U3"]),
    ("int8-weights", predict(bad_weight(lambda w: w.astype(np.int8))), ["m.npz", "'1.weight'", "dtype int8"]),
    ("complex-weights", predict(bad_weight(lambda w: w.astype(np.complex64))),
     ["m.npz", "'1.weight'", "dtype complex64"]),
    ("float16-weights", evaluate(bad_weight(lambda w: w.astype(np.float16))), ["m.npz", "'1.weight'", "float16"]),
    ("float64-overflow", predict(bad_weight(lambda w: w.astype(np.float64) * 1e300)),
     ["m.npz", "'1.weight'", "beyond the float32 range"]),
    ("wrong-shape-weights", predict(bad_weight(lambda w: w[:, :1])), ["m.npz", "'1.weight'", "shape mismatch"]),
    ("model-kwargs-string-predict", predict(bad_model(model_kwargs="hidden=8")), ["m.npz", "'model_kwargs'"]),
    ("model-kwargs-string-export", export(bad_model(model_kwargs="hidden=8")), ["m.npz", "'model_kwargs'"]),
    ("hidden-abc-predict", predict(bad_model(model_kwargs={**KWARGS, "hidden": "abc"})),
     ["m.npz", "'model_kwargs'", "'hidden': 'abc'"]),
    ("hidden-too-wide", predict(bad_model(model_kwargs={**KWARGS, "hidden": [10**12]})),
     ["m.npz", "'model_kwargs'", "Unable to allocate"]),
    ("hidden-abc-export", export(bad_model(model_kwargs={**KWARGS, "hidden": "abc"})), ["m.npz", "'model_kwargs'"]),
    ("unknown-model", evaluate(bad_model(model="resnet")), ["m.npz", "'model'", "'resnet'"]),
    ("classes-short-predict", predict(bad_model(classes=["class 0"])), ["m.npz", "'classes'", "2 class names"]),
    ("classes-short-export", export(bad_model(classes=["class 0"])), ["m.npz", "'classes'"]),
    ("classes-not-names", predict(bad_model(classes=[0, 1])), ["m.npz", "'classes'"]),
    ("input-shape-x-predict", predict(bad_model(input_shape="x")), ["m.npz", "'input_shape'"]),
    ("input-shape-x-export", export(bad_model(input_shape="x")), ["m.npz", "'input_shape'"]),
    ("seed-string-evaluate", evaluate(bad_model(seed="zero")), ["m.npz", "'seed'"]),
    ("data-kwargs-list-evaluate", evaluate(bad_model(data_kwargs=[1])), ["m.npz", "'data_kwargs'"]),
    ("truncated-model", predict(truncated), ["m.npz", "not a readable"]),
    ("data-file-missing-evaluate", evaluate(good, ["--data", "gone/test.npz"]),
     ["--data gone/test.npz: no such file or folder"]),
    ("images-not-npy-or-csv", lambda files, tmp: [
        "predict", "--checkpoint", good(files, tmp), "--images", tmp / "photo.png", "--out", tmp / "preds.csv"],
     ["photo.png", "expected a .npy array or a .csv of pixels"]),
    ("data-the-model-cannot-take", evaluate(good, ["--data", "digits"]),
     ["model 'mlp' cannot take data set 'digits'", "expected 2 input features"]),
    ("data-the-model-cannot-take-predict", lambda files, tmp: [
        "predict", "--checkpoint", good(files, tmp), "--data", "digits", "--out", tmp / "preds.csv"],
     ["model 'mlp' cannot take data set 'digits'"]),
    ("npy-instead-of-npz", evaluate(npy_not_npz), ["m.npy", "not an .npz archive"]),
    ("nan-pixels", lambda files, tmp: ["predict", "--checkpoint", good(files, tmp),
                                       "--images", images(tmp, [(3, np.nan), ((7, 1), np.inf)]),
                                       "--submission", tmp / "sub.csv"],
     ["x.npy", "2 of 10 images", "index 3, 7", "--skip-nonfinite"]),
    ("all-pixels-nan-skipped", lambda files, tmp: ["predict", "--checkpoint", good(files, tmp),
                                                   "--images", images(tmp, [(slice(None), np.nan)]),
                                                   "--out", tmp / "preds.csv", "--skip-nonfinite"],
     ["x.npy", "all 10 images"]),
    ("no-output-flag", lambda files, tmp: ["predict", "--checkpoint", good(files, tmp), "--images", images(tmp)],
     ["--out", "--submission"]),
    ("batch-size-zero", predict(good, ["--batch-size", "0"]), ["--batch-size", "got 0"]),
    ("empty-id-column", predict(good, ["--id-column", ""]), ["--id-column"]),
    ("generate-seed-negative", lambda files, tmp: ["generate", "--checkpoint", char_model(tmp), "--seed", "-1"],
     ["--seed", "-1"]),
    ("corpus-not-utf8", lambda files, tmp: [
        "train", "--model", "char_lstm", "--data", "text", "--text-file", _latin1(tmp), "--epochs", "1",
        "--out", tmp / "run"], ["latin1.txt", "not UTF-8", "offset 9"]),
]

MEMORY_CASES = [
    ("batch-too-big-predict", lambda files, tmp: ["predict", "--checkpoint", big(files, tmp),
                                                  "--images", images(tmp, n=1000), "--out", tmp / "preds.csv",
                                                  "--batch-size", "1000"],
     ["--batch-size 1000", "did not fit in memory", "smaller --batch-size"]),
    ("batch-too-big-evaluate", evaluate(big, ["--batch-size", "1000"]),
     ["--batch-size 1000", "a batch of 200 samples did not fit in memory"]),
]


def _latin1(tmp):
    (tmp / "latin1.txt").write_bytes("hello caf\u00e9\n".encode("latin-1") * 50)
    return tmp / "latin1.txt"


def check_refused(files, tmp, build, expected, memory_limit=None):
    (tmp / "preds.csv").write_text("id,label,class\n0,1,class 1\n")  # a previous run's outputs stay as they were
    (tmp / "sub.csv").write_text("Id,Category\n1,1\n")
    args = build(files, tmp)
    before = _snapshot(files, tmp)
    result = handgrad_cli(*args, cwd=tmp, memory_limit=memory_limit)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert _snapshot(files, tmp) == before


@pytest.mark.parametrize("build,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_with_one_line(files, tmp_path, build, expected):
    check_refused(files, tmp_path, build, expected)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS bounds the address space on Linux")
@pytest.mark.parametrize("build,expected", [c[1:] for c in MEMORY_CASES], ids=[c[0] for c in MEMORY_CASES])
def test_batch_that_does_not_fit_in_memory(files, tmp_path, build, expected):
    check_refused(files, tmp_path, build, expected, memory_limit=MEMORY_LIMIT)


def test_small_batches_of_the_big_model_fit(files, tmp_path):
    result = handgrad_cli("predict", "--checkpoint", files / "big.npz", "--images", images(tmp_path, n=1000),
                          "--out", tmp_path / "preds.csv", "--batch-size", "10", cwd=tmp_path,
                          memory_limit=MEMORY_LIMIT)
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "preds.csv").read_text().splitlines()) == 1001


def test_skip_nonfinite_leaves_those_images_out(files, tmp_path):
    x = images(tmp_path, [(3, np.nan), ((7, 1), np.inf)])
    result = handgrad_cli("predict", "--checkpoint", files / "good.npz", "--images", x, "--out",
                          tmp_path / "preds.csv", "--submission", tmp_path / "sub.csv", "--skip-nonfinite",
                          cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "skipped 2 of 10 images holding NaN or inf" in result.stderr
    ids = [line.split(",")[0] for line in (tmp_path / "preds.csv").read_text().splitlines()[1:]]
    assert ids == ["0", "1", "2", "4", "5", "6", "8", "9"]
    sub_ids = [line.split(",")[0] for line in (tmp_path / "sub.csv").read_text().splitlines()[1:]]
    assert sub_ids == ["1", "2", "3", "5", "6", "7", "9", "10"]


def test_submission_is_kaggle_style(files, tmp_path):
    x = images(tmp_path, n=7)
    base = ("predict", "--checkpoint", files / "good.npz", "--images", x)
    result = handgrad_cli(*base, "--submission", tmp_path / "sub.csv", "--out", tmp_path / "preds.csv",
                          cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = (tmp_path / "sub.csv").read_text().splitlines()
    preds = (tmp_path / "preds.csv").read_text().splitlines()[1:]
    assert rows[0] == "Id,Category"
    assert rows[1:] == [f"{i + 1},{line.split(',')[1]}" for i, line in enumerate(preds)]
    expected = np.asarray(models.get_model("mlp", **KWARGS, rng=0)(np.load(x))).argmax(axis=1)
    assert [int(r.split(",")[1]) for r in rows[1:]] == expected.tolist()

    result = handgrad_cli(*base, "--submission", tmp_path / "other" / "sub.csv", "--id-column", "ImageId",
                          "--label-column", "Label", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    other = (tmp_path / "other" / "sub.csv").read_text().splitlines()
    assert other[0] == "ImageId,Label" and other[1:] == rows[1:]
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["sub.csv"]  # no temporary file left


def test_out_of_memory_anywhere_is_one_line(monkeypatch, capsys):
    from handgrad import cli
    from handgrad.cli import summary

    def run_out_of_memory(args):
        raise MemoryError("Unable to allocate 9.0 GiB")

    monkeypatch.delenv("HANDGRAD_DEBUG", raising=False)
    monkeypatch.setattr(summary, "run", run_out_of_memory)
    assert cli.main(["summary", "mlp"]) == 2
    err = capsys.readouterr().err
    assert err == "handgrad summary: error: out of memory (Unable to allocate 9.0 GiB); " \
                  "try a smaller --batch-size or model\n"
