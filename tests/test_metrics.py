import json

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import given
from hypothesis import strategies as st

from handgrad.metrics import accuracy, classification_report, confusion_matrix


@pytest.mark.filterwarnings("ignore:A single label was found")
@given(n=st.integers(1, 200), c=st.integers(1, 12), seed=st.integers(0, 10_000))
def test_matches_sklearn_on_random_labels(n, c, seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, c, n)
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, c, n))
    labels = list(range(c))
    assert accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, c), skm.confusion_matrix(y_true, y_pred, labels=labels))
    ours = classification_report(y_true, y_pred, num_classes=c).to_dict()
    theirs = skm.classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)
    for k in range(c):
        for ours_key, their_key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score"), ("support", "support")):
            assert ours["classes"][str(k)][ours_key] == pytest.approx(theirs[str(k)][their_key], abs=1e-12)
    for avg in ("macro avg", "weighted avg"):
        for ours_key, their_key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert ours[avg][ours_key] == pytest.approx(theirs[avg][their_key], abs=1e-12)
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))


def test_scores_are_turned_into_labels_by_argmax():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((30, 5))
    y = rng.integers(0, 5, 30)
    assert accuracy(y, logits) == pytest.approx(np.mean(logits.argmax(1) == y))
    seq_logits = rng.standard_normal((4, 7, 5))  # (N, T, C) with labels (N, T)
    seq_y = rng.integers(0, 5, (4, 7))
    assert accuracy(seq_y, seq_logits) == pytest.approx(np.mean(seq_logits.argmax(-1) == seq_y))
    np.testing.assert_array_equal(confusion_matrix(y, logits, 5), confusion_matrix(y, logits.argmax(1), 5))


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="y_true has shape"):
        accuracy(np.zeros(3, int), np.zeros(4, int))
    with pytest.raises(ValueError, match="do not match labels"):
        accuracy(np.zeros(3, int), np.zeros((4, 2)))
    with pytest.raises(TypeError, match="accuracy: y_true must be integers, got dtype float64"):
        accuracy(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"accuracy: y_pred must be >= 0, got -1"):
        accuracy([0, 1], [0, -1])
    with pytest.raises(ValueError, match=r"confusion_matrix: y_true must be in \[0, 2\), got 2"):
        confusion_matrix([0, 1, 2], [0, 1, 1], num_classes=2)
    with pytest.raises(ValueError, match="no samples"):
        accuracy(np.zeros(0, int), np.zeros(0, int))
    with pytest.raises(ValueError, match="3 class names but num_classes=4"):
        classification_report([0], [0], class_names=["a", "b", "c"], num_classes=4)


def test_report_text_dict_and_html():
    y_true = np.array([0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0, 2])
    report = classification_report(y_true, y_pred, class_names=["cat", "dog", "T-shirt/top"])
    text = str(report)
    lines = text.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert len({len(line) for line in lines if line}) <= 2  # aligned columns
    assert "T-shirt/top" in text and "weighted avg" in text
    d = json.loads(json.dumps(report.to_dict()))
    assert d["classes"]["dog"] == {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    assert d["accuracy"] == pytest.approx(5 / 7)
    page = report.to_html()
    assert page.startswith("<table") and page.count("<tr") == 1 + 3 + 3 and "T-shirt/top" in page
    unnamed = classification_report(y_true, y_pred)
    assert unnamed.class_names == ["0", "1", "2"]
