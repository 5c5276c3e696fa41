"""Runtime precision switching off the control path (pure Python, one worker thread).

:meth:`PrecisionSwitcher.request` returns at once. A worker thread builds and opens the new
runner (loading an engine can take seconds) and warms it up while the old runner keeps serving;
then it calls ``install(runner)``, which the node implements by taking its step lock and calling
:meth:`eipl_trt.predictor.Predictor.swap_runner` (the LSTM state is handed over at a step
boundary). A newer request supersedes an older one that is still being prepared.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from eipl_trt.runners import Runner

__all__ = ["PrecisionSwitcher"]

log = logging.getLogger(__name__)


class PrecisionSwitcher:
    """Prepares runners in the background and hands them to ``install``.

    Args:
        factory: ``precision -> closed Runner`` (e.g. ``create_runner`` bound to a spec and backend).
        install: called with the opened, warmed-up runner; returns normally once it is in use.
        on_error: called with ``(precision, exception)`` when preparing or installing failed.
        warm_up_steps: zero-input steps run on the new runner before it is installed.
    """

    def __init__(
        self,
        factory: Callable[[str], Runner],
        install: Callable[[Runner], None],
        on_error: Callable[[str, BaseException], None],
        warm_up_steps: int = 3,
    ):
        self._factory = factory
        self._install = install
        self._on_error = on_error
        self._warm_up_steps = int(warm_up_steps)
        self._cond = threading.Condition()
        self._wanted: str | None = None
        self._busy: str | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        self.switches = 0

    @property
    def pending(self) -> str | None:
        """The precision being prepared or waiting to be, or ``None``."""
        with self._cond:
            return self._wanted or self._busy

    def request(self, precision: str) -> None:
        """Ask for a switch to ``precision`` (returns immediately)."""
        with self._cond:
            if self._closed:
                return
            self._wanted = precision
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="eipl_trt-precision-switch", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until no switch is pending (or ``timeout_s`` s passed); True when idle."""
        with self._cond:
            return self._cond.wait_for(lambda: self._wanted is None and self._busy is None, timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop accepting requests and wait (up to ``timeout_s`` s) for a switch in progress."""
        with self._cond:
            self._closed = True
            self._wanted = None
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._wanted is None and not self._closed:
                    self._cond.wait()
                if self._closed or self._wanted is None:
                    self._busy = None
                    self._cond.notify_all()
                    return
                precision: str = self._wanted
                self._wanted, self._busy = None, precision
            runner: Runner | None = None
            try:
                runner = self._factory(precision)
                runner.open()
                runner.warm_up(self._warm_up_steps)
                with self._cond:
                    superseded = self._wanted is not None or self._closed
                if superseded:
                    log.info("precision switch to %s superseded by a newer request", precision)
                    runner.close()
                else:
                    self._install(runner)
                    self.switches += 1
            except Exception as exc:  # report anything: the node must keep running
                if runner is not None:
                    runner.close()
                self._on_error(precision, exc)
            finally:
                with self._cond:
                    self._busy = None
                    self._cond.notify_all()
