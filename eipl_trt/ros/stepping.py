"""Input callbacks and the model step of the ``eipl_trt`` node (a mixin of :class:`~eipl_trt.ros.lifecycle.EiplTrtNode`).

Everything here runs on the executor thread except :meth:`StepCallbacks._step`, which runs on the
:class:`~eipl_trt.ros.stepper.StepThread` (or, with ``--no-step-thread``, inside the callback that
kicked it). The callbacks do only cheap work: a joint_states message updates the joint cache, a raw
rgb8/bgr8 frame becomes a view of the message bytes, and a frame that needs decoding (JPEG/PNG, YUV,
Bayer, 16 bit) is stored as it came and decoded only if a step uses it, so superseded frames cost
nothing beyond their receipt.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from rclpy.clock import ClockChange, TimeJump
from sensor_msgs.msg import CompressedImage, Image, JointState

from eipl_trt.control import Throttle
from eipl_trt.errors import InputError
from eipl_trt.ros import convert
from eipl_trt.ros.diagnostics import DiagnosticsPublisher
from eipl_trt.ros.inputs import frame_wait_s
from eipl_trt.ros.outputs import Outputs
from eipl_trt.ros.params import NodeConfig
from eipl_trt.ros.phase import CameraPhaseLock
from eipl_trt.ros.runtime import NodeRuntime
from eipl_trt.ros.stepper import StepThread

__all__ = ["StepCallbacks"]

_NUMBERS = re.compile(r"[-+]?\d[\d.e+-]*")


class StepCallbacks:
    """Subscriptions' callbacks, the step timer's callback and the step, for a node that provides
    ``get_clock()``/``get_logger()`` (an rclpy node) and the attributes annotated below."""

    _runtime: NodeRuntime | None
    _outputs: Outputs | None
    _cfg: NodeConfig
    _stepper: StepThread | None
    _step_lock: threading.Lock
    _active: bool
    _throttle: Throttle
    _diagnostics: DiagnosticsPublisher
    _sim_time: bool
    _step_timer: Any
    _phase_lock: CameraPhaseLock
    _relock_pending: bool
    get_clock: Any
    get_logger: Any

    # ------------------------------------------------------------------ helpers
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _warn(self, key: str, message: str) -> None:
        """Log ``message`` at most once per 5 s per ``key`` and kind of message, saying how many were held back."""
        key = f"{key}:{_NUMBERS.sub('#', message)[:80]}"
        if self._throttle.should_log(key, time.monotonic()):
            held = self._throttle.take_suppressed(key)
            self.get_logger().warning(message + (f" ({held} similar message(s) suppressed)" if held else ""))

    # ------------------------------------------------------------------ inputs
    def _on_image(self, msg: Image | CompressedImage) -> None:
        rt = self._runtime
        if rt is None:
            return
        now_s = self._now_s()
        try:
            frame = convert.intake_frame(msg, now_s, rt.spec.channel_order)
        except InputError as exc:
            rt.note_bad_input("image", str(exc), now_s)
            self._warn("bad_image", f"dropped an image: {exc}")
            return
        if frame.decoder is None:  # a view; deferred frames are decoded (and timed) by the step that uses them
            rt.stages.add("decode", frame.decode_s)
        rt.on_image(frame)
        stepper = self._stepper
        if self._cfg.trigger != "image":
            if self._relock_pending and self._step_timer is not None:
                self._relock_pending = False
                self._step_timer.reset()  # the next ticks fall one period after this frame's arrival
            if stepper is not None:
                stepper.notify_frame()  # a tick waiting for this frame steps now
        elif stepper is not None:
            stepper.kick()
        else:
            self._step(new_image_only=True)

    def _on_joints(self, msg: JointState) -> None:
        rt = self._runtime
        if rt is None:
            return
        now_s = self._now_s()
        for problem in rt.on_joints(msg.name, msg.position, now_s):
            rt.note_bad_input("joint_states", problem, now_s)
            self._warn("bad_joints", problem)

    def _on_time_jump(self, jump: TimeJump) -> None:
        if jump.clock_change != ClockChange.ROS_TIME_NO_CHANGE or jump.delta.nanoseconds >= 0:
            return
        what = f"ROS time jumped back by {-jump.delta.nanoseconds * 1e-9:.3f} s"
        rt = self._runtime
        if rt is not None:
            rt.clear_inputs()
            rt.request_reset(what)
        self.get_logger().info(f"{what}; resetting the LSTM state")

    # ------------------------------------------------------------------ step
    def _on_step_timer(self) -> None:
        stepper = self._stepper
        if stepper is not None:
            stepper.kick(wait_for_frame_s=self._frame_wait())
        else:
            self._step(new_image_only=False)

    def _frame_wait(self) -> float:
        """How long this tick's step may wait for the camera frame that is due (0 with sim time).

        With ``timer_phase: camera`` and a camera at 1-4 frames per control period, the
        :class:`~eipl_trt.ros.phase.CameraPhaseLock` decides (and may ask :meth:`_on_image` to
        restart the timer on the next frame); otherwise ``max_frame_wait`` does.
        """
        rt = self._runtime
        if rt is None or self._sim_time:
            return 0.0
        now_s = self._now_s()
        frame_period = rt.image_rate.recent_period_s()  # follows a new rate or phase within a few frames
        camera_hz = 1.0 / frame_period if frame_period > 0.0 else 0.0  # NaN (under 3 frames) compares False
        if self._cfg.timer_phase == "camera" and self._phase_lock.lockable(camera_hz, rt.period_s):
            plan = self._phase_lock.plan(now_s, rt.image_rate.last(), camera_hz, rt.period_s)
            self._relock_pending = plan.relock
            rt.timer_relocks = self._phase_lock.relocks
            return plan.wait_s
        limit = self._cfg.frame_wait_limit(rt.period_s)
        if limit <= 0.0:  # off (the default): nothing more to look up on this tick
            return 0.0
        return frame_wait_s(now_s, rt.image_rate.last(), camera_hz, limit)

    def _step(self, *, new_image_only: bool) -> None:
        with self._step_lock:
            rt, out = self._runtime, self._outputs
            if not self._active or rt is None or out is None:
                return
            started = time.perf_counter()
            now = self.get_clock().now()
            now_s = now.nanoseconds * 1e-9
            result = rt.step(now_s, want_image=out.wants_predicted_image(), new_image_only=new_image_only)
            if result.status != "ok":
                if result.message:
                    self._warn(result.status, result.message)
                return
            decision = result.decision
            if decision is not None:
                if decision.command is not None:
                    stamp_s = result.frame.stamp_s if result.frame is not None else 0.0
                    out.publish_command(decision.command, now.to_msg(), stamp_s, decision.previous)
                if decision.message:
                    self._warn(f"command_{decision.reason}", decision.message)
            frame = result.frame
            extra = {"step_ms": (time.perf_counter() - started) * 1e3,
                     "frame_wait_ms": (now_s - frame.receipt_s) * 1e3 if frame is not None else float("nan")}
            if self._diagnostics.power_w is not None:
                extra["power_w"] = self._diagnostics.power_w
            out.publish_step(result, extra)
            rt.stages.add("step_total", time.perf_counter() - started)
            if result.missed_deadline:
                self._warn("deadline", f"step took {extra['step_ms']:.1f} ms or started late; the period is "
                                       f"{rt.period_s * 1e3:.1f} ms (missed deadlines: {rt.counters.missed_deadlines})")
