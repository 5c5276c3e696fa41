"""Lock the control timer's phase to the camera (pure Python, no ROS).

A control timer and a camera are two free-running clocks. At a tick the newest frame is anywhere
between 0 and one camera period old, fixed for a run by the phase between the two clocks, and the
step adds that age to every command: at 30 Hz up to 33 ms of reaction time that the image trigger
does not have. Waiting after each tick for the frame that is due (``max_frame_wait``) removes the
age but moves every step away from its tick.

:class:`CameraPhaseLock` removes it at the source, the way a frame grabber's trigger would: when
the camera runs at 1-4 frames per control period and a tick finds its newest frame neither fresh
nor just about to arrive, the node waits for the due frame once, steps on it and restarts its
timer at that instant (``rclpy`` ``Timer.reset``). From then on the ticks fall when
the frames arrive; a frame that comes a little after its tick is waited for (at most ``window`` of
a camera period), and the slow drift between two real clocks costs one re-lock when the frames
leave that window. The ticks stay periodic between re-locks; :attr:`CameraPhaseLock.relocks`
counts them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CameraPhaseLock", "TickPlan"]


@dataclass(frozen=True)
class TickPlan:
    """What one timer tick does.

    Attributes:
        wait_s: how long the step may wait for the frame that is due (0 = step on what there is).
        relock: restart the timer when that frame arrives (the tick is out of phase with the camera).
    """

    wait_s: float = 0.0
    relock: bool = False


class CameraPhaseLock:
    """Decides, at each timer tick, whether to wait for the due frame and whether to re-phase the timer.

    Args:
        window: fraction of a camera period around the frame's arrival that counts as in phase
            (a frame at most this old is fresh; one due within it is waited for). 0 < window < 0.5.
        rate_tolerance: how far the frames per tick may be from a whole number, 1 to
            ``max_frames_per_tick``, for the lock to apply (a 29.97 Hz camera under a 30 Hz timer
            locks; a 10 Hz camera under a 30 Hz timer does not, and every tick then steps on the
            newest frame).
        max_frames_per_tick: the fastest camera the lock follows, in frames per tick. A faster
            camera's newest frame is young at any tick anyway, and a jittery 200 Hz camera would
            read as a whole multiple of 30 Hz one tick in three.
    """

    def __init__(self, window: float = 0.25, rate_tolerance: float = 0.1, max_frames_per_tick: int = 4):
        if not 0.0 < window < 0.5:
            raise ValueError(f"window must be in (0, 0.5), got {window}")
        if not 0.0 < rate_tolerance < 0.5:
            raise ValueError(f"rate_tolerance must be in (0, 0.5), got {rate_tolerance}")
        if int(max_frames_per_tick) < 1:
            raise ValueError(f"max_frames_per_tick must be >= 1, got {max_frames_per_tick}")
        self.window = float(window)
        self.rate_tolerance = float(rate_tolerance)
        self.max_frames_per_tick = int(max_frames_per_tick)
        #: Ticks that found the timer out of phase and re-locked it.
        self.relocks = 0

    def lockable(self, camera_rate_hz: float, period_s: float) -> bool:
        """True when the camera runs at the control rate or a small whole multiple of it."""
        if not (camera_rate_hz > 0.0 and period_s > 0.0):
            return False
        ratio = camera_rate_hz * period_s  # frames per tick
        whole = round(ratio)
        return 1 <= whole <= self.max_frames_per_tick and abs(ratio - whole) <= self.rate_tolerance

    def plan(self, now_s: float, last_receipt_s: float | None, camera_rate_hz: float, period_s: float) -> TickPlan:
        """The plan for a tick at ``now_s`` (s, node clock).

        Args:
            now_s: the tick's time.
            last_receipt_s: receipt time of the newest frame (``None`` before the first).
            camera_rate_hz: the measured camera rate (0 = unknown).
            period_s: the control period (the timer's).
        """
        if last_receipt_s is None or not self.lockable(camera_rate_hz, period_s):
            return TickPlan()
        frame_period = 1.0 / camera_rate_hz
        window = self.window * frame_period
        age = now_s - last_receipt_s
        if age <= window:  # fresh: the tick is in phase
            return TickPlan()
        due_in = frame_period - age
        if due_in < -window:  # the camera is late by more than the window: stalled or dropping frames
            return TickPlan()
        if due_in <= window:  # due about now: in phase, the frame is a little late
            return TickPlan(wait_s=max(due_in, 0.0) + window)
        self.relocks += 1  # mid-period: out of phase; wait for the due frame once and re-phase on it
        return TickPlan(wait_s=due_in + window, relock=True)
