"""Command safety between the model's joint targets and the robot (pure Python + numpy, no ROS).

Every joint command the node sends goes through :meth:`CommandSafety.filter`, which, in order:

1. **stale-input gate**: no command when the inputs the target was computed from are older than
   ``max_input_age`` seconds (0 disables the check). A model that cannot see must not move the robot.
2. **non-finite gate**: no command when the target or the measured position holds NaN/Inf.
3. **joint limits**: clamp each joint to ``[lower, upper]`` (rad for revolute joints).
4. **per-step change limit**: move at most ``max_step`` (rad) per step away from the previous
   command, or from the measured position for the first command after a start, a stop or a gap.
   Applied after the clamp, so a robot that starts outside its limits is brought back at most
   ``max_step`` per step rather than jumping to the limit.

Any step that sends nothing forgets the previous command, so the next command is again limited
relative to where the robot actually is. :meth:`CommandSafety.hold` gives the command that keeps
a position-controlled robot where it is (the measured position), used when the node stops.

:class:`Throttle` rate-limits repeated warnings by key and counts what it suppressed.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from eipl_trt.errors import InputError

__all__ = ["SafetyConfig", "CommandDecision", "CommandSafety", "Throttle", "REASONS"]

#: Why a decision sent nothing (``"ok"`` = a command was produced).
REASONS = ("ok", "stale_input", "non_finite_target", "non_finite_measured")


@dataclass(frozen=True)
class SafetyConfig:
    """Limits applied to every command.

    Attributes:
        joint_names: joint names in command order (used in messages).
        lower, upper: per-joint position limits (rad); ``-inf``/``inf`` = unlimited on that side.
        max_step: largest change of any joint per step (rad); 0 = unlimited.
        max_input_age: inputs older than this (s) stop the commands; 0 = no age check.
    """

    joint_names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    max_step: float = 0.0
    max_input_age: float = 0.0

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if n == 0:
            raise InputError("command safety needs at least one joint name")
        if len(self.lower) != n or len(self.upper) != n:
            raise InputError(
                f"joint limits must have one entry per joint ({n}: {', '.join(self.joint_names)}); "
                f"got {len(self.lower)} lower and {len(self.upper)} upper values"
            )
        bad = [
            f"{name} [{lo}, {hi}]"
            for name, lo, hi in zip(self.joint_names, self.lower, self.upper)
            if math.isnan(lo) or math.isnan(hi) or lo > hi
        ]
        if bad:
            raise InputError(f"joint limits must satisfy lower <= upper (and not be NaN); bad: {', '.join(bad)}")
        if not (math.isfinite(self.max_step) and self.max_step >= 0.0):
            raise InputError(f"max_step must be a finite number >= 0 (rad; 0 = unlimited), got {self.max_step}")
        if not (math.isfinite(self.max_input_age) and self.max_input_age >= 0.0):
            raise InputError(f"max_input_age must be a finite number >= 0 (s; 0 = off), got {self.max_input_age}")

    @classmethod
    def from_limits(
        cls,
        joint_names: Sequence[str],
        lower: Sequence[float],
        upper: Sequence[float],
        *,
        default_lower: Sequence[float],
        default_upper: Sequence[float],
        max_step: float = 0.0,
        max_input_age: float = 0.0,
    ) -> "SafetyConfig":
        """Build a config where an empty ``lower``/``upper`` means "use the defaults" (e.g. the model bounds).

        Raises:
            InputError: wrong lengths, ``lower > upper``, NaN, or a negative ``max_step``/``max_input_age``.
        """
        lo = tuple(float(v) for v in (lower if len(lower) else default_lower))
        hi = tuple(float(v) for v in (upper if len(upper) else default_upper))
        return cls(tuple(joint_names), lo, hi, float(max_step), float(max_input_age))


@dataclass(frozen=True)
class CommandDecision:
    """What :meth:`CommandSafety.filter` decided for one step.

    Attributes:
        command: ``(D,)`` float64 positions to send (rad), or ``None`` = send nothing.
        reason: one of :data:`REASONS`.
        clamped: names of joints clamped to a limit this step.
        rate_limited: names of joints whose change was cut to ``max_step`` this step.
        message: a sentence saying what happened (empty when the target passed unchanged).
        previous: the command this one follows (the last one sent), or ``None`` after a start, stop or
            gap: a trajectory's coast point continues the motion from it (:mod:`eipl_trt.ros.trajectory`).
    """

    command: np.ndarray | None
    reason: str
    clamped: tuple[str, ...] = ()
    rate_limited: tuple[str, ...] = ()
    message: str = ""
    previous: np.ndarray | None = None

    @property
    def sent(self) -> bool:
        """True when there is a command to send."""
        return self.command is not None


@dataclass
class SafetyCounters:
    """How often each gate fired since start (for diagnostics)."""

    commands: int = 0
    stale: int = 0
    non_finite: int = 0
    clamped: int = 0
    rate_limited: int = 0
    holds: int = 0


class CommandSafety:
    """Applies a :class:`SafetyConfig` to a stream of joint targets; remembers the last command.

    Thread-safe: the config may be replaced (:meth:`update`) while another thread filters.
    """

    def __init__(self, config: SafetyConfig):
        self._config = config
        self._lower = np.asarray(config.lower, np.float64)
        self._upper = np.asarray(config.upper, np.float64)
        self._last: np.ndarray | None = None
        self._lock = threading.Lock()
        self.counters = SafetyCounters()

    @property
    def config(self) -> SafetyConfig:
        """The limits in force."""
        return self._config

    @property
    def last_command(self) -> np.ndarray | None:
        """A copy of the last command sent, or ``None`` after a start, stop or gap."""
        with self._lock:
            return None if self._last is None else self._last.copy()

    def update(self, config: SafetyConfig) -> None:
        """Replace the limits (same joints); the next command is limited relative to the last one."""
        if config.joint_names != self._config.joint_names:
            raise InputError(
                f"new safety config is for joints {list(config.joint_names)}, "
                f"not {list(self._config.joint_names)}"
            )
        with self._lock:
            self._config = config
            self._lower = np.asarray(config.lower, np.float64)
            self._upper = np.asarray(config.upper, np.float64)

    def reset(self) -> None:
        """Forget the last command (the next one is limited relative to the measured position)."""
        with self._lock:
            self._last = None

    def stale_message(self, input_age_s: float) -> str | None:
        """A sentence explaining why inputs ``input_age_s`` seconds old are too old, or ``None`` if fresh."""
        limit = self._config.max_input_age
        if limit > 0.0 and not float(input_age_s) <= limit:
            return (
                f"inputs are {input_age_s:.3f} s old (max_input_age {limit:.3f} s); not commanding "
                f"the robot until fresh image_raw and joint_states arrive"
            )
        return None

    def filter(
        self,
        target: np.ndarray | Sequence[float],
        measured: np.ndarray | Sequence[float],
        input_age_s: float = 0.0,
    ) -> CommandDecision:
        """Turn a model target into a safe command (or into "send nothing").

        Args:
            target: ``(D,)`` predicted joint positions (rad), command order.
            measured: ``(D,)`` measured joint positions (rad) the prediction was made from.
            input_age_s: age of the older of the inputs (s) at the time of the command.

        Returns:
            The decision; ``command`` is ``None`` when a gate fired.

        Raises:
            InputError: ``target`` or ``measured`` has the wrong length.
        """
        cfg = self._config
        q = self._vector(target, "target")
        m = self._vector(measured, "measured")
        with self._lock:
            stale = self.stale_message(input_age_s)
            if stale is not None:
                self._last = None
                self.counters.stale += 1
                return CommandDecision(None, "stale_input", message=stale)
            if not np.all(np.isfinite(q)):
                self._last = None
                self.counters.non_finite += 1
                bad = ", ".join(cfg.joint_names[i] for i in np.nonzero(~np.isfinite(q))[0])
                return CommandDecision(
                    None, "non_finite_target",
                    message=f"model output is NaN/Inf for {bad}; not commanding the robot this step",
                )
            if not np.all(np.isfinite(m)):
                self._last = None
                self.counters.non_finite += 1
                bad = ", ".join(cfg.joint_names[i] for i in np.nonzero(~np.isfinite(m))[0])
                return CommandDecision(
                    None, "non_finite_measured",
                    message=f"measured position is NaN/Inf for {bad}; not commanding the robot this step",
                )
            cmd = np.clip(q, self._lower, self._upper)
            clamped_idx = np.nonzero(cmd != q)[0]
            rate_idx = np.zeros(0, dtype=np.intp)
            if cfg.max_step > 0.0:
                ref = self._last if self._last is not None else m
                limited = np.clip(cmd, ref - cfg.max_step, ref + cfg.max_step)
                rate_idx = np.nonzero(limited != cmd)[0]
                cmd = limited
            previous, self._last = self._last, cmd.copy()
            self.counters.commands += 1
            clamped = tuple(cfg.joint_names[i] for i in clamped_idx)
            rate_limited = tuple(cfg.joint_names[i] for i in rate_idx)
            parts = []
            if clamped:
                self.counters.clamped += 1
                parts.append(
                    "clamped to joint limits: " + ", ".join(
                        f"{cfg.joint_names[i]} {q[i]:.4f} -> [{self._lower[i]:.4f}, {self._upper[i]:.4f}]"
                        for i in clamped_idx
                    )
                )
            if rate_limited:
                self.counters.rate_limited += 1
                parts.append(f"change limited to max_step {cfg.max_step:.4f} rad for " + ", ".join(rate_limited))
            return CommandDecision(cmd, "ok", clamped, rate_limited, "; ".join(parts), previous)

    def hold(self, measured: np.ndarray | Sequence[float] | None) -> np.ndarray | None:
        """The command that keeps the robot where it is (the measured position), and forget the last command.

        Returns ``None`` (send nothing) when the position is unknown or not finite.
        """
        with self._lock:
            self._last = None
            if measured is None:
                return None
            m = self._vector(measured, "measured")
            if not np.all(np.isfinite(m)):
                return None
            self.counters.holds += 1
            return m.copy()

    def _vector(self, values: np.ndarray | Sequence[float], what: str) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        n = len(self._config.joint_names)
        if v.size != n:
            raise InputError(f"{what} has {v.size} values, expected {n} ({', '.join(self._config.joint_names)})")
        return v


@dataclass
class Throttle:
    """Let a message with a given key through at most once per ``period_s`` seconds.

    Attributes:
        period_s: minimum time between two messages with the same key (s).
    """

    period_s: float = 5.0
    _last: dict[str, float] = field(default_factory=dict)
    _suppressed: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def should_log(self, key: str, now: float) -> bool:
        """True if ``key`` was not let through within the last ``period_s`` before ``now`` (s)."""
        with self._lock:
            last = self._last.get(key)
            if last is None or now - last >= self.period_s or now < last:
                self._last[key] = now
                return True
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False

    def take_suppressed(self, key: str) -> int:
        """How many ``key`` messages were held back since the last call (and reset that count)."""
        with self._lock:
            return self._suppressed.pop(key, 0)
