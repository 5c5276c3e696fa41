"""Everything the node does between a message arriving and a message leaving, without ROS.

:class:`NodeRuntime` owns the :class:`~eipl_trt.predictor.Predictor`, the command safety, the
latest-only inputs, the statistics and the counters. The lifecycle node converts messages to
:class:`~eipl_trt.ros.inputs.Frame` / joint lists, calls :meth:`NodeRuntime.step` from its step
timer (or per image), and publishes what the returned :class:`StepResult` holds.

Concurrency: subscription callbacks call :meth:`on_image` / :meth:`on_joints` from their own
threads; :meth:`step`, :meth:`reset` and :meth:`install_runner` serialize on one step lock, so a
reset or a precision swap always happens between two steps.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from eipl_trt.common.stats import RateMeter, StageStats
from eipl_trt.control import CommandDecision, CommandSafety
from eipl_trt.errors import InputError, NonFiniteOutputError
from eipl_trt.predictor import Prediction, Predictor, StageTimings
from eipl_trt.ros.inputs import Frame, JointCache, JointVector, LatestSlot
from eipl_trt.ros.params import NodeConfig
from eipl_trt.runners import Choice, Runner, choose

__all__ = ["NodeRuntime", "StepResult", "Counters"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepResult:
    """What one step did.

    Attributes:
        status: ``ok``, ``no_image``, ``no_new_image``, ``missing_joints``, ``stale``,
            ``bad_input`` or ``non_finite``; only ``ok`` carries a prediction.
        message: a sentence for the log when ``status != "ok"``.
        frame: the camera frame used.
        measured: ``(D,)`` measured joint positions (rad) used, model order.
        prediction: the model output.
        decision: the safety decision for the command output (``None`` when commands are off).
        input_age_s: age of the older input at step start (s, ROS time).
        missed_deadline: the step took longer than a period, or started late.
    """

    status: str
    message: str = ""
    frame: Frame | None = None
    measured: np.ndarray | None = None
    prediction: Prediction | None = None
    decision: CommandDecision | None = None
    input_age_s: float = float("nan")
    missed_deadline: bool = False


@dataclass
class Counters:
    """Event counts since configure (read by diagnostics)."""

    steps: int = 0
    missed_deadlines: int = 0
    stale_skips: int = 0
    state_resets: int = 0
    non_finite_outputs: int = 0
    bad_inputs: dict[str, int] = field(default_factory=dict)
    last_error: str = ""
    last_error_time_s: float | None = None


class NodeRuntime:
    """The configured model plus its inputs, safety and statistics.

    Args:
        cfg: validated parameters.
        predictor: an open predictor.
        backend: the concrete backend in use (``auto`` resolved).
    """

    def __init__(self, cfg: NodeConfig, predictor: Predictor, backend: str):
        self.spec = predictor.spec
        self.backend = backend
        #: how each precision's backend was chosen (``auto``'s reason and timings), filled by :meth:`choose`
        self.choices: dict[str, Choice] = {}
        self.joint_names = cfg.joint_names or self.spec.joint_names
        if len(self.joint_names) != self.spec.joint_dim:
            raise InputError(
                f"parameter joint_names lists {len(self.joint_names)} joints but model {self.spec.model!r} has "
                f"{self.spec.joint_dim} ({', '.join(self.spec.joint_names)}); give one name per model joint, "
                f"in model order, or leave it empty to use the names in model.json"
            )
        self.cfg = cfg
        self.period_s = 1.0 / (cfg.rate_hz if cfg.rate_hz > 0 else self.spec.rate_hz)
        self.predictor = predictor
        self.safety = CommandSafety(cfg.safety_config(self.spec, self.joint_names))
        self.images: LatestSlot[Frame] = LatestSlot()
        self.joints = JointCache(self.joint_names)
        self.stages = StageStats(window=1000)
        self.image_rate, self.joint_rate, self.step_rate = RateMeter(), RateMeter(), RateMeter()
        self.counters = Counters()
        self._counters_lock = threading.Lock()
        self.lock = threading.Lock()
        self._pending_reset: str | None = None
        self._last_image_stamp = 0.0
        self._last_step_start: float | None = None
        self._last_ok_step_s: float | None = None
        self._last_frame: Frame | None = None
        #: How the step thread is scheduled (set by the ROS node; "" = steps run in callbacks).
        self.step_thread = ""
        #: Times the step timer was re-locked to the camera (``timer_phase: camera``; set by the node).
        self.timer_relocks = 0

    @classmethod
    def open(cls, cfg: NodeConfig) -> "NodeRuntime":
        """Load the model of ``cfg`` on its backend and precision, warm it up, and build the runtime.

        Raises:
            EipltrtError: the model, backend or precision is unusable (the message says why).
        """
        from eipl_trt.paths import resolve_model

        spec = resolve_model(cfg.model)
        choice = choose(spec, cfg.backend, cfg.precision, num_threads=cfg.num_threads)
        runner = choice.create(spec, cfg.num_threads, **cfg.runner_options()).open()
        try:
            runner.warm_up(3)
            runtime = cls(cfg, Predictor(runner, input_mix=cfg.input_mix), choice.backend)
        except Exception:
            runner.close()
            raise
        runtime.choices[cfg.precision] = choice
        return runtime

    def runner_factory(self, precision: str) -> Runner:
        """A closed runner of this model at ``precision``, chosen as at configure (``auto`` chooses per precision)."""
        choice = choose(self.spec, self.cfg.backend, precision, num_threads=self.cfg.num_threads)
        self.choices[precision] = choice
        return choice.create(self.spec, self.cfg.num_threads, **self.cfg.runner_options())

    # ------------------------------------------------------------------ inputs
    def on_image(self, frame: Frame) -> bool:
        """Store the latest frame; True when it overwrote an unused one (a dropped frame)."""
        if frame.stamp_s > 0.0 and self._last_image_stamp > 0.0 and frame.stamp_s < self._last_image_stamp:
            self.request_reset(
                f"image stamps went backwards ({self._last_image_stamp:.3f} s -> {frame.stamp_s:.3f} s; a "
                f"looping bag?)"
            )
        if frame.stamp_s > 0.0:
            self._last_image_stamp = frame.stamp_s
        self.image_rate.tick(frame.receipt_s)
        return self.images.put(frame)

    def on_joints(self, names: list[str], positions: list[float], receipt_s: float) -> list[str]:
        """Merge a joint_states message; returns the problems found (see :meth:`JointCache.update`)."""
        accepted_before = self.joints.received
        problems = self.joints.update(names, positions, receipt_s)
        if self.joints.received > accepted_before:  # well-formed, even if some values were refused
            self.joint_rate.tick(receipt_s)
        return problems

    def note_bad_input(self, kind: str, message: str, now_s: float) -> None:
        """Count a rejected input of ``kind`` (e.g. ``image``, ``joint_states``) and remember the error."""
        c = self.counters
        with self._counters_lock:  # the input and step groups both report bad input
            c.bad_inputs[kind] = c.bad_inputs.get(kind, 0) + 1
            c.last_error, c.last_error_time_s = message, now_s

    def clear_inputs(self) -> None:
        """Forget the stored inputs (after ROS time jumped: their receipt times are in the future)."""
        self.images.clear()
        self._last_frame = None
        self.joints.clear()
        self._last_image_stamp = 0.0
        self._last_step_start = None
        self._last_ok_step_s = None

    # ------------------------------------------------------------------ state
    def request_reset(self, reason: str) -> None:
        """Reset the LSTM state at the next step boundary (safe from any thread, never blocks)."""
        self._pending_reset = reason

    def reset(self, reason: str) -> int:
        """Zero the LSTM state now (waits for a step in progress); returns the step count it had."""
        with self.lock:
            return self._reset_locked(reason)

    def _reset_locked(self, reason: str) -> int:
        steps = self.predictor.get_state().step
        self.predictor.reset_state()
        self.safety.reset()
        self.counters.state_resets += 1
        self._pending_reset = None
        log.info("LSTM state reset after %d steps: %s", steps, reason)
        return steps

    def install_runner(self, runner: Runner) -> None:
        """Swap in an opened runner at a step boundary, handing the LSTM state over; closes the old one."""
        with self.lock:
            old = self.predictor.swap_runner(runner)
            self.backend = runner.backend
        log.info("precision switched to %s (LSTM state handed over from %s)", runner.precision, old.name)
        old.close()

    def set_config(self, cfg: NodeConfig) -> None:
        """Apply new dynamic parameter values (limits, max_step, max_input_age, input_mix).

        Raises:
            InputError: the limits do not fit the model's joints.
        """
        new_safety = cfg.safety_config(self.spec, self.joint_names)
        with self.lock:
            self.safety.update(new_safety)
            self.predictor.input_mix = cfg.input_mix
            self.cfg = cfg

    # ------------------------------------------------------------------ step
    def step(self, now_s: float, *, want_image: bool, new_image_only: bool = False) -> StepResult:
        """One control step with the latest inputs.

        The step takes the frame, reads the joints, checks that both are fresh, predicts, passes the
        prediction through command safety and records the step; the first of these that fails ends the
        step with its status (see :class:`StepResult`).

        Args:
            now_s: node time (s).
            want_image: also produce the predicted image (someone subscribes to it).
            new_image_only: skip the step unless a frame arrived since the last step (``trigger: image``).
        """
        with self.lock:
            started = time.perf_counter()
            if self._pending_reset is not None:
                self._reset_locked(self._pending_reset)
            late = (
                not new_image_only and self._last_step_start is not None
                and now_s - self._last_step_start > 1.5 * self.period_s
            )
            frame = self._take_frame(now_s, new_image_only)
            if isinstance(frame, StepResult):
                return frame
            joints = self.joints.vector()
            if not joints.complete:
                return self._missing_joints(frame, joints)
            oldest = frame.receipt_s if joints.oldest_receipt_s is None else joints.oldest_receipt_s
            age = now_s - min(frame.receipt_s, oldest)
            stale = self._check_staleness(now_s, age, frame, joints)
            if stale is not None:
                return stale
            prediction = self._predict(now_s, age, frame, joints, want_image)
            if isinstance(prediction, StepResult):
                return prediction
            decision = None
            if self.cfg.command_interface != "none":
                decision = self.safety.filter(prediction.joints, joints.positions, age)
            missed = self._record_step(started, late, now_s, prediction.timings)
            return StepResult("ok", "", frame, joints.positions, prediction, decision, age, missed)

    def _take_frame(self, now_s: float, new_image_only: bool) -> Frame | StepResult:
        """The frame to step on: the newest unused one, else the latest (decoded here if it came deferred)."""
        frame = self.images.take()
        if frame is None:
            if new_image_only:
                return StepResult("no_new_image")
            frame = self.images.latest()
            if frame is None:
                return StepResult("no_image", "no image received yet on image_raw; not stepping")
        if frame.decoder is not None:
            deferred = frame
            try:
                frame = deferred.decoder()  # type: ignore[misc]
            except InputError as exc:
                self.images.replace(deferred, self._last_frame)  # as if it never came
                self.note_bad_input("image", str(exc), now_s)
                return StepResult("bad_image", f"dropped an image: {exc}")
            self.images.replace(deferred, frame)
            self.stages.add("decode", frame.decode_s)
        self._last_frame = frame
        return frame

    def _missing_joints(self, frame: Frame, joints: JointVector) -> StepResult:
        return StepResult(
            "missing_joints",
            f"no position received yet for model joint(s) {', '.join(joints.missing)} on joint_states; "
            f"not stepping (check the joint_names parameter: {', '.join(self.joint_names)})",
            frame,
        )

    def _check_staleness(self, now_s: float, age: float, frame: Frame, joints: JointVector) -> StepResult | None:
        """Refuse inputs older than ``max_input_age``; reset the LSTM state when they resume after a gap."""
        stale = self.safety.stale_message(age)
        if stale is not None:
            self.counters.stale_skips += 1
            self.safety.reset()
            self._last_step_start = None
            return StepResult("stale", stale, frame, joints.positions, input_age_s=age)
        self._last_step_start = now_s
        limit = self.cfg.max_input_age
        if limit > 0.0 and self._last_ok_step_s is not None and now_s - self._last_ok_step_s > limit:
            # The model was blind (camera or joints stopped): its LSTM state is from before the gap.
            self._reset_locked(f"inputs resumed after {now_s - self._last_ok_step_s:.2f} s without a step "
                               f"(max_input_age {limit:.2f} s)")
        self._last_ok_step_s = now_s
        return None

    def _predict(self, now_s: float, age: float, frame: Frame, joints: JointVector,
                 want_image: bool) -> Prediction | StepResult:
        """The model's step; a non-finite output or a refused input ends the step (and is counted)."""
        try:
            return self.predictor.step(frame.image, joints.positions, frame.encoding, want_image=want_image)
        except NonFiniteOutputError as exc:
            self.counters.non_finite_outputs += 1
            self.counters.state_resets += 1
            self.safety.reset()
            self.counters.last_error, self.counters.last_error_time_s = str(exc), now_s
            return StepResult("non_finite", str(exc), frame, joints.positions, input_age_s=age)
        except InputError as exc:
            self.note_bad_input("step", str(exc), now_s)
            return StepResult("bad_input", str(exc), frame, joints.positions, input_age_s=age)

    def _record_step(self, started: float, late: bool, now_s: float, t: StageTimings) -> bool:
        """Count the step and its stage times; True when it missed its deadline (started late or ran long)."""
        elapsed = time.perf_counter() - started
        missed = late or elapsed > self.period_s
        self.counters.steps += 1
        self.counters.missed_deadlines += int(missed)
        self.step_rate.tick(now_s)
        self.stages.add_many({
            "preprocess": t.preprocess_s, "inference": t.inference_s, "postprocess": t.postprocess_s,
            "step": elapsed,
        })
        return missed

    def hold_command(self) -> np.ndarray | None:
        """The command that holds the robot at its measured position (``None`` if unknown)."""
        joints = self.joints.vector()
        return self.safety.hold(joints.positions if joints.complete else None)

    def close(self) -> None:
        """Close the runner."""
        with self.lock:
            self.predictor.close()
