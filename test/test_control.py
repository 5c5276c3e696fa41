"""Tests for eipl_trt.control: limits, per-step change limit, stale and non-finite gating, hold."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eipl_trt.control import CommandSafety, SafetyConfig, Throttle
from eipl_trt.errors import InputError

NAMES = ("j1", "j2", "j3")


def make(max_step: float = 0.0, max_input_age: float = 0.0) -> CommandSafety:
    return CommandSafety(SafetyConfig(NAMES, (-1.0, -1.0, 0.0), (1.0, 1.0, 0.5), max_step, max_input_age))


def test_in_limits_target_passes_unchanged() -> None:
    safety = make()
    d = safety.filter([0.1, -0.2, 0.3], [0.0, 0.0, 0.0])
    assert d.sent and d.reason == "ok" and d.message == ""
    np.testing.assert_array_equal(d.command, [0.1, -0.2, 0.3])
    assert safety.counters.commands == 1


def test_clamp_to_joint_limits_names_the_joint() -> None:
    safety = make()
    d = safety.filter([2.0, -0.2, -0.1], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(d.command, [1.0, -0.2, 0.0])
    assert d.clamped == ("j1", "j3")
    assert "clamped to joint limits" in d.message and "j1 2.0000" in d.message
    assert safety.counters.clamped == 1


def test_max_step_first_relative_to_measured_then_to_last_command() -> None:
    safety = make(max_step=0.1)
    d1 = safety.filter([0.9, 0.0, 0.2], [0.0, 0.0, 0.2])
    np.testing.assert_allclose(d1.command, [0.1, 0.0, 0.2])
    assert d1.rate_limited == ("j1",) and "max_step 0.1000" in d1.message
    # Second step: limited relative to the last command (0.1), not the measured 0.0.
    d2 = safety.filter([0.9, 0.0, 0.2], [0.0, 0.0, 0.2])
    np.testing.assert_allclose(d2.command, [0.2, 0.0, 0.2])
    np.testing.assert_allclose(safety.last_command, [0.2, 0.0, 0.2])


def test_outside_limits_robot_is_brought_back_gradually() -> None:
    safety = make(max_step=0.1)
    # Measured j1 at 1.5 (beyond the 1.0 limit): the command moves toward the limit by max_step.
    d = safety.filter([1.5, 0.0, 0.2], [1.5, 0.0, 0.2])
    np.testing.assert_allclose(d.command, [1.4, 0.0, 0.2])


def test_stale_input_sends_nothing_and_restarts_from_measured() -> None:
    safety = make(max_step=0.1, max_input_age=0.5)
    safety.filter([0.1, 0.0, 0.0], [0.0, 0.0, 0.0])
    d = safety.filter([0.2, 0.0, 0.0], [0.0, 0.0, 0.0], input_age_s=0.8)
    assert not d.sent and d.reason == "stale_input"
    assert "0.800 s old" in d.message and "max_input_age 0.500" in d.message
    assert safety.last_command is None and safety.counters.stale == 1
    assert safety.stale_message(0.4) is None and safety.stale_message(float("nan")) is not None
    # After the gap, the change is limited relative to the measured position (0.5), not the old 0.1 command.
    d = safety.filter([0.9, 0.0, 0.0], [0.5, 0.0, 0.0], input_age_s=0.01)
    np.testing.assert_allclose(d.command, [0.6, 0.0, 0.0])


def test_age_check_disabled_with_zero() -> None:
    assert make(max_input_age=0.0).filter([0, 0, 0], [0, 0, 0], input_age_s=1e6).sent


@pytest.mark.parametrize(
    ("target", "measured", "reason", "what"),
    [
        ([math.nan, 0.0, 0.0], [0.0, 0.0, 0.0], "non_finite_target", "model output is NaN/Inf for j1"),
        ([0.0, 0.0, 0.0], [0.0, math.inf, 0.0], "non_finite_measured", "measured position is NaN/Inf for j2"),
    ],
)
def test_non_finite_sends_nothing(target: list[float], measured: list[float], reason: str, what: str) -> None:
    safety = make(max_step=0.1)
    safety.filter([0.05, 0.0, 0.0], [0.0, 0.0, 0.0])
    d = safety.filter(target, measured)
    assert not d.sent and d.reason == reason and what in d.message
    assert safety.last_command is None and safety.counters.non_finite == 1


def test_hold_is_measured_position_and_forgets_last_command() -> None:
    safety = make(max_step=0.1)
    safety.filter([0.1, 0.0, 0.0], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(safety.hold([0.05, 0.1, 0.2]), [0.05, 0.1, 0.2])
    assert safety.last_command is None and safety.counters.holds == 1
    assert safety.hold(None) is None
    assert safety.hold([math.nan, 0.0, 0.0]) is None


def test_update_limits_keeps_joints() -> None:
    safety = make()
    safety.update(SafetyConfig(NAMES, (-0.1,) * 3, (0.1,) * 3, 0.0, 0.0))
    np.testing.assert_allclose(safety.filter([0.5, 0.0, -0.5], [0, 0, 0]).command, [0.1, 0.0, -0.1])
    with pytest.raises(InputError, match="new safety config is for joints"):
        safety.update(SafetyConfig(("a",), (0.0,), (1.0,)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lower": (0.0,), "upper": (1.0, 1.0, 1.0)}, "one entry per joint"),
        ({"lower": (0.0, 2.0, 0.0), "upper": (1.0, 1.0, 1.0)}, r"lower <= upper.*j2 \[2.0, 1.0\]"),
        ({"lower": (math.nan, 0.0, 0.0), "upper": (1.0, 1.0, 1.0)}, "NaN"),
        ({"max_step": -0.1}, "max_step must be a finite number >= 0"),
        ({"max_input_age": math.inf}, "max_input_age must be a finite number >= 0"),
    ],
)
def test_bad_config_is_rejected(kwargs: dict, match: str) -> None:
    args = {"joint_names": NAMES, "lower": (-1.0,) * 3, "upper": (1.0,) * 3}
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        SafetyConfig(**args)


def test_from_limits_empty_means_defaults_and_inf_is_unlimited() -> None:
    cfg = SafetyConfig.from_limits(NAMES, [], [], default_lower=[-1, -2, -3], default_upper=[1, 2, 3])
    assert cfg.lower == (-1.0, -2.0, -3.0) and cfg.upper == (1.0, 2.0, 3.0)
    cfg = SafetyConfig.from_limits(NAMES, [-math.inf] * 3, [], default_lower=[0] * 3, default_upper=[1] * 3)
    np.testing.assert_allclose(CommandSafety(cfg).filter([-50, 0.5, 2], [0, 0, 0]).command, [-50, 0.5, 1])


def test_wrong_vector_length_is_an_input_error() -> None:
    with pytest.raises(InputError, match="target has 2 values, expected 3"):
        make().filter([0.0, 0.0], [0.0, 0.0, 0.0])


def test_throttle_lets_one_through_per_period_and_counts_the_rest() -> None:
    throttle = Throttle(period_s=1.0)
    assert throttle.should_log("stale", 10.0)
    assert not throttle.should_log("stale", 10.5)
    assert not throttle.should_log("stale", 10.9)
    assert throttle.should_log("nan", 10.9)  # keys are independent
    assert throttle.take_suppressed("stale") == 2 and throttle.take_suppressed("stale") == 0
    assert throttle.should_log("stale", 11.0)
    assert throttle.should_log("stale", 5.0)  # the clock went backwards: let it through


def test_trajectory_point_is_due_one_period_after_its_frame() -> None:
    from eipl_trt.ros.trajectory import MIN_LEAD_FRACTION, trajectory_lead_s

    period = 0.1
    assert trajectory_lead_s(period, 10.0, 10.012) == pytest.approx(0.088)  # sent 12 ms after the frame
    assert trajectory_lead_s(period, 10.0, 10.0) == pytest.approx(period)  # lockstep: sent at the frame's time
    assert trajectory_lead_s(period, 10.0, 10.5) == pytest.approx(MIN_LEAD_FRACTION * period)  # a stale frame
    assert trajectory_lead_s(period, 10.0, 9.9) == pytest.approx(period)  # a camera clock ahead of ours
    assert trajectory_lead_s(period, 0.0, 10.0) == period  # unstamped frame
    assert trajectory_lead_s(period, 10.0, 10.012, "period") == period  # the old behaviour, on request
    with pytest.raises(ValueError, match="stamp, frame, period"):
        trajectory_lead_s(period, 10.0, 10.0, "deadline")


def test_stamp_timing_anchors_the_trajectory_to_its_frame() -> None:
    from eipl_trt.ros.trajectory import MIN_LEAD_FRACTION, trajectory_timing

    period = 0.1
    t = trajectory_timing(period, 10.0, 10.012)  # the default: header.stamp = the frame's stamp
    assert (t.start_s, t.time_from_start_s) == (10.0, period)
    stale = trajectory_timing(period, 10.0, 10.5)  # the point would be long due: re-anchored, a short ramp kept
    assert stale.start_s + stale.time_from_start_s == pytest.approx(10.5 + MIN_LEAD_FRACTION * period)
    assert trajectory_timing(period, 10.2, 10.0).start_s == 10.0  # a camera clock ahead of ours
    assert trajectory_timing(period, 0.0, 10.0) == trajectory_timing(period, 0.0, 10.0, "period")  # unstamped
    frame = trajectory_timing(period, 10.0, 10.012, "frame")
    assert frame.start_s == 0.0 and frame.time_from_start_s == pytest.approx(0.088)


def test_the_coast_point_continues_the_steps_motion_within_the_limits() -> None:
    import numpy as np

    from eipl_trt.ros.trajectory import TrajectoryTiming, trajectory_points

    timing = TrajectoryTiming(10.0, 0.1)
    target, previous = np.array([0.5, 1.0]), np.array([0.4, 1.1])
    points = trajectory_points(target, previous, timing, 0.1, lower=[-2.0, 0.95], upper=[2.0, 2.0])
    assert [t for t, _ in points] == [0.1, pytest.approx(0.2)]
    np.testing.assert_allclose(points[1][1], [0.6, 0.95])  # +0.1 on joint 0; joint 1 clamped at its lower limit
    assert len(trajectory_points(target, None, timing, 0.1)) == 1  # after a reset or stop: nothing to continue
    assert len(trajectory_points(target, previous, timing, 0.1, coast=False)) == 1


def test_each_decision_carries_the_command_it_follows() -> None:
    import numpy as np

    from eipl_trt.control import CommandSafety, SafetyConfig

    safety = CommandSafety(SafetyConfig(("a",), (-1.0,), (1.0,), max_step=0.1, max_input_age=0.5))
    first = safety.filter(np.array([0.05]), np.array([0.0]))
    assert first.previous is None
    second = safety.filter(np.array([0.3]), np.array([0.05]))
    np.testing.assert_array_equal(second.previous, first.command)
    assert safety.filter(np.array([0.3]), np.array([0.1]), input_age_s=1.0).command is None  # stale: a gap
    assert safety.filter(np.array([0.3]), np.array([0.1])).previous is None
