"""Learning-curve figures of a sweep, drawn with :mod:`handgrad.plots`.

Each run's result carries its ``history`` in the format documented in
``handgrad/plots.py`` (``eval`` records with ``samples``, ``train_acc``,
``val_acc``, ...). For every metric the runs report (train, validation and test
accuracy; the losses when there are no accuracies) one figure shows every
setting as a mean +- std band over its seeds, all on the same axes, so settings
compare at a glance. With ``[sweep] facet``, per-setting panels are also
arranged in one grid with a shared y axis: a row per facet value, a column per
setting in it.
"""
from __future__ import annotations


CURVE_METRICS = (("train_acc", "train", "C0"), ("val_acc", "validation", "C1"), ("test_acc", "test", "C2"))
LOSS_METRICS = (("train_loss", "train", "C0"), ("val_loss", "validation", "C1"))


def _histories(results: list, setting: int) -> list:
    return [r["result"]["history"] for r in results if r["setting_index"] == setting
            and isinstance(r["result"], dict) and isinstance(r["result"].get("history"), dict)]


def _has(histories: list, metric: str) -> bool:
    return all(any(e.get(metric) is not None for e in h.get("eval", [])) for h in histories)


def _x_axis(histories: list) -> str:
    return "samples" if all("samples" in e for h in histories for e in h.get("eval", [])) else "epoch"


def draw_setting(ax, histories: list, title: str) -> None:
    """Mean +- std bands of the accuracies (losses when there are none) of ``histories``."""
    from ..plots import plot_runs

    metrics = [m for m in CURVE_METRICS if _has(histories, m[0])] or [m for m in LOSS_METRICS if _has(histories, m[0])]
    if not metrics:
        raise ValueError("the runs' histories have no train/val accuracy or loss evaluations")
    x = _x_axis(histories)
    for metric, name, color in metrics:
        plot_runs({name: histories}, metric=metric, x=x, ax=ax, colors=[color], title=title)
    for line in ax.lines:  # a run evaluated once is a single point: show it
        line.set(marker="o", markersize=3)
    ax.set_ylabel("accuracy" if metrics[0][0].endswith("_acc") else "loss")
    ax.title.set_fontsize(9)


def metric_names(results: list) -> list:
    """The curve metrics every history of ``results`` has: the accuracies, else the losses."""
    histories = [r["result"]["history"] for r in results
                 if isinstance(r["result"], dict) and isinstance(r["result"].get("history"), dict)]
    if not histories:
        return []
    found = [m for m, _, _ in CURVE_METRICS if _has(histories, m)]
    return found or [m for m, _, _ in LOSS_METRICS if _has(histories, m)]


def facet_figure(out_dir, groups: dict, results: list, keys: list, label) -> tuple | None:
    """Write ``curves/facets.png``: one row per facet value (``groups``: name -> rows),
    one panel per setting in it. Returns ``(relative path, caption)`` or None."""
    from matplotlib.figure import Figure

    from ..plots import save_figure

    ncols = max(len(g) for g in groups.values())
    fig = Figure(figsize=(4.2 * ncols, 3.2 * len(groups)), layout="constrained")
    axes = fig.subplots(len(groups), ncols, squeeze=False, sharey=True)
    drawn = 0
    for i, (name, group) in enumerate(groups.items()):
        for j in range(ncols):
            ax = axes[i][j]
            histories = _histories(results, group[j]["setting"]) if j < len(group) else []
            if not histories:
                ax.set_axis_off()
                continue
            try:
                draw_setting(ax, histories, f"{name}\n{label(group[j]['overrides'], keys)}")
                drawn += 1
            except ValueError:
                ax.set_axis_off()
    if not drawn:
        return None
    save_figure(fig, out_dir / "curves" / "facets.png")
    return "curves/facets.png", f"learning curves by {' / '.join(keys)} (mean ± std over seeds)"


def compare_figure(out_dir, rows: list, results: list, metric: str, label) -> tuple:
    """Write ``curves/compare-<metric>.png``: every setting's mean +- std band of ``metric``
    on the same axes (colour-ordered by learning rate when only ``lr`` varies)."""
    from ..plots import plot_learning_rates, plot_runs

    groups = {row["setting"]: _histories(results, row["setting"]) for row in rows}
    shown = [row for row in rows if groups[row["setting"]]]
    if not shown:
        raise ValueError("no finished run has a history")
    x = _x_axis([h for hs in groups.values() for h in hs])
    path = f"curves/compare-{metric}.png"
    if all(list(row["overrides"]) == ["lr"] for row in shown):
        plot_learning_rates({row["overrides"]["lr"]: groups[row["setting"]] for row in shown}, metric=metric, x=x,
                            path=out_dir / path)
    else:
        plot_runs({label(row["overrides"]): groups[row["setting"]] for row in shown}, metric=metric, x=x,
                  path=out_dir / path)
    return path, f"{metric} of every setting (mean ± std over seeds)"
