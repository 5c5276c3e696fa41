"""How a ``joint_trajectory`` command is anchored in time (the node's ``trajectory_timing``).

The model predicts the joints of the *next camera frame*: step t reads the frame stamped ``s`` and
predicts where the arm is at ``s + period``. That is the timing it was trained with, and the one to
serve it with, whatever the camera transport, the step and DDS took.

* ``stamp`` (the default): the JointTrajectory's ``header.stamp`` is the frame's stamp and its point
  is due ``period`` after it. ros2_controllers' joint_trajectory_controller counts ``time_from_start``
  from the header stamp and ramps from where the arm is when the trajectory arrives to the point at
  that time, so the arm reaches the prediction when the model meant it to, however late the command
  landed. Measured without ROS (the bundled sarnn8 on 20 layouts of seed 1): lockstep 10/20; a 10, 20,
  30 ms command delay 10, 9, 9/20 with the point due at the frame's stamp + period, against 3, 2, 0/20
  with ``period``. A frame so old that the point would already be due is re-anchored so that at least
  :data:`MIN_LEAD_FRACTION` of the period is left to ramp (no jump to the target).
* ``frame``: header stamp zero, ``time_from_start = s + period - now``: the same due time as long as the
  controller applies the command when it is sent; one that applies it at its next control cycle (up to
  a cycle later) counts from then, and the due time slips by that much (5-15 ms of slip cost 5-9 of
  those 10 layouts).
* ``period``: header stamp zero, ``time_from_start = period``: the arm arrives late by the camera, step
  and DDS delay at every step; in closed loop the lag compounds. For controllers that ignore stamps.

Use ``stamp`` with ``trigger: image`` (a step per frame, the frame fresh); with the timer trigger the
frame can be most of a period old at the tick and the ramp shrinks to the minimum.

**The coast point** (``trajectory_coast``, on by default; :func:`trajectory_points`): each trajectory gets a
second point one period after the first, continuing the step's motion (the prediction plus its change
from the previous command, clamped to the limits). In lockstep the next command replaces the trajectory
before that point matters; in real time it lands 10-40 ms after its frame, and without the point the arm
would stop at the first one and wait for it. Measured without ROS (sarnn8, seeds 1 and 3, 20 layouts
each, the robot's PD on the reference's mean velocity over each 20 ms period): lockstep 17/40; a 20 ms
command delay 8/40 with one point, 16/40 with the coast point; 40 ms 12/40 and 20/40. If the node stops
commanding, the arm coasts at most one period (one ``max_step``) to that point and holds there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["TRAJECTORY_TIMINGS", "MIN_LEAD_FRACTION", "TrajectoryTiming", "trajectory_lead_s", "trajectory_points",
           "trajectory_timing"]

#: ``stamp``: header stamp = the frame's, point due one period later; ``frame``: due at the frame's stamp +
#: one period, counted from now; ``period``: one period after sending.
TRAJECTORY_TIMINGS = ("stamp", "frame", "period")
#: The shortest ramp, as a fraction of the period: a step that ends after its frame's due time (a stale
#: frame, a long stall) still gets a short ramp instead of a jump.
MIN_LEAD_FRACTION = 0.2


@dataclass(frozen=True)
class TrajectoryTiming:
    """When the trajectory starts and its point is due.

    Attributes:
        start_s: ``header.stamp`` (s, the node's clock); 0 = "start when received".
        time_from_start_s: the point's ``time_from_start`` (s).
    """

    start_s: float
    time_from_start_s: float


def trajectory_timing(period_s: float, frame_stamp_s: float, now_s: float, timing: str = "stamp") -> TrajectoryTiming:
    """Header stamp and ``time_from_start`` of the command computed from the frame stamped ``frame_stamp_s``.

    Args:
        period_s: the control period (s); the model predicts one period ahead.
        frame_stamp_s: the input frame's header stamp (s, the node's clock); 0 = unstamped.
        now_s: the node's clock when the command is sent (s; simulated time under ``use_sim_time``).
        timing: one of :data:`TRAJECTORY_TIMINGS` (see the module docstring).
    """
    if timing not in TRAJECTORY_TIMINGS:
        raise ValueError(f"trajectory timing must be one of {', '.join(TRAJECTORY_TIMINGS)}, not {timing!r}")
    if timing == "stamp" and frame_stamp_s > 0.0:
        earliest = now_s - (1.0 - MIN_LEAD_FRACTION) * period_s  # a start before this leaves less than the minimum ramp
        start = now_s if frame_stamp_s > now_s else max(frame_stamp_s, earliest)  # ahead of our clock: a skewed camera
        return TrajectoryTiming(start, period_s)
    return TrajectoryTiming(0.0, trajectory_lead_s(period_s, frame_stamp_s, now_s, "period" if timing == "period"
                                                   else "frame"))


def trajectory_lead_s(period_s: float, frame_stamp_s: float, now_s: float, timing: str = "frame") -> float:
    """``time_from_start`` (s) of a command sent at ``now_s`` with header stamp zero.

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


def trajectory_points(target: np.ndarray, previous: np.ndarray | None, timing: TrajectoryTiming, period_s: float,
                      lower: Sequence[float] | None = None, upper: Sequence[float] | None = None,
                      coast: bool = True) -> list[tuple[float, np.ndarray]]:
    """``(time_from_start s, positions)`` of a command's trajectory: ``target`` then, with ``coast``, the coast point.

    Args:
        target: the step's command (rad), already through the node's safety filter.
        previous: the command sent before it (``None`` after a stop or reset: no coast point).
        timing: from :func:`trajectory_timing`.
        period_s: the control period (s).
        lower, upper: joint limits the coast point is clamped to.
        coast: add the coast point (see the module docstring).
    """
    points = [(timing.time_from_start_s, np.asarray(target, np.float64))]
    if coast and previous is not None:
        ahead = points[0][1] + (points[0][1] - np.asarray(previous, np.float64))
        if lower is not None and upper is not None:
            ahead = np.clip(ahead, np.asarray(lower, np.float64), np.asarray(upper, np.float64))
        points.append((timing.time_from_start_s + period_s, ahead))
    return points
