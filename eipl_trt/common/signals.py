"""Holding Ctrl-C and SIGTERM while a checkpoint is written, so that a stop never tears one.

``eipl-trt train`` turns SIGTERM into ``KeyboardInterrupt`` and saves what it has. An interrupt that
lands inside ``torch.save`` breaks its zip writer, which then raises ``RuntimeError`` ("unexpected pos")
instead, and the run ends as a crash. :func:`deferred_interrupts` records SIGINT/SIGTERM while its block
runs and delivers them again once the block is done, to the handlers that were there before: the CLI's
raise ``KeyboardInterrupt``, a default SIGTERM ends the process, an ignored signal stays ignored.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Iterator

__all__ = ["deferred_interrupts"]

_HELD = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Run the block with SIGINT and SIGTERM held, then deliver any that came to the previous handlers.

    Only the main thread can install signal handlers; elsewhere the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous = {s: signal.signal(s, hold) for s in _HELD}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
    for signum in dict.fromkeys(caught):  # each signal once, in the order it came
        signal.raise_signal(signum)
