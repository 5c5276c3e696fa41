"""Progress display for long precision runs: a live line on a terminal, a line every few seconds otherwise."""

from __future__ import annotations

import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Counts work units and reports them.

    On a terminal the line is rewritten in place (at most 10 times a second); when the stream is
    not a terminal (a log file, CI, ``ros2 launch``), one full line is printed every
    ``every_s`` seconds and at the end, so logs stay readable.

    Args:
        label: what is being counted, e.g. ``"calibration rollouts"``.
        total: units expected (steps, trials).
        unit: the unit's name for the line.
        stream: where to write (e.g. ``sys.stdout``); ``None`` disables the display.
        every_s: seconds between lines when the stream is not a terminal.
    """

    def __init__(self, label: str, total: int, unit: str = "step", stream: TextIO | None = None,
                 every_s: float = 5.0):
        self.label = label
        self.total = max(int(total), 0)
        self.unit = unit
        self.stream = stream
        self.every_s = float(every_s)
        self.done = 0
        self._start = time.monotonic()
        self._last = self._start
        self._printed = -1  # the count the last full line showed
        self._tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())

    def _line(self) -> str:
        elapsed = time.monotonic() - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 and self.total else float("nan")
        eta = f", {left:.0f} s left" if left == left else ""
        return f"{self.label}: {self.done}/{self.total} {self.unit}s ({elapsed:.0f} s{eta})"

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units and report if it is time to."""
        self.done += n
        if self.stream is None:
            return
        now = time.monotonic()
        if self._tty and now - self._last >= 0.1:
            self.stream.write("\r" + self._line() + "\x1b[K")
            self.stream.flush()
            self._last = now
        elif not self._tty and now - self._last >= self.every_s:
            self.stream.write(self._line() + "\n")
            self.stream.flush()
            self._last = now
            self._printed = self.done

    def close(self) -> None:
        """Print the final count (ends the live line on a terminal)."""
        if self.stream is None or (not self._tty and self._printed == self.done):
            return
        self.stream.write(("\r" if self._tty else "") + self._line() + ("\x1b[K\n" if self._tty else "\n"))
        self.stream.flush()
