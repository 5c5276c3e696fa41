"""The node's ``/diagnostics`` report (built by hand: diagnostic_updater is optional, see ros-conventions).

Three statuses per report, named ``"<node>: inference"``, ``"<node>: inputs"`` and
``"<node>: commands"``, with ``hardware_id = "eipl_trt/<model>"``:

* **inference** — backend, precision (and a switch in progress), model, step rate vs target,
  latency p50/p95/p99/max per stage (ms), steps, missed deadlines, state resets, non-finite outputs,
  power and energy per frame (or "no power source").
  ERROR: no model loaded (unconfigured, or configure failed: the error is in the message).
  WARN: missed deadlines or non-finite outputs since the last report; ``backend: auto`` fell
  back to ONNX Runtime.
* **inputs** — image and joint_states rates and ages, dropped (overwritten) frames, stale steps,
  bad-input counts per kind and the last error.
  ERROR: inputs older than ``max_input_age`` while active (the node is blind and stopped).
  WARN: waiting for a first image / joint, a model joint missing, or bad inputs since the last report.
* **commands** — interface, topic, commands sent, clamped, rate-limited, suppressed (stale /
  non-finite), holds. WARN when commands were suppressed or clamped since the last report.

Values are strings (KeyValue); numeric per-step values for plotting are on ``~/timing``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from std_msgs.msg import Header

from eipl_trt.ros.params import NodeConfig
from eipl_trt.ros.power_source import PowerReading, PowerSource
from eipl_trt.ros.runtime import NodeRuntime

__all__ = ["OK", "WARN", "ERROR", "DiagnosticsReporter", "DiagnosticsPublisher", "PowerReading"]

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


class _Status:
    """One DiagnosticStatus being assembled: the worst level flagged wins; messages are joined."""

    def __init__(self, name: str, hardware_id: str):
        self.name, self.hardware_id = name, hardware_id
        self.level: bytes = OK
        self.messages: list[str] = []
        self.values: list[KeyValue] = []

    def flag(self, level: bytes, message: str) -> None:
        """Raise the level to at least ``level`` and add ``message``."""
        self.level = max(self.level, level)
        self.messages.append(message)

    def add(self, key: str, value: Any) -> None:
        """Add a key/value pair (the value as a string)."""
        self.values.append(KeyValue(key=key, value=str(value)))

    def msg(self, ok_message: str) -> DiagnosticStatus:
        """The finished status; ``ok_message`` when nothing was flagged."""
        text = "; ".join(self.messages) if self.messages else ok_message
        return DiagnosticStatus(level=self.level, name=self.name, message=text, hardware_id=self.hardware_id,
                                values=self.values)


class DiagnosticsReporter:
    """Builds one DiagnosticArray per call, comparing counters with the previous report for WARNs."""

    def __init__(self, node_name: str):
        self.node_name = node_name
        self._prev: dict[str, float] = {}
        self._energy_mark: tuple[float, int] | None = None

    def _delta(self, key: str, value: float) -> float:
        before = self._prev.get(key, 0.0)
        self._prev[key] = value
        return value - before if value >= before else value

    def build(
        self,
        stamp: Any,
        now_s: float,
        state: str,
        cfg: NodeConfig,
        runtime: NodeRuntime | None,
        configure_error: str,
        pending_precision: str | None,
        fallback_reason: str,
        power: PowerReading,
    ) -> DiagnosticArray:
        """The report for the current moment (``now_s`` on the node clock, s)."""
        hw = f"eipl_trt/{cfg.model}"
        inference = _Status(f"{self.node_name}: inference", hw)
        inputs = _Status(f"{self.node_name}: inputs", hw)
        commands = _Status(f"{self.node_name}: commands", hw)
        for s in (inference, inputs, commands):
            s.add("lifecycle_state", state)
        if runtime is None:
            why = configure_error or f"node is {state}; configure it to load model {cfg.model!r}"
            inference.flag(ERROR, f"no model loaded: {why}")
            inference.add("model", cfg.model)
            inputs.add("status", "not subscribed (no model)")
            commands.add("interface", cfg.command_interface)
            return self._array(stamp, [inference.msg(""), inputs.msg("not subscribed"), commands.msg("off")])
        self._inference(inference, now_s, state, runtime, pending_precision, fallback_reason, power)
        self._inputs(inputs, now_s, state, runtime)
        self._commands(commands, runtime)
        active = state == "active"
        return self._array(stamp, [
            inference.msg("running" if active else f"model loaded, node {state}"),
            inputs.msg("inputs fresh" if active else f"node {state}"),
            commands.msg("commanding" if runtime.cfg.command_interface != "none" else "command output off"),
        ])

    def _array(self, stamp: Any, statuses: list[DiagnosticStatus]) -> DiagnosticArray:
        return DiagnosticArray(header=Header(stamp=stamp), status=statuses)

    def _inference(self, s: _Status, now_s: float, state: str, rt: NodeRuntime, pending: str | None,
                   fallback_reason: str, power: PowerReading) -> None:
        c = rt.counters
        runner = rt.predictor.runner
        s.add("model", f"{rt.spec.model} ({rt.spec.directory})")
        s.add("backend", runner.backend)
        choice = getattr(rt, "choices", {}).get(runner.precision)
        for key, value in (choice.diagnostics() if choice is not None else {}).items():
            s.add(key, value)  # why this backend: requested, a usable GPU, or auto's measurement
        for key, value in (runner.diagnostics() if hasattr(runner, "diagnostics") else {}).items():
            s.add(key, value)  # TensorRT: version, engine cache hit / build, CUDA graphs on/off
        s.add("precision", runner.precision + (f" (switching to {pending})" if pending else ""))
        if rt.step_thread:
            s.add("step_thread", rt.step_thread)  # "SCHED_FIFO 50", or "normal..." with the reason
        s.add("target_rate_hz", _fmt(1.0 / rt.period_s))
        if rt.cfg.trigger == "timer":
            s.add("timer_phase", rt.cfg.timer_phase)
            s.add("timer_relocks", rt.timer_relocks)
        step_rate = rt.step_rate.rate_hz(now_s)
        s.add("step_rate_hz", _fmt(step_rate))
        for stage, summary in rt.stages.summaries().items():
            s.add(f"{stage}_ms", summary.scaled(1e3).format("ms"))
        for key in ("steps", "missed_deadlines", "state_resets", "non_finite_outputs"):
            s.add(key, getattr(c, key))
        if power.watts is None and power.energy_j is None:
            s.add("power", power.source)
        else:
            s.add("power_w", _fmt(power.watts))
            s.add("power_source", power.source)
            s.add("energy_per_frame_j", _fmt(self._energy_per_step(power, c.steps), 4))
        if fallback_reason:
            s.flag(WARN, fallback_reason)
        missed = self._delta("missed", c.missed_deadlines)
        if missed:
            s.flag(WARN, f"{int(missed)} missed deadline(s) since the last report (period {rt.period_s * 1e3:.1f} ms)")
        bad = self._delta("non_finite", c.non_finite_outputs)
        if bad:
            s.flag(WARN, f"{int(bad)} non-finite model output(s) since the last report; state was reset")

    def _energy_per_step(self, power: PowerReading, steps: int) -> float | None:
        """Energy (J) over the window since the last report divided by the steps in it."""
        mark = self._energy_mark
        if power.energy_j is None:
            self._energy_mark = None
            return None
        self._energy_mark = (power.energy_j, steps)
        if mark is None or steps <= mark[1]:
            return None
        return (power.energy_j - mark[0]) / (steps - mark[1])

    def _inputs(self, s: _Status, now_s: float, state: str, rt: NodeRuntime) -> None:
        c = rt.counters
        frame = rt.images.latest()
        joints = rt.joints.vector()
        image_age = None if frame is None else now_s - frame.receipt_s
        joint_age = None if joints.oldest_receipt_s is None else now_s - joints.oldest_receipt_s
        s.add("image_rate_hz", _fmt(rt.image_rate.rate_hz(now_s)))
        s.add("joint_states_rate_hz", _fmt(rt.joint_rate.rate_hz(now_s)))
        s.add("image_age_s", _fmt(image_age, 3))
        s.add("joint_age_s", _fmt(joint_age, 3))
        s.add("dropped_images", rt.images.dropped)
        s.add("stale_skips", c.stale_skips)
        bad_inputs = dict(c.bad_inputs)  # an atomic copy: callbacks may add kinds concurrently
        for kind, count in sorted(bad_inputs.items()):
            s.add(f"bad_{kind}", count)
        s.add("last_error", c.last_error or "none")
        bad_total = float(sum(bad_inputs.values()))
        bad_new = self._delta("bad_inputs", bad_total)
        if state != "active":
            return
        limit = rt.cfg.max_input_age
        if frame is None:
            s.flag(WARN, "waiting for the first image on image_raw")
        if joints.missing:
            s.flag(WARN, f"no joint_states received for model joint(s) {', '.join(joints.missing)}")
        ages = [a for a in (image_age, joint_age) if a is not None]
        if limit > 0 and ages and max(ages) > limit:
            s.flag(ERROR, f"inputs stale: oldest is {max(ages):.2f} s old (max_input_age {limit:.2f} s); not stepping")
        if bad_new:
            s.flag(WARN, f"{int(bad_new)} bad input(s) since the last report; last: {c.last_error}")

    def _commands(self, s: _Status, rt: NodeRuntime) -> None:
        cfg, k = rt.cfg, rt.safety.counters
        s.add("interface", cfg.command_interface)
        s.add("topic", cfg.command_topic_name() or "none")
        s.add("max_step_rad", _fmt(cfg.max_step, 3))
        for key in ("commands", "clamped", "rate_limited", "holds"):
            s.add(key, getattr(k, key))
        suppressed_total = rt.counters.stale_skips + rt.counters.non_finite_outputs + k.stale + k.non_finite
        s.add("suppressed", suppressed_total if cfg.command_interface != "none" else 0)
        if cfg.command_interface == "none":
            return
        suppressed = self._delta("suppressed", suppressed_total)
        if suppressed:
            s.flag(WARN, f"{int(suppressed)} command(s) suppressed since the last report (stale or non-finite)")
        clamped = self._delta("clamped", k.clamped)
        if clamped:
            s.flag(WARN, f"{int(clamped)} command(s) clamped to joint limits since the last report")


class DiagnosticsPublisher:
    """Publishes a :class:`DiagnosticsReporter` report on ``/diagnostics`` every second of steady time.

    Steady time, so reports keep coming while a bag replay is paused (no /clock). It also owns the
    power source and keeps the latest reading for ``~/timing``.

    Args:
        node: the node to publish from.
        state: returns the keyword arguments of :meth:`DiagnosticsReporter.build` other than
            ``stamp``, ``now_s`` and ``power`` (lifecycle state, config, runtime, ...).
        power_source: ``power_source`` parameter (see :class:`PowerSource`).
    """

    def __init__(self, node: Any, state: Callable[[], Mapping[str, Any]], power_source: str):
        self._node = node
        self._state = state
        self._reporter = DiagnosticsReporter(node.get_name())
        self._power = PowerSource(power_source)
        self.power_w: float | None = None
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._timer = node.create_timer(
            1.0, self.publish, callback_group=MutuallyExclusiveCallbackGroup(),
            clock=Clock(clock_type=ClockType.STEADY_TIME),
        )

    def publish(self) -> None:
        """Build and publish one report now."""
        power = self._power.read()
        self.power_w = power.watts
        now = self._node.get_clock().now()
        self._pub.publish(self._reporter.build(now.to_msg(), now.nanoseconds * 1e-9, power=power, **self._state()))

    def stop(self) -> None:
        """Release the power sensor."""
        self._power.stop()
