"""Where a model's closed loop leaves the expert's path: the same layouts, the same joint PD, no ROS.

For each layout, three runs of ``--frames`` camera periods:

* **expert**: the scripted expert (its joints and palm point recorded at every frame);
* **closed loop**: every 0.1 s the model (ONNX Runtime) sees the rendered frame and the measured
  joints, its prediction goes through the node's command safety (clamp to the robot limits
  intersected with the model bounds, ``max_step`` 0.35 rad) and is tracked by the robot's joint PD,
  exactly what ``eipl-trt control --clock lockstep`` does over ROS 2;
* **teacher forced**: the model sees the expert's frames and joints; its prediction of the next
  joints is compared with the expert's next joints (the open-loop accuracy the model was trained for).

Prints, per time, the mean distance between the closed loop's palm point and the expert's (cm),
the mean absolute joint difference (rad), and the teacher-forced prediction error (rad).

Example:
    python scripts/closed_loop_divergence.py --model sarnn --episodes 10 --seed 1
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from eipl_trt.control import CommandSafety, SafetyConfig
from eipl_trt.predictor import Predictor
from eipl_trt.runners import create_runner
from eipl_trt.sim.expert import PushExpert
from eipl_trt.sim.live import robot_limits
from eipl_trt.sim.pusher import CONTROL_PERIOD_S, JOINT_NAMES, PusherScene
from eipl_trt.sim.robot import SUBSTEPS, SimRobot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sarnn")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--frames", type=int, default=70)
    parser.add_argument("--interface", choices=("forward_position", "joint_trajectory"), default="forward_position",
                        help="how commands reach the PD: a step target, or a 0.1 s linear path with velocity reference")
    parser.add_argument("--input-mix", type=float, default=1.0,
                        help="the node's input_mix: joint input = a * measured + (1 - a) * previous prediction")
    parser.add_argument("--command-delay", type=int, default=0, metavar="K",
                        help="the scene runs K of the frame's physics periods (20 ms each) on the previous command "
                        "before the new one lands, as the node's step and DDS delay it in real time (default 0: lockstep)")
    parser.add_argument("--frame-anchored", action="store_true",
                        help="with --command-delay: the trajectory point is due at the next frame's time, not one "
                        "period after the command lands (the node's trajectory_timing: frame)")
    parser.add_argument("--switch-at", type=int, default=0, metavar="FRAME",
                        help="in the closed loop, hand the LSTM state to a runner of --switch-to at this frame "
                             "(what the node's precision switch does mid-episode; 0 = no switch)")
    parser.add_argument("--switch-to", default="int8", help="precision taken over at --switch-at")
    parser.add_argument("--json", default="", help="also write the per-time table here")
    args = parser.parse_args()
    if args.switch_at and not 0 < args.switch_at < args.frames - 1:
        parser.error(f"--switch-at must be a frame in 1..{args.frames - 2} (the closed loop steps frames 0..{args.frames - 2})")
    if not 0 <= args.command_delay < SUBSTEPS:
        parser.error(f"--command-delay must be 0..{SUBSTEPS - 1} physics periods (a frame has {SUBSTEPS})")
    frame_period = SUBSTEPS * CONTROL_PERIOD_S
    # time_from_start: one frame period after the command lands, or (anchored) at the next frame's time
    lead = frame_period - args.command_delay * CONTROL_PERIOD_S if args.frame_anchored else frame_period
    lower, upper = robot_limits(args.model)
    predictor = Predictor.from_model(args.model, backend="onnxruntime", precision=args.precision,
                                     input_mix=args.input_mix)
    base = predictor.runner
    other = create_runner(predictor.spec, "onnxruntime", args.switch_to).open() if args.switch_at else None
    times = [5, 10, 20, 30, 40, 50, 60, args.frames - 1]
    palm_gap, joint_gap, forced_err = (np.zeros((args.episodes, args.frames)) for _ in range(3))
    finals = []
    with PusherScene(128) as scene:
        robot = SimRobot(scene, seed=args.seed)
        for e in range(args.episodes):
            if predictor.runner is not base:  # every episode starts on --precision
                predictor.swap_runner(base)
            setup = robot.start_episode(e)
            expert = PushExpert(scene, setup.layout, setup.rng, robot.config)
            frames, q_exp, palm_exp = [], [], []
            for k in range(args.frames):
                frames.append(scene.render())
                q_exp.append(scene.joint_positions())
                palm_exp.append(robot.kin.palm_pose(q_exp[-1])[0])
                if k < args.frames - 1:
                    for _ in range(SUBSTEPS):
                        robot.step_torque(expert.action())
            predictor.reset_state()
            for k in range(args.frames - 1):
                pred = predictor.step(frames[k], q_exp[k], encoding="rgb8").joints
                forced_err[e, k + 1] = float(np.mean(np.abs(pred - q_exp[k + 1])))
            robot.start_episode(e)
            predictor.reset_state()
            safety = CommandSafety(SafetyConfig(JOINT_NAMES, tuple(lower), tuple(upper), max_step=0.35))
            for k in range(args.frames):
                q = scene.joint_positions()
                joint_gap[e, k] = float(np.mean(np.abs(q - q_exp[k])))
                palm_gap[e, k] = float(np.linalg.norm(robot.kin.palm_pose(q)[0] - palm_exp[k]))
                if k == args.frames - 1:
                    break
                if other is not None and k == args.switch_at:
                    predictor.swap_runner(other)
                pred = predictor.step(scene.render(), q, encoding="rgb8").joints
                decision = safety.filter(pred, q)
                for _ in range(args.command_delay):
                    robot.step_period()
                if decision.command is not None and args.interface == "forward_position":
                    robot.command_positions(decision.command)
                elif decision.command is not None:
                    robot.command_trajectory(JOINT_NAMES, [(lead, decision.command)])
                for _ in range(SUBSTEPS - args.command_delay):
                    robot.step_period()
            finals.append(robot.finish_episode())
    rows = [{"t_s": k / 10.0, "palm_gap_cm": float(palm_gap[:, k].mean() * 100),
             "joint_gap_rad": float(joint_gap[:, k].mean()), "teacher_forced_error_rad": float(forced_err[:, k].mean())}
            for k in times]
    final = [robot_final for robot_final in finals]
    switched = f" -> {args.switch_to} at frame {args.switch_at}" if args.switch_at else ""
    print(f"{args.model} {args.precision}{switched}, {args.episodes} layouts of seed {args.seed}, {args.interface}: closed loop "
          f"vs the expert; closed-loop successes {sum(f.success for f in final)}/{len(final)}, mean final distance "
          f"{np.mean([f.final_distance_m for f in final]) * 100:.1f} cm")
    print("| t (s) | palm point from the expert's (cm) | mean joint difference (rad) | teacher-forced next-joint error (rad) |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['t_s']:.1f} | {r['palm_gap_cm']:.1f} | {r['joint_gap_rad']:.3f} | {r['teacher_forced_error_rad']:.4f} |")
    if args.json:
        from eipl_trt.common.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
