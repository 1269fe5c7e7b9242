"""Progress reporting: a tqdm bar on an interactive terminal, plain log lines otherwise."""
from __future__ import annotations

import sys

MODES = ("auto", "bar", "log", "none")


def resolve_mode(mode: str, stream=None) -> str:
    """Turn ``'auto'`` into ``'bar'`` (a TTY with tqdm installed) or ``'log'``."""
    if mode not in MODES:
        raise ValueError(f"Trainer: progress must be one of {MODES}, got {mode!r}")
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


class Progress:
    """One object for both styles: ``start_epoch`` / ``step`` / ``message`` / ``end_epoch``."""

    def __init__(self, mode: str, print_every, stream=None):
        self.mode = resolve_mode(mode, stream)
        self.print_every = print_every
        self.stream = stream or sys.stderr
        self._bar = None

    def start_epoch(self, epoch: int, epochs: int, total: int, done: int) -> None:
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=done, desc=f"epoch {epoch + 1}/{epochs}",
                             unit="batch", file=self.stream, leave=True, dynamic_ncols=True)

    def step(self, iteration: int, epoch: int, loss: float, lr: float) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        elif self.mode == "log" and self.print_every and iteration % self.print_every == 0:
            self.message(f"iteration {iteration} (epoch {epoch + 1}): loss {loss:.4f}, lr {lr:.3g}")

    def message(self, text: str) -> None:
        if self.mode == "none":
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def end_epoch(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
