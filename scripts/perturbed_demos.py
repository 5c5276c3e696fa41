"""Demonstrations with recoveries: the scripted expert with a random, mean-reverting offset on its joint
reference (an Ornstein-Uhlenbeck process per joint), so the recorded episodes leave the nominal path and
come back to it. A model trained only on perfect demonstrations never sees a state off the expert's path,
which is where its own closed loop puts it within a second (scripts/closed_loop_divergence.py).

Writes an EIPL dataset directory: ``train/`` = the perturbed episodes, plus (``--base``) the train split of
an existing dataset; ``test/`` and ``joint_bounds.npy`` from ``--base`` unchanged (the bounds must stay
those the model was trained with, since they define its normalization).

Example:
    python scripts/perturbed_demos.py --base data_work/pusher --out data_work/pusher_dart --episodes 48 \\
        --seed 10 --sigma 0.08 --tau 0.3
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from eipl_trt.sim.expert import PushExpert
from eipl_trt.sim.derived import write_derived_dataset
from eipl_trt.sim.pusher import CONTROL_PERIOD_S, PusherScene
from eipl_trt.sim.robot import SUBSTEPS, SimRobot


class PerturbedExpert(PushExpert):
    """:class:`PushExpert` whose joint reference carries an OU offset (std ``sigma`` rad, correlation ``tau`` s)."""

    def __init__(self, *args: object, sigma: float, tau: float, noise: np.random.Generator, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._decay = math.exp(-CONTROL_PERIOD_S / tau)
        self._scale = sigma * math.sqrt(1.0 - self._decay ** 2)
        self._noise = noise
        self.offset = np.zeros(7)

    def action(self) -> np.ndarray:
        """The expert's computed-torque PD towards its reference plus the offset."""
        self.offset = self._decay * self.offset + self._scale * self._noise.standard_normal(7)
        scene = self._scene
        palm, yaw = self.target(scene.time_s + CONTROL_PERIOD_S)
        q_new, _ = self._kin.ik_step(self._q_ref, palm, yaw)
        qd_ref = (q_new - self._q_ref) / CONTROL_PERIOD_S
        self._q_ref = q_new
        target = np.clip(q_new + self.offset, scene.joint_range[:, 0], scene.joint_range[:, 1])
        acc = self._kp * (target - scene.joint_positions()) + self._kd * (qd_ref - scene.joint_velocities())
        self._mj.mj_fullM(scene.model, scene.data, self._mass)
        return self._mass[:7, :7] @ acc + scene.data.qfrc_bias[:7]


def record_expert(scene: PusherScene, robot: SimRobot, expert: PushExpert, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Run ``expert`` for ``frames`` camera frames, recording each frame and the joints: (T, H, W, 3), (T, 7) float32."""
    images, joints = [], []
    for k in range(frames):
        images.append(scene.render())
        joints.append(scene.joint_positions())
        if k < frames - 1:
            for _ in range(SUBSTEPS):
                robot.step_torque(expert.action())
    return np.stack(images), np.asarray(joints, np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="existing EIPL dataset (test split, bounds)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--episodes", type=int, default=48)
    parser.add_argument("--seed", type=int, default=10, help="layout seed (0 = the base dataset's layouts)")
    parser.add_argument("--sigma", type=float, default=0.08, help="offset std (rad)")
    parser.add_argument("--tau", type=float, default=0.3, help="offset correlation time (s)")
    parser.add_argument("--frames", type=int, default=70)
    parser.add_argument("--no-base-train", action="store_true", help="train split = perturbed episodes only")
    parser.add_argument("--successful-only", action="store_true",
                        help="keep only the episodes the perturbed expert still solved (a failed push is no lesson)")
    args = parser.parse_args()
    meta = json.loads((args.base / "dataset.json").read_text())
    size = int(meta["image_size"][0])
    images, joints, finals = [], [], []
    with PusherScene(size) as scene:
        robot = SimRobot(scene, seed=args.seed)
        for e in range(args.episodes):
            setup = robot.start_episode(e)
            noise = np.random.default_rng((args.seed, e, 7))
            expert = PerturbedExpert(scene, setup.layout, setup.rng, robot.config, sigma=args.sigma, tau=args.tau,
                                     noise=noise)
            ep_images, ep_joints = record_expert(scene, robot, expert, args.frames)
            finals.append(robot.finish_episode())
            kept = finals[-1].success or not args.successful_only
            if kept:
                images.append(ep_images)
                joints.append(ep_joints)
            print(f"episode {e}: final distance {finals[-1].final_distance_m * 100:.1f} cm"
                  f"{'' if kept else ' (failed: dropped)'}", flush=True)
    train_images, train_joints = np.stack(images), np.stack(joints)
    if not args.no_base_train:
        train_images = np.concatenate([np.load(args.base / "train" / "images.npy"), train_images])
        train_joints = np.concatenate([np.load(args.base / "train" / "joints.npy"), train_joints])
    success = float(np.mean([f.success for f in finals]))
    meta.update({"episodes": {"train": int(len(train_joints)), "test": meta["episodes"]["test"]},
                 "perturbed": {"episodes": args.episodes, "seed": args.seed, "sigma_rad": args.sigma, "tau_s": args.tau,
                               "expert_success_rate": success, "base": str(args.base),
                               "base_train_included": not args.no_base_train,
                               "successful_only": args.successful_only, "kept": len(images),
                               "final_distances_m": [round(f.final_distance_m, 4) for f in finals]}})
    write_derived_dataset(args.out, args.base, train_images, train_joints, meta)
    print(f"wrote {len(train_joints)} train episodes ({len(images)} of {args.episodes} perturbed kept, expert success "
          f"{success * 100:.0f}%) "
          f"to {args.out}")


if __name__ == "__main__":
    main()
