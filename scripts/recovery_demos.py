"""Recovery demonstrations from a model's own closed loop (DAgger-style data for issue #12).

For each layout the model drives the simulated arm (ONNX Runtime, the node's command safety, the robot's
joint PD, exactly as ``scripts/closed_loop_divergence.py`` does) for a random number of camera frames;
then the scripted expert takes over *from wherever the model left the arm and the object*, replanning
its push from the current joints and the object's current position, and the next ``--frames`` frames
are recorded. The model's own part is not recorded (its targets would teach its own mistakes), so
every recorded sequence starts in a state the model really visits and shows the way back to a
successful push. Episodes the expert cannot rescue are dropped.

Writes an EIPL dataset directory whose train split holds the recovery episodes, with ``test/`` and
``joint_bounds.npy`` from ``--base`` (the model's normalization); combine it with the model's training
data with ``scripts/merge_datasets.py``.

Example:
    python scripts/recovery_demos.py --model data_work/runs/sarnn_big/onnx --base data_work/pusher \\
        --out data_work/recovery1 --episodes 120 --seed 60
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from eipl_trt.control import CommandSafety, SafetyConfig
from eipl_trt.predictor import Predictor
from eipl_trt.sim.derived import write_derived_dataset
from eipl_trt.sim.expert import PushExpert
from eipl_trt.sim.live import robot_limits
from eipl_trt.sim.pusher import CONTROL_PERIOD_S, JOINT_NAMES, Layout, PusherScene
from eipl_trt.sim.robot import SUBSTEPS, SimRobot
from perturbed_demos import record_expert  # scripts/ is on sys.path when this script runs


class ReplannedExpert(PushExpert):
    """:class:`PushExpert` whose plan starts at scene time ``t0`` (s) instead of 0."""

    def __init__(self, *args: object, t0: float, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._t0 = t0

    def target(self, t: float) -> tuple[np.ndarray, float]:
        """The plan at time ``t`` (s, scene clock), counted from the hand-over."""
        return super().target(t - self._t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model directory (model.json) or bundled name")
    parser.add_argument("--base", type=Path, required=True, help="the model's dataset (test split, bounds)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=60, help="layout seed (use one no other dataset uses)")
    parser.add_argument("--handover", type=int, nargs=2, default=(2, 30), metavar=("MIN", "MAX"),
                        help="model frames before the expert takes over, drawn uniformly (default 2 30)")
    parser.add_argument("--frames", type=int, default=70, help="recorded frames after the hand-over")
    args = parser.parse_args()
    meta = json.loads((args.base / "dataset.json").read_text())
    lower, upper = robot_limits(args.model)
    predictor = Predictor.from_model(args.model, backend="onnxruntime")
    rng = np.random.default_rng(args.seed)
    images, joints, finals, handovers = [], [], [], []
    with PusherScene(int(meta["image_size"][0])) as scene:
        robot = SimRobot(scene, seed=args.seed)
        for e in range(args.episodes):
            setup = robot.start_episode(e)
            predictor.reset_state()
            safety = CommandSafety(SafetyConfig(JOINT_NAMES, tuple(lower), tuple(upper), max_step=0.35))
            k = int(rng.integers(args.handover[0], args.handover[1] + 1))
            for _ in range(k):
                q = scene.joint_positions()
                decision = safety.filter(predictor.step(scene.render(), q, encoding="rgb8").joints, q)
                if decision.command is not None:
                    robot.command_positions(decision.command)
                for _ in range(SUBSTEPS):
                    robot.step_period()
            layout = Layout(object_xy=tuple(float(v) for v in scene.object_xy()), goal_xy=setup.layout.goal_xy)
            expert = ReplannedExpert(scene, layout, setup.rng, robot.config, t0=scene.time_s)
            ep_images, ep_joints = record_expert(scene, robot, expert, args.frames)
            finals.append(robot.finish_episode())
            handovers.append(k)
            kept = finals[-1].success
            if kept:
                images.append(ep_images)
                joints.append(ep_joints)
            print(f"episode {e}: model for {k} frames, then the expert: final distance "
                  f"{finals[-1].final_distance_m * 100:.1f} cm{'' if kept else ' (failed: dropped)'}", flush=True)
    if not images:
        raise SystemExit("the expert rescued no episode; nothing written")
    meta.pop("episode_seeds", None)
    meta.update({"episodes": {"train": len(images), "test": meta["episodes"]["test"]},
                 "recovery": {"model": str(args.model), "episodes": args.episodes, "seed": args.seed,
                              "handover_frames": handovers, "kept": len(images),
                              "final_distances_m": [round(f.final_distance_m, 4) for f in finals],
                              "control_period_s": CONTROL_PERIOD_S}})
    write_derived_dataset(args.out, args.base, np.stack(images), np.stack(joints), meta)
    print(f"wrote {len(images)} recovery episodes (of {args.episodes}; the expert rescued "
          f"{sum(f.success for f in finals)}) to {args.out}")


if __name__ == "__main__":
    main()
