"""The node's output publishers (lifecycle-managed) and what one step publishes.

Topics (relative to the node; ``~/`` = private; all remappable):

===============================  =============================  ===========================================
topic                            type                           content
===============================  =============================  ===========================================
``~/predicted_joint_states``     sensor_msgs/JointState         model joint names, denormalized targets for
                                                                the next step (rad); stamp = input image's
``~/enc_points``                 geometry_msgs/PolygonStamped   SARNN only: where the model looked, (x, y)
                                                                = (column, row) in input-image pixels, z = 0
``~/dec_points``                 geometry_msgs/PolygonStamped   SARNN only: predicted points for the next frame
``~/attention_image``            sensor_msgs/Image (rgb8)       camera frame with enc (discs) and dec (rings)
                                                                points; only while subscribed
``~/predicted_image``            sensor_msgs/Image              predicted next frame at model resolution;
                                                                only while subscribed
``~/timing``                     sensor_msgs/JointState         per-step numbers, ``name[i]`` labels
                                                                ``position[i]``: preprocess_ms, inference_ms,
                                                                postprocess_ms, step_ms, input_age_ms,
                                                                image_latency_ms (+ power_w when measured)
``command_topic``                per ``command_interface``      safety-filtered commands (see params)
===============================  =============================  ===========================================
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState

from eipl_trt.imaging import to_channel_order
from eipl_trt.ros import convert
from eipl_trt.ros.params import NodeConfig
from eipl_trt.ros.runtime import StepResult
from eipl_trt.ros.trajectory import trajectory_points, trajectory_timing

__all__ = ["Outputs", "TIMING_FIELDS"]

#: Names in ``~/timing`` (one message per step, stamped with the input image's stamp, values in ms):
#: ``preprocess_ms``, ``inference_ms``, ``postprocess_ms`` (the Predictor's stages), ``step_ms`` (the
#: node's whole step up to publishing: input assembly, the three stages, safety, command),
#: ``input_age_ms`` (ROS time since the older of the two inputs arrived), ``image_latency_ms`` (arrival
#: minus header stamp: driver + transport delay; NaN for an unstamped image), ``decode_ms`` (turning the
#: image message into pixels on receipt: JPEG/PNG decoding, YUV/Bayer conversion), ``frame_wait_ms`` (ROS
#: time from the frame's arrival to the start of the step that used it: the wait for the timer tick in
#: timer mode, executor and queueing delay in image mode). ``power_w`` (W) is appended when a power
#: source exists. New fields are only ever appended (plots address ``position[i]``).
TIMING_FIELDS = ("preprocess_ms", "inference_ms", "postprocess_ms", "step_ms", "input_age_ms", "image_latency_ms",
                 "decode_ms", "frame_wait_ms")


class Outputs:
    """Creates the publishers on configure and publishes step results.

    Args:
        node: the lifecycle node (publishers are created with ``create_lifecycle_publisher``, so
            they only publish while the node is active).
        cfg: parameters (command interface and topic).
        joint_names: model joints in model order (names used in every joint message).
        has_points: the model has attention points (SARNN).
        period_s: control period (s): the model predicts one period ahead (see ``trajectory_timing``).
    """

    def __init__(self, node: Any, cfg: NodeConfig, joint_names: tuple[str, ...], has_points: bool, period_s: float):
        from geometry_msgs.msg import PolygonStamped
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        self._node = node
        self.joint_names = joint_names
        self.period_s = period_s
        self.interface = cfg.command_interface
        self.trajectory_timing = cfg.trajectory_timing
        self.coast = cfg.trajectory_coast
        #: returns the safety limits in force (lower, upper), to clamp the coast point; set by the node
        self.limits: Any = None
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        images = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
        pub = node.create_lifecycle_publisher
        self.predicted = pub(JointState, "~/predicted_joint_states", reliable)
        self.timing = pub(JointState, "~/timing", reliable)
        self.attention_image = pub(Image, "~/attention_image", images)
        self.predicted_image = pub(Image, "~/predicted_image", images)
        self.enc_points = pub(PolygonStamped, "~/enc_points", reliable) if has_points else None
        self.dec_points = pub(PolygonStamped, "~/dec_points", reliable) if has_points else None
        command_types = {"joint_state": JointState, "forward_position": Float64MultiArray,
                         "joint_trajectory": JointTrajectory}
        self.command = (
            pub(command_types[self.interface], cfg.command_topic_name(), reliable)
            if self.interface != "none" else None
        )

    def publishers(self) -> list[Any]:
        """Every publisher created here."""
        pubs = [self.predicted, self.timing, self.attention_image, self.predicted_image,
                self.enc_points, self.dec_points, self.command]
        return [p for p in pubs if p is not None]

    def destroy(self) -> None:
        """Destroy the publishers (cleanup)."""
        for p in self.publishers():
            self._node.destroy_lifecycle_publisher(p)

    def wants_predicted_image(self) -> bool:
        """True while someone subscribes to ``~/predicted_image``."""
        return self.predicted_image.get_subscription_count() > 0

    def publish_step(self, result: StepResult, extra_timing: dict[str, float]) -> None:
        """Publish the prediction, points, images (if subscribed) and timing of an ``ok`` step."""
        pred, frame = result.prediction, result.frame
        if pred is None or frame is None:
            return
        header = frame.header
        self.predicted.publish(convert.joint_state_msg(self.joint_names, pred.joints, header))
        if self.enc_points is not None and pred.enc_points_px is not None:
            self.enc_points.publish(convert.polygon_msg(pred.enc_points_px, header))
        if self.dec_points is not None and pred.dec_points_px is not None:
            self.dec_points.publish(convert.polygon_msg(pred.dec_points_px, header))
        if self.attention_image.get_subscription_count() > 0:
            rgb = to_channel_order(frame.image, frame.encoding, "rgb")
            overlay = convert.draw_points(rgb, pred.enc_points_px, pred.dec_points_px)
            self.attention_image.publish(convert.image_msg(overlay, "rgb8", header))
        if pred.image is not None:
            self.predicted_image.publish(convert.image_msg(pred.image, pred.image_encoding, header))
        t = pred.timings
        values = {
            "preprocess_ms": t.preprocess_s * 1e3,
            "inference_ms": t.inference_s * 1e3,
            "postprocess_ms": t.postprocess_s * 1e3,
            "step_ms": float("nan"),
            "input_age_ms": result.input_age_s * 1e3,
            "image_latency_ms": (frame.receipt_s - frame.stamp_s) * 1e3 if frame.stamp_s > 0 else float("nan"),
            "decode_ms": frame.decode_s * 1e3,
            "frame_wait_ms": float("nan"),
        }
        values.update(extra_timing)
        self.timing.publish(convert.named_values_msg(values, header))

    def publish_command(self, positions: np.ndarray, stamp: Any, frame_stamp_s: float = 0.0,
                        previous: np.ndarray | None = None) -> None:
        """Send ``positions`` (rad, model order) on the command interface (no-op when it is ``none``).

        ``frame_stamp_s``: the stamp of the frame the command was computed from (0 = none, e.g. a hold
        command); a joint_trajectory point is due as ``trajectory_timing`` says
        (:func:`eipl_trt.ros.trajectory.trajectory_timing`, read against the node's clock when sending).
        ``previous``: the command this one follows (``None`` after a reset, stop or gap, and for a hold):
        with ``trajectory_coast`` the trajectory's second point continues the motion from it.
        """
        if self.command is None:
            return
        if self.interface == "forward_position":
            self.command.publish(convert.forward_command_msg(positions))
        elif self.interface == "joint_trajectory":
            now_s = self._node.get_clock().now().nanoseconds * 1e-9
            timing = trajectory_timing(self.period_s, frame_stamp_s, now_s, self.trajectory_timing)
            lower, upper = self.limits() if self.limits is not None else (None, None)
            points = trajectory_points(positions, previous, timing, self.period_s, lower, upper, self.coast)
            self.command.publish(convert.trajectory_msg(self.joint_names, points[0][1], points[0][0], timing.start_s,
                                                        points[1:]))
        else:
            from std_msgs.msg import Header

            self.command.publish(convert.joint_state_msg(self.joint_names, positions, Header(stamp=stamp)))
