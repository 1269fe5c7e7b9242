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

from ..atomic import atomic_file
from .build import sample_indices


def write_json(path, obj) -> None:
    with atomic_file(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def write_metrics(path, history: dict) -> None:
    """Rewrite ``metrics.jsonl`` from the history (so a resumed run never repeats lines)."""
    with atomic_file(path, "w") as f:
        for record in history["eval"]:
            f.write(json.dumps(record) + "\n")


def is_image_batch(X) -> bool:
    return X.ndim == 4 and X.shape[1] in (1, 3) or X.ndim == 3


NO_MATPLOTLIB = 'plots skipped: matplotlib is not installed (pip install "handgrad[plots]")'


def can_plot() -> bool:
    """Whether matplotlib is installed; without it a run still writes everything but the PNGs."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_evaluation(out: Path, X, y, pred, class_names, title: str) -> dict:
    """Accuracy, classification report, confusion matrix and a predictions grid for
    one labelled set; returns ``{"accuracy", "report": Report, "plots": [names]}``."""
    from .. import plots
    from ..metrics import accuracy, classification_report, confusion_matrix

    out.mkdir(parents=True, exist_ok=True)
    flat_y, flat_pred = np.ravel(y), np.ravel(pred)
    report = classification_report(flat_y, flat_pred, class_names=class_names)
    with atomic_file(out / "classification_report.txt", "w") as f:
        f.write(str(report) + "\n")
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


_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{padding:.2rem .7rem;text-align:right;border-bottom:1px solid #ddd}
tr.summary th,tr.summary td{font-weight:600}pre{background:#f6f6f6;padding:1rem;overflow-x:auto}
img{max-width:100%;display:block;margin:1rem 0}dt{font-weight:600}"""


def write_html(path, title: str, facts: dict, sections: list) -> None:
    """A self-contained page: ``facts`` as a definition list, then ``sections`` of
    ``(heading, html)``; images are referenced by relative path."""
    items = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts.items())
    body = "".join(f"<h2>{html.escape(h)}</h2>\n{content}\n" for h, content in sections)
    page = (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head>\n<body><h1>{html.escape(title)}</h1>\n<dl>{items}</dl>\n{body}</body></html>\n")
    with atomic_file(path, "w") as f:
        f.write(page)


def images_html(names) -> str:
    if not can_plot():
        return f"<p>{html.escape(NO_MATPLOTLIB)}</p>"
    return "".join(f'<img src="{html.escape(n)}" alt="{html.escape(n)}">' for n in names)


def pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"
