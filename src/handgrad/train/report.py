"""What a run leaves on disk: metrics, plots and an HTML report.

A run directory holds::

    config.json          the resolved configuration
    metrics.jsonl        one JSON line per evaluation (the history's "eval" records)
    checkpoint.npz       the latest checkpoint, with the config (handgrad train --resume continues from it)
    model.npz            the best model (handgrad.io.load_model rebuilds it)
    results.json         test accuracy and loss, best validation accuracy, wall time
    classification_report.txt / .json
    plots/loss.png, plots/curves.png, plots/confusion_matrix.png, plots/predictions.png
    report.html          all of it on one page
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from ..atomic import write_json, write_text
from ..htmlpage import write_page
from ..plots import NO_MATPLOTLIB, can_plot
from .build import sample_indices


def write_metrics(path, history: dict) -> None:
    """Rewrite ``metrics.jsonl`` from the history (so a resumed run never repeats lines)."""
    write_text(path, "".join(json.dumps(record) + "\n" for record in history["eval"]))


def is_image_batch(X) -> bool:
    return X.ndim == 4 and X.shape[1] in (1, 3) or X.ndim == 3


def write_evaluation(out: Path, X, y, pred, class_names, title: str) -> dict:
    """Accuracy, classification report, confusion matrix and a predictions grid for
    one labelled set; returns ``{"accuracy", "report": Report, "plots": [names]}``."""
    from .. import plots
    from ..metrics import accuracy, classification_report, confusion_matrix

    out.mkdir(parents=True, exist_ok=True)
    flat_y, flat_pred = np.ravel(y), np.ravel(pred)
    report = classification_report(flat_y, flat_pred, class_names=class_names)
    write_text(out / "classification_report.txt", str(report) + "\n")
    write_json(out / "classification_report.json", report.to_dict())
    result = {"accuracy": accuracy(flat_y, flat_pred), "report": report, "plots": []}
    if not can_plot():
        return result
    matrix = confusion_matrix(flat_y, flat_pred, num_classes=len(class_names))
    names = result["plots"]
    (out / "plots").mkdir(exist_ok=True)
    names.append("plots/confusion_matrix.png")
    plots.plot_confusion_matrix(matrix, class_names, path=out / names[0], title=f"Confusion matrix ({title})")
    if is_image_batch(X) and np.ndim(y) == 1:
        idx = sample_indices(len(X))
        names.append("plots/predictions.png")
        plots.plot_images(X[idx], y[idx], pred[idx], class_names, path=out / names[-1],
                          title=f"Sample predictions ({title})")
    return result


def write_curves(out: Path, history: dict) -> list:
    if not can_plot():
        return []
    from .. import plots

    (out / "plots").mkdir(parents=True, exist_ok=True)
    plots.plot_loss(history, path=out / "plots/loss.png")
    names = ["plots/loss.png"]
    if history["eval"]:
        plots.plot_curves(history, path=out / "plots/curves.png")
        names.append("plots/curves.png")
    return names


def write_html(path, title: str, facts: dict, sections: list) -> None:
    """A self-contained page: ``facts`` as a definition list, then ``sections`` of
    ``(heading, html)``; images are referenced by relative path."""
    items = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts.items())
    body = "".join(f"<h2>{html.escape(h)}</h2>\n{content}\n" for h, content in sections)
    write_page(path, title, f"<dl>{items}</dl>\n{body}")


def images_html(names) -> str:
    if not can_plot():
        return f"<p>{html.escape(NO_MATPLOTLIB)}</p>"
    return "".join(f'<img src="{html.escape(n)}" alt="{html.escape(n)}">' for n in names)


def pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"
