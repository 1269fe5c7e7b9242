"""Plots of training runs: learning curves, runs with spread, learning-rate
comparisons, image grids, confusion matrices, summary tables and the decision
boundary of a classifier in the plane.

matplotlib is imported only when a plot is made (``pip install "handgrad[plots]"``).
Figures are built as ``matplotlib.figure.Figure`` objects, without pyplot, so
they need no display and are not kept alive by pyplot. Every function returns
its figure; most accept ``ax`` (draw into an existing Axes) and all accept
``path`` (save the figure there, atomically; the format follows the suffix,
PNG by default).

History format
--------------
A training run is described by a JSON-able dict::

    {
      "iteration_loss": [2.31, 2.27, ...],
      "eval": [
        {"epoch": 1, "iteration": 938, "samples": 60000,
         "train_loss": 0.52, "train_acc": 0.81, "val_loss": 0.55, "val_acc": 0.80},
        ...
      ]
    }

* ``iteration_loss``: the training loss of every iteration (one optimizer
  step on one mini-batch), in order; iteration i (1-based) is entry i - 1.
* ``eval``: one record per evaluation, in order. ``epoch`` (number of epochs
  completed, may be fractional when evaluating inside an epoch),
  ``iteration`` (optimizer steps so far) and ``samples`` (training samples
  seen so far) are required. The metrics ``train_loss``, ``train_acc``,
  ``val_loss``, ``val_acc``, ``test_loss`` and ``test_acc`` are optional: a
  missing or ``None`` value (for example no validation set) is simply not
  drawn. Accuracies are fractions in [0, 1].

Other keys are allowed and ignored.
"""
from __future__ import annotations

import html
import math
import os

import numpy as np

from .atomic import atomic_file
from .metrics import display_name
from .validate import fraction

EVAL_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")
X_AXES = ("epoch", "iteration", "samples")
_X_LABELS = {"epoch": "epoch", "iteration": "iteration", "samples": "training samples seen"}
_METRIC_LABELS = {
    "iteration_loss": "training loss (per iteration, smoothed)",
    "train_loss": "training loss",
    "val_loss": "validation loss",
    "train_acc": "training accuracy",
    "val_acc": "validation accuracy",
    "test_loss": "test loss",
    "test_acc": "test accuracy",
}
_RED = "#d62728"

NO_MATPLOTLIB = 'plots skipped: matplotlib is not installed (pip install "handgrad[plots]")'


def can_plot() -> bool:
    """Whether matplotlib is installed; without it a run or a sweep writes everything but the figures."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


# -- figures and files -----------------------------------------------------

def _figure(ax=None, figsize=(6.4, 4.2)):
    """``(fig, ax)``: the given Axes and its figure, or a new figure with one Axes."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def save_figure(fig, path) -> None:
    """Save ``fig`` to ``path`` atomically (temporary file in the same directory,
    then rename). The format follows the suffix (``.png``, ``.svg``, ``.pdf``),
    PNG when there is none."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    with atomic_file(path) as f:
        fig.savefig(f, format=fmt, dpi=120)


def _finish(fig, path):
    if path is not None:
        save_figure(fig, path)
    return fig


# -- reading histories ------------------------------------------------------

def smooth(values, smoothing: float = 0.9) -> np.ndarray:
    """Exponential moving average with bias correction (as TensorBoard draws it):

        s_t = smoothing * s_{t-1} + (1 - smoothing) * v_t,   s_0 = 0
        shown_t = s_t / (1 - smoothing^t)

    The correction removes the pull towards the initial 0 in the first steps.
    """
    fraction(smoothing, "smooth: smoothing", high_open=True)
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    s = 0.0
    for t, v in enumerate(values, start=1):
        s = smoothing * s + (1.0 - smoothing) * v
        out[t - 1] = s / (1.0 - smoothing**t)
    return out


def _check_history(fn: str, history) -> None:
    if not isinstance(history, dict):
        raise TypeError(f"{fn}: a history must be a dict with 'iteration_loss' and 'eval', got {type(history).__name__}")


def series(history, metric: str, x: str = "epoch", smoothing: float = 0.9):
    """``(xs, ys)`` arrays of one metric of a history.

    ``metric='iteration_loss'`` gives the smoothed loss against the iteration
    number (``x`` is ignored); an eval metric gives its values against the
    ``x`` field (``'epoch'``, ``'iteration'`` or ``'samples'``) of the records
    that have it.
    """
    _check_history("series", history)
    if metric == "iteration_loss":
        losses = history.get("iteration_loss")
        if not losses:
            raise ValueError("series: the history has no 'iteration_loss' values")
        return np.arange(1, len(losses) + 1), smooth(losses, smoothing)
    if metric not in EVAL_METRICS:
        raise ValueError(f"series: unknown metric {metric!r}; expected 'iteration_loss' or one of {', '.join(EVAL_METRICS)}")
    if x not in X_AXES:
        raise ValueError(f"series: x must be one of {', '.join(X_AXES)}, got {x!r}")
    records = [r for r in history.get("eval", []) if r.get(metric) is not None]
    for r in records:
        if x not in r:
            raise ValueError(f"series: an eval record has {metric} but no {x!r}: {r}")
    return np.array([r[x] for r in records], dtype=np.float64), np.array([r[metric] for r in records], dtype=np.float64)


def _percent_axis(ax, metric: str) -> None:
    if metric.endswith("_acc"):
        from matplotlib.ticker import PercentFormatter

        ax.yaxis.set_major_formatter(PercentFormatter(1.0))


# -- learning curves ---------------------------------------------------------

def plot_loss(history, smoothing: float = 0.9, ax=None, path=None, title="Training loss"):
    """The loss of every iteration (faint) and its smoothed curve (see :func:`smooth`)."""
    _check_history("plot_loss", history)
    losses = np.asarray(history.get("iteration_loss") or [], dtype=np.float64)
    if losses.size == 0:
        raise ValueError("plot_loss: the history has no 'iteration_loss' values")
    fig, ax = _figure(ax)
    it = np.arange(1, losses.size + 1)
    ax.plot(it, losses, color="C0", alpha=0.25, linewidth=0.8, label="per iteration")
    ax.plot(it, smooth(losses, smoothing), color="C0", linewidth=2, label=f"smoothed (EMA {smoothing:g})")
    ax.set(xlabel="iteration", ylabel="loss", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _finish(fig, path)


def plot_curves(history, x: str = "epoch", ax=None, path=None, title=None):
    """Training and validation loss (left) and accuracy (right) at each evaluation.
    ``ax`` may be a pair of Axes to draw into."""
    _check_history("plot_curves", history)
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(11, 4.2), layout="constrained")
        axes = fig.subplots(1, 2)
    else:
        axes = list(ax)
        if len(axes) != 2:
            raise ValueError(f"plot_curves: ax must be a pair of Axes (loss, accuracy), got {len(axes)}")
        fig = axes[0].figure
    drawn = 0
    for a, kind in zip(axes, ("loss", "acc")):
        for split, style in (("train", "-"), ("val", "--")):
            xs, ys = series(history, f"{split}_{kind}", x)
            if xs.size:
                a.plot(xs, ys, style, marker="o", markersize=3, label="train" if split == "train" else "validation")
                drawn += 1
        a.set(xlabel=_X_LABELS[x], ylabel="loss" if kind == "loss" else "accuracy",
              title="Loss" if kind == "loss" else "Accuracy")
        _percent_axis(a, f"_{kind}")
        a.grid(alpha=0.3)
        if a.lines:
            a.legend()
    if drawn == 0:
        raise ValueError("plot_curves: the history's 'eval' records have no train/val loss or accuracy")
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


# -- several runs --------------------------------------------------------------

def _groups(fn: str, runs) -> dict:
    """Normalise ``runs`` to ``{label: [history, ...]}``."""
    if isinstance(runs, dict) and "eval" not in runs and "iteration_loss" not in runs:
        groups = {str(k): (list(v) if isinstance(v, (list, tuple)) else [v]) for k, v in runs.items()}
    elif isinstance(runs, (list, tuple)):
        groups = {"": list(runs)}
    else:
        groups = {"": [runs]}
    if not groups or any(len(v) == 0 for v in groups.values()):
        raise ValueError(f"{fn}: expected histories, a list of histories or {{label: histories}}, got an empty group")
    return groups


def _mean_std(fn: str, label: str, histories, metric: str, x: str, smoothing: float):
    """Mean and standard deviation over runs, on the x values they share."""
    curves = [series(h, metric, x, smoothing) for h in histories]
    n = min(len(xs) for xs, _ in curves)
    if n == 0:
        raise ValueError(f"{fn}: a run{f' of {label!r}' if label else ''} has no {metric!r} values")
    xs = curves[0][0][:n]
    for other, _ in curves[1:]:
        if not np.allclose(other[:n], xs):
            raise ValueError(f"{fn}: runs{f' of {label!r}' if label else ''} were evaluated at different {x} values; cannot average them")
    ys = np.stack([c[1][:n] for c in curves])
    return xs, ys.mean(axis=0), ys.std(axis=0), len(curves)


def plot_runs(runs, metric: str = "val_acc", x: str = "epoch", smoothing: float = 0.9,
              ax=None, path=None, title=None, colors=None):
    """Mean +- one standard deviation over several runs (e.g. seeds) of one metric.

    ``runs`` is a list of histories (one group) or ``{label: [history, ...]}``
    (one band per label). Runs in a group are cut to the shortest and must share
    their x values. ``metric`` is ``'iteration_loss'`` (smoothed, against the
    iteration) or an eval metric against ``x``.
    """
    groups = _groups("plot_runs", runs)
    fig, ax = _figure(ax)
    for i, (label, histories) in enumerate(groups.items()):
        xs, mean, std, n = _mean_std("plot_runs", label, histories, metric, x, smoothing)
        color = colors[i] if colors is not None else f"C{i % 10}"
        if n == 1:
            name = label
        else:
            name = f"{label} (mean of {n} runs)" if label else f"mean of {n} runs"
        # a curve of one point (a run with a single evaluation) is drawn as its marker
        ax.plot(xs, mean, color=color, linewidth=2, label=name or None, marker="o" if len(xs) == 1 else None)
        ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
    ax.set(xlabel="iteration" if metric == "iteration_loss" else _X_LABELS.get(x, x),
           ylabel=_METRIC_LABELS.get(metric, metric),
           title=title or f"{_METRIC_LABELS.get(metric, metric).capitalize()}: mean \u00b1 std over runs")
    _percent_axis(ax, metric)
    ax.grid(alpha=0.3)
    if any(line.get_label() and not line.get_label().startswith("_") for line in ax.lines):
        ax.legend()
    return _finish(fig, path)


def plot_learning_rates(results, metric: str = "iteration_loss", x: str = "epoch", smoothing: float = 0.9,
                        ax=None, path=None, title=None):
    """One curve per learning rate on a shared axis, coloured from low to high.
    ``results`` is ``{lr: history}`` or ``{lr: [history, ...]}`` (then a band
    of +- one standard deviation)."""
    if not isinstance(results, dict) or not results:
        raise ValueError("plot_learning_rates: expected a non-empty dict {learning_rate: history or [histories]}")
    try:
        rates = sorted(results, key=float)
    except (TypeError, ValueError):
        raise ValueError(f"plot_learning_rates: keys must be learning rates (numbers), got {list(results)}") from None
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    colors = [cmap(0.9 * i / max(1, len(rates) - 1)) for i in range(len(rates))]
    runs = {f"lr={float(r):g}": results[r] for r in rates}
    return plot_runs(runs, metric, x, smoothing, ax=ax, path=path, colors=colors,
                     title=title or f"{_METRIC_LABELS.get(metric, metric).capitalize()} by learning rate")


# -- images and confusion matrix --------------------------------------------------

def _as_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1] in (1, 3):
        images = images.transpose(0, 2, 3, 1)
        return images[..., 0] if images.shape[-1] == 1 else images
    if images.ndim == 3:
        return images
    raise ValueError(f"plot_images: expected images (N, H, W), (N, 1, H, W) or (N, 3, H, W), got shape {images.shape}")


def plot_images(images, y_true, y_pred=None, class_names=None, ncols: int = 8, max_images: int = 64,
                path=None, title=None):
    """A grid of images titled with their true label and, when ``y_pred`` is
    given, the predicted label; mistakes have a red title and frame."""
    imgs = _as_images(images)
    y_true = np.asarray(y_true)
    if len(y_true) != len(imgs):
        raise ValueError(f"plot_images: got {len(imgs)} images but {len(y_true)} labels")
    if y_pred is not None:
        y_pred = np.asarray(y_pred)
        if len(y_pred) != len(imgs):
            raise ValueError(f"plot_images: got {len(imgs)} images but {len(y_pred)} predictions")
    n = min(len(imgs), max_images)
    if n == 0:
        raise ValueError("plot_images: got no images")

    def names(c):
        return display_name(class_names[int(c)]) if class_names is not None else str(int(c))

    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.35 * ncols, 1.55 * nrows + (0.4 if title else 0)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    lo, hi = float(imgs[:n].min()), float(imgs[:n].max())
    for i, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.set_axis_off()
            continue
        ax.imshow(imgs[i], cmap="gray" if imgs.ndim == 3 else None, vmin=lo, vmax=hi)
        if y_pred is None:
            ax.set_title(names(y_true[i]), fontsize=8)
            continue
        wrong = y_true[i] != y_pred[i]
        ax.set_title(f"true: {names(y_true[i])}\npred: {names(y_pred[i])}", fontsize=7,
                     color=_RED if wrong else "black")
        for spine in ax.spines.values():
            spine.set_color(_RED if wrong else "0.8")
            spine.set_linewidth(2.5 if wrong else 0.5)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def plot_confusion_matrix(matrix, class_names=None, normalize: bool = False, ax=None, path=None,
                          title="Confusion matrix"):
    """The confusion matrix (rows: true class, columns: predicted class) with
    every count written in its cell. ``normalize=True`` colours each cell by
    its fraction of the row (the per-class recall on the diagonal). Class names
    are shown as :func:`handgrad.metrics.display_name` spells them."""
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"plot_confusion_matrix: expected a square (C, C) matrix, got shape {m.shape}")
    c = m.shape[0]
    names = [display_name(n) for n in class_names] if class_names is not None else [str(i) for i in range(c)]
    if len(names) != c:
        raise ValueError(f"plot_confusion_matrix: {len(names)} class names for a {c}x{c} matrix")
    shade = m / np.maximum(m.sum(axis=1, keepdims=True), 1) if normalize else m
    size = max(4.5, 0.55 * c + 2)
    fig, ax = _figure(ax, figsize=(size + 1, size))
    im = ax.imshow(shade, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax, label="fraction of the true class" if normalize else "count", shrink=0.8)
    threshold = shade.max() / 2
    fontsize = 9 if c <= 10 else 7
    for i in range(c):
        for j in range(c):
            ax.text(j, i, f"{m[i, j]:g}", ha="center", va="center", fontsize=fontsize,
                    color="white" if shade[i, j] > threshold else "black")
    ax.set_xticks(range(c), names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(c), names)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    return _finish(fig, path)


# -- summary tables -------------------------------------------------------------

def _table(results):
    """``(models, settings, cells, best)`` from ``{model: {setting: accuracy or [accuracies]}}``."""
    if not isinstance(results, dict) or not results or not all(isinstance(v, dict) for v in results.values()):
        raise ValueError("summary table: expected {model: {setting: accuracy or [accuracies]}}")
    models = [str(m) for m in results]
    settings = []
    for row in results.values():
        settings += [str(s) for s in row if str(s) not in settings]
    means = np.full((len(models), len(settings)), np.nan)
    cells = [["\u2013"] * len(settings) for _ in models]
    for i, row in enumerate(results.values()):
        for s, v in row.items():
            j = settings.index(str(s))
            values = np.atleast_1d(np.asarray(v, dtype=np.float64))
            if values.size == 0:
                continue
            means[i, j] = values.mean()
            cells[i][j] = f"{100 * values.mean():.2f}%" + (f" \u00b1 {100 * values.std():.2f}" if values.size > 1 else "")
    best = np.zeros_like(means, dtype=bool)
    for j in range(len(settings)):
        if not np.isnan(means[:, j]).all():
            best[:, j] = means[:, j] == np.nanmax(means[:, j])
    return models, settings, cells, best


def summary_table(results) -> str:
    """Final accuracies of models (rows) under settings (columns) as aligned
    text; a list of accuracies (several seeds) shows as mean +- std."""
    models, settings, cells, _ = _table(results)
    header = ["model"] + settings
    rows = [[m] + r for m, r in zip(models, cells)]
    widths = [max(len(r[k]) for r in [header] + rows) for k in range(len(header))]

    def fmt(row):
        return "  ".join(f"{c:<{w}}" if k == 0 else f"{c:>{w}}" for k, (c, w) in enumerate(zip(row, widths)))

    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])


def summary_table_html(results) -> str:
    """The summary table as an HTML ``<table>``; the best cell of each column is bold."""
    models, settings, cells, best = _table(results)
    head = "<tr><th>model</th>" + "".join(f"<th>{html.escape(s)}</th>" for s in settings) + "</tr>"
    body = []
    for i, m in enumerate(models):
        tds = "".join(f"<td><b>{html.escape(c)}</b></td>" if best[i, j] else f"<td>{html.escape(c)}</td>"
                      for j, c in enumerate(cells[i]))
        body.append(f"<tr><th>{html.escape(m)}</th>{tds}</tr>")
    return f'<table class="summary">\n<thead>{head}</thead>\n<tbody>\n' + "\n".join(body) + "\n</tbody>\n</table>"


def plot_summary_table(results, ax=None, path=None, title="Final accuracy"):
    """The summary table drawn as a figure; the best cell of each column is bold."""
    models, settings, cells, best = _table(results)
    fig, ax = _figure(ax, figsize=(max(4.0, 1.0 + 1.6 * (len(settings) + 1)), 0.7 + 0.35 * (len(models) + 1)))
    ax.set_axis_off()
    table = ax.table(cellText=cells, rowLabels=models, colLabels=settings, loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    table.scale(1, 1.5)
    for (i, j), cell in table.get_celld().items():
        if i == 0 or j == -1:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#eeeeee")
        elif best[i - 1, j]:
            cell.set_text_props(weight="bold")
    ax.set_title(title)
    return _finish(fig, path)


# -- classifiers in the plane -------------------------------------------------

def plot_decision_boundary(predict, X, y, boundary=None, resolution: int = 200, max_points: int = 2000,
                           class_names=None, ax=None, path=None, title="Decision boundary"):
    """The classes ``predict`` assigns over the plane (shaded regions) with the data on top.

    ``predict`` maps points (M, 2) to class labels (M,); it is evaluated on a
    ``resolution`` x ``resolution`` grid over the box around ``X`` (N, 2), so the
    edge between shaded regions is the model's decision boundary. At most
    ``max_points`` points of ``(X, y)`` are drawn (the first ones), coloured by
    their true class. ``boundary``, if given, is a function g(x1, x2) of two grid
    arrays whose zero level set is the true boundary, drawn dashed.
    """
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary: X must be points (N, 2), got shape {X.shape}")
    if len(y) != len(X):
        raise ValueError(f"plot_decision_boundary: got {len(X)} points but {len(y)} labels")
    lo, hi = X.min(axis=0), X.max(axis=0)
    margin = 0.05 * (hi - lo)
    g1, g2 = np.meshgrid(np.linspace(lo[0] - margin[0], hi[0] + margin[0], resolution),
                         np.linspace(lo[1] - margin[1], hi[1] + margin[1], resolution))
    regions = np.asarray(predict(np.stack([g1.ravel(), g2.ravel()], axis=1))).reshape(g1.shape)
    classes = np.union1d(np.unique(y), np.unique(regions)).astype(int)
    fig, ax = _figure(ax, figsize=(5.6, 5.0))
    from matplotlib.colors import ListedColormap

    colours = [f"C{c % 10}" for c in range(classes.max() + 1)]
    levels = np.arange(classes.max() + 2) - 0.5
    ax.contourf(g1, g2, regions, levels=levels, cmap=ListedColormap(colours), alpha=0.25)
    shown = slice(0, max_points)
    for c in classes:
        mine = y[shown] == c
        label = str(class_names[c]) if class_names is not None else f"class {c}"
        ax.scatter(X[shown][mine, 0], X[shown][mine, 1], s=6, color=colours[c], label=label)
    if boundary is not None:
        ax.contour(g1, g2, boundary(g1, g2), levels=[0.0], colors="black", linestyles="dashed", linewidths=1.5)
        ax.plot([], [], color="black", linestyle="dashed", label="true boundary")
    ax.set(xlabel="$x_1$", ylabel="$x_2$", title=title)
    ax.legend(loc="upper right", fontsize=8)
    return _finish(fig, path)
