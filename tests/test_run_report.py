"""What a finished run reports: a character model's sample, readable class names,
a confusion matrix only where it can be read."""
import csv
import html
import json

import numpy as np
import pytest

from handgrad.metrics import display_name, top_confusions
from handgrad.train import train_from_config
from handgrad.train.report import MAX_MATRIX_CLASSES, SAMPLE_LENGTH, SAMPLE_PRIME, write_evaluation

from trainer_helpers import corpus_slice


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    corpus = root / "corpus.txt"
    corpus.write_text(corpus_slice(6_000))
    config = {"model": "char_lstm", "data": "text", "text_file": str(corpus), "data_kwargs": {"seq_len": 25},
              "model_kwargs": {"hidden_size": 16, "embedding_dim": 8}, "batch_size": 8, "epochs": 1, "seed": 3}
    train_from_config(config, out_dir=root / "run")
    return root / "run"


def test_a_text_run_reports_a_sample_primed_with_the_test_text(text_run):
    from handgrad.io import load_model

    text = (text_run / "sample.txt").read_text()
    prime, generated = text[:SAMPLE_PRIME], text[SAMPLE_PRIME:]
    assert len(generated) == SAMPLE_LENGTH
    page = (text_run / "report.html").read_text()
    assert "<h2>Generated text</h2>" in page
    assert f'<pre class="sample"><b>{html.escape(prime)}</b>{html.escape(generated)}</pre>' in page
    model, meta = load_model(text_run / "model.npz")  # the same seed from the saved model: the same text
    chars = meta["classes"]
    ids = model.sample([chars.index(c) for c in prime], SAMPLE_LENGTH, rng=0)
    assert "".join(chars[i] for i in ids) == generated
    assert prime in corpus_slice(6_000)[int(6_000 * 0.9) - 5:]  # the start of the held-out text


def test_a_text_run_s_class_table_has_one_line_per_character(text_run):
    classes = json.loads((text_run / "classification_report.json").read_text())["classes"]
    assert "\n" in classes and " " in classes  # the JSON keeps the characters themselves
    lines = (text_run / "classification_report.txt").read_text().splitlines()
    rows = lines[2:2 + len(classes)]
    assert len(lines) == 2 + len(classes) + 4 and lines[2 + len(classes)] == ""
    assert all(len(row.split()) == 5 for row in rows), rows
    assert [row.split()[0] for row in rows] == [display_name(c) for c in classes]
    page = (text_run / "report.html").read_text()
    assert "<th>\\n</th>" in page and "<th>\u2423</th>" in page
    many = len(classes) > MAX_MATRIX_CLASSES
    assert (text_run / "plots" / "confusion_matrix.png").exists() != many
    if many:
        with open(text_run / "confusions.csv", newline="") as f:
            table = list(csv.reader(f))
        assert table[0] == ["true", "predicted", "count"] and 1 <= len(table) - 1 <= 20
        counts = [int(n) for _, _, n in table[1:]]
        assert counts == sorted(counts, reverse=True) and all("\n" not in t + p for t, p, _ in table[1:])
        assert "most frequent confusions" in page


@pytest.mark.parametrize("name, shown", [("\n", "\\n"), (" ", "\u2423"), ("\t", "\\t"), ("\x07", "\\x07"),
                                         ("a", "a"), ("Ankle boot", "Ankle boot"), ("a\rb", "a\\rb"), ("", "''")])
def test_class_names_that_are_whitespace_or_control_characters_are_escaped(name, shown):
    assert display_name(name) == shown


def test_top_confusions_are_the_largest_off_diagonal_cells():
    m = np.array([[9, 2, 0], [5, 7, 1], [0, 3, 8]])
    assert top_confusions(m, ["a", "b", "c"]) == [("b", "a", 5), ("c", "b", 3), ("a", "b", 2), ("b", "c", 1)]
    assert top_confusions(m, ["a", "b", "c"], k=2) == [("b", "a", 5), ("c", "b", 3)]
    assert top_confusions(np.eye(3, dtype=int)) == []


@pytest.mark.parametrize("classes", [MAX_MATRIX_CLASSES, MAX_MATRIX_CLASSES + 1])
def test_the_confusion_matrix_is_drawn_only_where_it_can_be_read(tmp_path, classes):
    rng = np.random.default_rng(0)
    y = rng.integers(0, classes, size=500)
    pred = np.where(rng.random(500) < 0.5, y, rng.integers(0, classes, size=500))
    result = write_evaluation(tmp_path, np.zeros((500, 2)), y, pred, [f"c{i}" for i in range(classes)], "t")
    drawn = (tmp_path / "plots" / "confusion_matrix.png").exists()
    assert drawn == (classes <= MAX_MATRIX_CLASSES) and (result["confusions"] is None) == drawn
    if not drawn:
        assert len(result["confusions"]) == 20
        true, predicted, count = result["confusions"][0]
        assert count == max(int(((y == i) & (pred == j)).sum()) for i in range(classes) for j in range(classes) if i != j)
        assert int(((y == int(true[1:])) & (pred == int(predicted[1:]))).sum()) == count
