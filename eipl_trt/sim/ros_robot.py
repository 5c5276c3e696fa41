"""``eipl_trt_sim_robot``: the simulated Pusher arm as a ROS 2 robot (a thin adapter over :class:`SimRobot`).

Topics (relative, so a namespace or remapping moves them):

==============================================  ================================  ==========================
topic                                           type                              notes
==============================================  ================================  ==========================
``camera/image_raw`` (out)                      sensor_msgs/Image rgb8            10 Hz, ``image_size`` px
``joint_states`` (out)                          sensor_msgs/JointState            50 Hz: position, velocity, effort
``/clock`` (out, lockstep only)                 rosgraph_msgs/Clock               simulated time
``forward_position_controller/commands`` (in)   std_msgs/Float64MultiArray        7 positions (rad)
``joint_trajectory_controller/joint_trajectory``  trajectory_msgs/JointTrajectory   by joint name; header.stamp honoured
``sim/episode`` (out, latched)                  std_msgs/String                   JSON: each episode's start
``sim/result`` (out)                            std_msgs/String                   JSON: each episode's score
``sim/object`` (out)                            geometry_msgs/PointStamped        object centre (m), per frame
==============================================  ================================  ==========================

Clocks (parameter ``clock``):

* ``lockstep``: time is simulated and published on ``/clock`` (run the controller with
  ``use_sim_time``). Each camera period the robot publishes the joint states, then the frame, and
  waits (``command_timeout_s`` of wall time at most) for a command before it simulates the next
  0.1 s, so the score does not depend on machine load. Without a frame (camera off) it waits at
  most 0.1 s.
* ``realtime``: the scene runs at wall-clock speed; late commands show in the score.

It runs ``episodes`` episodes (``first_episode`` ... of layout ``seed``), calling the controller's
``reset_service`` (std_srvs/Trigger, e.g. ``/eipl_trt/reset``) at each start, writes the scores to
``results`` (JSON) and the frames of ``video_episode`` to ``video_out`` (npz), then exits.
Before the first episode it waits (``wait_for_controller_s`` at most) for a command publisher and
``image_subscribers`` matched camera subscribers: a recorder counts as one, so that it gets the first
frame too (a volatile frame published before discovery has matched a subscriber is lost to it).
Fault injection (runtime parameters): ``camera_enabled`` (false = the camera stops) and
``nan_joints`` (true = joint_states carry NaN positions); ``command_timeout_s`` may change too.

Variation per episode (:mod:`eipl_trt.sim.variation`, all off by default): ``command_latency_s``
([min, max] s before a received command is applied), ``camera_jitter_s`` (frames published up to this
long after their stamp), ``frame_drop`` (probability a frame is not published), ``joint_divisors``
(joint_states every k-th 20 ms period, k drawn per episode), ``appearance`` (light and colour strength).

The joint_trajectory controller follows ros2_controllers' rules: the points' ``time_from_start`` count
from ``header.stamp`` (zero: from when the command is applied), and the arm ramps from the reference it
holds when the command is applied to the first point at that due time.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from eipl_trt.errors import EipltrtError, InputError

__all__ = ["SimRobotParams", "main"]

FORWARD_TOPIC = "forward_position_controller/commands"
TRAJECTORY_TOPIC = "joint_trajectory_controller/joint_trajectory"


@dataclass(frozen=True)
class SimRobotParams:
    """The node's parameters (see the module docstring); defaults are the declared ones."""

    clock: str = "lockstep"
    episodes: int = 1
    first_episode: int = 0
    seed: int = 1
    frames: int = 70
    image_size: int = 128
    command_timeout_s: float = 1.0
    frame_lag_s: float = 0.01
    max_step: float = 0.35
    reset_service: str = "/eipl_trt/reset"
    wait_for_controller_s: float = 60.0
    image_subscribers: int = 1
    results: str = ""
    video_episode: int = -1
    video_out: str = ""
    camera_enabled: bool = True
    nan_joints: bool = False
    command_latency_s: list = (0.0, 0.0)  # type: ignore[assignment]  # per-episode [min, max] (s)
    camera_jitter_s: float = 0.0
    frame_drop: float = 0.0
    joint_divisors: list = (1,)  # type: ignore[assignment]
    appearance: float = 0.0

    def __post_init__(self) -> None:
        if self.clock not in ("lockstep", "realtime"):
            raise InputError(f"clock must be lockstep or realtime, got {self.clock!r}")
        if self.episodes < 0 or self.frames < 2:
            raise InputError(f"need episodes >= 0 and frames >= 2, got {self.episodes} and {self.frames}")
        if self.image_subscribers < 1:
            raise InputError(f"image_subscribers must be >= 1 (the controller), got {self.image_subscribers}")


def _declare(node: Any) -> SimRobotParams:
    """Declare every :class:`SimRobotParams` field as a parameter (its default and type) and read them."""
    defaults = SimRobotParams()
    values = {}
    for name, default in vars(defaults).items():
        listed = isinstance(default, (tuple, list))
        node.declare_parameter(name, list(default) if listed else default)
        value = node.get_parameter(name).value
        values[name] = list(value) if listed else type(default)(value)
    return SimRobotParams(**values)


class SimRobotNode:
    """The ROS side: publishers, command subscriptions, parameters; the main thread runs the episodes."""

    def __init__(self, rclpy: Any):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import Float64MultiArray
        from std_srvs.srv import Trigger
        from trajectory_msgs.msg import JointTrajectory

        self.node = rclpy.create_node("eipl_trt_sim_robot")
        self.params = _declare(self.node)
        self.Clock, self.Image, self.JointState, self.Trigger = Clock, Image, JointState, Trigger
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        from geometry_msgs.msg import PointStamped
        from std_msgs.msg import String

        from eipl_trt.sim.variation import VariationConfig

        self.variation = VariationConfig.from_params(self.params.command_latency_s, self.params.camera_jitter_s,
                                                     self.params.frame_drop, self.params.joint_divisors,
                                                     self.params.appearance)
        self.String, self.PointStamped = String, PointStamped
        self.episode_pub = self.node.create_publisher(String, "sim/episode", latched)
        self.result_pub = self.node.create_publisher(String, "sim/result", reliable)
        self.object_pub = self.node.create_publisher(PointStamped, "sim/object", reliable)
        self.image_pub = self.node.create_publisher(Image, "camera/image_raw", QoSProfile(depth=2))
        self.joint_pub = self.node.create_publisher(JointState, "joint_states", reliable)
        self.clock_pub = self.node.create_publisher(Clock, "/clock", reliable) if self.params.clock == "lockstep" else None
        self.forward_sub = self.node.create_subscription(Float64MultiArray, FORWARD_TOPIC, self._on_forward, reliable)
        self.trajectory_sub = self.node.create_subscription(JointTrajectory, TRAJECTORY_TOPIC, self._on_trajectory,
                                                            reliable)
        self.reset_client = self.node.create_client(Trigger, self.params.reset_service) \
            if self.params.reset_service else None
        self.lock = threading.Lock()
        self.pending: list[tuple[str, Any]] = []
        self.arrived = threading.Event()
        self.camera_enabled = self.params.camera_enabled
        self.nan_joints = self.params.nan_joints
        self.command_timeout_s = self.params.command_timeout_s
        self.node.add_on_set_parameters_callback(self._on_params)
        from eipl_trt.sim.robot_loop import DelayedPublisher

        self.delayed_images = DelayedPublisher(self.image_pub.publish)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            while not self._stop.is_set():
                self.executor.spin_once(timeout_sec=0.05)
        except Exception:  # context shut down at exit
            pass

    def close(self) -> None:
        """Stop the spin thread (joined, so no thread is inside rclpy at exit), then the executor and node."""
        self._stop.set()
        self.thread.join(5.0)
        self.delayed_images.close()
        self.executor.shutdown()
        self.node.destroy_node()

    def _on_params(self, params: list[Any]) -> Any:
        from rcl_interfaces.msg import SetParametersResult

        for p in params:
            if p.name == "camera_enabled":
                self.camera_enabled = bool(p.value)
            elif p.name == "nan_joints":
                self.nan_joints = bool(p.value)
            elif p.name == "command_timeout_s":
                if not float(p.value) > 0.0:
                    return SetParametersResult(successful=False, reason="command_timeout_s must be > 0 s")
                self.command_timeout_s = float(p.value)
        return SetParametersResult(successful=True)

    def _on_forward(self, msg: Any) -> None:
        with self.lock:
            self.pending.append(("forward", np.array(msg.data, dtype=np.float64), time.monotonic()))
        self.arrived.set()

    def _on_trajectory(self, msg: Any) -> None:
        from eipl_trt.ros.convert import stamp_to_s

        points = [(p.time_from_start.sec + p.time_from_start.nanosec * 1e-9, list(p.positions)) for p in msg.points]
        with self.lock:
            self.pending.append(("trajectory", (list(msg.joint_names), points, stamp_to_s(msg.header.stamp)),
                                 time.monotonic()))
        self.arrived.set()

    def take_commands(self) -> list[tuple[str, Any, float]]:
        """The commands received since the last call, oldest first: ``(kind, payload, arrival monotonic s)``."""
        with self.lock:
            out, self.pending = self.pending, []
            self.arrived.clear()
        return out

    # ------------------------------------------------------------------ publishing
    def _stamp(self, t_s: float) -> Any:
        from eipl_trt.ros.convert import s_to_stamp

        return s_to_stamp(t_s)

    def publish_clock(self, t_s: float) -> None:
        """``/clock`` = ``t_s`` (s); lockstep only."""
        if self.clock_pub is not None:
            self.clock_pub.publish(self.Clock(clock=self._stamp(t_s)))

    def publish_joints(self, t_s: float, q: np.ndarray, qd: np.ndarray, tau: np.ndarray) -> None:
        """joint_states stamped ``t_s``: positions (rad; NaN while ``nan_joints``), velocities, efforts."""
        from eipl_trt.sim.pusher import JOINT_NAMES

        msg = self.JointState()
        msg.header.stamp = self._stamp(t_s)
        msg.name = list(JOINT_NAMES)
        msg.position = [float("nan")] * 7 if self.nan_joints else [float(v) for v in q]
        msg.velocity = [float(v) for v in qd]
        msg.effort = [float(v) for v in tau]
        self.joint_pub.publish(msg)

    def announce(self, info: dict[str, Any]) -> None:
        """An episode event on ``sim/episode`` (JSON)."""
        import json

        self.episode_pub.publish(self.String(data=json.dumps(info)))

    def report(self, info: dict[str, Any]) -> None:
        """An episode's score on ``sim/result`` (JSON)."""
        import json

        self.result_pub.publish(self.String(data=json.dumps(info)))

    def publish_object(self, t_s: float, xy: np.ndarray) -> None:
        """The object's centre (m, world x/y) stamped ``t_s``."""
        msg = self.PointStamped()
        msg.header.stamp = self._stamp(t_s)
        msg.header.frame_id = "world"
        msg.point.x, msg.point.y = float(xy[0]), float(xy[1])
        self.object_pub.publish(msg)

    def publish_image(self, t_s: float, rgb: np.ndarray, delay_s: float = 0.0) -> None:
        """An rgb8 camera frame stamped ``t_s``, published now or ``delay_s`` later (camera jitter)."""
        msg = self.Image()
        msg.header.stamp = self._stamp(t_s)
        msg.header.frame_id = "camera"
        msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
        msg.encoding, msg.step, msg.is_bigendian = "rgb8", int(rgb.shape[1] * 3), 0
        msg.data = rgb.tobytes()
        if delay_s > 0.0:
            self.delayed_images.submit(delay_s, msg)
        else:
            self.image_pub.publish(msg)

    def call_reset(self, timeout_s: float = 5.0) -> bool:
        """Call the controller's reset service; False when it is not there or does not answer."""
        client = self.reset_client
        if client is None or not client.wait_for_service(timeout_sec=timeout_s):
            return False
        future = client.call_async(self.Trigger.Request())
        deadline = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.002)
        return bool(future.done() and future.result() is not None and future.result().success)

    def wait_for_controller(self) -> bool:
        """Wait until a command publisher and ``image_subscribers`` image subscribers are matched."""
        deadline = time.monotonic() + self.params.wait_for_controller_s
        while time.monotonic() < deadline:
            commands = self.forward_sub.get_publisher_count() + self.trajectory_sub.get_publisher_count()
            if commands > 0 and self.image_pub.get_subscription_count() >= self.params.image_subscribers:
                return True
            time.sleep(0.05)
        return False


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(args: Sequence[str] | None = None) -> int:
    """Console script ``eipl_trt_sim_robot``: run the episodes, then exit (0; 1 on an error)."""
    from eipl_trt.ros import require_rclpy

    try:
        require_rclpy()
    except EipltrtError as exc:
        print(f"eipl_trt_sim_robot: {exc}", file=sys.stderr)
        return 1
    import signal

    import rclpy
    from rclpy.signals import SignalHandlerOptions

    argv = list(sys.argv if args is None else args)
    # SIGINT/SIGTERM end the running episode (scored, marked interrupted) and write the results.
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupt)
    ros = None
    try:
        from eipl_trt.sim.robot_loop import run_episodes

        ros = SimRobotNode(rclpy)
        run_episodes(ros)
        return 0
    except EipltrtError as exc:
        print(f"eipl_trt_sim_robot: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if ros is not None:
            ros.close()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
