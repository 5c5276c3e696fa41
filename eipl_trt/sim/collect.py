"""Record demonstrations the way a lab does: the arm runs in real time, a controller commands it over ROS 2,
and the topics go to a rosbag2.

:func:`record` starts, as separate processes, the simulated robot (``eipl_trt_sim_robot``, in real time
by default, with the per-episode variations of :mod:`eipl_trt.sim.variation`), the expert
(``eipl_trt_sim_expert``) and, for DAgger rounds, the node driving the arm until the expert takes
over; this process records the topics with :class:`~eipl_trt.ros.recorder.BagRecorder` into
``OUT/bag`` (MCAP, zstd chunks). ``eipl-trt dataset`` turns the bag into a training set: frames and
joints as the node sees them, labels from ``/expert/intent`` (the expert's clean targets), episodes
cut at ``/sim/episode`` and, after a takeover, started at ``/expert/takeover``
(:data:`DATASET_ARGS` has the flags).
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from eipl_trt.common.atomic import write_json_atomic
from eipl_trt.errors import EipltrtError, InputError
from eipl_trt.sim.processes import env, ros_command, script, stop, tail, wait_for_robot

__all__ = ["RecordConfig", "record", "TOPICS", "DATASET_ARGS"]

#: What is recorded (topic -> type). ``/sim/episode`` is latched by the robot.
TOPICS: dict[str, str] = {
    "/camera/image_raw": "sensor_msgs/msg/Image",
    "/joint_states": "sensor_msgs/msg/JointState",
    "/expert/intent": "sensor_msgs/msg/JointState",
    "/expert/takeover": "std_msgs/msg/Header",
    "/expert/events": "std_msgs/msg/String",
    "/sim/episode": "std_msgs/msg/String",
    "/sim/result": "std_msgs/msg/String",
    "/sim/object": "geometry_msgs/msg/PointStamped",
    "/joint_trajectory_controller/joint_trajectory": "trajectory_msgs/msg/JointTrajectory",
}
#: ``eipl-trt dataset`` flags that read a bag written by :func:`record`.
DATASET_ARGS = ("--image-topic", "/camera/image_raw", "--joint-topic", "/joint_states", "--target-topic",
                "/expert/intent", "--marker-topic", "/sim/episode")
#: ... and with a model driving until the expert took over: only the expert's part.
DAGGER_DATASET_ARGS = (*DATASET_ARGS, "--start-topic", "/expert/takeover")


@dataclass(frozen=True)
class RecordConfig:
    """One recording session.

    Attributes:
        out: output directory (``bag/``, ``robot.json``, logs).
        episodes, seed, first_episode, frames: which layouts, and how long each episode runs.
        clock: ``realtime`` (default: what a lab records) or ``lockstep``.
        latency_s, camera_jitter_s, frame_drop, joint_divisors, appearance: per-episode variation ranges.
        dart_sigma: (min, max) DART noise std per episode (rad); ``dart_tau_s`` its correlation time.
        model: a model directory or bundled name: the node drives until the expert takes over (DAgger).
        takeover_frames: (first, last) frame of the hand-over, drawn per episode.
        trajectory_timing: how the controllers anchor their trajectory points (the node's parameter).
        noise_seed: seeds the DART noise and hand-over draws.
        node_args: extra ``name:=value`` node parameters.
    """

    out: str
    episodes: int = 10
    seed: int = 100
    first_episode: int = 0
    frames: int = 70
    clock: str = "realtime"
    latency_s: tuple[float, float] = (0.0, 0.04)
    camera_jitter_s: float = 0.005
    frame_drop: float = 0.02
    joint_divisors: tuple[int, ...] = (1, 2)
    appearance: float = 0.1
    dart_sigma: tuple[float, float] = (0.0, 0.03)
    dart_tau_s: float = 0.4
    model: str = ""
    takeover_frames: tuple[int, int] = (5, 35)
    trajectory_timing: str = "stamp"
    noise_seed: int = 0
    node_args: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.clock not in ("lockstep", "realtime"):
            raise InputError(f"--clock must be lockstep or realtime, got {self.clock!r}")
        if self.episodes < 1 or self.frames < 2:
            raise InputError(f"need --episodes >= 1 and --frames >= 2, got {self.episodes} and {self.frames}")
        if Path(self.out, "bag").exists():
            raise InputError(f"{Path(self.out, 'bag')} already exists; choose another --out")


def _robot_params(cfg: RecordConfig, results: Path) -> dict[str, Any]:
    return {"clock": cfg.clock, "episodes": cfg.episodes, "first_episode": cfg.first_episode, "seed": cfg.seed,
            "frames": cfg.frames, "results": str(results), "reset_service": "/eipl_trt/reset" if cfg.model else "",
            "command_latency_s": list(cfg.latency_s), "camera_jitter_s": cfg.camera_jitter_s,
            "frame_drop": cfg.frame_drop, "joint_divisors": list(cfg.joint_divisors), "appearance": cfg.appearance,
            # the expert, the model's node (which steps on frames too) and this process's recorder: the first
            # frame is published only once all of them are matched, or the bag may miss it
            "image_subscribers": 2 + bool(cfg.model)}


def _expert_params(cfg: RecordConfig) -> dict[str, Any]:
    return {"mode": "takeover" if cfg.model else "drive", "dart_sigma": list(cfg.dart_sigma),
            "dart_tau_s": cfg.dart_tau_s, "takeover_frames": list(cfg.takeover_frames),
            "noise_seed": cfg.noise_seed, "trajectory_timing": cfg.trajectory_timing,
            "use_sim_time": cfg.clock == "lockstep"}


def _node_command(cfg: RecordConfig) -> list[str]:
    from eipl_trt.sim.live import ControlConfig, launch_plan, robot_limits

    control = ControlConfig(model=cfg.model, clock=cfg.clock, interface="joint_trajectory", seed=cfg.seed,
                            episodes=cfg.episodes, frames=cfg.frames,
                            node_args=(f"trajectory_timing:={cfg.trajectory_timing}", *cfg.node_args))
    plan = launch_plan(control, "fp32", robot_limits(cfg.model), Path(cfg.out) / "unused.json", None)
    remaps = (*plan.node_remappings, ("joint_trajectory_controller/joint_trajectory", "model/joint_trajectory"))
    return ros_command(script("eipl_trt_node", "eipl_trt.ros.node"), plan.node_parameters | {
        "trajectory_timing": cfg.trajectory_timing}, remaps)


def record(cfg: RecordConfig, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the session; returns the summary (also ``OUT/record.json``).

    Raises:
        EipltrtError: a process failed (its log is quoted) or nothing was recorded.
    """
    from eipl_trt.ros import require_rclpy
    from eipl_trt.ros.recorder import BagRecorder

    require_rclpy()
    out = Path(cfg.out)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results = out / "robot.json"
    started = time.monotonic()
    procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    recorder = BagRecorder(out / "bag", TOPICS, latched=("/sim/episode",), use_sim_time=cfg.clock == "lockstep").start()
    try:
        def launch(name: str, command: list[str]) -> subprocess.Popen[bytes]:
            log = logs / f"{name}.log"
            with open(log, "wb") as handle:
                proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env())
            procs.append((name, proc, log))
            return proc

        launch("expert", ros_command(script("eipl_trt_sim_expert", "eipl_trt.sim.ros_expert"), _expert_params(cfg)))
        if cfg.model:
            launch("node", _node_command(cfg))
        robot = launch("robot", ros_command(script("eipl_trt_sim_robot", "eipl_trt.sim.ros_robot"),
                                         _robot_params(cfg, results)))
        wait_for_robot(robot, [p for p in procs if p[1] is not robot], results, progress)
        time.sleep(0.5)  # the last messages in flight
    finally:
        codes = {name: stop(proc) for name, proc, _ in procs}
        bag = recorder.stop()
    robot_log = logs / "robot.log"
    if codes.get("robot") != 0 or not results.exists():
        raise EipltrtError(f"the simulated robot exited with code {codes.get('robot')}; its log ({robot_log}):\n"
                           f"{tail(robot_log)}")
    data = json.loads(results.read_text())
    episodes = data.get("episodes", [])
    summary = {"config": asdict(cfg), "bag": str(bag), "messages": recorder.counts, "episodes": len(episodes),
               "expert_success": sum(bool(e.get("success")) for e in episodes), "wall_s": round(time.monotonic() - started, 1),
               "limit_violations": data.get("limit_check", {}).get("violations"),
               "dataset_command": ["eipl-trt", "dataset", "--bag", str(bag),
                                   *(DAGGER_DATASET_ARGS if cfg.model else DATASET_ARGS)]}
    if not recorder.counts.get("/camera/image_raw"):
        raise EipltrtError(f"nothing was recorded from /camera/image_raw; see the logs in {logs}")
    write_json_atomic(out / "record.json", summary)
    return summary
