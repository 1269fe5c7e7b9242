"""Progress reporting: a tqdm bar on an interactive terminal, plain log lines otherwise.

Two shapes of progress, one style choice (:func:`resolve_mode`):

- :class:`Progress`, the Trainer's: epochs of batches with the loss beside them.
- :class:`Meter`, every other long step (evaluation and prediction passes, sweeps,
  downloads): ``done`` of ``total`` units, with the rate and the time left,

      rate = done / elapsed,        ETA = (total - done) / rate,

  drawn by ``tqdm.auto`` (a widget in a notebook) or written as a log line at most
  every ``interval`` seconds. :func:`track` wraps an iterable in one, so library
  loops take an optional ``progress`` callable and never print themselves.
"""
from __future__ import annotations

import sys
import time

MODES = ("auto", "bar", "log", "none")


def resolve_mode(mode: str, stream=None) -> str:
    """Turn ``'auto'`` into ``'bar'`` (a TTY with tqdm installed) or ``'log'``."""
    if mode not in MODES:
        raise ValueError(f"progress must be one of {MODES}, got {mode!r}")
    if mode != "auto":
        return mode
    stream = stream or sys.stderr
    if not (hasattr(stream, "isatty") and stream.isatty()):
        return "log"
    try:
        import tqdm  # noqa: F401  (only asking whether it is installed)
    except ImportError:
        return "log"
    return "bar"


def format_duration(seconds) -> str:
    """A duration with its units: ``'0.4 s'``, ``'12.3 s'``, ``'4 min 5 s'``, ``'2 h 3 min'``."""
    if seconds is None or seconds != seconds:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _amount(n: float, unit: str) -> str:
    """``n`` units, bytes scaled to KiB/MiB/GiB."""
    if unit != "B":
        return f"{n:.1f} {unit}" if isinstance(n, float) else f"{n} {unit}"
    for prefix in ("", "Ki", "Mi", "Gi"):
        if n < 1024 or prefix == "Gi":
            return f"{n:.0f} B" if not prefix else f"{n:.1f} {prefix}B"
        n /= 1024


def _write(mode: str, bar, stream, text: str) -> None:
    """A line of text: above the bar when one is drawn, else printed (nothing when quiet)."""
    if mode == "none":
        return
    if bar is not None:
        bar.write(text, file=stream)
    else:
        print(text, file=stream, flush=True)


class Meter:
    """``done`` of ``total`` units of one step, shown as a bar or as log lines.

    ``update(n)`` counts n more units, ``set_postfix(text)`` adds words beside the
    count (e.g. "2 running, 1 failed"), ``write(text)`` prints a line without
    breaking the bar, ``close()`` ends it. ``total`` may be None (unknown: no ETA).
    A log line is written at most every ``interval`` seconds, and at the end if
    any was written before (and the count moved since), so a quick step prints nothing.
    """

    def __init__(self, total, desc: str, unit: str = "batch", mode: str = "auto", stream=None,
                 interval: float = 10.0):
        self.stream = stream or sys.stderr
        self.mode = resolve_mode(mode, self.stream)
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.done, self.postfix, self.logged = 0, "", None  # logged: ``done`` at the last log line
        self.start = self._last = time.monotonic()
        self._bar = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, leave=False, dynamic_ncols=True,
                             unit_scale=unit == "B", unit_divisor=1024 if unit == "B" else 1000)

    def update(self, n=1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "log" and time.monotonic() - self._last >= self.interval:
            self._log()

    def set_postfix(self, text: str) -> None:
        self.postfix = text
        if self._bar is not None:
            self._bar.set_postfix_str(text)

    def write(self, text: str) -> None:
        _write(self.mode, self._bar, self.stream, text)

    def line(self) -> str:
        """``'desc: 30/120 batch (25%), 12.5 batch/s, 7.2 s left'``."""
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.done / elapsed
        count = _amount(self.done, self.unit)
        if self.total:
            count = f"{count.rsplit(' ', 1)[0]}/{_amount(self.total, self.unit)} ({100 * self.done / self.total:.0f}%)"
        speed = f"{_amount(float(rate), self.unit)}/s" if rate >= 1 or rate == 0 \
            else f"{format_duration(1 / rate)}/{self.unit}"  # slow steps (sweep runs): time per unit
        text = f"{self.desc}: {count}, {speed}"
        if self.total and rate > 0 and self.done < self.total:
            text += f", {format_duration((self.total - self.done) / rate)} left"
        elif self.total and self.done >= self.total:
            text += f", done in {format_duration(elapsed)}"
        return text + (f"; {self.postfix}" if self.postfix else "")

    def _log(self) -> None:
        self._last = time.monotonic()
        self.logged = self.done
        print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.mode == "log" and self.logged is not None and self.logged != self.done:
            self._log()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def track(iterable, total, desc: str, unit: str = "batch", mode: str = "auto", stream=None, interval: float = 10.0):
    """Yield the items of ``iterable``, counting each on a :class:`Meter`."""
    with Meter(total, desc, unit, mode, stream, interval) as meter:
        for item in iterable:
            yield item
            meter.update(1)


def tracker(desc: str, mode: str = "auto", stream=None, interval: float = 10.0):
    """A ``progress(iterable, total)`` callable for the evaluation loops
    (:mod:`handgrad.train.evaluate`), or None for ``mode='none'``."""
    if resolve_mode(mode, stream) == "none":
        return None
    return lambda iterable, total: track(iterable, total, desc, "batch", mode, stream, interval)


class Progress:
    """The Trainer's: ``start_epoch`` / ``step`` / ``message`` / ``end_epoch``."""

    def __init__(self, mode: str, print_every, stream=None):
        self.mode = resolve_mode(mode, stream)
        self.print_every = print_every
        self.stream = stream or sys.stderr
        self._bar = None

    def start_epoch(self, epoch: int, epochs: int, total: int, done: int) -> None:
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=done, desc=f"epoch {epoch + 1}/{epochs}",
                             unit="batch", file=self.stream, leave=True, dynamic_ncols=True)

    def step(self, iteration: int, epoch: int, loss: float, lr: float) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        elif self.mode == "log" and self.print_every and iteration % self.print_every == 0:
            self.message(f"iteration {iteration} (epoch {epoch + 1}): loss {loss:.4f}, lr {lr:.3g}")

    def message(self, text: str) -> None:
        _write(self.mode, self._bar, self.stream, text)

    def end_epoch(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def tracker(self, desc: str):
        """A ``progress(iterable, total)`` callable in this object's style (None when quiet),
        for the evaluation passes the Trainer makes."""
        return tracker(desc, self.mode, self.stream)
