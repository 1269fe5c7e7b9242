"""Sweeps: train many settings x seeds, in parallel, and report what each achieved.

    from handgrad.sweep import run_sweep, load_spec
    summary = run_sweep(load_spec("experiments/classic.toml"), "runs/classic", n_jobs=2)

The same call runs on a Dask cluster with ``scheduler="tcp://host:8786"`` or
``client=dask.distributed.Client(...)``. ``space`` expands a spec into runs,
``execute`` runs them, ``runner`` keeps the sweep directory (resume), and
``report`` writes the tables, the figures and ``index.html``.
"""
from .report import write_report
from .runner import load_runs, load_spec, print_progress, run_sweep, train_or_resume
from .space import Run, expand, settings

__all__ = ["Run", "expand", "load_runs", "load_spec", "print_progress", "run_sweep", "settings", "train_or_resume",
           "write_report"]
