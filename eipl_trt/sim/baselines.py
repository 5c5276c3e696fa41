"""Reference episodes on the same layouts as a model run: the scripted expert and holding still.

Both run in-process on a :class:`~eipl_trt.sim.robot.SimRobot` (no ROS): the expert with its own
torque controller exactly as when its demonstrations were recorded, the hold-still baseline as a
robot that never receives a command (its PD keeps the start pose). A model that scores like
hold-still has not moved the object; the expert shows what the layouts allow.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from eipl_trt.sim.expert import PushExpert
from eipl_trt.sim.robot import SUBSTEPS, EpisodeScore, SimRobot

__all__ = ["run_expert", "run_hold_still", "run_replay", "BASELINES"]


def run_expert(robot: SimRobot, index: int, frames: int) -> EpisodeScore:
    """The scripted expert on episode ``index`` for ``frames`` camera periods (``frames - 1`` of motion)."""
    setup = robot.start_episode(index)
    expert = PushExpert(robot.scene, setup.layout, setup.rng, robot.config)
    for _ in range((frames - 1) * SUBSTEPS):
        robot.step_torque(expert.action())
    return robot.finish_episode()


def run_hold_still(robot: SimRobot, index: int, frames: int) -> EpisodeScore:
    """No command at all on episode ``index``: the controller holds the start pose."""
    robot.start_episode(index)
    for _ in range((frames - 1) * SUBSTEPS):
        robot.step_period()
    return robot.finish_episode()


def run_replay(robot: SimRobot, index: int, frames: int, joints: np.ndarray) -> EpisodeScore:
    """Send ``joints`` (frames, 7) rad as ``forward_position`` commands, one per camera period.

    With the expert's own joints recorded at the frame times, this checks the position interface:
    a command stream as good as the expert's must solve the layout through it.
    """
    robot.start_episode(index)
    for k in range(frames - 1):
        robot.command_positions(joints[min(k + 1, len(joints) - 1)])
        for _ in range(SUBSTEPS):
            robot.step_period()
    return robot.finish_episode()


#: Baselines the control report puts beside each model, by name.
BASELINES: dict[str, Callable[[SimRobot, int, int], EpisodeScore]] = {
    "expert": run_expert,
    "hold_still": run_hold_still,
}
