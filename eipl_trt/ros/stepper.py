"""A dedicated step thread fed by coalescing kicks (pure Python, no ROS).

The node's subscription and timer callbacks only *kick* the :class:`StepThread`; the thread runs
the step function once per burst of kicks. Kicks that arrive while a step runs coalesce into one
follow-up step (latest-only, like :class:`~eipl_trt.ros.inputs.LatestSlot`), so a camera faster
than the model, or a step timer that fires while a step overruns, never queues work: the next
step simply takes the newest inputs. The executor thread is never blocked by a step (services,
parameters and joint_states keep flowing), at the price of sharing the GIL with it while the
step runs Python code.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

__all__ = ["StepThread"]

log = logging.getLogger(__name__)


class StepThread:
    """Runs ``step`` on its own thread whenever it was kicked since the last run.

    Args:
        step: the function to run (no arguments); its exceptions are logged, never raised.
        name: the thread's name.
    """

    def __init__(self, step: Callable[[], None], name: str = "eipl_trt-step"):
        self._step = step
        self._cond = threading.Condition()
        self._kicked = False
        self._stopping = False
        self.kicks = 0
        self.runs = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def coalesced(self) -> int:
        """Kicks that did not get a step of their own (a step was already due or running)."""
        return self.kicks - self.runs

    def kick(self) -> None:
        """Ask for one step with the newest inputs (returns at once; never blocks on a step)."""
        with self._cond:
            self.kicks += 1
            if not self._kicked:
                self._kicked = True
                self._cond.notify()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Finish a step in progress and end the thread; True when it ended within ``timeout_s`` s."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._kicked and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                self._kicked = False
                self.runs += 1
            try:
                self._step()
            except Exception:  # the step logs its own errors; this guards the thread itself
                log.exception("step failed")
