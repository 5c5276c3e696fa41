"""``eipl-trt control``: the node drives the simulated Pusher arm over ROS 2, episode by episode.

For each precision, :func:`run_control` starts two processes exactly as ``launch/sim.launch.py``
would: ``eipl_trt_sim_robot`` (the MuJoCo robot, :mod:`eipl_trt.sim.ros_robot`) and
``eipl_trt_node`` (the model, ``command_interface: joint_trajectory`` by default). The node steps on
each camera frame (``trigger: image``); in real time (the default) on the wall clock, in lockstep with
``use_sim_time`` so that the robot can wait for "the step's command". This process listens to the
node's ``~/timing``, ``~/enc_points``/``~/dec_points`` and ``/diagnostics`` for the report. The
scripted expert runs over ROS 2 through the same interface and clock (:func:`run_expert_ros`) and,
with a hold-still arm, in-process on the same layouts (:mod:`eipl_trt.sim.baselines`).
:mod:`eipl_trt.sim.report` writes ``report.md``, ``report.json`` and the videos.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from eipl_trt.errors import EipltrtError, InputError
from eipl_trt.paths import DEFAULT_CONTROLLER
from eipl_trt.sim.listener import NODE_NAME, Listener
from eipl_trt.sim.processes import env, ros_command, script, stop, tail, wait_for_robot

__all__ = ["ControlConfig", "launch_plan", "robot_limits", "run_baselines", "run_control", "NODE_NAME"]

#: How long the node may take to load its model and announce its publishers (s).
NODE_START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ControlConfig:
    """What ``eipl-trt control`` runs.

    Attributes:
        model: bundled model name or model directory.
        precisions: node precisions to run, in order.
        episodes: episodes per precision (and per baseline).
        clock: ``lockstep`` or ``realtime``.
        out: output directory.
        seed: layout seed (0 = the bundled models' training/test layouts; others are unseen).
        first_episode: index of the first layout.
        frames: camera frames per episode (0.1 s each).
        interface: ``forward_position`` or ``joint_trajectory``.
        node_args: extra ``-p name:=value`` parameters for the node.
        expert_ros: also run the scripted expert over ROS 2 through the same interface and clock
            (:func:`run_expert_ros`), beside the in-process expert.
    """

    model: str = DEFAULT_CONTROLLER
    precisions: tuple[str, ...] = ("fp32",)
    episodes: int = 5
    clock: str = "realtime"
    out: str = "results/control"
    seed: int = 1
    first_episode: int = 0
    frames: int = 70
    interface: str = "joint_trajectory"
    node_args: tuple[str, ...] = ()
    expert_ros: bool = True

    def __post_init__(self) -> None:
        if self.clock not in ("lockstep", "realtime"):
            raise InputError(f"--clock must be lockstep or realtime, got {self.clock!r}")
        if self.episodes < 1:
            raise InputError(f"--episodes must be >= 1, got {self.episodes}")
        if self.interface not in ("forward_position", "joint_trajectory"):
            raise InputError(f"--interface must be forward_position or joint_trajectory, got {self.interface!r}")
        if not self.precisions:
            raise InputError("give at least one --precision")


def launch_plan(cfg: ControlConfig, precision: str, limits: tuple[Sequence[float], Sequence[float]],
                results: Path, video: Path | None) -> Any:
    """The two processes for one precision, from the same mapping ``launch/sim.launch.py`` uses."""
    from eipl_trt.sim.launch_plan import sim_launch_from_args

    args = {"model": cfg.model, "precision": precision, "clock": cfg.clock, "command_interface": cfg.interface,
            "episodes": str(cfg.episodes), "first_episode": str(cfg.first_episode), "seed": str(cfg.seed),
            "frames": str(cfg.frames), "results": str(results), "video_out": str(video or "")}
    return sim_launch_from_args(args, limits, cfg.node_args)


def run_precision(cfg: ControlConfig, precision: str, listener: Listener, limits: tuple[Any, Any],
                  work: Path, progress: Callable[[str, dict[str, Any]], None]) -> dict[str, Any]:
    """One precision: both processes, the episodes, the listener's numbers. Returns the raw run."""
    results = work / f"robot_{precision}.json"
    video = work / f"frames_{precision}.npz"
    node_log, robot_log = work / f"node_{precision}.log", work / f"robot_{precision}.log"
    listener.take()
    with open(node_log, "wb") as nlog, open(robot_log, "wb") as rlog:
        plan = launch_plan(cfg, precision, limits, results, video)
        node = subprocess.Popen(plan.node_command(script("eipl_trt_node", "eipl_trt.ros.node")),
                                stdout=nlog, stderr=subprocess.STDOUT, env=env())
        try:
            listener.wait_for_node(node, NODE_START_TIMEOUT_S, node_log)
        except BaseException:
            stop(node)
            raise
        robot = subprocess.Popen(plan.robot_command(script("eipl_trt_sim_robot", "eipl_trt.sim.ros_robot")),
                                 stdout=rlog, stderr=subprocess.STDOUT, env=env())
        try:
            wait_for_robot(robot, [(f"node ({precision})", node, node_log)], results, lambda d: progress(precision, d))
            listener.wait_reports(2, timeout_s=6.0)  # counters that include the last step (a report may be in flight)
        finally:
            stop(robot)
            node_code = stop(node)
    if robot.returncode != 0 or not results.exists():
        raise EipltrtError(f"the simulated robot exited with code {robot.returncode}; its log ({robot_log}):\n"
                           f"{tail(robot_log)}")
    data = json.loads(results.read_text())
    if not data.get("controller_found", True):
        raise EipltrtError(f"the node never connected to the simulated robot; node log ({node_log}):\n{tail(node_log)}")
    step_ms, points, diagnostics = listener.take()
    frames = None
    if video.exists():
        with np.load(video) as npz:
            frames = (npz["images"], npz["stamps_ns"])
    return {"robot": data, "step_ms": step_ms, "points": points, "diagnostics": diagnostics, "frames": frames,
            "node_exit_code": node_code, "logs": {"node": str(node_log), "robot": str(robot_log)}}


def run_expert_ros(cfg: ControlConfig, limits: tuple[Any, Any], work: Path) -> dict[str, Any]:
    """The like-for-like reference: the scripted expert commanding the arm over ROS 2 exactly as the node does.

    ``eipl_trt_sim_expert`` replaces the node: joint targets at the camera rate through the same interface
    (joint_trajectory, points anchored to the frame, the coast point) and clock, no noise. Its score says what a
    10 Hz joint-target controller over ROS can do on these layouts; the in-process expert (torque control at the
    physics rate, the true state) says what the layouts allow.
    """

    if cfg.interface != "joint_trajectory":
        raise InputError("the expert over ROS commands the joint_trajectory interface; run with --interface "
                         "joint_trajectory or --no-expert-ros")
    results = work / "robot_expert_ros.json"
    plan = launch_plan(cfg, "fp32", limits, results, None)
    robot_params = {**plan.robot_parameters, "reset_service": "", "video_episode": -1, "video_out": ""}
    expert_params = {"mode": "drive", "dart_sigma": [0.0, 0.0], "use_sim_time": cfg.clock == "lockstep"}
    expert_log, robot_log = work / "expert_ros.log", work / "robot_expert_ros.log"
    with open(expert_log, "wb") as elog, open(robot_log, "wb") as rlog:
        expert = subprocess.Popen(ros_command(script("eipl_trt_sim_expert", "eipl_trt.sim.ros_expert"), expert_params),
                                  stdout=elog, stderr=subprocess.STDOUT, env=env())
        robot = subprocess.Popen(ros_command(script("eipl_trt_sim_robot", "eipl_trt.sim.ros_robot"), robot_params),
                                 stdout=rlog, stderr=subprocess.STDOUT, env=env())
        try:
            wait_for_robot(robot, [("expert", expert, expert_log)], results)
        finally:
            stop(robot)
            stop(expert)
    if robot.returncode != 0 or not results.exists():
        raise EipltrtError(f"the simulated robot exited with code {robot.returncode}; its log ({robot_log}):\n"
                           f"{tail(robot_log)}")
    return json.loads(results.read_text())


def robot_limits(model: str) -> tuple[list[float], list[float]]:
    """The robot's joint limits intersected with the model's joint bounds (rad): the node's command clamp."""
    from eipl_trt.paths import resolve_model
    from eipl_trt.sim.pusher import PusherScene

    spec = resolve_model(model)
    with PusherScene(16) as scene:
        rng = scene.joint_range
    lower = np.maximum(rng[:, 0], np.asarray(spec.joint_min, np.float64))
    upper = np.minimum(rng[:, 1], np.asarray(spec.joint_max, np.float64))
    return lower.tolist(), upper.tolist()


def run_baselines(cfg: ControlConfig) -> dict[str, list[dict[str, Any]]]:
    """The expert and hold-still episodes on the same layouts (in-process, no ROS)."""
    from eipl_trt.sim.baselines import BASELINES
    from eipl_trt.sim.pusher import PusherScene
    from eipl_trt.sim.robot import SimRobot

    out: dict[str, list[dict[str, Any]]] = {}
    with PusherScene(16) as scene:
        robot = SimRobot(scene, seed=cfg.seed)
        for name, run in BASELINES.items():
            out[name] = [run(robot, i, cfg.frames).to_json()
                         for i in range(cfg.first_episode, cfg.first_episode + cfg.episodes)]
    return out


def run_control(cfg: ControlConfig, progress: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run every precision and the baselines; write the report. Returns the report dict."""
    from eipl_trt.ros import require_rclpy
    from eipl_trt.sim.report import write_report

    require_rclpy()
    out = Path(cfg.out)
    work = out / "logs"
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    limits = robot_limits(cfg.model)
    baselines = run_baselines(cfg)
    listener = Listener()
    listener.start()
    runs: dict[str, Any] = {}
    try:
        for precision in cfg.precisions:
            runs[precision] = run_precision(cfg, precision, listener, limits, work, progress or (lambda p, d: None))
    finally:
        listener.close()
    if cfg.expert_ros:
        baselines = {"expert_ros": run_expert_ros(cfg, limits, work), **baselines}
    return write_report(cfg, runs, baselines, limits, wall_s=time.monotonic() - started)
