"""When a ``joint_trajectory`` command's point is due (the node's ``trajectory_timing``).

The model predicts the joints of the *next camera frame*: step t reads the frame stamped ``s`` and
predicts where the arm is at ``s + period``. A JointTrajectory point carries ``time_from_start``,
counted from when the controller receives it. Sending a fixed ``period`` ("period" timing) makes the
arm arrive ``period`` after the command lands, i.e. late by the camera's transport delay plus the
node's step and DDS delay, every step; in closed loop the lag compounds. "frame" timing (the
default) anchors the point to the frame: ``time_from_start = s + period - now``, so the arm is told
to be there when the model meant it to be.

Measured without ROS (``scripts/closed_loop_divergence.py --model engines/sarnn8 --episodes 10
--interface joint_trajectory``): a 20 ms command delay drops the bundled sarnn8 from 6/10 solved
layouts to 1/10 with "period" timing, and back to 6/10 with "frame" timing (``--frame-anchored``).
Over ROS 2 in real time (``eipl-trt control --clock realtime``, 10 layouts) the gain is smaller:
with ``trigger: image`` 2/10 (mean final distance 6.8 cm) against 1/10 (8.6 cm); with the timer
trigger, whose frame can be most of a period old when the tick comes, the point is due almost at
once and the arm lunges: 0/10. So "period" stays the default and "frame" is for image-triggered
(or ``max_frame_wait``) nodes.
"""

from __future__ import annotations

__all__ = ["TRAJECTORY_TIMINGS", "MIN_LEAD_FRACTION", "trajectory_lead_s"]

#: ``frame``: the point is due at the input frame's stamp + one period; ``period``: one period after sending.
TRAJECTORY_TIMINGS = ("frame", "period")
#: The shortest ``time_from_start``, as a fraction of the period: a step that ends after its frame's
#: due time (a stale frame, a long stall) still gets a short ramp instead of a jump.
MIN_LEAD_FRACTION = 0.2


def trajectory_lead_s(period_s: float, frame_stamp_s: float, now_s: float, timing: str = "frame") -> float:
    """``time_from_start`` (s) of the command computed from the frame stamped ``frame_stamp_s``.

    Args:
        period_s: the control period (s); the model predicts one period ahead.
        frame_stamp_s: the input frame's header stamp (s, the node's clock); 0 = unstamped.
        now_s: the node's clock when the command is sent (s; simulated time under ``use_sim_time``).
        timing: ``"frame"`` or ``"period"`` (see the module docstring).

    Returns:
        ``period_s`` for ``"period"`` timing or an unstamped frame; else ``frame_stamp_s + period_s -
        now_s`` clamped to ``[MIN_LEAD_FRACTION * period_s, period_s]`` (a frame stamped ahead of this
        clock, from a skewed camera clock, gets the full period).
    """
    if timing not in TRAJECTORY_TIMINGS:
        raise ValueError(f"trajectory timing must be one of {', '.join(TRAJECTORY_TIMINGS)}, not {timing!r}")
    if timing == "period" or frame_stamp_s <= 0.0:
        return period_s
    lead = frame_stamp_s + period_s - now_s
    return min(period_s, max(MIN_LEAD_FRACTION * period_s, lead))
