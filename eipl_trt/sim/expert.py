"""A scripted pushing expert for :class:`~eipl_trt.sim.pusher.PusherScene`.

The expert pushes the object with the palm of the U-shaped hand, the object cradled between
the fingers, in four moves:

1. approach: from the start pose, at a safe height (above the object), to a point 13 cm behind
   the object on the line goal -> object, turning the hand to face the goal;
2. descend to push height (the object's mid-height);
3. push straight to the goal, so the object's centre ends on the goal's centre;
4. retreat: back 10 cm and up, so the camera sees the object on the goal.

Each move is a minimum-jerk path of a "palm point" (7 cm in front of the wrist, where the object's
centre sits when it touches the palm) and of the hand's heading (yaw). A damped least-squares
inverse kinematics turns the Cartesian path into joint targets every control period (the hand
kept level: yaw and roll weighted, pitch allowed to tilt up near the shoulder), and a
computed-torque joint PD controller (inertia matrix from MuJoCo) tracks them within the ±2 N·m
motor limits. Layouts are sampled only where the inverse kinematics reaches every push pose.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from eipl_trt.sim.pusher import CONTROL_PERIOD_S, Layout, PusherScene

__all__ = ["ExpertConfig", "ArmKinematics", "sample_layout", "PushExpert"]

logger = logging.getLogger(__name__)

# Joint-space pose the inverse kinematics is pulled towards in its null space (rad).
_Q_NOMINAL = np.array([0.0, 0.6, 0.0, -1.2, 0.0, -0.5, 0.0])
# Task weights: palm x, y, z (per m), yaw, roll, pitch (per rad).
_TASK_WEIGHTS = np.array([1.0, 1.0, 1.0, 0.3, 0.3, 0.05])
# Shoulder-lift pivot (m, world x/y), for a quick reach pre-check.
_SHOULDER_XY = np.array([0.1, -0.6])


@dataclass(frozen=True)
class ExpertConfig:
    """Geometry, timing and gains of the expert (m, s, rad, 1/s²).

    Attributes:
        push_height: palm height while pushing: the object's mid-height (m).
        safe_height: palm height while travelling over the object (m).
        standoff: distance behind the object where the hand comes down (m).
        retreat: distance the hand backs off after the push (m).
        palm_offset: palm point ahead of the wrist origin: palm bar radius + object radius (m).
        approach_s: range of the approach duration, drawn per episode (s).
        descend_s, settle_s, retreat_s: durations of these moves (s).
        push_speed: range of the mean push speed, drawn per episode (m/s).
        min_push_s: shortest push (s).
        kp: joint PD stiffness (1/s²); the damping is critical (2·sqrt(kp)).
        object_region: (x_min, x_max, y_min, y_max) of object start positions (m).
        goal_distance: range of object -> goal distances (m).
        goal_y_range: allowed goal y (m): on the table, inside the camera view.
    """

    push_height: float = -0.275
    safe_height: float = -0.15
    standoff: float = 0.13
    retreat: float = 0.10
    palm_offset: float = 0.07
    approach_s: tuple[float, float] = (1.5, 2.0)
    descend_s: float = 0.7
    settle_s: float = 0.3
    retreat_s: float = 1.0
    push_speed: tuple[float, float] = (0.15, 0.19)
    min_push_s: float = 1.5
    kp: float = 80.0
    object_region: tuple[float, float, float, float] = (0.30, 0.75, -0.42, 0.10)
    goal_distance: tuple[float, float] = (0.15, 0.30)
    goal_y_range: tuple[float, float] = (-0.42, 0.15)


def _wrap(angle: float) -> float:
    """Wrap an angle to [-pi, pi) (rad)."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def _min_jerk(s: float) -> float:
    """Minimum-jerk progress 0..1 for normalized time ``s`` in 0..1."""
    s = min(max(s, 0.0), 1.0)
    return s * s * s * (10.0 - 15.0 * s + 6.0 * s * s)


class ArmKinematics:
    """Forward and inverse kinematics of the hand, on a private copy of the MuJoCo state.

    Args:
        scene: the scene whose model is used (its live state is never modified).
        config: provides ``palm_offset``.
    """

    def __init__(self, scene: PusherScene, config: ExpertConfig) -> None:
        self._mj = scene.mujoco
        self._model = scene.model
        self._data = self._mj.MjData(scene.model)
        self._body = scene.model.body("r_wrist_roll_link").id
        self._lo = scene.joint_range[:, 0]
        self._hi = scene.joint_range[:, 1]
        self._offset = config.palm_offset
        self._jacp = np.zeros((3, scene.model.nv))
        self._jacr = np.zeros((3, scene.model.nv))

    def palm_pose(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Palm point (3,) m and hand rotation matrix (3, 3) for arm joints ``q`` (7,) rad."""
        self._data.qpos[:7] = q
        self._mj.mj_kinematics(self._model, self._data)
        self._mj.mj_comPos(self._model, self._data)
        rot = self._data.xmat[self._body].reshape(3, 3).copy()
        return self._data.xpos[self._body] + self._offset * rot[:, 0], rot

    def ik_step(self, q: np.ndarray, palm: np.ndarray, yaw: float, iterations: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """Move ``q`` towards the palm point ``palm`` (m) with heading ``yaw`` (rad), hand level.

        Returns:
            The new joints (7,) rad and the task error (6,): palm x/y/z (m), yaw, roll, pitch (rad).
        """
        q = np.array(q, dtype=np.float64)
        err = np.zeros(6)
        for _ in range(iterations):
            point, rot = self.palm_pose(q)
            x_axis, y_axis = rot[:, 0], rot[:, 1]
            err = np.array([
                *(palm - point),
                _wrap(yaw - math.atan2(x_axis[1], x_axis[0])),
                -math.asin(float(np.clip(y_axis[2], -1.0, 1.0))),
                math.asin(float(np.clip(x_axis[2], -1.0, 1.0))),
            ])
            self._mj.mj_jac(self._model, self._data, self._jacp, self._jacr, point, self._body)
            jr = self._jacr[:, :7]
            jac = np.vstack([self._jacp[:, :7], jr[2:3], x_axis @ jr, y_axis @ jr])
            jw = _TASK_WEIGHTS[:, None] * jac
            pinv = jw.T @ np.linalg.inv(jw @ jw.T + 1e-3 * np.eye(6))
            dq = pinv @ (_TASK_WEIGHTS * err) + (np.eye(7) - pinv @ jw) @ (0.1 * (_Q_NOMINAL - q))
            q = np.clip(q + np.clip(dq, -0.1, 0.1), self._lo, self._hi)
        return q, err

    def reaches(self, palm: np.ndarray, yaw: float) -> bool:
        """Whether the hand can hold ``palm`` (m) with heading ``yaw`` (rad), level within limits."""
        q = _Q_NOMINAL.copy()
        for _ in range(30):
            q, err = self.ik_step(q, palm, yaw, iterations=2)
        return bool(np.all(np.abs(err[:3]) < 0.005) and np.all(np.abs(err[3:5]) < 0.03) and -0.45 < err[5] < 0.1)


def sample_layout(kin: ArmKinematics, rng: np.random.Generator, config: ExpertConfig = ExpertConfig()) -> Layout:
    """Draw an object start and a goal that the expert can push between.

    Args:
        kin: kinematics used to check the push poses.
        rng: random source (the layout is a deterministic function of its state).
        config: workspace limits.

    Returns:
        The layout.

    Raises:
        RuntimeError: no feasible layout in 5000 draws (the limits in ``config`` are inconsistent).
    """
    x0, x1, y0, y1 = config.object_region
    for _ in range(5000):
        obj = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        angle = rng.uniform(-math.pi, math.pi)
        direction = np.array([math.cos(angle), math.sin(angle)])
        goal = obj + rng.uniform(*config.goal_distance) * direction
        if not config.goal_y_range[0] <= goal[1] <= config.goal_y_range[1]:
            continue
        start = obj - config.standoff * direction
        if any(not 0.38 < np.linalg.norm(p - _SHOULDER_XY) < 0.80 for p in (start, goal)):
            continue
        middle = 0.5 * (obj + goal)
        if all(kin.reaches(np.array([*p, config.push_height]), angle) for p in (start, goal, middle)):
            return Layout(object_xy=(float(obj[0]), float(obj[1])), goal_xy=(float(goal[0]), float(goal[1])))
    raise RuntimeError("no reachable object/goal layout found; check ExpertConfig's workspace limits")


@dataclass(frozen=True)
class _Move:
    """One minimum-jerk move of the palm point (m) and heading (rad) over ``duration`` (s)."""

    duration: float
    start: np.ndarray
    end: np.ndarray
    yaw_start: float
    yaw_end: float


class PushExpert:
    """Closed-loop torque commands that push the object of ``layout`` onto its goal.

    Args:
        scene: the scene, already :meth:`~PusherScene.reset` to ``layout``.
        layout: object and goal positions.
        rng: draws the per-episode timing variations.
        config: geometry, timing and gains.
    """

    def __init__(self, scene: PusherScene, layout: Layout, rng: np.random.Generator, config: ExpertConfig = ExpertConfig()) -> None:
        self._scene = scene
        self._kin = ArmKinematics(scene, config)
        self._mj: Any = scene.mujoco
        self._kp = config.kp
        self._kd = 2.0 * math.sqrt(config.kp)
        obj = np.asarray(layout.object_xy, dtype=np.float64)
        goal = np.asarray(layout.goal_xy, dtype=np.float64)
        direction = (goal - obj) / max(float(np.linalg.norm(goal - obj)), 1e-9)
        yaw = math.atan2(direction[1], direction[0])
        q0 = scene.joint_positions()
        palm0, rot0 = self._kin.palm_pose(q0)
        yaw0 = math.atan2(rot0[1, 0], rot0[0, 0])
        above = np.array([*(obj - config.standoff * direction), config.safe_height])
        low = np.array([*(obj - config.standoff * direction), config.push_height])
        end = np.array([*goal, config.push_height])
        back = np.array([*(goal - config.retreat * direction), config.safe_height])
        push_s = max(config.min_push_s, float(np.linalg.norm(end - low)) / rng.uniform(*config.push_speed))
        self.moves = (
            _Move(rng.uniform(*config.approach_s), palm0, above, yaw0, yaw0 + _wrap(yaw - yaw0)),
            _Move(config.descend_s, above, low, yaw, yaw),
            _Move(push_s, low, end, yaw, yaw),
            _Move(config.settle_s, end, end, yaw, yaw),
            _Move(config.retreat_s, end, back, yaw, yaw),
        )
        #: Time the plan needs (s); the episode should be at least this long.
        self.duration_s = float(sum(m.duration for m in self.moves))
        self._q_ref = q0
        self._mass = np.zeros((scene.model.nv, scene.model.nv))
        logger.debug("push plan: object %s -> goal %s, heading %.0f deg, %.2f s", obj, goal,
                     math.degrees(yaw), self.duration_s)

    def target(self, t: float) -> tuple[np.ndarray, float]:
        """Palm point (3,) m and heading (rad) the plan asks for at time ``t`` (s)."""
        for move in self.moves:
            if t <= move.duration:
                s = _min_jerk(t / move.duration)
                return move.start + (move.end - move.start) * s, move.yaw_start + (move.yaw_end - move.yaw_start) * s
            t -= move.duration
        last = self.moves[-1]
        return last.end, last.yaw_end

    def action(self) -> np.ndarray:
        """Joint torques (7,) N·m for the next control period, from the scene's current state."""
        scene = self._scene
        palm, yaw = self.target(scene.time_s + CONTROL_PERIOD_S)
        q_new, _ = self._kin.ik_step(self._q_ref, palm, yaw)
        qd_ref = (q_new - self._q_ref) / CONTROL_PERIOD_S
        self._q_ref = q_new
        offset = self.reference_offset()
        target = q_new if offset is None else np.clip(q_new + offset, scene.joint_range[:, 0], scene.joint_range[:, 1])
        acc = self._kp * (target - scene.joint_positions()) + self._kd * (qd_ref - scene.joint_velocities())
        self._mj.mj_fullM(scene.model, scene.data, self._mass)
        return self._mass[:7, :7] @ acc + scene.data.qfrc_bias[:7]

    def reference_offset(self) -> np.ndarray | None:
        """An offset (7,) rad added to the joint reference each period (then clipped to the joint range), or
        None for the plain expert; :class:`eipl_trt.sim.demos.PerturbedExpert` draws one."""
        return None
