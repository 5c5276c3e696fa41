"""The simulated Pusher robot behind a position interface, without ROS: episodes, joint PD, scoring.

:class:`SimRobot` is what ``eipl_trt_sim_robot`` (:mod:`eipl_trt.sim.ros_robot`) wraps: a
:class:`~eipl_trt.sim.pusher.PusherScene` whose arm is driven, like a ros2_control robot, by
position targets tracked with the scripted expert's own joint PD (stiffness ``kp`` 80 1/s²,
critical damping, computed torque with MuJoCo's inertia matrix and bias forces, within the ±2 N·m
motor limits). The target holds when commands stop (a real position controller keeps its last
setpoint), starting from the arm's start pose.

* ``forward_position`` commands (one position per joint, rad) replace the target at once, as a
  ``forward_command_controller`` does.
* ``joint_trajectory`` commands are interpolated linearly from the current target to each point
  at its ``time_from_start``, with the slope as the PD's velocity reference.

Every command is checked on the robot side by :class:`CommandCheck` (joint limits, ``max_step``),
not trusting the sender. Episode ``i`` of seed ``s`` uses exactly the layout, start pose and
expert timing that ``eipl-trt sim --seed s`` records as its episode ``i``
(:func:`episode_setup`), so seed 0 episodes 0..39 are the bundled models' training and test
layouts and any other seed gives unseen ones. An episode is scored by the object-to-goal
distance at its end; it succeeds within :data:`~eipl_trt.sim.record.SUCCESS_RADIUS_M`, the
expert's own threshold.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from eipl_trt.errors import InputError
from eipl_trt.sim.expert import ArmKinematics, ExpertConfig, sample_layout
from eipl_trt.sim.pusher import CONTROL_PERIOD_S, JOINT_NAMES, Layout, PusherScene
from eipl_trt.sim.record import _ARM_JITTER_RAD, _SUBSTEPS, RATE_HZ, SUCCESS_RADIUS_M

__all__ = ["SUBSTEPS", "FRAME_PERIOD_S", "EpisodeSetup", "episode_setup", "CommandCheck", "EpisodeScore",
           "SimRobot"]

#: Control periods (0.02 s) per camera frame (0.1 s).
SUBSTEPS = _SUBSTEPS
#: Camera period (s).
FRAME_PERIOD_S = 1.0 / RATE_HZ


@dataclass(frozen=True)
class EpisodeSetup:
    """Start of one episode: where things are and the random source the expert continues with."""

    seed: tuple[int, int]
    layout: Layout
    arm_qpos: np.ndarray
    rng: np.random.Generator


def episode_setup(kin: ArmKinematics, seed: int, index: int, config: ExpertConfig = ExpertConfig()) -> EpisodeSetup:
    """The layout and start pose of episode ``index`` of ``seed``, drawn as :func:`record.record_episode` does."""
    rng = np.random.default_rng((int(seed), int(index)))
    layout = sample_layout(kin, rng, config)
    arm = rng.uniform(-1.0, 1.0, 7) * _ARM_JITTER_RAD
    return EpisodeSetup((int(seed), int(index)), layout, arm, rng)


class CommandCheck:
    """Robot-side check of every received command: within the joint limits and ``max_step``.

    A command violates ``max_step`` when some joint moves more than ``max_step`` (+1e-6 rad) from
    the previous command *and* more than ``max_step`` + ``gap_tolerance`` from the measured
    position (the sender limits each step relative to its previous command, or to the measured
    position after a pause or reset; the tolerance covers the arm moving while a command travels).

    Args:
        lower, upper: (7,) joint limits (rad).
        max_step: largest allowed change per command (rad); 0 = not checked.
        gap_tolerance: extra allowance against the measured position (rad).
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray, max_step: float, gap_tolerance: float = 0.05):
        self.lower = np.asarray(lower, np.float64)
        self.upper = np.asarray(upper, np.float64)
        self.max_step = float(max_step)
        self.gap_tolerance = float(gap_tolerance)
        self.checked = 0
        self.violations = 0
        self.messages: list[str] = []

    def check(self, command: np.ndarray, previous: np.ndarray | None, measured: np.ndarray) -> list[str]:
        """Problems of ``command`` (7,) rad; counts them and keeps the first 20 messages."""
        self.checked += 1
        problems: list[str] = []
        if command.shape != self.lower.shape or not np.all(np.isfinite(command)):
            problems.append(f"command {np.round(command, 4).tolist()} is not {self.lower.size} finite positions")
        else:
            eps = 1e-9
            for i in np.nonzero((command < self.lower - eps) | (command > self.upper + eps))[0]:
                problems.append(f"{JOINT_NAMES[i]} {command[i]:.4f} rad outside [{self.lower[i]:.4f}, "
                                f"{self.upper[i]:.4f}]")
            if self.max_step > 0.0:
                from_prev = np.abs(command - previous) if previous is not None else np.full_like(command, np.inf)
                from_meas = np.abs(command - measured)
                bad = (from_prev > self.max_step + 1e-6) & (from_meas > self.max_step + self.gap_tolerance)
                for i in np.nonzero(bad)[0]:
                    problems.append(f"{JOINT_NAMES[i]} moved {min(from_prev[i], from_meas[i]):.4f} rad in one "
                                    f"command (max_step {self.max_step:.4f})")
        if problems:
            self.violations += 1
            if len(self.messages) < 20:
                self.messages.append("; ".join(problems))
        return problems


@dataclass
class EpisodeScore:
    """How one episode went (distances in m).

    Attributes:
        index, seed: the episode and its seed (``(seed, index)`` drew the layout).
        object_xy, goal_xy: start positions (m).
        start_distance_m, final_distance_m: object-to-goal distance at the start and the end.
        success: ``final_distance_m <= SUCCESS_RADIUS_M``.
        object_moved_m: how far the object ended from where it started.
        min_hand_object_m: closest the palm point came to the object centre (3-D; about 0 while pushing).
        commands: commands received during the episode.
        frames_without_command: camera periods that ran on the held target (no command in time).
        limit_violations: received commands outside the joint limits or ``max_step``.
    """

    index: int
    seed: int
    object_xy: tuple[float, float]
    goal_xy: tuple[float, float]
    start_distance_m: float
    final_distance_m: float = float("nan")
    success: bool = False
    object_moved_m: float = 0.0
    min_hand_object_m: float = float("inf")
    commands: int = 0
    frames_without_command: int = 0
    limit_violations: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = asdict(self)
        out.update(out.pop("extra"))
        return out


class SimRobot:
    """The Pusher arm as a position-controlled robot, one episode at a time.

    Args:
        scene: the scene to drive (owned by the caller).
        seed: layout seed (episode ``i`` uses ``(seed, i)``).
        max_step: ``max_step`` for the robot-side :class:`CommandCheck` (rad).
        config: the expert settings (gains, workspace).
    """

    def __init__(self, scene: PusherScene, seed: int = 1, max_step: float = 0.35,
                 config: ExpertConfig = ExpertConfig()) -> None:
        self.scene = scene
        self.seed = int(seed)
        self.config = config
        self.kin = ArmKinematics(scene, config)
        self.kp = float(config.kp)
        self.kd = 2.0 * math.sqrt(self.kp)
        self.check = CommandCheck(scene.joint_range[:, 0], scene.joint_range[:, 1], max_step)
        self._mass = np.zeros((scene.model.nv, scene.model.nv))
        self._segments: list[tuple[float, float, np.ndarray, np.ndarray]] = []  # (t0 s, t1 s, q0, q1 rad)
        self._target = np.zeros(7)
        self._last_command: np.ndarray | None = None
        self.setup: EpisodeSetup | None = None
        self.score: EpisodeScore | None = None
        self._object0 = np.zeros(2)

    # ------------------------------------------------------------------ episodes
    def start_episode(self, index: int) -> EpisodeSetup:
        """Reset the scene to episode ``index``: layout, start pose, target = start pose."""
        setup = episode_setup(self.kin, self.seed, index, self.config)
        self.scene.reset(setup.layout, setup.arm_qpos)
        self.setup = setup
        self._target = self.scene.joint_positions()
        self._segments = []
        self._last_command = None
        self._object0 = self.scene.object_xy()
        obj, goal = np.asarray(setup.layout.object_xy), np.asarray(setup.layout.goal_xy)
        self.score = EpisodeScore(index=int(index), seed=self.seed, object_xy=setup.layout.object_xy,
                                  goal_xy=setup.layout.goal_xy, start_distance_m=float(np.linalg.norm(obj - goal)))
        self._track()
        return setup

    def finish_episode(self) -> EpisodeScore:
        """Score the episode at its current state."""
        score = self.current_score()
        score.final_distance_m = float(np.linalg.norm(self.scene.object_xy() - self.scene.goal_xy()))
        score.success = bool(score.final_distance_m <= SUCCESS_RADIUS_M)
        score.object_moved_m = float(np.linalg.norm(self.scene.object_xy() - self._object0))
        return score

    def current_score(self) -> EpisodeScore:
        """The score of the running episode (updated as it runs)."""
        if self.score is None:
            raise InputError("no episode started; call start_episode first")
        return self.score

    # ------------------------------------------------------------------ commands
    def command_positions(self, positions: Sequence[float]) -> list[str]:
        """A ``forward_position`` command: the new target (7,) rad, in :data:`JOINT_NAMES` order.

        Returns:
            The robot-side check's problems (empty = within limits and ``max_step``). A command that
            is not 7 finite numbers is refused (the target holds); one outside the limits is
            clipped to them, as a hardware interface would.
        """
        q = np.asarray(positions, dtype=np.float64).reshape(-1)
        problems = self.check.check(q, self._last_command, self.scene.joint_positions())
        score = self.current_score()
        score.limit_violations += int(bool(problems))
        if q.shape != (7,) or not np.all(np.isfinite(q)):
            return problems
        score.commands += 1
        q = np.clip(q, self.scene.joint_range[:, 0], self.scene.joint_range[:, 1])
        self._last_command = q.copy()
        self._target = q
        self._segments = []
        return problems

    def command_trajectory(self, names: Sequence[str], points: Sequence[tuple[float, Sequence[float]]],
                           start_s: float | None = None) -> list[str]:
        """A ``joint_trajectory`` command: ``points`` of (time_from_start s, positions rad in ``names`` order).

        Each point's positions are checked like a ``forward_position`` command (against the point
        before it; the first against the previous command's first point); the path is interpolated linearly
        from the reference held when the command is
        applied. ``start_s`` is the trajectory's start (its ``header.stamp``) in scene time, from which
        the points' ``time_from_start`` count, as in ros2_controllers' joint_trajectory_controller: the
        ramp runs from where the reference is when the command is applied to the first point at
        ``start_s + time_from_start`` (a point already due is reached at once). ``None`` starts now.

        Raises:
            InputError: a model joint is missing from ``names``, or a point has the wrong length.
        """
        index = {n: i for i, n in enumerate(names)}
        missing = [n for n in JOINT_NAMES if n not in index]
        if missing:
            raise InputError(f"joint_trajectory lacks joint(s) {', '.join(missing)}; send all of {', '.join(JOINT_NAMES)}")
        order = [index[n] for n in JOINT_NAMES]
        now = self.scene.time_s
        start = self._reference(now)[0]
        base = now if start_s is None else float(start_s)
        t_start = now
        segments: list[tuple[float, float, np.ndarray, np.ndarray]] = []
        problems: list[str] = []
        score = self.current_score()
        for t_from_start, positions in points:
            if len(positions) != len(names):
                raise InputError(f"trajectory point has {len(positions)} positions for {len(names)} joints")
            q = np.asarray(positions, dtype=np.float64)[order]
            found = self.check.check(q, self._last_command, self.scene.joint_positions())
            score.limit_violations += int(bool(found))
            problems += found
            if not np.all(np.isfinite(q)):
                return problems
            q = np.clip(q, self.scene.joint_range[:, 0], self.scene.joint_range[:, 1])
            self._last_command = q.copy()
            t_end = max(base + float(t_from_start), t_start)
            segments.append((t_start, t_end, start, q))
            start, t_start = q, t_end
        if segments:
            score.commands += 1
            self._segments = segments
            self._target = segments[-1][3]
            # the sender limits its next command against this one's first point (later points are where the
            # arm coasts to if no command follows), so that is what the next check compares with
            self._last_command = segments[0][3].copy()
        return problems

    def _reference(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Position (rad) and velocity (rad/s) references at time ``t`` (s); the target after the path."""
        for t0, t1, q0, q1 in self._segments:
            if t < t1:
                span = max(t1 - t0, 1e-9)
                s = min(max((t - t0) / span, 0.0), 1.0)
                return q0 + (q1 - q0) * s, (q1 - q0) / span
        return self._target, np.zeros(7)

    # ------------------------------------------------------------------ physics
    def step_period(self) -> None:
        """Advance one control period (0.02 s) with the joint PD tracking the current reference.

        The PD aims at the reference's position at the period's end and at its *mean* velocity over the
        period (what the scripted expert's own PD does with its inverse-kinematics increments). Sampling the
        velocity at the period's end instead made it flip between the ramp's slope and zero whenever a
        segment ended exactly there, as floating-point rounding decided: the same commands then moved the
        arm differently in lockstep and in real time.
        """
        scene = self.scene
        t = scene.time_s
        q_ref = self._reference(t + CONTROL_PERIOD_S)[0]
        qd_ref = (q_ref - self._reference(t)[0]) / CONTROL_PERIOD_S
        acc = self.kp * (q_ref - scene.joint_positions()) + self.kd * (qd_ref - scene.joint_velocities())
        scene.mujoco.mj_fullM(scene.model, scene.data, self._mass)
        scene.step(self._mass[:7, :7] @ acc + scene.data.qfrc_bias[:7])
        self._track()

    def step_torque(self, ctrl: np.ndarray) -> None:
        """Advance one control period with raw joint torques (N·m), bypassing the PD (the expert)."""
        self.scene.step(ctrl)
        self._track()

    def _track(self) -> None:
        """Update the closest approach of the palm point to the object centre (3-D)."""
        if self.score is None:
            return
        palm, _ = self.kin.palm_pose(self.scene.joint_positions())
        d = float(np.linalg.norm(palm - self.scene.data.body("object").xpos))
        self.score.min_hand_object_m = min(self.score.min_hand_object_m, d)

    @property
    def target(self) -> np.ndarray:
        """The position the controller holds when no trajectory is running (rad), a copy."""
        return self._target.copy()
