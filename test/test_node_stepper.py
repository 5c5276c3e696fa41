"""The node's step thread (coalescing kicks) and executor selection (issue #7), without the model.

The step-thread tests are pure Python; the executor tests spin a real rclpy executor of each kind
over DDS and check it stops when asked (rclpy 9.1.2's EventsExecutor deadlocks when shut down from
another thread while spinning; :class:`eipl_trt.ros.spin.SpinThread` must avoid that).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

import pytest

from eipl_trt.ros.spin import EXECUTOR_KINDS, events_executor_class, resolve_kind, split_node_args
from eipl_trt.ros.stepper import StepThread, set_realtime_priority


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def test_kicks_during_a_step_coalesce_into_one_follow_up_step() -> None:
    release, started = threading.Event(), threading.Event()
    seen: list[int] = []  # the kick count each step started with

    def step() -> None:
        seen.append(stepper.kicks)
        started.set()
        release.wait(10.0)

    stepper = StepThread(step)
    try:
        stepper.kick()
        assert started.wait(10.0)
        for _ in range(5):  # a camera burst while the model runs
            stepper.kick()
        release.set()
        assert wait_until(lambda: len(seen) >= 2)  # the one follow-up step started
        # a last kick: its step starts after everything the burst left to do, so once it ran, nothing is pending
        stepper.kick()
        assert wait_until(lambda: 7 in seen)
        assert seen == [1, 6, 7] and stepper.runs == 3 and stepper.kicks == 7 and stepper.coalesced == 4
    finally:
        release.set()
        assert stepper.stop()


def test_a_failing_step_does_not_end_the_thread() -> None:
    calls: list[str] = []

    def step() -> None:
        calls.append("x")
        if len(calls) == 1:
            raise RuntimeError("boom")

    stepper = StepThread(step)
    try:
        stepper.kick()
        assert wait_until(lambda: stepper.runs == 1)
        stepper.kick()
        assert wait_until(lambda: len(calls) == 2)
    finally:
        assert stepper.stop()


def test_stop_finishes_the_step_in_progress() -> None:
    inside, release = threading.Event(), threading.Event()
    finished: list[bool] = []

    def step() -> None:
        inside.set()
        release.wait(10.0)
        finished.append(True)

    stepper = StepThread(step)
    stepper.kick()
    assert inside.wait(10.0)
    threading.Timer(0.05, release.set).start()
    assert stepper.stop(timeout_s=10.0)
    assert finished == [True]
    stepper.kick()  # after stop: ignored, no error
    assert finished == [True]


def test_node_arguments_are_taken_before_ros_args_only() -> None:
    options, rest = split_node_args(["eipl_trt_node", "--executor", "single", "--no-step-thread",
                                     "--ros-args", "-p", "model:=x", "--executor", "kept"])
    assert options == {"executor": "single", "step_thread": False}
    assert rest == ["eipl_trt_node", "--ros-args", "-p", "model:=x", "--executor", "kept"]
    options, rest = split_node_args(["n", "--executor=multi", "--step-thread"])
    assert options == {"executor": "multi", "step_thread": True} and rest == ["n"]
    assert split_node_args(["n"])[0] == {"executor": "auto", "step_thread": None}
    with pytest.raises(ValueError, match="needs a value"):
        split_node_args(["n", "--executor"])


def test_executor_kind_is_chosen_by_capability() -> None:
    has_events = events_executor_class() is not None
    assert resolve_kind("auto") == ("events" if has_events else "single")
    assert resolve_kind("single") == "single" and resolve_kind("multi") == "multi"
    with pytest.raises(ValueError, match="must be one of"):
        resolve_kind("fast")
    if not has_events:
        with pytest.raises(ValueError, match="no rclpy.experimental.EventsExecutor"):
            resolve_kind("events")


@pytest.mark.parametrize("kind", [k for k in EXECUTOR_KINDS if k != "auto"])
def test_every_executor_kind_delivers_messages_and_stops(kind: str) -> None:
    rclpy = pytest.importorskip("rclpy")
    from std_msgs.msg import String

    from eipl_trt.ros.spin import SpinThread, create_executor
    from ros_helpers import new_domain_id

    if kind == "events" and events_executor_class() is None:
        pytest.skip("this rclpy has no EventsExecutor")
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=new_domain_id())
    got: list[Any] = []
    try:
        node = rclpy.create_node("spin_probe", context=context)
        pub = node.create_publisher(String, "probe", 10)
        node.create_subscription(String, "probe", got.append, 10)
        executor = create_executor(kind, context)
        executor.add_node(node)
        spinner = SpinThread(executor, kind)
        assert wait_until(lambda: (pub.publish(String(data="x")), bool(got))[1], 10.0)
        spinner.stop(timeout_s=5.0)
        assert not spinner.alive() and spinner.error is None
        node.destroy_node()
    finally:
        context.try_shutdown()


def test_thread_priority_applies_to_the_step_thread_only() -> None:
    seen: list[int] = []
    stepper = StepThread(lambda: seen.append(os.sched_getscheduler(0)), priority=10)
    try:
        stepper.kick()
        assert wait_until(lambda: len(seen) == 1)
    finally:
        stepper.stop()
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller's thread is untouched
    if stepper.priority_status.startswith("normal"):  # no rtprio for this user: refused, said why, ran anyway
        assert "refused" in stepper.priority_status and "thread_priority: 0" in stepper.priority_status
        assert seen == [os.SCHED_OTHER]
    else:
        assert stepper.priority_status == "SCHED_FIFO 10" and seen == [os.SCHED_FIFO]


def test_a_refused_priority_is_explained_and_the_thread_still_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    assert set_realtime_priority(0) == "normal (thread_priority 0)"
    message = set_realtime_priority(50)
    assert message.startswith("normal: SCHED_FIFO 50 refused (Operation not permitted)") and "rtprio" in message
    runs: list[int] = []
    stepper = StepThread(lambda: runs.append(1), priority=50)
    try:
        stepper.kick()
        assert wait_until(lambda: runs == [1])
        assert stepper.priority_status == message
    finally:
        stepper.stop()


def test_frame_wait_is_the_time_until_the_due_frame_or_nothing() -> None:
    from eipl_trt.ros.inputs import frame_wait_s

    # 30 Hz camera, last frame 25 ms before the tick: the next is due in 8.3 ms (+2 ms to be fresh)
    assert frame_wait_s(10.025, 10.0, 30.0, 0.05) == pytest.approx(1 / 30 - 0.025 + 0.002)
    assert frame_wait_s(10.001, 10.0, 30.0, 0.05) == 0.0      # already fresh
    assert frame_wait_s(10.025, 10.0, 30.0, 0.005) == 0.0     # due later than the longest wait
    assert frame_wait_s(10.100, 10.0, 30.0, 0.05) == 0.0      # camera late by more than a period
    assert frame_wait_s(10.025, 10.0, 0.0, 0.05) == 0.0       # camera rate not known yet
    assert frame_wait_s(10.025, None, 30.0, 0.05) == 0.0      # no frame yet
    assert frame_wait_s(10.025, 10.0, 30.0, 0.0) == 0.0       # max_frame_wait: 0 = step at the tick


def test_a_tick_waits_for_the_due_frame_and_no_longer_than_allowed() -> None:
    started: list[float] = []
    stepper = StepThread(lambda: started.append(time.monotonic()))
    try:
        t0 = time.monotonic()
        stepper.kick(wait_for_frame_s=5.0)
        time.sleep(0.2)
        assert started == []  # still waiting for the frame
        stepper.notify_frame()
        assert wait_until(lambda: len(started) == 1)
        assert 0.2 <= started[0] - t0 < 4.0 and stepper.frames_caught == 1
        t1 = time.monotonic()
        stepper.kick(wait_for_frame_s=0.3)  # the frame never comes: step after the wait anyway
        assert wait_until(lambda: len(started) == 2)
        assert 0.25 <= started[1] - t1 < 4.0 and stepper.frame_waits == 2 and stepper.frames_caught == 1
        stepper.kick()  # no wait: at once
        assert wait_until(lambda: len(started) == 3, 2.0)
    finally:
        assert stepper.stop()
