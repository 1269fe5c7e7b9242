"""The character pipeline and the char-LSTM: vocabulary and batches, learning on a slice
of Shakespeare, reproducible sampling and clear errors on bad input."""
import numpy as np
import pytest
import torch

import handgrad
from handgrad import nn
from handgrad.data.text import CharVocab, StreamLoader, read_corpus, sequence_pairs, split_ids
from handgrad.models.char_lstm import char_lstm
from oracle import CharLSTMTwin, assert_close, copy_weights, t
from trainer_helpers import corpus_slice


class AdamForTests:
    """A minimal Adam update, used only to train inside these tests."""

    def __init__(self, params, lr):
        self.params, self.lr, self.step_count = params, lr, 0
        self.m = [np.zeros_like(p.data) for p in params]
        self.v = [np.zeros_like(p.data) for p in params]

    def step(self):
        self.step_count += 1
        b1, b2 = 0.9, 0.999
        for p, m, v in zip(self.params, self.m, self.v):
            m *= b1
            m += (1 - b1) * p.grad
            v *= b2
            v += (1 - b2) * p.grad * p.grad
            m_hat = m / (1 - b1 ** self.step_count)
            v_hat = v / (1 - b2 ** self.step_count)
            p.data -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def test_vocab_round_trip_and_unknown_characters():
    vocab = CharVocab.from_text("hello world")
    assert vocab.chars == sorted(set("hello world"))
    ids = vocab.encode("low")
    assert ids.dtype == np.int64 and vocab.decode(ids) == "low"
    with pytest.raises(ValueError, match=r"characters not in the vocabulary: 'XZ'"):
        vocab.encode("helloXZ")
    with pytest.raises(ValueError, match="empty"):
        CharVocab.from_text("")


def test_empty_corpus_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.txt: the file is empty"):
        read_corpus(empty)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_corpus(tmp_path / "missing.txt")


def test_sequence_pairs_predict_the_next_character():
    ids = np.arange(23)
    X, Y = sequence_pairs(ids, 5)
    assert X.shape == Y.shape == (4, 5)
    np.testing.assert_array_equal(Y, X + 1)
    np.testing.assert_array_equal(X.ravel(), np.arange(20))
    with pytest.raises(ValueError, match="too few"):
        sequence_pairs(np.arange(4), 5)


def test_split_is_contiguous():
    train, val = split_ids(np.arange(100), 0.1)
    np.testing.assert_array_equal(train, np.arange(90))
    np.testing.assert_array_equal(val, np.arange(90, 100))


def test_stream_batches_continue_row_by_row():
    ids = np.arange(101)
    loader = StreamLoader(ids, batch_size=4, seq_len=5)
    batches = list(loader)
    assert len(batches) == len(loader) == 5
    for (x0, y0), (x1, _) in zip(batches, batches[1:]):
        np.testing.assert_array_equal(x1[:, 0], x0[:, -1] + 1)
        np.testing.assert_array_equal(y0, x0 + 1)


def test_evaluation_streams_serve_the_short_last_chunk_and_the_loader_state_checks_the_layout():
    loader = StreamLoader(np.arange(48), batch_size=4, seq_len=5, drop_last=False)  # 4 streams of 11
    assert [x.shape[1] for x, _ in loader] == [5, 5, 1] and len(loader) == 3
    assert len(StreamLoader(np.arange(48), batch_size=4, seq_len=5)) == 2
    loader.load_state_dict(loader.state_dict())
    with pytest.raises(ValueError, match="are not these streams"):
        loader.load_state_dict({"batch_size": 8, "seq_len": 5, "length": 5})
    with pytest.raises(ValueError, match="too few for 4 streams of at least 1"):
        StreamLoader(np.arange(4), batch_size=4, seq_len=5, drop_last=False)


def test_char_lstm_matches_the_same_stack_in_torch(rng):
    model = char_lstm(vocab_size=11, hidden_size=8, num_layers=2, embedding_dim=6, rng=0)

    twin = CharLSTMTwin(11, 6, 8, num_layers=2)
    copy_weights(model, twin)
    x, y = rng.integers(0, 11, size=(3, 7)), rng.integers(0, 11, size=(3, 7))
    loss_fn = nn.TemporalCrossEntropyLoss()
    loss = loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    tloss = torch.nn.functional.cross_entropy(twin(torch.tensor(x)).reshape(-1, 11), torch.tensor(y).reshape(-1))
    tloss.backward()
    assert abs(loss - tloss.item()) < 1e-5
    theirs = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        assert_close(p.grad, theirs[name].grad, 1e-5, name)


def test_stateful_model_carries_state_between_batches_and_resets():
    model = char_lstm(vocab_size=5, hidden_size=4, embedding_dim=3, stateful=True, rng=0)
    x = np.array([[0, 1, 2, 3], [4, 3, 2, 1]])
    first = model(x)
    second = model(x)
    assert not np.allclose(first, second)  # the second call starts from the carried state
    carried = model.carried_state
    # training reads the ids through the embedding in the LSTM's products, eval looks the vectors up
    # first (see CharLSTM.forward): float32 sums in another order, so an eps-scale tolerance between them
    tol = dict(rtol=1e-5, atol=1e-6)
    model.eval()
    np.testing.assert_allclose(model(x), first, **tol)  # eval starts from zeros...
    np.testing.assert_allclose(model(x), first, **tol)  # ...and never carries
    expected = model(x, carried)
    model.train()
    assert model.carried_state is carried  # eval passes and mode switches leave the training carry alone
    np.testing.assert_allclose(model(x), expected, **tol)
    model.reset_state()
    np.testing.assert_allclose(model(x), first)  # reset_state() forgot it
    # a new batch size starts from zeros; a row of a batch of 1 against the same row of a batch of 2 goes
    # through differently shaped float32 products, which BLAS may sum in another order
    np.testing.assert_allclose(model(x[:1]), first[:1], **tol)


def test_training_on_a_slice_of_shakespeare_lowers_validation_loss():
    text = corpus_slice(60_000)
    vocab = CharVocab.from_text(text)
    train_ids, val_ids = split_ids(vocab.encode(text), 0.1)
    loader = StreamLoader(train_ids, batch_size=16, seq_len=32)
    Xv, Yv = sequence_pairs(val_ids, 32)
    model = char_lstm(len(vocab), hidden_size=64, embedding_dim=16, stateful=True, rng=0)
    loss_fn = nn.TemporalCrossEntropyLoss()
    opt = AdamForTests(model.parameters(), lr=0.01)

    def val_loss():
        model.eval()
        value = loss_fn(model(Xv), Yv)
        model.train()
        return value

    before = val_loss()
    steps = 0
    while steps < 300:
        for x, y in loader:
            loss_fn(model(x), y)
            model.zero_grad()
            model.backward(loss_fn.backward())
            opt.step()
            steps += 1
        model.reset_state()
    after = val_loss()
    assert before > 3.5  # about log(vocab) untrained
    assert after < before - 1.2, (before, after)


def test_sampling_is_reproducible_and_checks_its_input():
    vocab = CharVocab.from_text("abcdefgh ")
    model = char_lstm(len(vocab), hidden_size=8, embedding_dim=4, rng=0)
    prime = vocab.encode("abc")
    a = model.sample(prime, 40, temperature=0.8, rng=1)
    b = model.sample(prime, 40, temperature=0.8, rng=1)
    c = model.sample(prime, 40, temperature=0.8, rng=2)
    assert a == b and a != c and len(a) == 40 and all(0 <= i < len(vocab) for i in a)
    assert model.sample(prime, 10, greedy=True) == model.sample(prime, 10, greedy=True)
    assert model.training
    with pytest.raises(ValueError, match="temperature must be > 0"):
        model.sample(prime, 5, temperature=0)
    with pytest.raises(ValueError, match="prime must contain at least one character"):
        model.sample([], 5)


def test_greedy_sampling_follows_the_argmax_step_by_step():
    model = char_lstm(6, hidden_size=5, embedding_dim=3, rng=3)
    out = model.sample([1, 2], 4, greedy=True)
    ids = [1, 2]
    for expected in out:
        logits = model(np.array([ids]))[0, -1]
        assert int(logits.argmax()) == expected
        ids.append(expected)


def test_text_data_set_is_registered(tmp_path):
    from handgrad.data import load_dataset

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("to be or not to be, that is the question\n" * 10)
    ds = load_dataset("text", text_file=str(corpus), seq_len=8)
    X, y = ds.train
    assert X.dtype == y.dtype == np.int64 and X.shape[1:] == (8,) and ds.input_shape == (8,)
    assert ds.sequential  # the chunks continue each other: split by position, read as streams
    np.testing.assert_array_equal(X[:, 1:], y[:, :-1])
    assert "".join(ds.classes) == "".join(sorted(set(corpus.read_text())))
    assert len(ds.test[0]) == (len(corpus.read_text()) // 10 - 1) // 8
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="the file is empty"):
        load_dataset("text", text_file=str(tmp_path / "empty.txt"))
    with pytest.raises(ValueError, match="needs a corpus: text_file=PATH"):
        load_dataset("text")


def test_inference_reads_the_ids_through_the_lstm_and_computes_the_same():
    """Eval mode under no_grad (evaluation, prediction, sampling) takes the fused
    kernel, which never calls the Embedding; eval mode with gradients (summary)
    runs Embedding then LSTM. Both give the same logits up to rounding."""
    model = handgrad.models.char_lstm(vocab_size=20, hidden_size=16, embedding_dim=12).eval()
    x = np.random.default_rng(0).integers(0, 20, size=(4, 9))
    expected = model(x)
    embedded = []
    forward = model.embedding.forward
    object.__setattr__(model.embedding, "forward", lambda idx: embedded.append(idx.shape) or forward(idx))
    try:
        with handgrad.no_grad():
            out = model(x)
        assert embedded == []
        model(x)
        assert embedded == [x.shape]
    finally:
        del model.embedding.forward
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
