"""Truncated BPTT through the Trainer and train_from_config: a stateful char-LSTM on a
text trains on streams with its state carried, is validated on contiguous text it
never trained on, is evaluated with the state carried across chunks, keeps its carry
through mid-epoch evaluations and resumes bitwise from a checkpoint."""
import numpy as np
import pytest
import torch

from handgrad import nn
from handgrad.data import Dataset
from handgrad.data.datasets import check_dataset
from handgrad.data.text import StreamLoader, sequence_pairs
from handgrad.models.char_lstm import char_lstm
from handgrad.train import evaluate, load_checkpoint, train_from_config
from handgrad.train.build import split_data
from handgrad.train.config import resolve_config
from oracle import CharLSTMTwin, copy_weights
from trainer_helpers import corpus_slice


def positions_dataset(n=4001, test=401, seq_len=10):
    """A sequential data set whose ids are their own positions in the text, so that
    which characters a split holds can be read off its ids."""
    ids = np.arange(n + test, dtype=np.int64)
    return Dataset("positions", sequence_pairs(ids[:n], seq_len), sequence_pairs(ids[n:], seq_len),
                   [str(i) for i in range(n + test)], (seq_len,), sequential=True)


def text_config(**overrides):
    return resolve_config({"model": "char_lstm", "data": "positions", "batch_size": 4, **overrides})


def stream_positions(loader):
    return np.concatenate([loader.inputs.ravel(), loader.targets.ravel()])


def test_sequential_text_is_split_by_position_and_read_as_streams():
    dataset = positions_dataset()
    train, val, test, train_eval = split_data(text_config(val_fraction=0.1), dataset, stateful=True)
    assert all(isinstance(s, StreamLoader) for s in (train, val, test, train_eval))
    batches = list(train)
    assert len(batches) == len(train) > 3
    for (x0, y0), (x1, _) in zip(batches, batches[1:]):  # batch j + 1 continues batch j row by row
        np.testing.assert_array_equal(x1[:, 0], y0[:, -1])
        np.testing.assert_array_equal(y0, x0 + 1)
    train_chars, val_chars = stream_positions(train), stream_positions(val)
    assert train_chars.max() < val_chars.min()  # validation: text never trained on (not even as a target)
    assert abs(val_chars.min() - 0.9 * 4000) < 2
    assert stream_positions(test).min() >= 4001  # the held-out end of the corpus, as before
    assert set(stream_positions(train_eval)) <= set(train_chars)
    # evaluation streams score every position (but the < batch_size left over), the last chunk shorter
    assert dataset.train[1].max() - val_chars.max() < 4
    assert val.inputs.shape[1] % 10 != 0 and sum(np.size(y) for _, y in val) == val.targets.size


def test_data_fraction_of_a_text_is_a_prefix_and_a_stateless_model_gets_chunks():
    dataset = positions_dataset()
    train, val, _, train_eval = split_data(text_config(data_fraction=0.5), dataset, stateful=False)
    (X, y), (Xv, yv) = train, val
    assert train_eval is None and X.shape[1:] == (10,)
    assert np.concatenate([X.ravel(), y.ravel()]).max() < Xv.min()
    assert yv.max() <= 2000  # the first half of the training text, by position
    with pytest.raises(ValueError, match="the validation text is too short"):
        split_data(text_config(data_fraction=0.25, val_fraction=0.05, batch_size=64), dataset, stateful=True)


def test_a_sequential_data_set_whose_chunks_do_not_continue_is_an_error():
    good = positions_dataset()
    X, y = good.train
    with pytest.raises(ValueError, match="chunks do not continue each other"):
        check_dataset(Dataset("bad", (X[::-1].copy(), y[::-1].copy()), good.test, good.classes, (10,),
                              sequential=True))


def test_stateful_evaluation_is_the_loss_of_each_whole_stream_read_in_one_pass():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 13, size=3 * 40 + 1)
    loader = StreamLoader(ids, batch_size=3, seq_len=7, drop_last=False)  # 6 chunks, the last one 5 long
    model = char_lstm(13, hidden_size=8, embedding_dim=5, stateful=True, rng=0)
    twin = CharLSTMTwin(13, 5, 8)
    copy_weights(model, twin)
    with torch.no_grad():  # each stream read in one pass: the state carried through every character
        logits = twin(torch.tensor(loader.inputs))
        expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 13), torch.tensor(loader.targets).ravel())
        expected_acc = (logits.argmax(-1).numpy() == loader.targets).mean()

    training_carry = (np.ones((1, 3, 8), np.float32), np.ones((1, 3, 8), np.float32))
    model.carried_state = training_carry
    result = evaluate(model, nn.TemporalCrossEntropyLoss(), loader)
    assert result["loss"] == pytest.approx(expected.item(), abs=1e-5)
    assert result["accuracy"] == pytest.approx(expected_acc)
    assert model.carried_state is training_carry and model.training  # the training carry is left alone
    with torch.no_grad():  # the same chunks, each from zero state: what dropping the carry would give
        restarted = sum(torch.nn.functional.cross_entropy(twin(torch.tensor(x)).reshape(-1, 13),
                                                          torch.tensor(y).ravel(), reduction="sum").item()
                        for x, y in loader) / loader.targets.size
    assert abs(restarted - expected.item()) > 1e-3


def corpus_config(tmp_path, **overrides):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(corpus_slice(40_000))
    return {"model": "char_lstm", "data": "text", "text_file": str(corpus), "data_kwargs": {"seq_len": 25},
            "model_kwargs": {"hidden_size": 32, "embedding_dim": 16}, "batch_size": 8, "epochs": 2,
            "eval_every": 500, "seed": 3, **overrides}


def test_text_run_trains_a_stateful_model_on_streams_and_reports_losses_per_character(tmp_path):
    config = corpus_config(tmp_path, epochs=1)
    result = train_from_config(config, out_dir=tmp_path / "run")
    assert result["config"]["model_kwargs"]["stateful"] is True
    state = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    layout = state["loader"]  # the StreamLoader's: 8 streams of the training text, in chunks of 25
    assert (layout["batch_size"], layout["seq_len"]) == (8, 25)
    assert abs(layout["length"] * 8 - 40_000 * 0.9 * 0.9) < 40
    batches = layout["length"] // 25
    assert len(result["history"]["iteration_loss"]) == batches
    records = result["history"]["eval"]
    assert [r["samples"] for r in records] == [504, 1000, batches * 8]
    assert records[-1]["val_loss"] < records[0]["val_loss"] < np.log(len(set(corpus_slice(40_000))))
    assert records[-1]["train_loss"] < 3.5 and 0 < result["test_loss"] < 3.5
    assert [np.shape(a) for a in state["carried_state"]] == [(1, 8, 32), (1, 8, 32)]


def test_mid_epoch_evaluations_do_not_disturb_the_carried_state(tmp_path):
    with_evals = train_from_config(corpus_config(tmp_path, eval_every=300))
    without = train_from_config(corpus_config(tmp_path, eval_every=None))
    assert len(with_evals["history"]["eval"]) > len(without["history"]["eval"]) + 2
    assert with_evals["history"]["iteration_loss"] == without["history"]["iteration_loss"]


def test_the_trainer_starts_every_epoch_from_zero_state_and_carries_it_inside_the_epoch():
    from handgrad.optim import Adam
    from handgrad.train import Trainer

    ids = np.random.default_rng(0).integers(0, 7, size=4 * 30 + 1)
    loader = StreamLoader(ids, batch_size=4, seq_len=10)
    model = char_lstm(7, hidden_size=6, embedding_dim=3, stateful=True, rng=0)
    starts = []
    forward = model.forward

    def spy(x, state=None):
        if model.training:
            starts.append(model.carried_state is None)
        return forward(x, state)

    model.forward = spy
    trainer = Trainer(model, nn.TemporalCrossEntropyLoss(), Adam(model.parameters(), lr=0.01), loader,
                      StreamLoader(ids, batch_size=2, seq_len=10, drop_last=False), epochs=3, batch_size=4,
                      eval_every=4, progress="none")
    trainer.fit()
    assert len(trainer.history["eval"]) == 9  # evaluations after every batch, the carry kept through them
    assert starts == [True, False, False] * 3


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("workers", [1, 2])
def test_resume_of_a_stateful_text_run_is_bitwise_the_uninterrupted_run(tmp_path, monkeypatch, workers):
    import handgrad.train.run as run_module

    config = corpus_config(tmp_path, workers=workers)
    reference = train_from_config(config, out_dir=tmp_path / "reference")

    write_metrics = run_module.write_metrics

    def stop_after_second_evaluation(path, history):  # the checkpoint of that evaluation is written
        write_metrics(path, history)
        if len(history["eval"]) == 2:
            raise Interrupt

    monkeypatch.setattr(run_module, "write_metrics", stop_after_second_evaluation)
    with pytest.raises(Interrupt):
        train_from_config(config, out_dir=tmp_path / "killed")
    monkeypatch.undo()
    state = load_checkpoint(tmp_path / "killed" / "checkpoint.npz")
    batches = state["loader"]["length"] // 25
    assert state["counters"]["epoch"] == 0 and 0 < state["counters"]["batch_in_epoch"] < batches
    assert state["carried_state"] is not None

    resumed = train_from_config(config, out_dir=tmp_path / "killed", resume=True)
    assert resumed["history"] == reference["history"]
    assert resumed["test_loss"] == reference["test_loss"]
    ref_state = load_checkpoint(tmp_path / "reference" / "checkpoint.npz")
    state = load_checkpoint(tmp_path / "killed" / "checkpoint.npz")
    for name in ref_state["model"]:
        assert np.array_equal(ref_state["model"][name], state["model"][name]), name
    for a, b in zip(ref_state["carried_state"], state["carried_state"]):
        assert np.array_equal(a, b)


def test_two_workers_train_a_text_run_like_one(tmp_path):
    """workers=2 shares each batch of streams between two processes, the carried
    state included; float32 results agree with one process up to rounding."""
    one = train_from_config(corpus_config(tmp_path, epochs=1), out_dir=tmp_path / "one")
    two = train_from_config(corpus_config(tmp_path, epochs=1, workers=2), out_dir=tmp_path / "two")
    np.testing.assert_allclose(two["history"]["iteration_loss"], one["history"]["iteration_loss"], rtol=1e-4)
    assert two["test_loss"] == pytest.approx(one["test_loss"], rel=1e-4)
