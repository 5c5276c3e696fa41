"""A dedicated step thread fed by coalescing kicks (pure Python, no ROS).

The node's subscription and timer callbacks only *kick* the :class:`StepThread`; the thread runs
the step function once per burst of kicks. Kicks that arrive while a step runs coalesce into one
follow-up step (latest-only, like :class:`~eipl_trt.ros.inputs.LatestSlot`), so a camera faster
than the model, or a step timer that fires while a step overruns, never queues work: the next
step simply takes the newest inputs. The executor thread is never blocked by a step (services,
parameters and joint_states keep flowing), at the price of sharing the GIL with it while the
step runs Python code.

Like ros2_control's controller manager (its ``thread_priority`` parameter), the thread can run
under ``SCHED_FIFO``: on a loaded machine the model step then pre-empts DDS receive threads, the
executor and other processes instead of sharing a core with them. Granting it needs root,
``CAP_SYS_NICE`` or an ``rtprio`` limit; without one the thread runs at normal priority and
:attr:`StepThread.priority_status` says why.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable

__all__ = ["StepThread", "set_realtime_priority"]

log = logging.getLogger(__name__)


def set_realtime_priority(priority: int) -> str:
    """Put the calling thread under ``SCHED_FIFO`` at ``priority`` (1..99); returns what happened, in words.

    ``0`` leaves the thread as it is. Never raises: a refusal is reported in the returned sentence,
    which starts with ``"normal"`` when the thread kept its default policy.
    """
    if priority <= 0:
        return "normal (thread_priority 0)"
    if not hasattr(os, "sched_setscheduler"):
        return f"normal: SCHED_FIFO {priority} is not available on this OS"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))  # 0 = the calling thread
    except OSError as exc:
        return (f"normal: SCHED_FIFO {priority} refused ({exc.strerror or exc}); allow real-time priority for this "
                f"user (e.g. '@realtime - rtprio 98' in /etc/security/limits.conf and add the user to the "
                f"realtime group, as ros2_control documents) or set thread_priority: 0")
    return f"SCHED_FIFO {priority}"


class StepThread:
    """Runs ``step`` on its own thread whenever it was kicked since the last run.

    Args:
        step: the function to run (no arguments); its exceptions are logged, never raised.
        name: the thread's name.
        priority: ``SCHED_FIFO`` priority 1..99 for the thread, 0 = the default policy.
    """

    def __init__(self, step: Callable[[], None], name: str = "eipl_trt-step", priority: int = 0):
        self._step = step
        self._priority = int(priority)
        self._started = threading.Event()
        #: How the thread is scheduled (``"SCHED_FIFO 50"``, or ``"normal..."`` with the reason).
        self.priority_status = "starting"
        self._cond = threading.Condition()
        self._kicked = False
        self._stopping = False
        self._frame_wait_s = 0.0
        self._frame_came = False
        self.kicks = 0
        #: Steps that waited for a due frame, and how many of those got it in time.
        self.frame_waits = 0
        self.frames_caught = 0
        self.runs = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._started.wait(5.0)

    @property
    def coalesced(self) -> int:
        """Kicks that did not get a step of their own (a step was already due or running)."""
        return self.kicks - self.runs

    def kick(self, wait_for_frame_s: float = 0.0) -> None:
        """Ask for one step with the newest inputs (returns at once; never blocks on a step).

        Args:
            wait_for_frame_s: let the step wait up to this long (s) for :meth:`notify_frame`
                (a camera frame that is due, see :func:`eipl_trt.ros.inputs.frame_wait_s`).
        """
        with self._cond:
            self.kicks += 1
            if not self._kicked:  # a kick that coalesces into a pending step leaves its wait alone
                self._frame_wait_s = max(0.0, float(wait_for_frame_s))
                self._frame_came = False
                self._kicked = True
                self._cond.notify()

    def notify_frame(self) -> None:
        """A camera frame arrived: a step waiting for one starts now."""
        with self._cond:
            self._frame_came = True
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
        self.priority_status = set_realtime_priority(self._priority)
        if self._priority > 0 and self.priority_status.startswith("normal"):
            log.warning("step thread: %s", self.priority_status)
        self._started.set()
        while True:
            with self._cond:
                while not self._kicked and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                if self._frame_wait_s > 0.0:
                    self.frame_waits += 1
                    self._cond.wait_for(lambda: self._frame_came or self._stopping, self._frame_wait_s)
                    self.frames_caught += int(self._frame_came)
                    self._frame_wait_s = 0.0
                    if self._stopping:
                        return
                self._kicked = False
                self.runs += 1
            try:
                self._step()
            except Exception:  # the step logs its own errors; this guards the thread itself
                log.exception("step failed")
