"""The Trainer: the classic "Solver" that runs the optimisation loop.

One training iteration on a batch (x, y) is the textbook step, :meth:`Trainer._step`::

    out  = net(x)                    forward pass
    L    = loss(out, y)              scalar loss
    optimizer.zero_grad()
    net.backward(loss.backward())    dL/dparams ADDED into p.grad
    optimizer.step()                 the only place weights change

``net`` is the model itself, or with ``workers > 1`` a
:class:`~handgrad.parallel.DataParallel` wrapper of it whose forward and backward
share the batch's rows between processes; nothing else of the loop changes.
In one process, steps of small matrix products (an MLP at a small batch) run
on one BLAS thread, faster than on all (see :mod:`handgrad.parallel.threads`).

Around it the Trainer evaluates on the validation set (every epoch, or every
``eval_every`` training samples, and before the first update with
``eval_at_start``), keeps the weights with the best validation accuracy (for a
loss that does not classify, such as MSE, see ``Module.classifies``: the lowest
validation loss) and puts them back at the end, stops early when that has not
improved for ``patience`` evaluations, decays the learning rate, writes checkpoints, and stops
with :class:`TrainingDiverged` as soon as the output or the loss is NaN or inf.

Stateful models (truncated BPTT). A model that declares ``carries_state`` (a
:class:`~handgrad.nn.Stateful`, e.g. ``CharLSTM(stateful=True)``) carries its
final recurrent state from one training batch to the next, which is right when
the batch source's batches continue each other row by row (``continues``, a
:class:`~handgrad.data.text.StreamLoader`). The Trainer calls the model's own
``reset_state()`` at the start of every epoch (the streams start again; a no-op
for other models), leaves the state alone during evaluations and saves it in
every checkpoint (``get_state()`` / ``set_state()``). Validation and test data may
be streams too: they are read with the state carried from chunk to chunk,
starting from zeros (see :func:`handgrad.train.evaluate.evaluate`).

Exact resume. A checkpoint holds the model, optimizer and schedule states, the
state of the global handgrad generator (dropout draws from it), the batch
source's state at the start of the current epoch and how many of that epoch's
batches are done, the model's carried state, the history and every counter.
``fit(resume_from=path)`` rebuilds all of it and skips the batches already
trained on, so a run killed at any moment and resumed from its last checkpoint
produces the same per-iteration losses and bitwise the same weights as a run
never interrupted.

The Trainer is generic: batches are whatever the source yields as ``(x, y)``,
the loss is any module with ``forward(out, y) -> float``, ``backward()`` and
``reduction``, and accuracy is the argmax of the outputs over the last axis, so
a sequence model with (N, T, C) outputs and (N, T) labels trains unchanged.

History format (what :mod:`handgrad.plots` draws)::

    {"iteration_loss": [float, ...],             one per training iteration
     "eval": [{"epoch": float,                   epochs done (a fraction inside an epoch)
               "iteration": int, "samples": int, optimizer steps, training samples seen
               "train_loss", "train_acc",        on the fixed train subset
               "val_loss", "val_acc"}, ...]}     None when there is no val set
"""
from __future__ import annotations

import copy
import math
import time
from collections import Counter
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

from .. import backend
from ..backend import array_module, device_module, to_device, to_scalar
from ..data.loader import BatchSource, DataLoader
from ..heap import keep_freed_memory
from ..parallel import DataParallel, StepThreads, resolve_workers, steps_on_one_thread
from .checkpoint import FILENAME, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from ..optim import clip_grad_norm_
from ..validate import fraction, positive_int, positive_number
from .evaluate import evaluate
from .progress import Progress


class TrainingDiverged(RuntimeError):
    """The loss (or the model output) became NaN or inf; the message names the
    iteration and the learning rate, and where the last good checkpoint is."""


def _check_data(name, data):
    if isinstance(data, BatchSource):
        return data
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise ValueError(f"Trainer: {name} must be a pair (X, y) or a batch source, got {type(data).__name__}")
    X, y = data
    if len(X) != len(y):
        raise ValueError(f"Trainer: {name} has {len(X)} inputs but {len(y)} labels")
    if len(X) == 0:
        raise ValueError(f"Trainer: {name} is empty")
    return X, y


def get_lr(optimizer) -> float:
    """The optimizer's learning rate (``optimizer.lr``)."""
    return float(optimizer.lr)


def set_lr(optimizer, lr: float) -> None:
    optimizer.lr = lr


class Trainer:
    """Train ``model`` on ``train_data`` with ``optimizer``, minimising ``loss``.

    Args:
        model: a Module; ``model(x)`` gives outputs, ``model.backward(dout)`` gradients.
        loss: a loss module (``forward(out, y) -> float``, ``backward() -> dout``).
        optimizer: ``step()``, ``zero_grad()``, ``state_dict()``, ``load_state_dict()``, ``lr``.
        train_data: ``(X, y)`` arrays (batched by ``handgrad.data.DataLoader``), or a
            :class:`~handgrad.data.BatchSource` (a DataLoader, a StreamLoader).
        val_data: ``(X, y)`` or a batch source for validation, or None.
        epochs: passes over the training data.
        batch_size: samples per training batch.
        scheduler: an object with ``step()`` (called once per epoch) and
            ``state_dict()`` / ``load_state_dict()``.
        lr_decay: the classic per-epoch multiplicative decay, ``lr <- lr * lr_decay``.
        eval_every: None to evaluate after every epoch; an int N to evaluate each time
            another N training samples have been seen, and once more at the end.
        eval_at_start: also evaluate before the first update (as the course Solver
            prints "(Epoch 0 / N)"), so the curves start at iteration 0.
        eval_train_fraction: train accuracy/loss are measured on a fixed random subset
            of this fraction of the training set (chosen once, from ``seed``), when
            ``train_data`` is arrays.
        train_eval_data: ``(X, y)`` or a batch source to measure train accuracy/loss on
            instead (e.g. streams of part of the training text when ``train_data`` is a
            loader; without it a loader's run records no train loss).
        test_data: ``(X, y)`` or a batch source evaluated once at the end with the
            restored best model (``test_accuracy``, ``test_loss``).
        eval_test: also evaluate ``test_data`` at every evaluation (``test_loss``,
            ``test_acc`` in the history), for learning curves on the test set; it
            never picks the best model.
        print_every: log a line every this many iterations (plain log mode).
        clip_grad_norm: clip the global gradient norm to this value before each step.
        patience: stop after this many evaluations without a better val accuracy (or loss).
        checkpoint_dir: write ``checkpoint.npz`` there every epoch and at each evaluation.
        seed: seeds the global generator at the start of a fresh ``fit()``, the data
            loader's shuffling and the train subset; None leaves the generator alone.
        progress: ``'auto'`` (a bar on a terminal, log lines otherwise), ``'bar'``,
            ``'log'`` or ``'none'``.
        eval_batch_size: batch size for evaluation (default: max(batch_size, 256)).
        on_eval: called as ``on_eval(trainer, record)`` after each evaluation.
        config: the run's manifest (JSON-able), saved in every checkpoint, so that
            ``handgrad evaluate`` can rebuild the model from a checkpoint alone and
            ``--resume`` can tell which run wrote it.
        device: ``'cpu'`` or ``'cuda'`` (CuPy): the model moves there, and each batch
            is moved there when it is trained on; the loss value, metrics and
            checkpoints always come back to the host.
        workers: processes that share each batch, of training and of evaluation (see
            :mod:`handgrad.parallel`); ``"auto"`` (default): one per usable core when
            the model can be split and gains from it (every zoo model but the MLP,
            on the CPU), else 1.
    """

    def __init__(self, model, loss, optimizer, train_data, val_data=None, *, epochs, batch_size,
                 scheduler=None, lr_decay=None, eval_every=None, eval_train_fraction=1.0,
                 test_data=None, eval_test=False, print_every=100, clip_grad_norm=None, patience=None,
                 checkpoint_dir=None, seed=0, progress="auto", eval_batch_size=None, on_eval=None,
                 config=None, train_eval_data=None, workers="auto", eval_at_start=False, device="cpu"):
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.device = device
        device_module(device)  # a missing CuPy or GPU is a clear error naming what to install
        if device != "cpu" and workers not in (1, "auto"):
            raise ValueError(f"Trainer: workers > 1 shares batches between CPU processes; with device "
                             f"{device!r} use workers=1")
        self._net = None  # while fit() runs: the model, or its DataParallel wrapper
        self.epochs = positive_int(epochs, "Trainer: epochs")
        self.batch_size = positive_int(batch_size, "Trainer: batch_size")
        if scheduler is not None and lr_decay is not None:
            raise ValueError("Trainer: give either scheduler or lr_decay, not both")
        if lr_decay is not None:
            fraction(lr_decay, "Trainer: lr_decay", low_open=True)
        self.scheduler, self.lr_decay = scheduler, lr_decay
        self.eval_every = None if eval_every is None else positive_int(eval_every, "Trainer: eval_every")
        self.eval_at_start = bool(eval_at_start)
        fraction(eval_train_fraction, "Trainer: eval_train_fraction", low_open=True)
        self.clip_grad_norm = None if clip_grad_norm is None else positive_number(clip_grad_norm, "Trainer: clip_grad_norm")
        self.patience = None if patience is None else positive_int(patience, "Trainer: patience")
        self.print_every = print_every
        self.seed = seed
        self.checkpoint_path = Path(checkpoint_dir) / FILENAME if checkpoint_dir is not None else None
        self.progress = Progress(progress, print_every)
        self.eval_batch_size = eval_batch_size or max(batch_size, 256)
        self.on_eval = on_eval
        self.config = config

        if isinstance(train_data, BatchSource):
            self.loader = train_data
            self.train_eval_data = None
        else:
            X, y = _check_data("train_data", train_data)
            self.loader = DataLoader((X, y), batch_size, shuffle=True, drop_last=False, seed=seed)
            n = len(X)
            keep = max(1, int(round(eval_train_fraction * n)))
            if keep < n:
                idx = np.sort(np.random.default_rng(seed).choice(n, size=keep, replace=False))
                self.train_eval_data = (X[idx], y[idx])
            else:
                self.train_eval_data = (X, y)
        if train_eval_data is not None:
            self.train_eval_data = _check_data("train_eval_data", train_eval_data)
        self.val_data = None if val_data is None else _check_data("val_data", val_data)
        self.test_data = None if test_data is None else _check_data("test_data", test_data)
        if eval_test and self.test_data is None:
            raise ValueError("Trainer: eval_test=True needs test_data")
        self.eval_test = bool(eval_test)
        # processes sharing each batch: "auto" is the usable cores when the model can be split
        self.workers = 1 if device != "cpu" else resolve_workers(model, workers)
        # in one process, the training steps of small matrix products run on one BLAS thread
        self._threads = StepThreads(steps_on_one_thread(model, getattr(self.loader, "batch_size", None),
                                                        self.workers, device))

        self.history = {"iteration_loss": [], "eval": []}
        self.epoch = 0            # completed epochs
        self.batch_in_epoch = 0   # batches of the current epoch already trained on
        self.iteration = 0        # training iterations done
        self.samples = 0          # training samples seen
        self.best_score = -math.inf  # of the best weights: validation accuracy, or minus the loss (see below)
        self.best_state = None
        self.evals_since_best = 0
        self.stopped_early = False
        self.test_accuracy = None
        self.test_loss = None
        self.test_predictions = None
        self._epoch_start_loader_state = None
        # wall time by phase, where a run's time goes: every session of it (a resumed run's
        # earlier ones up to their last checkpoint, which is what the result was computed with)
        self.seconds = Counter()

    # -- the loop ------------------------------------------------------------
    def fit(self, resume_from=None) -> dict:
        """Train; returns the history. With ``resume_from`` (a checkpoint file), continue
        the run saved there exactly as if it had never stopped."""
        self.model.to(self.device)
        self.seconds.clear()
        keep_freed_memory()  # every step allocates the same arrays: no page faults for them
        if resume_from is not None:
            self._restore(load_checkpoint(resume_from))
        elif self.seed is not None:
            backend.manual_seed(self.seed)
        self.model.train()
        # net: the model itself, or the model with each batch shared by worker processes
        # (training and evaluation batches alike)
        with (nullcontext(self.model) if self.workers == 1 else DataParallel(self.model, self.workers)) as self._net, \
                self._threads:
            if self.eval_at_start and not self.history["eval"]:
                self._eval_and_checkpoint()
            self._fit_epochs()
            if self.eval_every is not None and not self.stopped_early and self._last_eval_samples() != self.samples:
                self._eval_and_checkpoint()
            if self.best_state is not None:
                self.model.load_state_dict(self.best_state)
            if self.test_data is not None:
                self._test()
        self._net = None
        return self.history

    def _fit_epochs(self) -> None:
        batches = len(self.loader)
        while self.epoch < self.epochs and not self.stopped_early:
            if self.batch_in_epoch == 0:
                self._epoch_start_loader_state = copy.deepcopy(self.loader.state_dict())
                self.model.reset_state()  # a stateful model's streams start again
            skip = self.batch_in_epoch
            self.progress.start_epoch(self.epoch, self.epochs, batches, skip)
            try:
                for b, (xb, yb) in enumerate(self.loader):
                    if b < skip:
                        continue
                    with self._timed("training steps"):
                        self._step(to_device(xb, self.device), to_device(yb, self.device))
                    self.batch_in_epoch = b + 1
                    if self._eval_due(len(xb)):
                        self._eval_and_checkpoint()
                        if self.stopped_early:
                            break
            finally:
                self.progress.end_epoch()
            if self.stopped_early:
                break
            self._end_epoch()

    def _step(self, x, y) -> None:
        """One iteration of gradient descent on the batch (x, y): the textbook step."""
        with np.errstate(over="ignore", invalid="ignore"):  # NaN and inf are reported right below
            out = self._net(x)
            if not to_scalar(array_module(out).isfinite(out).all()):  # before the loss sees it
                self._check_finite_inputs(x)
                self._diverged("the model output contains NaN or inf")
            loss = self.loss(out, y)
            if not math.isfinite(loss):
                self._diverged(f"the loss is {loss}")
            self.optimizer.zero_grad()
            self._net.backward(self.loss.backward())
        if self.clip_grad_norm is not None:
            clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        self.optimizer.step()
        self.iteration += 1
        self.samples += len(x)
        self.history["iteration_loss"].append(loss)
        self.progress.step(self.iteration, self.epoch, loss, get_lr(self.optimizer))

    def _eval_due(self, batch_samples: int) -> bool:
        if self.eval_every is None:
            return False
        return self.samples // self.eval_every > (self.samples - batch_samples) // self.eval_every

    def _last_eval_samples(self):
        return self.history["eval"][-1]["samples"] if self.history["eval"] else None

    def _end_epoch(self) -> None:
        self.epoch += 1
        self.batch_in_epoch = 0
        if self.lr_decay is not None:
            set_lr(self.optimizer, get_lr(self.optimizer) * self.lr_decay)
        if self.scheduler is not None:
            self.scheduler.step()
        self._epoch_start_loader_state = copy.deepcopy(self.loader.state_dict())
        if self.eval_every is None:
            self._eval_and_checkpoint()
        else:
            self._checkpoint()

    # -- evaluation ----------------------------------------------------------
    def _evaluate(self, name, data):
        with self._timed(f"evaluation: {name} set"), self._threads.lifted():
            result = evaluate(self._eval_net(data), self.loss, data, self.eval_batch_size)
        if result["non_finite"]:
            self._diverged(f"the model output on the {name} set contains NaN or inf")
        return result

    def _eval_net(self, data):
        # during fit() the batches of (X, y) are shared by the workers too; streams, whose
        # state evaluation carries itself, run here
        return self._net if self._net is not None and not isinstance(data, BatchSource) else self.model

    def _test(self) -> None:
        """The test set, once, with the final (best-validation) weights."""
        with self._timed("test set (best weights)"), self._threads.lifted():
            test = evaluate(self._eval_net(self.test_data), self.loss, self.test_data, self.eval_batch_size,
                            keep_predictions=True, progress=self.progress.tracker("test set"))
        self.test_accuracy, self.test_loss = test["accuracy"], test["loss"]
        self.test_predictions = test["predictions"]
        accuracy = "" if self.test_accuracy is None else f", accuracy {self.test_accuracy:.4f}"
        self.progress.message(f"test set (best model): loss {self.test_loss:.4f}{accuracy}")

    def _eval_and_checkpoint(self) -> None:
        record = {"epoch": self.iteration_epoch(), "iteration": self.iteration, "samples": self.samples,
                  "train_loss": None, "train_acc": None, "val_loss": None, "val_acc": None,
                  "test_loss": None, "test_acc": None}
        if self.train_eval_data is not None:
            train = self._evaluate("training", self.train_eval_data)
            record.update(train_loss=train["loss"], train_acc=train["accuracy"])
        if self.val_data is not None:
            val = self._evaluate("validation", self.val_data)
            record.update(val_loss=val["loss"], val_acc=val["accuracy"])
            # the best weights: the highest validation accuracy, or for a loss without one the lowest loss
            score = -val["loss"] if val["accuracy"] is None else val["accuracy"]
            if score > self.best_score:
                self.best_score = score
                self.best_state = self.model.state_dict()
                self.evals_since_best = 0
            else:
                self.evals_since_best += 1
                if self.patience is not None and self.evals_since_best >= self.patience:
                    self.stopped_early = True
        if self.eval_test:
            test = self._evaluate("test", self.test_data)
            record.update(test_loss=test["loss"], test_acc=test["accuracy"])
        self.history["eval"].append(record)
        self.progress.message(self._describe(record))
        if self.stopped_early:
            what = "loss" if record["val_acc"] is None else "accuracy"
            self.progress.message(f"early stopping: no better validation {what} in {self.patience} evaluations")
        self._checkpoint()
        if self.on_eval is not None:
            with self._threads.lifted():  # the caller's code runs as it would outside fit
                self.on_eval(self, record)

    def iteration_epoch(self) -> float:
        """Training progress in epochs, e.g. 2.5 half way through the third epoch."""
        return round(self.epoch + self.batch_in_epoch / max(1, len(self.loader)), 6)

    @staticmethod
    def _describe(r) -> str:
        parts = [f"epoch {r['epoch']:g} ({r['samples']} samples)"]
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"):
            if r.get(key) is not None:
                parts.append(f"{key} {r[key]:.4f}")
        return ", ".join(parts)

    @property
    def best_val_acc(self) -> float:
        """The best validation accuracy so far (-inf before any, and for a loss that does not classify)."""
        scored = [r for r in self.history["eval"] if r["val_loss"] is not None]
        return self.best_score if scored and scored[-1]["val_acc"] is not None else -math.inf

    # -- failure -------------------------------------------------------------
    def _check_finite_inputs(self, x) -> None:
        """A non-finite output from non-finite inputs is the data's fault, not the learning rate's."""
        if x.dtype.kind != "f":
            return
        bad = int(to_scalar((~array_module(x).isfinite(x).reshape(len(x), -1).all(axis=1)).sum()))
        if bad:
            raise ValueError(f"the training data holds NaN or inf: {bad} of the {len(x)} samples of the batch "
                             f"of iteration {self.iteration + 1} (epoch {self.epoch + 1}); remove or fix them")

    def _diverged(self, what: str):
        where = (f"the last good checkpoint is {self.checkpoint_path}"
                 if self.checkpoint_path is not None and self.checkpoint_path.exists()
                 else "no checkpoint was written")
        raise TrainingDiverged(
            f"training diverged: {what} at iteration {self.iteration + 1} (epoch {self.epoch + 1}) "
            f"with learning rate {get_lr(self.optimizer):g}; lower the learning rate (in a new run: --lr cannot "
            f"change on --resume); {where}"
        )

    # -- checkpoints ---------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything :meth:`fit` needs to continue this run (see the module docstring)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "loader": self._epoch_start_loader_state,
            "carried_state": self.model.get_state() if self.model.carries_state else None,
            "rng": rng_state(),
            "best_model": self.best_state,
            # one float per step: an array is stored as binary, not as JSON text rewritten at every checkpoint
            "history": {**self.history, "iteration_loss": np.asarray(self.history["iteration_loss"], np.float64)},
            "config": self.config,
            "seconds": dict(self.seconds),
            "counters": {
                "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "iteration": self.iteration, "samples": self.samples,
                "best_val_acc": None if self.best_state is None else self.best_score,  # (the key of old files)
                "evals_since_best": self.evals_since_best, "stopped_early": self.stopped_early,
                "lr": get_lr(self.optimizer),
            },
        }

    def _checkpoint(self) -> None:
        if self.checkpoint_path is None:
            return
        for name, p in self.model.named_parameters():
            if not to_scalar(array_module(p.data).isfinite(p.data).all()):
                self._diverged(f"parameter {name} contains NaN or inf")
        with self._timed("checkpoints"):
            save_checkpoint(self.checkpoint_path, self.state_dict())

    @contextmanager
    def _timed(self, phase: str):
        """Add the wall time of the block to ``seconds[phase]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start

    def _restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if state["loader"] is not None:
            self.loader.load_state_dict(state["loader"])
        self._epoch_start_loader_state = state["loader"]
        if self.model.carries_state:
            self.model.set_state(state["carried_state"])
        set_rng_state(state["rng"])
        self.best_state = state["best_model"]
        self.history = {**state["history"],
                        "iteration_loss": np.asarray(state["history"]["iteration_loss"], np.float64).tolist()}
        seconds = state.get("seconds") or {}  # (older checkpoints have none)
        if not (isinstance(seconds, dict) and all(isinstance(t, (int, float)) for t in seconds.values())):
            raise ValueError(f"damaged checkpoint: its 'seconds' are not times by phase: {seconds!r:.80}")
        self.seconds = Counter(seconds)
        c = state["counters"]
        self.epoch, self.batch_in_epoch = c["epoch"], c["batch_in_epoch"]
        self.iteration, self.samples = c["iteration"], c["samples"]
        self.best_score = -math.inf if c["best_val_acc"] is None else c["best_val_acc"]
        self.evals_since_best, self.stopped_early = c["evals_since_best"], c["stopped_early"]
        set_lr(self.optimizer, c["lr"])
