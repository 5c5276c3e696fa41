"""``eipl_trt_node``: the EIPL inference node (a ROS 2 lifecycle node named ``eipl_trt``).

Run it as the launch file does::

    eipl_trt_node --ros-args --params-file config/eipl_trt.yaml -p model:=/path/to/model_dir

Interface (names relative to the node's namespace; ``~/`` = private; all remappable):

Subscriptions
    ``image_raw`` (sensor_msgs/Image, best effort; rgb8, bgr8, rgba8, bgra8, mono8, any size and
    row padding) and ``joint_states`` (sensor_msgs/JointState, best effort; matched **by name**
    to the ``joint_names`` parameter; extra joints, other orders and partial messages are fine,
    the latest value of each joint is kept).

Publications
    ``~/predicted_joint_states``, ``~/enc_points``, ``~/dec_points`` (SARNN), ``~/attention_image``,
    ``~/predicted_image``, ``~/timing`` and the command topic: see :mod:`eipl_trt.ros.outputs`.
    ``/diagnostics`` (diagnostic_msgs/DiagnosticArray, 1 Hz, steady clock): see
    :mod:`eipl_trt.ros.diagnostics`.

Services
    ``~/reset`` (std_srvs/Trigger): zero the LSTM state (a new episode). The state also resets
    on activate/deactivate, when ROS time jumps backwards (``use_sim_time`` with a looping bag)
    and when image stamps go backwards. Lifecycle services: ``~/change_state``, ``~/get_state``, ...

Parameters
    See :data:`eipl_trt.ros.params.PARAMETERS` and ``config/eipl_trt.yaml``.

Stepping
    ``trigger: timer`` steps every ``1/rate_hz`` s of ROS time (sim time works) with the latest
    image and joint state; frames that arrive faster are overwritten (counted as dropped).
    ``trigger: image`` steps once per received image. Inputs older than ``max_input_age`` skip the
    step (no prediction, no command). Steps slower than a period count as missed deadlines.
    The step runs on its own thread, kicked by the timer or the frame (kicks during a step
    coalesce: superseded frames are dropped and counted, never queued); callbacks run on rclpy's
    EventsExecutor where present. ``--executor auto|events|single|multi`` and
    ``--step-thread``/``--no-step-thread`` (before ``--ros-args``) choose otherwise, for A/B runs:
    see :mod:`eipl_trt.ros.spin` and :mod:`eipl_trt.ros.stepper`.

Commands (``command_interface``, off by default)
    Every command goes through :class:`eipl_trt.control.CommandSafety` (joint limits, ``max_step``,
    stale and non-finite gating). When inputs go stale or outputs are non-finite the node stops
    publishing commands (the controller holds its last target). On deactivate or shutdown the
    node sends one hold command equal to the measured position, on every interface.

Exit: SIGINT or SIGTERM -> hold, clean shutdown, exit code 0.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Any, Sequence

from eipl_trt.errors import EipltrtError

__all__ = ["main", "DEFAULT_STEP_THREAD"]

#: Whether the step runs on its own thread (:mod:`eipl_trt.ros.stepper`) unless ``--step-thread`` /
#: ``--no-step-thread`` says otherwise.
DEFAULT_STEP_THREAD = True


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(args: Sequence[str] | None = None) -> int:
    """Run the node until SIGINT/SIGTERM; returns the process exit code.

    Args:
        args: command line (default ``sys.argv``), including ``--ros-args ...``.

    Returns:
        0 on a normal stop, 1 when ROS 2 is missing or the node could not be created.
    """
    from eipl_trt.ros import require_rclpy

    try:
        require_rclpy()
    except EipltrtError as exc:
        print(f"eipl_trt_node: {exc}", file=sys.stderr)
        return 1
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.signals import SignalHandlerOptions

    from eipl_trt.ros import spin
    from eipl_trt.ros.lifecycle import EiplTrtNode

    try:
        options, argv = spin.split_node_args(list(sys.argv if args is None else args))
        kind = spin.resolve_kind(options["executor"])
    except ValueError as exc:
        print(f"eipl_trt_node: {exc}", file=sys.stderr)
        return 2
    step_thread = options["step_thread"] if options["step_thread"] is not None else DEFAULT_STEP_THREAD
    # Our own SIGINT/SIGTERM handling (KeyboardInterrupt) keeps the context alive long enough to
    # publish a hold command; rclpy's handler would shut the context down first.
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    # Explicit handlers: a shell starts background jobs with SIGINT ignored, and Python keeps that.
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    node: Any = None
    spinner: Any = None
    try:
        node = EiplTrtNode(step_thread=step_thread)
        node.get_logger().info(f"executor: {kind}" + (" (auto)" if options["executor"] == "auto" else "")
                               + f", step {'on its own thread' if step_thread else 'in the executor callback'}")
        executor = spin.create_executor(kind)
        executor.add_node(node)
        if node.autostart and node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            node.trigger_activate()
        spinner = spin.SpinThread(executor, kind)
        while rclpy.ok() and spinner.alive():
            spinner.wait(0.1)  # the main thread stays in Python, so KeyboardInterrupt arrives promptly
        if spinner.error is not None and not isinstance(spinner.error, ExternalShutdownException):
            raise spinner.error
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if spinner is not None:
            spinner.stop(timeout_s=5.0)
        if node is not None:
            try:
                node.trigger_shutdown()
            except Exception as exc:  # already finalized, or the context went away
                node.get_logger().debug(f"shutdown transition skipped: {exc}")
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def __getattr__(name: str) -> Any:
    """Lazy access to :class:`eipl_trt.ros.lifecycle.EiplTrtNode` (imports rclpy)."""
    if name == "EiplTrtNode":
        from eipl_trt.ros.lifecycle import EiplTrtNode

        return EiplTrtNode
    raise AttributeError(name)


if __name__ == "__main__":
    sys.exit(main())
