"""``eipl_trt_sim_expert``: the scripted expert as a ROS 2 controller of the simulated arm.

It commands ``eipl_trt_sim_robot`` exactly as ``eipl_trt_node`` does: one JointTrajectory point per
camera frame, due one period after the frame (:func:`eipl_trt.ros.trajectory.trajectory_timing`),
through the robot's joint_trajectory controller, with whatever latency DDS and the robot add. That
makes it both the like-for-like reference for a model (the expert's joint targets at 10 Hz over the
same interface and clock) and the demonstrator a lab would record. The targets come from
:class:`~eipl_trt.sim.expert_targets.TargetExpert`; the episode's layout from ``sim/episode``,
which the robot publishes at each start.

Modes (parameter ``mode``):

* ``drive``: the expert commands every frame. With ``dart_sigma`` > 0 the executed targets carry
  DART noise; the clean intent is published on ``expert/intent`` (the training label).
* ``takeover``: a model (the node, remapped to publish on ``model/joint_trajectory``) drives and
  this node relays its commands to the robot until a hand-over frame drawn from
  ``takeover_frames``; then the expert replans from where the arm and the object are and drives
  to the end (HG-DAgger style interventions: the recorded labels show the way back from states
  the model reached). ``expert/events`` says when it took over.

Topics (relative names): in ``camera/image_raw``, ``joint_states``, ``sim/episode``, ``sim/object``,
``model/joint_trajectory`` (takeover only); out ``joint_trajectory_controller/joint_trajectory``,
``expert/intent`` (JointState stamped with the time the target is due), ``expert/takeover``
(std_msgs/Header stamped with the frame the expert took over at), ``expert/events`` (std_msgs/String, JSON).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from eipl_trt.errors import EipltrtError, InputError

__all__ = ["ExpertParams", "main"]

MODES = ("drive", "takeover")
#: Largest change of the executed target per command (rad): the node's default ``max_step``.
MAX_STEP = 0.35


@dataclass(frozen=True)
class ExpertParams:
    """The node's parameters (declared with these defaults)."""

    mode: str = "drive"
    period_s: float = 0.1
    trajectory_timing: str = "stamp"
    dart_sigma: list = (0.0, 0.0)  # type: ignore[assignment]  # per-episode range (rad)
    dart_tau_s: float = 0.4
    takeover_frames: list = (2, 30)  # type: ignore[assignment]
    noise_seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        lo, hi = (float(v) for v in self.dart_sigma)
        if not 0.0 <= lo <= hi:
            raise InputError(f"dart_sigma must be [min, max] with 0 <= min <= max, got {list(self.dart_sigma)}")
        a, b = (int(v) for v in self.takeover_frames)
        if not 1 <= a <= b:
            raise InputError(f"takeover_frames must be [first, last] with 1 <= first <= last, got {list(self.takeover_frames)}")


def _declare(node: Any) -> ExpertParams:
    values = {}
    for name, default in vars(ExpertParams()).items():
        node.declare_parameter(name, list(default) if isinstance(default, tuple) else default)
        value = node.get_parameter(name).value
        values[name] = list(value) if isinstance(default, (tuple, list)) else type(default)(value)
    return ExpertParams(**values)


class ExpertNode:
    """The ROS side around :class:`~eipl_trt.sim.expert_targets.TargetExpert` (see the module docstring)."""

    def __init__(self, rclpy: Any) -> None:
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import String
        from trajectory_msgs.msg import JointTrajectory

        from eipl_trt.sim.pusher import PusherScene

        self.node = rclpy.create_node("eipl_trt_sim_expert")
        self.params = _declare(self.node)
        self.JointState, self.String = JointState, String
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.command_pub = self.node.create_publisher(JointTrajectory, "joint_trajectory_controller/joint_trajectory",
                                                      reliable)
        self.intent_pub = self.node.create_publisher(JointState, "expert/intent", reliable)
        self.event_pub = self.node.create_publisher(String, "expert/events", reliable)
        from std_msgs.msg import Header

        self.Header = Header
        self.takeover_pub = self.node.create_publisher(Header, "expert/takeover", reliable)
        self.node.create_subscription(JointState, "joint_states", self._on_joints, reliable)
        self.node.create_subscription(String, "sim/episode", self._on_episode, latched)
        from geometry_msgs.msg import PointStamped

        self.node.create_subscription(PointStamped, "sim/object", self._on_object, reliable)
        self.node.create_subscription(Image, "camera/image_raw", self._on_image, QoSProfile(depth=2))
        if self.params.mode == "takeover":
            self.node.create_subscription(JointTrajectory, "model/joint_trajectory", self._on_model, reliable)
        self.scene = PusherScene(16)  # kinematics and plans only; never rendered
        self.lock = threading.Lock()
        self.episode: dict[str, Any] | None = None
        self.expert: Any = None
        self.noise: Any = None
        self.handover = 0
        self.taken_over = False
        self.joints: np.ndarray | None = None
        self.object_xy: np.ndarray | None = None
        self.pending_frame: float | None = None  # a frame that came before its episode's announcement
        self.previous: np.ndarray | None = None  # the last executed target (the step limit's reference)
        self.sent: np.ndarray | None = None  # the last target sent this episode (the coast point's slope)

    # ------------------------------------------------------------------ inputs
    def _on_joints(self, msg: Any) -> None:
        from eipl_trt.sim.pusher import JOINT_NAMES

        index = {n: i for i, n in enumerate(msg.name)}
        if all(n in index for n in JOINT_NAMES) and len(msg.position) == len(msg.name):
            with self.lock:
                self.joints = np.array([msg.position[index[n]] for n in JOINT_NAMES], dtype=np.float64)

    def _on_object(self, msg: Any) -> None:
        with self.lock:
            self.object_xy = np.array([msg.point.x, msg.point.y], dtype=np.float64)

    def _on_episode(self, msg: Any) -> None:
        """A new episode: rebuild the plan of ``(seed, index)`` exactly as the robot drew its layout."""
        from eipl_trt.sim.expert_targets import NoiseConfig, OUNoise, TargetExpert
        from eipl_trt.sim.robot import episode_setup

        info = json.loads(msg.data)
        if info.get("event") != "start":
            return
        with self.lock:
            from eipl_trt.sim.expert import ArmKinematics, ExpertConfig

            config = ExpertConfig()
            setup = episode_setup(ArmKinematics(self.scene, config), int(info["seed"]), int(info["index"]), config)
            self.scene.reset(setup.layout, setup.arm_qpos)
            self.expert = TargetExpert(self.scene, setup.layout, setup.rng, config, self.params.period_s)
            rng = np.random.default_rng((int(self.params.noise_seed), int(info["seed"]), int(info["index"])))
            lo, hi = (float(v) for v in self.params.dart_sigma)
            sigma = float(rng.uniform(lo, hi)) if hi > lo else lo
            self.noise = OUNoise(NoiseConfig(sigma, self.params.dart_tau_s), self.params.period_s, rng)
            a, b = (int(v) for v in self.params.takeover_frames)
            self.handover = int(rng.integers(a, b + 1))
            self.taken_over = self.params.mode == "drive"
            self.goal_xy = np.asarray(setup.layout.goal_xy, dtype=np.float64)
            self.episode = {**info, "dart_sigma": sigma, "handover": self.handover}
            self.previous = self.sent = None
            pending, self.pending_frame = self.pending_frame, None
        self._event({"event": "episode", **self.episode})
        if pending is not None:
            self._on_stamp(pending)

    def _on_model(self, msg: Any) -> None:
        """Takeover mode: relay the model's command until the expert has taken over."""
        with self.lock:
            relay = self.episode is not None and not self.taken_over
        if relay:
            self.command_pub.publish(msg)

    def _on_image(self, msg: Any) -> None:
        from eipl_trt.ros.convert import stamp_to_s

        self._on_stamp(stamp_to_s(msg.header.stamp))

    def _on_stamp(self, stamp: float) -> None:
        """Command the frame stamped ``stamp`` (s)."""
        with self.lock:
            if self.joints is None:
                return
            episode = self.episode
            t_plan = -1.0 if episode is None else stamp - float(episode["start_s"])
            if episode is None or t_plan > (int(episode["frames"]) - 0.5) * self.params.period_s:
                self.pending_frame = stamp  # the next episode's first frame, ahead of its announcement
                return
            if t_plan < -1e-3:
                return  # a frame from before this episode
            frame = int(round(t_plan / self.params.period_s))
            if not self.taken_over:
                if frame < self.handover or self.object_xy is None:
                    return
                self._take_over(t_plan, frame, stamp)
            clean = self.expert.target(t_plan)
            executed = np.clip(clean + self.noise.step(), self.scene.joint_range[:, 0], self.scene.joint_range[:, 1])
            reference = self.joints if self.previous is None else self.previous
            executed = reference + np.clip(executed - reference, -MAX_STEP, MAX_STEP)  # the node's step limit
            self.previous = executed
        self._publish(clean, executed, stamp)

    def _take_over(self, t_plan: float, frame: int, stamp: float) -> None:
        """Replan from the measured joints and object (caller holds the lock)."""
        assert self.joints is not None and self.object_xy is not None
        qpos = self.scene.data.qpos.copy()
        qpos[:7] = self.joints
        self.scene.data.qpos[:] = qpos
        self.expert.replan(self.scene, self.object_xy, self.goal_xy, t_plan)
        self.taken_over = True
        from eipl_trt.ros.convert import s_to_stamp

        self.takeover_pub.publish(self.Header(stamp=s_to_stamp(stamp), frame_id="takeover"))
        self._event({"event": "takeover", "frame": frame, "stamp_s": stamp, "index": self.episode["index"]})

    # ------------------------------------------------------------------ outputs
    def _publish(self, clean: np.ndarray, executed: np.ndarray, stamp: float) -> None:
        from std_msgs.msg import Header

        from eipl_trt.ros import convert
        from eipl_trt.ros.trajectory import trajectory_points, trajectory_timing
        from eipl_trt.sim.pusher import JOINT_NAMES

        due = stamp + self.params.period_s
        self.intent_pub.publish(convert.joint_state_msg(JOINT_NAMES, clean, Header(stamp=convert.s_to_stamp(due))))
        now_s = self.node.get_clock().now().nanoseconds * 1e-9
        timing = trajectory_timing(self.params.period_s, stamp, now_s, self.params.trajectory_timing)
        points = trajectory_points(executed, self.sent, timing, self.params.period_s, self.scene.joint_range[:, 0],
                                   self.scene.joint_range[:, 1])  # the node's coast point too
        self.sent = executed
        self.command_pub.publish(convert.trajectory_msg(JOINT_NAMES, executed, timing.time_from_start_s, timing.start_s,
                                                        points[1:]))

    def _event(self, payload: dict[str, Any]) -> None:
        self.event_pub.publish(self.String(data=json.dumps(payload)))


def main(args: Sequence[str] | None = None) -> int:
    """Console script ``eipl_trt_sim_expert``: command the simulated arm until interrupted (0)."""
    from eipl_trt.ros import require_rclpy

    try:
        require_rclpy()
    except EipltrtError as exc:
        print(f"eipl_trt_sim_expert: {exc}", file=sys.stderr)
        return 1
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    rclpy.init(args=list(sys.argv if args is None else args))
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    expert = None
    try:
        expert = ExpertNode(rclpy)
        executor = SingleThreadedExecutor()
        executor.add_node(expert.node)
        executor.spin()
        return 0
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    except EipltrtError as exc:
        print(f"eipl_trt_sim_expert: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if expert is not None:
            expert.scene.close()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
