"""Progress that reads well in a terminal and in a log file.

On a terminal, a tqdm bar (when tqdm is installed). Anywhere else (a log file, CI, a pipe), a
plain line every ``interval_s`` seconds and one at the end, instead of hundreds of
carriage-return updates on a single line::

    evaluate: 1200/4000 step (30%), 412.0 step/s, ~7 s left
    evaluate: done, 4000 step in 9.7 s

``EIPL_TRT_PROGRESS`` overrides the choice: ``bar``, ``lines`` or ``off``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import IO, Any, Callable, Mapping

__all__ = ["ENV_VAR", "MODES", "Progress", "choose_mode"]

#: Environment variable that forces a mode.
ENV_VAR = "EIPL_TRT_PROGRESS"
MODES = ("bar", "lines", "off")


def choose_mode(stream: IO[str], enabled: bool = True) -> str:
    """``bar`` on a terminal with tqdm installed, ``lines`` elsewhere, ``off`` when disabled.

    Raises:
        ValueError: ``EIPL_TRT_PROGRESS`` holds something other than ``bar``, ``lines`` or ``off``.
    """
    if not enabled:
        return "off"
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced:
        if forced not in MODES:
            raise ValueError(f"{ENV_VAR}={forced!r}: use one of {', '.join(MODES)}")
        return forced
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        try:
            import tqdm  # noqa: F401
        except ImportError:
            return "lines"
        return "bar"
    return "lines"


class Progress:
    """Count work done; show it as a bar or as periodic lines (see the module docstring).

    Args:
        total: units of work expected, or None when unknown.
        desc: what is being done (the line's prefix).
        unit: the unit's name (``step``, ``frame``, ``epoch``).
        enabled: False shows nothing.
        stream: where to write; default ``sys.stderr``.
        interval_s: seconds between lines in ``lines`` mode.
        mode: force ``bar``, ``lines`` or ``off`` instead of :func:`choose_mode`.
        clock: monotonic time source in seconds (tests pass a fake one).
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "it",
        *,
        enabled: bool = True,
        stream: IO[str] | None = None,
        interval_s: float = 5.0,
        mode: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.mode = mode if mode is not None else choose_mode(self.stream, enabled)
        if self.mode not in MODES:
            raise ValueError(f"progress mode {self.mode!r}: use one of {', '.join(MODES)}")
        self.total, self.desc, self.unit = total, desc, unit
        self.interval_s = float(interval_s)
        self.count = 0
        self.postfix = ""
        self._clock = clock
        self._start = clock()
        self._last_line = self._start
        self._closed = False
        self._bar: Any = None
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        """Record ``n`` more units done."""
        self.count += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "lines" and self._clock() - self._last_line >= self.interval_s:
            self._line(self._status())

    def set_postfix(self, values: Mapping[str, Any]) -> None:
        """Show ``key=value`` pairs after the count (losses, rates)."""
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())
        if self._bar is not None:
            self._bar.set_postfix(dict(values))

    def close(self) -> None:
        """End the bar, or write the final line; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "lines":
            elapsed = self._clock() - self._start
            partial = self.total is not None and self.count != self.total
            done = f"{self.count}/{self.total}" if partial else str(self.count)
            self._line(f"done, {done} {self.unit} in {elapsed:.1f} s" + (f"; {self.postfix}" if self.postfix else ""))

    def _status(self) -> str:
        elapsed = self._clock() - self._start
        rate = self.count / elapsed if elapsed > 0 else math.nan
        text = f"{self.count}"
        if self.total:
            text += f"/{self.total} {self.unit} ({100.0 * self.count / self.total:.0f}%)"
        else:
            text += f" {self.unit}"
        if math.isfinite(rate) and rate > 0:
            text += f", {rate:.1f} {self.unit}/s"
            if self.total and self.count < self.total:
                text += f", ~{(self.total - self.count) / rate:.0f} s left"
        return text + (f"; {self.postfix}" if self.postfix else "")

    def _line(self, text: str) -> None:
        self._last_line = self._clock()
        self.stream.write(f"{self.desc}: {text}\n")
        self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
