"""What a run leaves on disk: metrics, plots and an HTML report.

A run directory holds::

    config.json          the resolved configuration
    metrics.jsonl        one JSON line per evaluation (the history's "eval" records)
    checkpoint.npz       the latest checkpoint, with the config (handgrad train --resume continues from it)
    model.npz            the best model (handgrad.io.load_model rebuilds it)
    results.json         test accuracy and loss, best validation accuracy, wall time
    classification_report.txt / .json
    confusions.csv       the most frequent mistakes (true, predicted, count), when there are
                         too many classes for a readable confusion matrix
    sample.txt           for a character model: text it generated, primed with the test text
    plots/loss.png, plots/curves.png, plots/confusion_matrix.png, plots/predictions.png
    report.html          all of it on one page

Class names are shown as :func:`handgrad.metrics.display_name` spells them (a
newline class as ``\n``, a space as ``\u2423``).
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from ..atomic import atomic_file, write_json, write_text
from ..htmlpage import write_page
from ..plots import NO_MATPLOTLIB, can_plot
from .build import sample_indices


def write_metrics(path, history: dict) -> None:
    """Rewrite ``metrics.jsonl`` from the history (so a resumed run never repeats lines)."""
    write_text(path, "".join(json.dumps(record) + "\n" for record in history["eval"]))


def is_image_batch(X) -> bool:
    return X.ndim == 4 and X.shape[1] in (1, 3) or X.ndim == 3


MAX_MATRIX_CLASSES = 30  # beyond this a confusion matrix cannot be read: its top cells are listed instead
TOP_CONFUSIONS = 20
SAMPLE_PRIME, SAMPLE_LENGTH, SAMPLE_SEED = 60, 300, 0  # a character model's sample in the report


def write_confusions(path, confusions) -> None:
    """``confusions.csv``: true class, predicted class, count (class names as displayed)."""
    import csv

    from ..metrics import display_name

    with atomic_file(path, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["true", "predicted", "count"])
        writer.writerows((display_name(t), display_name(p), n) for t, p, n in confusions)


def confusions_html(confusions) -> str:
    from ..metrics import display_name

    rows = "".join(f"<tr><td>{html.escape(display_name(t))}</td><td>{html.escape(display_name(p))}</td>"
                   f"<td>{n}</td></tr>" for t, p, n in confusions)
    return (f"<p>The {len(confusions)} most frequent confusions (too many classes for a readable "
            f"confusion matrix):</p>\n<table class=\"confusions\"><thead><tr><th>true</th><th>predicted</th>"
            f"<th>count</th></tr></thead><tbody>{rows}</tbody></table>")


def write_evaluation(out: Path, X, y, pred, class_names, title: str) -> dict:
    """Accuracy, classification report, confusion matrix and a predictions grid for
    one labelled set; returns ``{"accuracy", "report": Report, "plots": [names],
    "confusions"}``. With more than :data:`MAX_MATRIX_CLASSES` classes the matrix is
    not drawn; ``confusions`` then lists its :data:`TOP_CONFUSIONS` largest
    off-diagonal cells ``(true, predicted, count)`` (also in ``confusions.csv``),
    else it is None."""
    from .. import plots
    from ..metrics import accuracy, classification_report, confusion_matrix, top_confusions

    out.mkdir(parents=True, exist_ok=True)
    flat_y, flat_pred = np.ravel(y), np.ravel(pred)
    report = classification_report(flat_y, flat_pred, class_names=class_names)
    write_text(out / "classification_report.txt", str(report) + "\n")
    write_json(out / "classification_report.json", report.to_dict())
    result = {"accuracy": accuracy(flat_y, flat_pred), "report": report, "plots": [], "confusions": None}
    matrix = confusion_matrix(flat_y, flat_pred, num_classes=len(class_names))
    if len(class_names) > MAX_MATRIX_CLASSES:
        result["confusions"] = top_confusions(matrix, class_names, TOP_CONFUSIONS)
        write_confusions(out / "confusions.csv", result["confusions"])
    if not can_plot():
        return result
    names = result["plots"]
    (out / "plots").mkdir(exist_ok=True)
    if result["confusions"] is None:
        names.append("plots/confusion_matrix.png")
        plots.plot_confusion_matrix(matrix, class_names, path=out / names[-1], title=f"Confusion matrix ({title})")
    if is_image_batch(X) and np.ndim(y) == 1:
        idx = sample_indices(len(X))
        names.append("plots/predictions.png")
        plots.plot_images(X[idx], y[idx], pred[idx], class_names, path=out / names[-1],
                          title=f"Sample predictions ({title})")
    return result


def text_sample(model, chars, test_inputs) -> tuple:
    """``(prime, generated)``: :data:`SAMPLE_LENGTH` characters a character model
    (``model.sample``) writes after the first :data:`SAMPLE_PRIME` characters of the
    test text (``test_inputs``: the ids of its streams, the first stream first),
    sampled at temperature 1 with seed :data:`SAMPLE_SEED` (``handgrad generate`` with
    that prime and ``--seed 0`` writes the same)."""
    from ..backend import to_numpy

    prime = [int(i) for i in np.ravel(to_numpy(test_inputs)[0])[:SAMPLE_PRIME]]
    ids = model.sample(prime, SAMPLE_LENGTH, rng=SAMPLE_SEED)
    return "".join(chars[i] for i in prime), "".join(chars[int(i)] for i in ids)


def sample_html(prime: str, generated: str) -> str:
    return (f"<p>{len(generated)} characters sampled by the model (temperature 1, seed {SAMPLE_SEED}) after "
            f"the first {len(prime)} characters of the test text, shown in bold (also in sample.txt):</p>\n"
            f"<pre class=\"sample\"><b>{html.escape(prime)}</b>{html.escape(generated)}</pre>")


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


def write_run(out: Path, cfg, dataset, model, test, result: dict, test_predictions, data_identity: dict) -> None:
    """Everything a finished run leaves besides the manifest and the checkpoint:
    ``model.npz``, metrics, results, the test set's evaluation, plots and ``report.html``.
    ``test_predictions`` are the Trainer's predictions on ``test`` (the test set is
    predicted once per run); ``data_identity`` (see
    :func:`handgrad.train.build.data_identity`) lets ``evaluate`` and ``predict``
    warn when the data changed."""
    from ..data.loader import BatchSource
    from ..io import save_model
    from ..summary import summary
    from .build import data_options
    from .config import RECIPES

    streams = isinstance(test, BatchSource) and test.continues
    save_model(out / "model.npz", model, {
        "model": cfg["model"], "model_kwargs": cfg.to_dict()["model_kwargs"], "data": cfg["data"],
        "classes": list(dataset.classes), "input_shape": list(dataset.input_shape),
        "seed": cfg["seed"], "data_kwargs": data_options(cfg), "test_accuracy": result["test_accuracy"],
        # a stateful model's held-out text is read as this many streams (handgrad evaluate does the same)
        "streams": test.batch_size if streams else None,
        "config_fingerprint": cfg.fingerprint(), "data_identity": data_identity,
        "input_scale": dataset.input_scale,
    })
    write_metrics(out / "metrics.jsonl", result["history"])
    write_json(out / "results.json",
               {k: result[k] for k in ("test_accuracy", "test_loss", "best_val_accuracy", "wall_time", "seconds",
                                       "resumed")})
    # on streams: the next-character prediction at every position of the test text
    X, y = (test.inputs, test.targets) if streams else test
    evaluation = write_evaluation(out, X, y, test_predictions, list(dataset.classes), f"{dataset.name} test set")
    sample = []
    if streams and hasattr(model, "sample"):
        prime, generated = text_sample(model, list(dataset.classes), X)
        write_text(out / "sample.txt", prime + generated)
        sample = [("Generated text", sample_html(prime, generated))]
    confusions = confusions_html(evaluation["confusions"]) if evaluation["confusions"] else ""
    curves = write_curves(out, result["history"])
    table = str(summary(model, dataset.input_shape, print_table=False))
    recipe = [name for name in (f"data {cfg['data']}", f"model {cfg['model']}") if name in RECIPES]
    write_html(out / "report.html", f"handgrad run: {cfg['model']} on {dataset.name}", {
        "test accuracy": f"{result['test_accuracy']:.4f}",
        "test loss": f"{result['test_loss']:.4f}",
        "best validation accuracy": "n/a" if result["best_val_accuracy"] is None
        else f"{result['best_val_accuracy']:.4f}",
        "wall time": f"{result['wall_time']:.1f} s" + (" (this session)" if result["resumed"] else ""),
        "training time" if result["resumed"] else "of which":
            ", ".join(f"{phase} {t:.1f} s" for phase, t in result["seconds"].items())
            + (" (every session, each up to its last checkpoint)" if result["resumed"] else ""),
        "epochs": cfg["epochs"], "optimizer": f"{cfg['optimizer']} (lr {cfg['lr']:g}, momentum {cfg['momentum']:g})"
        if cfg["optimizer"] == "sgd" else f"{cfg['optimizer']} (lr {cfg['lr']:g})",
        "learning-rate decay": "none" if cfg["lr_decay"] is None else f"x{cfg['lr_decay']:g} per epoch",
        "batch size": cfg["batch_size"], "seed": cfg["seed"], "workers": cfg["workers"],
        "recipe": ", ".join(recipe) if cfg["recipe"] == "default" and recipe else "none",
    }, [
        ("Learning curves", images_html(curves)),
        *sample,
        ("Test set", evaluation["report"].to_html() + confusions + images_html(evaluation["plots"])),
        ("Model", pre(table)),
        ("Configuration (every value used; config.toml)", pre(cfg.to_toml())),
    ])
