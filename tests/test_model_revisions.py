"""A zoo model whose network changed under the same name has a new revision: model
files and runs saved at another revision are refused, saying what changed, instead
of failing on their weights (or loading weights that mean something else)."""
import subprocess
import sys

import pytest

from handgrad import models
from handgrad.io import load_model, read_npz, save_model, write_npz
from handgrad.train import load_checkpoint, save_checkpoint
from handgrad.train.restore import load_trained
from handgrad.train.run import train_from_config
from handgrad.train.rundir import RunDirError


def saved_before_revisions(path, name, **kwargs):
    """A model file as handgrad wrote it before it recorded revisions."""
    model = models.get_model(name, **kwargs)
    write_npz(path, model.state_dict(), {"kind": "model", "model": name, "model_kwargs": kwargs})
    return path


def test_model_files_record_their_revision_and_load(tmp_path):
    for name in ("cnn", "mlp"):
        model = models.get_model(name)
        save_model(tmp_path / f"{name}.npz", model, {"model": name})
        assert read_npz(tmp_path / f"{name}.npz")[1]["model_revision"] == models.revision(name)
        load_model(tmp_path / f"{name}.npz")
    assert models.revision("cnn") == 2 and models.revision("mlp") == 1


def test_a_file_saved_before_revisions_is_revision_1(tmp_path):
    load_model(saved_before_revisions(tmp_path / "mlp.npz", "mlp"))  # mlp's revision 1 is today's
    path = saved_before_revisions(tmp_path / "cnn.npz", "cnn", input_shape=[1, 8, 8])
    with pytest.raises(ValueError, match=r"cnn\.npz: holds a 'cnn' of revision 1, but this handgrad builds "
                                         r"revision 2; each block pools before its batch norm.*train it again"):
        load_model(path)


@pytest.fixture(scope="module")
def old_cnn_run(tmp_path_factory):
    """A finished cnn run whose checkpoint and manifest say nothing of revisions, as before."""
    out = tmp_path_factory.mktemp("revisions") / "run"
    train_from_config({"model": "cnn", "data": "digits", "epochs": 1, "workers": 1}, out_dir=out)
    state = load_checkpoint(out / "checkpoint.npz")
    assert state["config"]["handgrad"].pop("model_revision") == 2
    save_checkpoint(out / "checkpoint.npz", state)
    (out / "model.npz").unlink()  # a run killed before its end: only the checkpoint
    return out


def test_a_checkpoint_of_revision_1_is_refused_when_loaded(old_cnn_run):
    with pytest.raises(ValueError, match=r"checkpoint\.npz: holds a 'cnn' of revision 1, but this handgrad builds "
                                         r"revision 2"):
        load_trained(old_cnn_run / "checkpoint.npz")


def test_a_run_of_revision_1_is_refused_on_resume_and_left_as_it_was(old_cnn_run):
    before = {p.name: p.read_bytes() for p in old_cnn_run.iterdir() if p.is_file()}
    with pytest.raises(RunDirError, match=r"resume: .*checkpoint\.npz: holds a 'cnn' of revision 1"):
        train_from_config({"model": "cnn", "data": "digits", "epochs": 2, "workers": 1}, out_dir=old_cnn_run,
                          resume=True)
    assert {p.name: p.read_bytes() for p in old_cnn_run.iterdir() if p.is_file()} == before


def test_the_command_line_answers_in_one_line(old_cnn_run):
    proc = subprocess.run([sys.executable, "-m", "handgrad", "evaluate", "--checkpoint",
                           str(old_cnn_run / "checkpoint.npz")], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds a 'cnn' of revision 1" in lines[0], proc.stderr
