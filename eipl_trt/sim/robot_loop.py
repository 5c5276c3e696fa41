"""The episode loop of ``eipl_trt_sim_robot``: publish, wait for commands, simulate, score.

Used by :mod:`eipl_trt.sim.ros_robot` (which owns the ROS side: publishers, subscriptions,
parameters); the physics and scoring live in :class:`~eipl_trt.sim.robot.SimRobot`.

Per camera period (0.1 s) in **lockstep**: publish ``/clock`` and the joint states, then (after
``frame_lag_s`` of wall time, so the controller has the joints of this instant before the frame)
the camera frame; wait up to ``command_timeout_s`` (0.1 s without a frame) for a command; apply
it; simulate five 0.02 s control periods, publishing ``/clock`` and joint states at each. Commands
that arrive late are applied at the next frame. In **real time** the same runs against the wall
clock, applying whatever commands arrived at each control period, after a 1 s pause at the start
pose that lets commands still in flight from the previous episode arrive and be discarded.

Each episode is announced on ``sim/episode`` (JSON: its seed, index, the stamp of its first frame and its
variation) and scored on ``sim/result`` (JSON) when it ends, and the object's position goes out on
``sim/object`` with every frame: the privileged channel a lab's motion capture would be, read by the
scripted expert (:mod:`eipl_trt.sim.ros_expert`), never by a model. The per-episode variations of
:mod:`eipl_trt.sim.variation` (command latency, camera jitter and drops, joint_states rate, light and
colours) are drawn here; all are off by default.
"""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import numpy as np

from eipl_trt.common.atomic import write_bytes_atomic, write_json_atomic
from eipl_trt.errors import InputError

__all__ = ["run_episodes", "CommandQueue", "SETTLE_S"]

#: Real time: pause before each episode, longer than the node's default max_input_age 0.5 s (s).
SETTLE_S = 1.0


class CommandQueue:
    """Received commands held until the robot's command latency has passed, then applied in arrival order.

    ``due`` keys are in one clock per episode: ``time.monotonic()`` in real time, the scene's time in lockstep.
    """

    def __init__(self, latency_s: float) -> None:
        self.latency_s = float(latency_s)
        self.pending: list[tuple[float, str, Any]] = []

    def add(self, commands: list[tuple[str, Any, float]]) -> None:
        """``(kind, payload, arrival)`` tuples; each becomes due at ``arrival + latency``."""
        self.pending += [(arrival + self.latency_s, kind, payload) for kind, payload, arrival in commands]

    def take_due(self, now: float) -> list[tuple[str, Any]]:
        """The commands due at ``now`` (oldest first); the rest stay."""
        due = [(k, p) for t, k, p in self.pending if t <= now + 1e-9]
        self.pending = [c for c in self.pending if c[0] > now + 1e-9]
        return due


def _apply(robot: Any, commands: list[tuple[str, Any]], t0: float, log: Any) -> None:
    """Apply commands; trajectory stamps (the sender's clock) become scene times by the episode's ``t0``."""
    for kind, payload in commands:
        try:
            if kind == "forward":
                problems = robot.command_positions(payload)
            else:
                names, points, stamp_s = payload
                start = stamp_s - t0 if stamp_s > 0.0 else None
                problems = robot.command_trajectory(names, points, start_s=start)
        except InputError as exc:
            log.warning(f"refused a {kind} command: {exc}")
            continue
        if problems:
            log.warning(f"command outside the robot's limits: {'; '.join(problems)}")


def run_episodes(ros: Any) -> dict[str, Any]:
    """Run the configured episodes; returns the results (also written to ``params.results``)."""
    from eipl_trt.sim.pusher import PusherScene
    from eipl_trt.sim.robot import SimRobot

    p, log = ros.params, ros.node.get_logger()
    results: dict[str, Any] = {"clock": p.clock, "seed": p.seed, "frames": p.frames, "episodes": [],
                               "controller_found": True}
    video: list[np.ndarray] = []
    video_stamps: list[int] = []
    with PusherScene(p.image_size) as scene:
        robot = SimRobot(scene, seed=p.seed, max_step=p.max_step)
        sim_t = 1.0  # lockstep clock (s); starts at 1 s so stamps are never zero
        ros.publish_clock(sim_t)
        if not ros.wait_for_controller():
            log.warning(f"no controller matched within {p.wait_for_controller_s:.0f} s; running anyway")
            results["controller_found"] = False
        started = time.monotonic()
        for index in range(p.first_episode, p.first_episode + p.episodes):
            interrupted = False
            try:
                sim_t = _run_episode(ros, robot, index, sim_t, video, video_stamps)
            except KeyboardInterrupt:
                interrupted = True
            score = robot.finish_episode()
            score.extra["interrupted"] = interrupted
            results["episodes"].append(score.to_json())
            ros.report({"event": "end", "seed": p.seed, "index": index, "success": score.success,
                        "final_distance_m": round(score.final_distance_m, 5)})
            sim_t = round(sim_t + SETTLE_S, 9)  # lockstep: a pause between episodes, so no two frames share a stamp
            log.info(f"episode {index}: final distance {score.final_distance_m * 100:.1f} cm "
                     f"({'success' if score.success else 'fail'}), {score.commands} commands, "
                     f"{score.limit_violations} limit violations" + (" (interrupted)" if interrupted else ""))
            if p.results:
                _write_results(p.results, results, robot, started)
            if interrupted:
                break
    results = _write_results(p.results, results, robot, started) if p.results else results
    if video and p.video_out:
        buf = io.BytesIO()
        np.savez_compressed(buf, images=np.stack(video), stamps_ns=np.asarray(video_stamps, np.int64))
        write_bytes_atomic(p.video_out, buf.getvalue())
    return results


def _run_episode(ros: Any, robot: Any, index: int, sim_t: float, video: list[np.ndarray],
                 video_stamps: list[int]) -> float:
    """One episode; returns the lockstep clock (s) at its end."""
    from eipl_trt.sim.robot import SUBSTEPS

    episode = _Episode(ros, robot, index, sim_t)
    record = index == ros.params.video_episode and bool(ros.params.video_out)
    last = (ros.params.frames - 1) * SUBSTEPS
    for period in range(last + 1):
        frame = period % SUBSTEPS == 0
        now = episode.commands_and_state(period, frame)
        if frame:
            rgb = episode.camera(now)
            if record and rgb is not None:
                video.append(rgb)
                video_stamps.append(int(round(now * 1e9)))
        if period == last:
            break
        episode.advance()
    return episode.finish()


class _Episode:
    """One episode's clock, command queue and counters; the loop above calls its steps in order."""

    def __init__(self, ros: Any, robot: Any, index: int, sim_t: float) -> None:
        from eipl_trt.sim.variation import apply_appearance, draw

        p, scene = ros.params, robot.scene
        self.ros, self.robot, self.scene, self.log = ros, robot, scene, ros.node.get_logger()
        self.lockstep = p.clock == "lockstep"
        self.sim_t = sim_t
        self.variation = draw(ros.variation, p.seed, index)
        robot.start_episode(index)
        apply_appearance(scene, self.variation)
        ros.take_commands()
        ros.publish_clock(sim_t)
        ros.publish_joints(sim_t if self.lockstep else time.time(), scene.joint_positions(), scene.joint_velocities(),
                           scene.joint_efforts())
        self.reset_ok = ros.call_reset() if ros.reset_client is not None else None
        self.discarded = 0 if self.lockstep else _settle(ros, robot)
        self.t0 = sim_t if self.lockstep else time.time()  # the stamp of frame 0, which is scene time 0
        ros.announce({"event": "start", "seed": p.seed, "index": index, "start_s": self.t0, "clock": p.clock,
                      "frames": p.frames, "variation": self.variation.to_json()})
        self.queue = CommandQueue(self.variation.latency_s)
        self.next_tick = time.monotonic()
        self.late = self.commands_seen = self.dropped = 0

    def commands_and_state(self, period: int, frame: bool) -> float:
        """Apply the commands due, publish the clock, joints (and at a frame the object); returns the stamp (s).

        Real time: stamps are the scene's own time on the wall clock's axis (the loop keeps pace with it; a
        period the machine ran late is counted in late_periods), so frames and joints of one instant agree.
        """
        ros, scene = self.ros, self.scene
        now = self.sim_t if self.lockstep else self.t0 + scene.time_s
        if not self.lockstep:
            self.queue.add(ros.take_commands())
            _apply(self.robot, self.queue.take_due(time.monotonic()), self.t0, self.log)
        else:
            _apply(self.robot, self.queue.take_due(scene.time_s), self.t0, self.log)
        ros.publish_clock(now)
        if period % self.variation.joint_divisor == 0 or frame:
            ros.publish_joints(now, scene.joint_positions(), scene.joint_velocities(), scene.joint_efforts())
        if frame:
            if self.lockstep:
                _queue_lockstep(self.queue, ros.take_commands(), scene.time_s)  # late ones, from before this frame
                _apply(self.robot, self.queue.take_due(scene.time_s), self.t0, self.log)
            elif period > 0:
                score = self.robot.current_score()
                score.frames_without_command += int(score.commands == self.commands_seen)
                self.commands_seen = score.commands
            ros.publish_object(now, scene.object_xy())
        return now

    def camera(self, now: float) -> np.ndarray | None:
        """Render and publish the frame (late, or not at all, as the variation says); lockstep: wait for its command."""
        ros, delay, rgb = self.ros, None, None
        if ros.camera_enabled:
            rgb = self.scene.render()
            if self.lockstep and ros.params.frame_lag_s > 0:
                time.sleep(ros.params.frame_lag_s)
            delay = self.variation.frame_delay_s()
            if delay is None:
                self.dropped += 1
            else:
                ros.publish_image(now, rgb, delay_s=0.0 if self.lockstep else delay)
        if self.lockstep:
            got = ros.arrived.wait(ros.command_timeout_s if delay is not None else min(ros.command_timeout_s, 0.1))
            commands = ros.take_commands()
            self.robot.current_score().frames_without_command += int(not got or not commands)
            _queue_lockstep(self.queue, commands, self.scene.time_s)
            _apply(self.robot, self.queue.take_due(self.scene.time_s), self.t0, self.log)
        return rgb

    def advance(self) -> None:
        """Simulate one control period; real time: sleep to the next tick (or count a late period)."""
        from eipl_trt.sim.pusher import CONTROL_PERIOD_S

        self.robot.step_period()
        if self.lockstep:
            self.sim_t = round(self.sim_t + CONTROL_PERIOD_S, 9)
            return
        self.next_tick += CONTROL_PERIOD_S
        wait = self.next_tick - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        else:
            self.late += 1

    def finish(self) -> float:
        """Record the episode's timing facts in its score; returns the lockstep clock."""
        self.robot.current_score().extra.update({
            "reset_ok": self.reset_ok, "late_periods": self.late, "discarded_before_start": self.discarded,
            "frames_dropped": self.dropped, "variation": self.variation.to_json()})
        return self.sim_t


def _queue_lockstep(queue: CommandQueue, commands: list[tuple[str, Any, float]], scene_t: float) -> None:
    """Lockstep: a command counts as arriving at the scene time it was taken (wall arrival is meaningless)."""
    queue.add([(kind, payload, scene_t) for kind, payload, _ in commands])


def _settle(ros: Any, robot: Any) -> int:
    """Real time: hold the new start pose for ``SETTLE_S`` publishing joints only, then drop what arrived.

    Commands computed for the previous episode's scene can still be in flight when the scene is
    reset (the arm "teleports" to the new start pose, which no real robot does); in this pause the
    controller's inputs go stale (``max_input_age``), so it stops and resets its state, and the
    commands that arrive meanwhile are discarded (counted as ``discarded_before_start``).
    """
    scene = robot.scene
    end = time.monotonic() + SETTLE_S
    while time.monotonic() < end:
        ros.publish_joints(time.time(), scene.joint_positions(), scene.joint_velocities(), scene.joint_efforts())
        time.sleep(0.02)
    return len(ros.take_commands())


def _write_results(path: str, results: dict[str, Any], robot: Any, started: float) -> dict[str, Any]:
    results["limit_check"] = {"checked": robot.check.checked, "violations": robot.check.violations,
                              "max_step": robot.check.max_step, "first_messages": list(robot.check.messages)}
    results["wall_s"] = round(time.monotonic() - started, 3)
    write_json_atomic(path, results)
    return results


class DelayedPublisher:
    """Publishes messages after a delay from one worker thread (camera jitter without stalling the loop)."""

    def __init__(self, publish: Any) -> None:
        self._publish = publish
        self._cond = threading.Condition()
        self._items: list[tuple[float, Any]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="delayed-publisher")
        self._thread.start()

    def submit(self, delay_s: float, msg: Any) -> None:
        with self._cond:
            self._items.append((time.monotonic() + delay_s, msg))
            self._items.sort(key=lambda item: item[0])
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and (not self._items or self._items[0][0] > time.monotonic()):
                    self._cond.wait(None if not self._items else max(0.0, self._items[0][0] - time.monotonic()))
                if self._stop:
                    return
                _, msg = self._items.pop(0)
            self._publish(msg)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(2.0)
