"""The ``eipl_trt`` lifecycle node: ROS plumbing around :class:`~eipl_trt.ros.runtime.NodeRuntime`.

Transitions: **configure** reads the parameters and loads the model (failure -> FAILURE with a
clear log; the node stays unconfigured and alive); **activate** zeroes the LSTM state, subscribes
and starts stepping/publishing; **deactivate** stops stepping, sends a hold command (the measured
position) on the command interface and zeroes the state; **cleanup** frees the model.

Threads (issue #7; the executor is chosen in :mod:`eipl_trt.ros.spin`, by default rclpy's
EventsExecutor): every subscription, timer, service and transition callback runs on the one
executor thread and does only cheap work: a joint_states message updates the
:class:`~eipl_trt.ros.inputs.JointCache`, a frame becomes a view of the message bytes in the
:class:`~eipl_trt.ros.inputs.LatestSlot`, and the step timer (or, with ``trigger: image``, the
image callback) only *kicks* the :class:`~eipl_trt.ros.stepper.StepThread`. The model step runs on
that thread with the newest inputs; kicks during a step coalesce, so a superseded frame costs
nothing beyond its receipt, and an overrunning step never queues timer events. Services,
parameters and lifecycle transitions answer while a step runs. ``--no-step-thread`` runs the step
inside the callback instead (A/B only). Callback groups still matter for the ``multi`` executor.
The callbacks and the step live in :mod:`eipl_trt.ros.stepping`; ``thread_priority`` puts the
step thread under ``SCHED_FIFO`` (:mod:`eipl_trt.ros.stepper`); with ``timer_phase: camera`` the
step timer is restarted on a frame's arrival when it drifts out of phase with the camera
(:mod:`eipl_trt.ros.phase`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import JumpThreshold
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_srvs.srv import Trigger

from eipl_trt.camera.backend import opencv
from eipl_trt.control import Throttle
from eipl_trt.errors import EipltrtError, InputError
from eipl_trt.ros import log_bridge
from eipl_trt.ros.diagnostics import DiagnosticsPublisher
from eipl_trt.ros.outputs import Outputs
from eipl_trt.ros.params import NodeConfig, declare_parameters, read_values
from eipl_trt.ros.phase import CameraPhaseLock
from eipl_trt.ros.reconfigure import validate_change
from eipl_trt.ros.runtime import NodeRuntime
from eipl_trt.ros.stepper import StepThread
from eipl_trt.ros.stepping import StepCallbacks
from eipl_trt.ros.switcher import PrecisionSwitcher
from eipl_trt.runners import tensorrt_unavailable_reason

__all__ = ["EiplTrtNode", "NODE_NAME"]

NODE_NAME = "eipl_trt"
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class EiplTrtNode(StepCallbacks, LifecycleNode):
    """Camera + joint states in; predicted joints, attention, images, timing, commands and diagnostics out."""

    def __init__(self, *, step_thread: bool = False, **kwargs: Any):
        super().__init__(NODE_NAME, **kwargs)
        self._use_step_thread = bool(step_thread)
        self._stepper: StepThread | None = None
        self._log_handler = log_bridge.attach(self.get_logger())
        declare_parameters(self)
        try:
            self._cfg = NodeConfig.from_values(read_values(self))
        except InputError as exc:  # reported again (and refused) on configure
            self.get_logger().error(f"invalid parameters: {exc}")
            self._cfg = NodeConfig()
        self.autostart = bool(self.get_parameter("autostart").value)
        self._state = "unconfigured"
        self._runtime: NodeRuntime | None = None
        self._outputs: Outputs | None = None
        self._switcher: PrecisionSwitcher | None = None
        self._configure_error = ""
        self._fallback = ""
        self._reverting = False
        self._subs: list[Any] = []
        self._step_timer: Any = None
        self._phase_lock = CameraPhaseLock()
        self._relock_pending = False
        self._step_lock = threading.Lock()
        self._active = False
        self._sim_time = False
        self._throttle = Throttle(period_s=5.0)
        self._step_group = MutuallyExclusiveCallbackGroup()
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._diagnostics = DiagnosticsPublisher(self, self._diagnostics_state, self._cfg.power_source)
        self._reset_srv = self.create_service(Trigger, "~/reset", self._on_reset)
        self._jump_handle = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-1), on_clock_change=False),
            post_callback=self._on_time_jump,
        )
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Read parameters, load and warm up the model, create the publishers."""
        try:
            cfg = NodeConfig.from_values(read_values(self))
            if cfg.image_transport == "compressed":  # import OpenCV now: fail here, not on every frame
                opencv("image_transport: compressed (decoding JPEG/PNG frames)")
            runtime = NodeRuntime.open(cfg)
        except EipltrtError as exc:
            self._configure_error = str(exc)
            self.get_logger().error(f"configure failed: {exc}")
            return FAILURE
        except Exception as exc:  # an unexpected failure must still leave the node alive and say why
            self._configure_error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"configure failed unexpectedly: {self._configure_error}")
            return FAILURE
        spec, backend = runtime.spec, runtime.backend
        self._cfg, self._runtime, self._configure_error = cfg, runtime, ""
        self._outputs = Outputs(self, cfg, runtime.joint_names, spec.has_points, runtime.period_s)
        self._outputs.limits = lambda: (runtime.safety.config.lower, runtime.safety.config.upper)
        self._switcher = PrecisionSwitcher(runtime.runner_factory, runtime.install_runner, self._on_switch_error)
        self._fallback = ""
        if cfg.backend == "auto" and backend != "tensorrt":
            self._fallback = f"backend auto fell back to {backend}: {tensorrt_unavailable_reason()}"
        self._state = "inactive"
        self.get_logger().info(
            f"configured: model {spec.model} from {spec.directory}, {backend}/{cfg.precision} "
            f"({runtime.choices[cfg.precision].reason}), "
            f"{1.0 / runtime.period_s:.1f} Hz ({cfg.trigger} trigger), joints {', '.join(runtime.joint_names)}, "
            f"commands: {cfg.command_interface}"
            + (f" on {cfg.command_topic_name()}" if cfg.command_interface != "none" else "")
        )
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Zero the LSTM state, subscribe, and start stepping."""
        rt = self._runtime
        if rt is None:
            return FAILURE
        rt.reset("activated")
        rt.clear_inputs()
        image_trigger = self._cfg.trigger == "image"
        self._sim_time = bool(self.get_parameter("use_sim_time").value)
        image_qos = qos_profile_sensor_data if image_trigger else QoSProfile(
            depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        joint_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
        compressed = self._cfg.image_transport == "compressed"
        image_type, image_topic = (CompressedImage, "image_raw/compressed") if compressed else (Image, "image_raw")
        self._subs = [
            self.create_subscription(image_type, image_topic, self._on_image, image_qos,
                                     callback_group=self._step_group if image_trigger else self._input_group),
            self.create_subscription(JointState, "joint_states", self._on_joints, joint_qos,
                                     callback_group=self._input_group),
        ]
        if self._use_step_thread:
            self._stepper = StepThread(lambda: self._step(new_image_only=image_trigger),
                                       priority=self._cfg.thread_priority)
            rt.step_thread = self._stepper.priority_status
            if self._cfg.thread_priority > 0 and rt.step_thread.startswith("normal"):
                self.get_logger().warning(f"step thread: {rt.step_thread}")
        elif self._cfg.thread_priority > 0:
            self.get_logger().info("thread_priority is not used with --no-step-thread (the step runs in callbacks)")
        if not image_trigger:
            self._phase_lock, self._relock_pending = CameraPhaseLock(), False
            self._step_timer = self.create_timer(rt.period_s, self._on_step_timer, callback_group=self._step_group)
        self._active = True
        self._state = "active"
        self.get_logger().info("activated: stepping")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop stepping, send a hold command, zero the LSTM state."""
        self._stop_stepping()
        self._state = "inactive"
        return super().on_deactivate(state)

    def _stop_stepping(self, hold: bool = True) -> None:
        """Destroy the step timer and subscriptions, wait for a step in progress, then (optionally) hold."""
        if self._step_timer is not None:
            self.destroy_timer(self._step_timer)
            self._step_timer = None
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        if self._stepper is not None:
            self._stepper.stop()  # finishes a step in progress
            self._stepper = None
        with self._step_lock:  # waits for a step in progress; none starts after this
            self._active = False
            rt, out = self._runtime, self._outputs
            if rt is None or out is None or not hold:
                return
            command = rt.hold_command()
            if command is not None and out.command is not None:
                out.publish_command(command, self.get_clock().now().to_msg())
                self.get_logger().info(f"sent a hold command at the measured position on {out.command.topic_name}")
            rt.reset("deactivated")

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free the model and the publishers."""
        self._release()
        self._state = "unconfigured"
        return SUCCESS

    def _release(self) -> None:
        if self._switcher is not None:
            self._switcher.close()
        if self._outputs is not None:
            self._outputs.destroy()
        if self._runtime is not None:
            self._runtime.close()
        self._switcher, self._outputs, self._runtime = None, None, None

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Hold (if active) and free everything."""
        if self._active:
            self._stop_stepping()
        self._release()
        self._state = "finalized"
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free everything and go back to unconfigured."""
        self.get_logger().error(f"error during a transition from {state.label}; cleaning up")
        self._stop_stepping(hold=False)
        self._release()
        self._state = "unconfigured"
        return SUCCESS

    # ------------------------------------------------------------------ services, parameters
    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        rt = self._runtime
        if rt is None:
            response.success, response.message = False, "no model loaded (node unconfigured); nothing to reset"
            return response
        steps = rt.reset("~/reset service")
        response.success, response.message = True, f"LSTM state reset after {steps} step(s)"
        return response

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        rt = self._runtime
        try:
            new_cfg = validate_change(self._cfg, {p.name: p.value for p in params}, rt)
            if rt is not None:
                rt.set_config(new_cfg)
        except InputError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        switcher = self._switcher
        if any(p.name == "precision" for p in params) and rt is not None and switcher is not None \
                and not self._reverting and (new_cfg.precision != rt.predictor.runner.precision or switcher.pending):
            switcher.request(new_cfg.precision)
            self.get_logger().info(f"preparing the {new_cfg.precision} runner; it takes over at a step boundary")
        self._cfg = new_cfg
        return SetParametersResult(successful=True)

    def _on_switch_error(self, precision: str, exc: BaseException) -> None:
        rt = self._runtime
        current = rt.predictor.runner.precision if rt is not None else self._cfg.precision
        message = f"precision switch to {precision} failed, staying on {current}: {exc}"
        self.get_logger().error(message)
        if rt is not None:
            rt.counters.last_error, rt.counters.last_error_time_s = message, self._now_s()
        # The failure can come before rclpy has stored the value our callback accepted: wait for it,
        # then put the parameter back (unless a newer request changed it meanwhile).
        deadline = time.monotonic() + 2.0
        while self.get_parameter("precision").value != precision and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.get_parameter("precision").value != precision:
            return
        self._reverting = True
        try:
            self.set_parameters([Parameter("precision", Parameter.Type.STRING, current)])
        finally:
            self._reverting = False

    def destroy_node(self) -> None:
        """Detach the log bridge, then destroy the node."""
        self._diagnostics.stop()
        log_bridge.detach(self._log_handler)
        super().destroy_node()

    def _diagnostics_state(self) -> dict[str, Any]:
        switcher = self._switcher
        return {
            "state": self._state, "cfg": self._cfg, "runtime": self._runtime,
            "configure_error": self._configure_error, "fallback_reason": self._fallback,
            "pending_precision": switcher.pending if switcher is not None else None,
        }
