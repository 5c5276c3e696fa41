"""The scripted expert as a joint-target controller at the camera rate: what a 10 Hz model does.

:class:`~eipl_trt.sim.expert.PushExpert` drives the arm with torques at the physics rate and sees the
true state: it says what a layout allows. A model, and a lab's teleoperator or planner, instead sends
one joint target per camera frame through the robot's trajectory controller. :class:`TargetExpert`
is the same expert behind that interface: for the frame at plan time ``t`` it returns the joint
positions its plan reaches at ``t + period``, from the same minimum-jerk Cartesian plan and the same
inverse-kinematics reference the torque expert tracks (advanced in 0.02 s steps, so the joint path is
identical), and the robot's joint PD tracks the linear path to it.

Two additions make it a data source rather than only a reference:

* **DART noise** (:class:`OUNoise`): the *executed* target carries a mean-reverting (Ornstein-
  Uhlenbeck) offset per joint, while the *intent* (the clean target) is what gets recorded as the
  label. The arm leaves the nominal path and the labels show the way back (Laskey et al., "DART:
  Noise Injection for Robust Imitation Learning", CoRL 2017).
* **Replanning** (:meth:`TargetExpert.replan`): a plan that starts where the arm and the object are
  now, for a hand-over from a model that drove the arm (HG-DAgger style interventions).

No ROS here: :mod:`eipl_trt.sim.ros_expert` is the ROS 2 node around it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from eipl_trt.sim.expert import ArmKinematics, ExpertConfig, PushExpert
from eipl_trt.sim.pusher import CONTROL_PERIOD_S, Layout, PusherScene

__all__ = ["OUNoise", "NoiseConfig", "TargetExpert"]


@dataclass(frozen=True)
class NoiseConfig:
    """DART noise on the executed joint targets.

    Attributes:
        sigma: stationary standard deviation of the offset per joint (rad); 0 = none.
        tau: correlation time of the offset (s): how long a deviation persists.
    """

    sigma: float = 0.0
    tau: float = 0.4

    def __post_init__(self) -> None:
        if not self.sigma >= 0.0 or not self.tau > 0.0:
            raise ValueError(f"DART noise needs sigma >= 0 and tau > 0, got sigma={self.sigma}, tau={self.tau}")


class OUNoise:
    """A discrete Ornstein-Uhlenbeck offset sampled every ``period_s``: stationary std ``sigma``, correlation ``tau``."""

    def __init__(self, config: NoiseConfig, period_s: float, rng: np.random.Generator, dim: int = 7) -> None:
        self.decay = math.exp(-period_s / config.tau)
        self.scale = config.sigma * math.sqrt(1.0 - self.decay ** 2)
        self.rng = rng
        self.value = np.zeros(dim) if config.sigma == 0.0 else config.sigma * rng.standard_normal(dim)

    def step(self) -> np.ndarray:
        """The next offset (rad), a copy."""
        self.value = self.decay * self.value + self.scale * self.rng.standard_normal(self.value.shape)
        return self.value.copy()


class _Replanned(PushExpert):
    """:class:`PushExpert` whose plan time starts at ``t0`` (s) instead of 0."""

    def __init__(self, scene: PusherScene, layout: Layout, rng: np.random.Generator, config: ExpertConfig,
                 t0: float) -> None:
        super().__init__(scene, layout, rng, config)
        self.t0 = float(t0)

    def target(self, t: float) -> tuple[np.ndarray, float]:
        return super().target(t - self.t0)


class TargetExpert:
    """Joint targets one period ahead from the scripted expert's plan (see the module docstring).

    Args:
        scene: a scene reset to the episode's layout and start pose (only its model and state are read,
            to build the plan; its state is not changed afterwards).
        layout: object and goal.
        rng: the episode's random source after the layout draws (:func:`~eipl_trt.sim.robot.episode_setup`),
            so the plan's timing equals the torque expert's for the same episode.
        config: the expert settings.
        period_s: the camera/control period the targets are sent at (s).
    """

    def __init__(self, scene: PusherScene, layout: Layout, rng: np.random.Generator,
                 config: ExpertConfig = ExpertConfig(), period_s: float = 0.1) -> None:
        self.config = config
        self.period_s = float(period_s)
        self.kin = ArmKinematics(scene, config)
        self._rng = rng
        self._plan: PushExpert = PushExpert(scene, layout, rng, config)
        self._q_ref = scene.joint_positions()
        self._t_ref = 0.0

    @property
    def duration_s(self) -> float:
        """Time the current plan needs from its start (s)."""
        return self._plan.duration_s

    def target(self, t_frame: float) -> np.ndarray:
        """The joints (7,) rad the plan reaches at ``t_frame + period_s`` (plan time, s), a copy.

        The inverse-kinematics reference advances in control periods (0.02 s), as the torque expert's
        does; a frame time earlier than the last call's returns the reference already reached.
        """
        due = t_frame + self.period_s
        while self._t_ref + CONTROL_PERIOD_S <= due + 1e-9:
            self._t_ref += CONTROL_PERIOD_S
            palm, yaw = self._plan.target(self._t_ref)
            self._q_ref, _ = self.kin.ik_step(self._q_ref, palm, yaw)
        return self._q_ref.copy()

    def replan(self, scene: PusherScene, object_xy: np.ndarray, goal_xy: np.ndarray, t_now: float) -> None:
        """Plan anew from the arm's joints in ``scene`` and the object at ``object_xy`` (m), from plan time ``t_now``.

        ``scene`` must hold the measured arm joints (its object position is not used: ``object_xy`` is).
        """
        layout = Layout(object_xy=(float(object_xy[0]), float(object_xy[1])),
                        goal_xy=(float(goal_xy[0]), float(goal_xy[1])))
        self._plan = _Replanned(scene, layout, self._rng, self.config, t0=t_now)
        self._q_ref = scene.joint_positions()
        self._t_ref = float(t_now)
