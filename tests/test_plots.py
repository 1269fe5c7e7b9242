import os

import numpy as np
import pytest

from handgrad import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def history(seed=0, epochs=5, iters=40, lr=0.1, val=True):
    rng = np.random.default_rng(seed)
    loss = 2.3 * np.exp(-np.arange(epochs * iters) * lr / 20) + 0.1 * rng.random(epochs * iters)
    evals = []
    for e in range(1, epochs + 1):
        record = {"epoch": e, "iteration": e * iters, "samples": e * iters * 32,
                  "train_loss": float(loss[e * iters - 1]), "train_acc": float(1 - 0.5 / e)}
        if val:
            record.update(val_loss=float(loss[e * iters - 1] + 0.1), val_acc=float(1 - 0.6 / e))
        evals.append(record)
    return {"iteration_loss": loss.tolist(), "eval": evals}


def assert_png(path, min_bytes=8_000):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    assert min_bytes < os.path.getsize(path) < 2_000_000
    assert not [n for n in os.listdir(os.path.dirname(path)) if n.endswith(".tmp")]


def test_loss_plot(tmp_path):
    fig = plots.plot_loss(history(), path=tmp_path / "loss.png")
    assert_png(tmp_path / "loss.png")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "iteration" and ax.get_ylabel() == "loss" and ax.get_title()
    assert len(ax.lines) == 2 and ax.get_legend() is not None


def test_smoothing_is_a_bias_corrected_ema():
    np.testing.assert_allclose(plots.smooth([4.0, 4.0, 4.0], 0.9), [4.0, 4.0, 4.0])
    s = plots.smooth([1.0, 3.0], 0.5)
    np.testing.assert_allclose(s, [1.0, (0.25 * 1 + 0.5 * 3) / 0.75])
    with pytest.raises(ValueError, match="smoothing must be in"):
        plots.smooth([1.0], 1.0)


@pytest.mark.parametrize("x", ["epoch", "samples", "iteration"])
def test_curves_plot(tmp_path, x):
    fig = plots.plot_curves(history(), x=x, path=tmp_path / "curves.png")
    assert_png(tmp_path / "curves.png")
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 2 and len(acc_ax.lines) == 2
    assert acc_ax.get_title() == "Accuracy" and loss_ax.get_xlabel() == plots._X_LABELS[x]


def test_curves_without_validation_draw_train_only(tmp_path):
    fig = plots.plot_curves(history(val=False))
    assert [len(ax.lines) for ax in fig.axes] == [1, 1]


def test_runs_plot_mean_and_std(tmp_path):
    runs = {"mlp": [history(s) for s in range(3)], "cnn": [history(s, lr=0.3) for s in range(3)]}
    fig = plots.plot_runs(runs, metric="val_acc", path=tmp_path / "runs.png")
    assert_png(tmp_path / "runs.png")
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and len(ax.collections) == 2  # a mean line and a band per group
    xs, mean = ax.lines[0].get_data()
    expected = np.mean([[r["val_acc"] for r in history(s)["eval"]] for s in range(3)], axis=0)
    np.testing.assert_allclose(mean, expected)
    plots.plot_runs([history(s) for s in range(3)], metric="iteration_loss", path=tmp_path / "loss_runs.png")
    assert_png(tmp_path / "loss_runs.png")


def test_a_run_with_one_evaluation_is_drawn_as_a_marker(tmp_path):
    one = history()
    one["eval"] = one["eval"][:1]
    line = plots.plot_runs([one], metric="val_acc").axes[0].lines[0]
    assert len(line.get_xdata()) == 1 and line.get_marker() == "o"  # a line of one point draws nothing
    many = plots.plot_runs([history()], metric="val_acc").axes[0].lines[0]
    assert many.get_marker() in (None, "None", "")


def test_runs_at_different_x_cannot_be_averaged():
    other = history(1)
    for r in other["eval"]:
        r["epoch"] *= 2
    with pytest.raises(ValueError, match="different epoch values"):
        plots.plot_runs([history(0), other])


def test_learning_rates_plot(tmp_path):
    fig = plots.plot_learning_rates({lr: history(0, lr=lr) for lr in (0.3, 0.01, 0.1)}, path=tmp_path / "lr.png")
    assert_png(tmp_path / "lr.png")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["lr=0.01", "lr=0.1", "lr=0.3"]
    plots.plot_learning_rates({0.1: [history(s) for s in range(2)]}, metric="val_acc", path=tmp_path / "lr2.png")
    assert_png(tmp_path / "lr2.png")
    with pytest.raises(ValueError, match="learning rates"):
        plots.plot_learning_rates({"fast": history()})


def test_image_grid_marks_mistakes_in_red(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((10, 1, 28, 28)).astype(np.float32)
    y_true = np.arange(10)
    y_pred = y_true.copy()
    y_pred[[2, 5]] = 0
    fig = plots.plot_images(images, y_true, y_pred, class_names=[f"c{i}" for i in range(10)], ncols=5,
                            path=tmp_path / "grid.png")
    assert_png(tmp_path / "grid.png", min_bytes=20_000)
    titles = [ax.title for ax in fig.axes[:10]]
    red = [i for i, t in enumerate(titles) if t.get_color() == plots._RED]
    assert red == [2, 5] and "true: c5\npred: c0" == titles[5].get_text()
    plots.plot_images(images[:, 0], y_true, path=tmp_path / "plain.png")
    assert_png(tmp_path / "plain.png")


def test_image_grid_rejects_mismatched_lengths(tmp_path):
    images = np.zeros((4, 1, 8, 8))
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        plots.plot_images(images, [0, 1, 2], path=tmp_path / "x.png")
    with pytest.raises(ValueError, match="4 images but 5 predictions"):
        plots.plot_images(images, [0, 1, 2, 3], [0] * 5)
    with pytest.raises(ValueError, match="expected images"):
        plots.plot_images(np.zeros((4, 8)), [0, 1, 2, 3])
    assert not os.listdir(tmp_path)


def test_confusion_matrix_plot_annotates_counts(tmp_path):
    m = np.array([[50, 2, 0], [3, 40, 7], [0, 0, 61]])
    fig = plots.plot_confusion_matrix(m, ["a", "b", "c"], path=tmp_path / "cm.png")
    assert_png(tmp_path / "cm.png")
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == sorted(str(v) for v in m.ravel())
    plots.plot_confusion_matrix(m, normalize=True, path=tmp_path / "cm2.png")
    assert_png(tmp_path / "cm2.png")
    with pytest.raises(ValueError, match="square"):
        plots.plot_confusion_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2 class names for a 3x3"):
        plots.plot_confusion_matrix(m, ["a", "b"])


RESULTS = {"mlp": {"sgd": [0.90, 0.92], "adam": 0.93}, "lenet5": {"sgd": 0.95}}


def test_summary_table_text_html_and_figure(tmp_path):
    text = plots.summary_table(RESULTS)
    lines = text.splitlines()
    assert lines[0].split() == ["model", "sgd", "adam"]
    assert "91.00% ± 1.00" in lines[2] and lines[3].split() == ["lenet5", "95.00%", "\u2013"]
    assert len({len(line) for line in lines}) == 1
    page = plots.summary_table_html(RESULTS)
    assert "<b>95.00%</b>" in page and "<b>93.00%</b>" in page and page.count("<tr>") == 3
    plots.plot_summary_table(RESULTS, path=tmp_path / "table.png")
    assert_png(tmp_path / "table.png", min_bytes=4_000)
    with pytest.raises(ValueError, match="expected {model"):
        plots.summary_table({"mlp": 0.9})


def test_drawing_into_given_axes(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure()
    a, b, c = fig.subplots(1, 3)
    assert plots.plot_loss(history(), ax=a) is fig
    assert plots.plot_curves(history(), ax=(b, c)) is fig
    plots.save_figure(fig, tmp_path / "sub" / "all.png")
    assert_png(tmp_path / "sub" / "all.png")


def test_bad_histories_are_clear_errors():
    with pytest.raises(ValueError, match="no 'iteration_loss'"):
        plots.plot_loss({"eval": []})
    with pytest.raises(TypeError, match="must be a dict"):
        plots.plot_loss([1.0, 2.0])
    with pytest.raises(ValueError, match="x must be one of"):
        plots.plot_curves(history(), x="time")
    with pytest.raises(ValueError, match="unknown metric"):
        plots.plot_runs([history()], metric="val_f1")
    with pytest.raises(ValueError, match="no train/val loss or accuracy"):
        plots.plot_curves({"iteration_loss": [1.0], "eval": [{"epoch": 1}]})
