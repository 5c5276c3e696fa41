"""What a SARNN's attention points see: do they locate the object and the goal of the Pusher task?

A model can only push the object to the goal if its inputs tell it where both are. SARNN's only view
of the scene is its K attention points. For ``--layouts`` fresh layouts (a seed no dataset uses) this
renders the first camera frame, runs one model step (ONNX Runtime), and fits, on 80% of the layouts,
a linear map from each point's (x, y) in the frame to the object's and to the goal's table position
(x, y, m); the table gives R² on the other 20% (1.0 = the point follows it exactly; 0 or below = it
carries no linear information about it). A whole-set fit from all points together is in the last row.

Example:
    python scripts/attention_probe.py --model sarnn --layouts 150 --seed 7
"""

from __future__ import annotations

import argparse

import numpy as np

from eipl_trt.predictor import Predictor
from eipl_trt.sim.pusher import PusherScene
from eipl_trt.sim.robot import SimRobot


def held_out_r2(x: np.ndarray, y: np.ndarray, n_fit: int) -> float:
    """R² on rows ``n_fit:`` of a least-squares linear fit (with bias) of ``y`` on ``x`` over rows ``:n_fit``."""
    design = np.c_[x, np.ones(len(x))]
    weights, *_ = np.linalg.lstsq(design[:n_fit], y[:n_fit], rcond=None)
    residual = ((design[n_fit:] @ weights - y[n_fit:]) ** 2).sum()
    return float(1.0 - residual / ((y[n_fit:] - y[n_fit:].mean(0)) ** 2).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sarnn", help="SARNN model directory or bundled name")
    parser.add_argument("--layouts", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    predictor = Predictor.from_model(args.model, backend="onnxruntime")
    if not predictor.spec.has_points:
        raise SystemExit(f"{args.model} has no attention points (only SARNN has)")
    points, objects, goals = [], [], []
    with PusherScene(128) as scene:
        robot = SimRobot(scene, seed=args.seed)
        for i in range(args.layouts):
            setup = robot.start_episode(i)
            predictor.reset_state()
            step = predictor.step(scene.render(), scene.joint_positions(), encoding="rgb8", want_image=False)
            points.append(np.asarray(step.enc_points_px, np.float64))
            objects.append(setup.layout.object_xy)
            goals.append(setup.layout.goal_xy)
    pts, obj, goal = np.stack(points), np.asarray(objects), np.asarray(goals)
    n_fit = int(0.8 * len(pts))
    print(f"{args.model}: R² of a linear map from attention points to positions, {len(pts) - n_fit} held-out "
          f"layouts of seed {args.seed} (fit on {n_fit}), first frame of each episode")
    print("| point | R² object (x, y) | R² goal (x, y) | spread of the point (px, std) |")
    print("|---|---|---|---|")
    for k in range(pts.shape[1]):
        print(f"| {k} | {held_out_r2(pts[:, k], obj, n_fit):.3f} | {held_out_r2(pts[:, k], goal, n_fit):.3f} | "
              f"{pts[:, k].std(0).mean():.1f} |")
    flat = pts.reshape(len(pts), -1)
    print(f"| all | {held_out_r2(flat, obj, n_fit):.3f} | {held_out_r2(flat, goal, n_fit):.3f} | |")


if __name__ == "__main__":
    main()
