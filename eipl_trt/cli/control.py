"""Drive the simulated Pusher arm with the node over ROS 2 and score the task per precision.

Starts the simulated robot (eipl_trt_sim_robot) and the node (eipl_trt_node) as separate processes,
as launch/sim.launch.py does, runs N episodes per precision, plus the scripted expert (over ROS 2 through
the same interface and clock, and in-process at the physics rate) and a hold-still arm on the same
layouts, and writes OUT/report.md, OUT/report.json and a GIF per
precision (the first episode, attention points drawn) to OUT.

Example:
    eipl-trt control --model sarnn8rt --precision fp32 fp16 int8 --episodes 20 --clock realtime --out results/control
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from eipl_trt.common.progress import Progress

HELP = "closed-loop control of the simulated Pusher arm over ROS 2: task success per precision"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``control`` flags."""
    from eipl_trt.paths import DEFAULT_CONTROLLER

    parser.add_argument("--model", default=DEFAULT_CONTROLLER,
                        help="bundled model name or model directory (default: %(default)s, the bundled controller)")
    parser.add_argument("--precision", nargs="+", default=["fp32"], help="precisions to run (default: fp32)")
    parser.add_argument("--episodes", type=int, default=5, help="episodes per precision (default: %(default)s)")
    parser.add_argument("--clock", choices=("lockstep", "realtime"), default="realtime",
                        help="realtime: wall clock, as a robot runs (latency shows in the score); lockstep: simulated "
                             "time, the robot waits for each step's command (scores do not depend on machine load) "
                             "(default: %(default)s)")
    parser.add_argument("--out", default="results/control", help="output directory (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1,
                        help="layout seed; 0 = the bundled models' training/test layouts (default: %(default)s)")
    parser.add_argument("--first-episode", type=int, default=0, help="first layout index (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=70, help="camera frames (0.1 s) per episode (default: %(default)s)")
    parser.add_argument("--interface", choices=("forward_position", "joint_trajectory"), default="joint_trajectory",
                        help="the node's command_interface (default: %(default)s, what the bundled controller was "
                        "trained for)")
    parser.add_argument("--no-expert-ros", action="store_true",
                        help="skip the reference run of the scripted expert over ROS 2 (same interface and clock)")
    parser.add_argument("--node-param", action="append", default=[], metavar="NAME:=VALUE",
                        help="extra node parameter, e.g. input_mix:=0.5 (repeatable)")


class _Progress:
    """Episodes done per precision (:mod:`eipl_trt.common.progress`: a bar on a terminal, a line every 5 s in a log)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bars: dict[str, Progress] = {}

    def __call__(self, precision: str, data: dict[str, Any]) -> None:
        episodes = data.get("episodes", [])
        bar = self.bars.get(precision)
        if bar is None:  # the precisions run one after the other: end the previous one's bar
            self.close()
            bar = self.bars[precision] = Progress(self.total, precision, "episode", stream=sys.stdout)
        bar.set_postfix({"solved": sum(bool(e.get("success")) for e in episodes)})
        bar.update(len(episodes) - bar.count)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def run(args: argparse.Namespace) -> int:
    """Run the episodes, write the report, print the summary table. Returns 0."""
    from eipl_trt.sim.live import ControlConfig, run_control

    cfg = ControlConfig(model=args.model, precisions=tuple(args.precision), episodes=args.episodes, clock=args.clock,
                        out=args.out, seed=args.seed, first_episode=args.first_episode, frames=args.frames,
                        interface=args.interface, node_args=tuple(args.node_param),
                        expert_ros=not args.no_expert_ros and args.interface == "joint_trajectory")
    print(f"running {cfg.episodes} {cfg.clock} episode(s) of {cfg.model} per precision ({', '.join(cfg.precisions)}) "
          f"plus the expert ({'over ROS 2 and ' if cfg.expert_ros else ''}in-process) and hold-still on the same "
          f"layouts ...", flush=True)
    progress = _Progress(cfg.episodes)
    try:
        report = run_control(cfg, progress)
    finally:
        progress.close()
    for name, entry in report["runs"].items():
        lat = entry.get("step_latency", {})
        extra = (f", step p50 {lat['p50_ms']:.1f} ms p99 {lat['p99_ms']:.1f} ms, "
                 f"limit violations {entry['limit_violations']}") if lat.get("n") else ""
        print(f"{name:>10}: success {entry['successes']}/{entry['episodes']} ({entry['success_rate'] * 100:.0f}%), "
              f"mean final distance {entry['mean_final_distance_m'] * 100:.1f} cm{extra}")
    for name, entry in report["runs"].items():
        if "video" in entry:
            print(f"video ({name}): {entry['video']['gif']}")
    print(f"report: {cfg.out}/report.md")
    return 0
