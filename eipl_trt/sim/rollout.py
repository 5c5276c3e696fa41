"""A model's closed loop in the simulator without ROS: the node's timing, deterministic and fast.

:func:`closed_loop` does what ``eipl-trt control`` does over ROS 2, in one process: every 0.1 s the model
(:class:`~eipl_trt.predictor.Predictor`) sees the rendered frame and the measured joints, its prediction goes
through the node's command safety (:class:`~eipl_trt.control.CommandSafety`: the robot's limits intersected
with the model's bounds, ``max_step``) and becomes the node's joint_trajectory command (point due one period
after the frame's stamp, the coast point after it: :func:`eipl_trt.ros.trajectory.trajectory_points`), which
the robot applies ``delay_periods`` control periods (20 ms each) after the frame, as over ROS 2 in real time
(measured: 94-99% of commands land in the first period after their frame). Over ROS the same layouts give
the same scores episode by episode (to a 20 ms delay's rounding), in a fraction of the time and without
depending on the machine's load: what ``eipl-trt sim dagger`` selects checkpoints with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from eipl_trt.errors import InputError

__all__ = ["RolloutConfig", "closed_loop", "success_count"]


@dataclass(frozen=True)
class RolloutConfig:
    """Which layouts, and the timing of the loop.

    Attributes:
        seed, first_episode, episodes: the layouts (episode ``i`` of ``seed``, as the ROS robot draws it).
        frames: camera frames per episode (0.1 s each).
        delay_periods: control periods (20 ms) between a frame and its command landing (0 = lockstep).
        coast: the node's coast point (``trajectory_coast``).
        backend, precision: the runner (ONNX Runtime by default: the reference).
        max_step: the node's ``max_step`` (rad).
    """

    seed: int = 1
    first_episode: int = 0
    episodes: int = 20
    frames: int = 70
    delay_periods: int = 1
    coast: bool = True
    backend: str = "onnxruntime"
    precision: str = "fp32"
    max_step: float = 0.35

    def __post_init__(self) -> None:
        from eipl_trt.sim.robot import SUBSTEPS

        if not 0 <= self.delay_periods < SUBSTEPS:
            raise InputError(f"delay_periods must be 0..{SUBSTEPS - 1} (a frame has {SUBSTEPS} control periods)")
        if self.episodes < 1 or self.frames < 2:
            raise InputError(f"need episodes >= 1 and frames >= 2, got {self.episodes} and {self.frames}")


def closed_loop(model: str, cfg: RolloutConfig, progress: Callable[[int, Any], None] | None = None) -> list[Any]:
    """Run the model on ``cfg``'s layouts; returns each episode's :class:`~eipl_trt.sim.robot.EpisodeScore`."""
    from eipl_trt.control import CommandSafety, SafetyConfig
    from eipl_trt.predictor import Predictor
    from eipl_trt.sim.live import robot_limits
    from eipl_trt.sim.pusher import JOINT_NAMES, PusherScene
    from eipl_trt.sim.robot import SimRobot

    lower, upper = robot_limits(model)
    predictor = Predictor.from_model(model, backend=cfg.backend, precision=cfg.precision)
    scores = []
    with PusherScene(128) as scene:
        robot = SimRobot(scene, seed=cfg.seed, max_step=cfg.max_step)
        for index in range(cfg.first_episode, cfg.first_episode + cfg.episodes):
            robot.start_episode(index)
            predictor.reset_state()
            safety = CommandSafety(SafetyConfig(JOINT_NAMES, tuple(lower), tuple(upper), max_step=cfg.max_step))
            for _ in range(cfg.frames - 1):
                _frame(robot, predictor, safety, cfg, (lower, upper))
            scores.append(robot.finish_episode())
            if progress is not None:
                progress(index, scores[-1])
    return scores


def _frame(robot: Any, predictor: Any, safety: Any, cfg: RolloutConfig, limits: tuple[Any, Any]) -> None:
    """One camera period: predict, filter, let the command land ``delay_periods`` later, simulate 0.1 s."""
    from eipl_trt.ros.trajectory import TrajectoryTiming, trajectory_points
    from eipl_trt.sim.pusher import JOINT_NAMES
    from eipl_trt.sim.robot import FRAME_PERIOD_S, SUBSTEPS

    scene = robot.scene
    stamp = round(scene.time_s, 6)
    q = scene.joint_positions()
    decision = safety.filter(predictor.step(scene.render(), q, encoding="rgb8").joints, q)
    for _ in range(cfg.delay_periods):
        robot.step_period()
    if decision.command is not None:
        points = trajectory_points(decision.command, decision.previous, TrajectoryTiming(stamp, FRAME_PERIOD_S),
                                   FRAME_PERIOD_S, limits[0], limits[1], cfg.coast)
        robot.command_trajectory(JOINT_NAMES, points, start_s=stamp)
    for _ in range(SUBSTEPS - cfg.delay_periods):
        robot.step_period()


def success_count(scores: list[Any]) -> tuple[int, float]:
    """(successes, mean final distance in m)."""
    return sum(bool(s.success) for s in scores), float(np.mean([s.final_distance_m for s in scores]))
