"""Settings a user can get wrong, from a file, --set or a flag: each is one line on
stderr naming the file, flag or key, exit status 2, before anything is written."""
import importlib.util
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


def handgrad(*args, cwd):
    return subprocess.run([sys.executable, "-m", "handgrad", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=ENV, timeout=300)


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


CASES = [
    # (files to write, arguments, what the one line must say)
    ({"run.toml": '[model_kwargs]\nhidden = "abc"\n'}, ["train", "--config", "run.toml", "--data", "synth"],
     "mlp: hidden must be a list of positive integers (layer widths), got 'abc'"),
    ({"run.toml": "[model_kwargs]\nhidden = 5\n"}, ["train", "--config", "run.toml", "--data", "synth"],
     "hidden must be a list of positive integers (layer widths), got 5"),
    ({"run.toml": "[model_kwargs]\nhidden = [1.5]\n"}, ["train", "--config", "run.toml", "--data", "synth"],
     "got [1.5]"),
    ({"run.toml": "epochs = 0\n"}, ["train", "--config", "run.toml"], "config file run.toml: epochs must be"),
    ({}, ["train", "--set", "model_kwargs.hidden=[300", "--data", "synth"],
     "--set model_kwargs.hidden: '[300' is not valid JSON"),
    ({}, ["train", "--set", "momentum=-1", "--data", "synth"], "--set: momentum must be a number >= 0, got -1"),
    ({}, ["train", "--set", "data_kwargs.test_fraction=2", "--data", "digits"],
     "data set 'digits': test_fraction must be a number in (0, 1), got 2"),
    ({}, ["train", "--model", "lenet5", "--data", "digits"],
     "model 'lenet5' cannot take data set 'digits' (inputs of shape (1, 8, 8))"),
    ({}, ["train", "--model", "char_lstm", "--data", "synth"], "model 'char_lstm' cannot take data set 'synth'"),
    ({}, ["train", "--data", "nowhere.npz"], "--data nowhere.npz: no such file or folder"),
    ({}, ["train", "--data", "/nope/digits"], "--data /nope/digits: no such file or folder"),
    ({}, ["train", "--data", "fashion_mnist"], "unknown data set 'fashion_mnist'; known data sets:"),
    ({}, ["train", "--data", "digits", "--set", "data_fraction=0.001"],
     "data set digits: 1 training samples are too few to hold out a validation set of 0.1"),
    ({"corpus.txt": "to be, or not to be: that is the question. " * 200},
     ["train", "--model", "mlp", "--data", "text", "--text-file", "corpus.txt"],
     "model 'mlp' cannot take data set 'text' (outputs of shape (16,) per sample, targets of shape (50,))"),
    ({}, ["train", "--device", "tpu", "--data", "synth"], "unknown device 'tpu'; choose from cpu, cuda"),
    ({}, ["sweep", "lr=[0.001", "--out", "sweep"], "a grid axis lr: '[0.001' is not valid JSON"),
    ({}, ["sweep", "lrr=[0.001, 0.01]", "--out", "sweep"], "unknown key 'lrr'"),
    ({}, ["sweep", "model=['mlp', 'resnet']", "--out", "sweep"], "is not valid JSON"),
    ({}, ["sweep", 'model=["mlp", "resnet"]', "--out", "sweep"], "unknown model 'resnet'"),
]


@pytest.mark.parametrize("files, args, needle", CASES, ids=[" ".join(c[1])[:60] for c in CASES])
def test_a_bad_setting_is_one_line_and_writes_nothing(tmp_path, files, args, needle):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    before = snapshot(tmp_path)
    proc = handgrad(*args, cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert snapshot(tmp_path) == before  # no run or sweep directory, the config file untouched


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
def test_device_cuda_without_cupy_says_what_to_install_and_writes_nothing(tmp_path):
    proc = handgrad("train", "--device", "cuda", "--data", "synth", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "device 'cuda' needs CuPy: pip install cupy-cuda12x" in lines[0], proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_more_workers_than_cores_says_so_and_uses_the_cores(tmp_path):
    cores = len(os.sched_getaffinity(0))
    proc = handgrad("train", "--data", "synth", "--epochs", "1", "--workers", cores + 3, "--quiet", "--out", "run",
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"workers {cores + 3} is more than the {cores} usable cores; using {cores}" in proc.stderr
    assert f'"workers": {cores}' in (tmp_path / "run" / "config.json").read_text()
