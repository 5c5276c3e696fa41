"""Closed-loop training data made in-process (no ROS, the scene's own clock): ``eipl-trt sim perturbed`` and
``eipl-trt sim recovery``.

A model trained only on perfect demonstrations never sees a state off the expert's path, which is where
its own closed loop puts it within a second. Two ways to show it the way back:

- **perturbed**: the scripted expert with a random, mean-reverting offset on its joint reference (an
  Ornstein-Uhlenbeck process per joint, std ``sigma`` rad, correlation ``tau`` s), so the recorded
  episodes leave the nominal path and come back to it;
- **recovery** (DAgger-style): a model drives the arm (ONNX Runtime, the node's command safety, the
  robot's joint PD) for a random number of frames, then the expert takes over *from wherever the model
  left the arm and the object*, replanning its push, and the next ``frames`` frames are recorded. The
  model's own part is not recorded (its outputs would teach its own mistakes); episodes the expert
  cannot rescue are dropped.

Both write an EIPL dataset directory (:func:`eipl_trt.sim.derived.write_derived_dataset`) whose test split
and ``joint_bounds.npy`` come from ``base`` unchanged: the bounds are the model's normalization. Combine
with the model's training data with ``eipl-trt dataset merge``. Over ROS 2 in real time, the same two
kinds of data come from ``eipl-trt sim record`` (``--dart-sigma``; ``--model``).

Example:
    eipl-trt sim perturbed --base data_work/pusher --out data_work/pusher_dart --episodes 48 --sigma 0.08
    eipl-trt sim recovery --model sarnn --base data_work/pusher --out data_work/rescue --episodes 120 --seed 60
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from eipl_trt.errors import InputError
from eipl_trt.sim.derived import write_derived_dataset
from eipl_trt.sim.expert import PushExpert
from eipl_trt.sim.pusher import CONTROL_PERIOD_S, JOINT_NAMES, Layout, PusherScene
from eipl_trt.sim.robot import SUBSTEPS, SimRobot

__all__ = ["PerturbedConfig", "RecoveryConfig", "PerturbedExpert", "ReplannedExpert", "record_expert",
           "perturbed_dataset", "recovery_dataset"]

Say = Callable[[str], None]


class PerturbedExpert(PushExpert):
    """:class:`PushExpert` whose joint reference carries an OU offset (std ``sigma`` rad, correlation ``tau`` s)."""

    def __init__(self, *args: Any, sigma: float, tau: float, noise: np.random.Generator, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._decay = math.exp(-CONTROL_PERIOD_S / tau)
        self._scale = sigma * math.sqrt(1.0 - self._decay ** 2)
        self._noise = noise
        self.offset = np.zeros(7)

    def reference_offset(self) -> np.ndarray:
        """The offset one period on: ``decay * offset + scale * N(0, 1)``, stationary std ``sigma``."""
        self.offset = self._decay * self.offset + self._scale * self._noise.standard_normal(7)
        return self.offset


class ReplannedExpert(PushExpert):
    """:class:`PushExpert` whose plan starts at scene time ``t0`` (s) instead of 0."""

    def __init__(self, *args: Any, t0: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._t0 = t0

    def target(self, t: float) -> tuple[np.ndarray, float]:
        """The plan at time ``t`` (s, scene clock), counted from the hand-over."""
        return super().target(t - self._t0)


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


@dataclass(frozen=True)
class PerturbedConfig:
    """``eipl-trt sim perturbed``: see the module docstring."""

    base: str
    out: str
    episodes: int = 48
    seed: int = 10
    sigma: float = 0.08
    tau: float = 0.3
    frames: int = 70
    base_train: bool = True
    successful_only: bool = False

    def __post_init__(self) -> None:
        _check_counts(self.episodes, self.frames)
        if self.sigma < 0 or self.tau <= 0:
            raise InputError(f"--sigma must be >= 0 and --tau > 0 (got {self.sigma}, {self.tau})")


@dataclass(frozen=True)
class RecoveryConfig:
    """``eipl-trt sim recovery``: see the module docstring."""

    model: str
    base: str
    out: str
    episodes: int = 100
    seed: int = 60
    handover: tuple[int, int] = (2, 30)
    frames: int = 70

    def __post_init__(self) -> None:
        _check_counts(self.episodes, self.frames)
        if not 0 <= self.handover[0] <= self.handover[1]:
            raise InputError(f"--handover MIN MAX needs 0 <= MIN <= MAX (got {self.handover[0]} {self.handover[1]})")


def _check_counts(episodes: int, frames: int) -> None:
    if episodes < 1 or frames < 2:
        raise InputError(f"--episodes must be >= 1 and --frames >= 2 (got {episodes}, {frames})")


def _base_meta(base: str) -> dict[str, Any]:
    path = Path(base) / "dataset.json"
    if not path.is_file():
        raise InputError(f"--base {base} has no dataset.json; give the EIPL dataset the model was trained on "
                         "(eipl-trt sim or eipl-trt dataset makes one)")
    return json.loads(path.read_text(encoding="utf-8"))


def perturbed_dataset(cfg: PerturbedConfig, say: Say = print) -> dict[str, Any]:
    """Record ``cfg.episodes`` perturbed expert episodes and write the dataset; returns its ``perturbed`` summary."""
    meta = _base_meta(cfg.base)
    if cfg.base_train:
        steps = np.load(Path(cfg.base) / "train" / "joints.npy", mmap_mode="r").shape[1]
        if steps != cfg.frames:
            raise InputError(f"--base {cfg.base} has {steps}-frame episodes and --frames is {cfg.frames}; the train "
                             f"split holds both, so pass --frames {steps} (or --no-base-train)")
    images, joints, finals = [], [], []
    with PusherScene(int(meta["image_size"][0])) as scene:
        robot = SimRobot(scene, seed=cfg.seed)
        for e in range(cfg.episodes):
            setup = robot.start_episode(e)
            expert = PerturbedExpert(scene, setup.layout, setup.rng, robot.config, sigma=cfg.sigma, tau=cfg.tau,
                                     noise=np.random.default_rng((cfg.seed, e, 7)))
            ep_images, ep_joints = record_expert(scene, robot, expert, cfg.frames)
            finals.append(robot.finish_episode())
            kept = finals[-1].success or not cfg.successful_only
            if kept:
                images.append(ep_images)
                joints.append(ep_joints)
            say(f"episode {e}: final distance {finals[-1].final_distance_m * 100:.1f} cm"
                f"{'' if kept else ' (failed: dropped)'}")
    if not images:
        raise InputError("the perturbed expert solved no episode and --successful-only dropped them all; "
                         "lower --sigma or record more --episodes")
    train_images, train_joints = np.stack(images), np.stack(joints)
    if cfg.base_train:
        train_images = np.concatenate([np.load(Path(cfg.base) / "train" / "images.npy"), train_images])
        train_joints = np.concatenate([np.load(Path(cfg.base) / "train" / "joints.npy"), train_joints])
    summary = {"episodes": cfg.episodes, "seed": cfg.seed, "sigma_rad": cfg.sigma, "tau_s": cfg.tau,
               "expert_success_rate": float(np.mean([f.success for f in finals])), "base": str(cfg.base),
               "base_train_included": cfg.base_train, "successful_only": cfg.successful_only, "kept": len(images),
               "final_distances_m": [round(f.final_distance_m, 4) for f in finals]}
    meta.update({"episodes": {"train": int(len(train_joints)), "test": meta["episodes"]["test"]}, "perturbed": summary})
    write_derived_dataset(Path(cfg.out), Path(cfg.base), train_images, train_joints, meta)
    return summary


def _model_drives(scene: PusherScene, robot: SimRobot, predictor: Any, limits: tuple[list[float], list[float]],
                  frames: int) -> None:
    """The model in command for ``frames`` camera frames, through the node's command safety."""
    from eipl_trt.control import CommandSafety, SafetyConfig

    safety = CommandSafety(SafetyConfig(JOINT_NAMES, tuple(limits[0]), tuple(limits[1]), max_step=0.35))
    for _ in range(frames):
        q = scene.joint_positions()
        decision = safety.filter(predictor.step(scene.render(), q, encoding="rgb8").joints, q)
        if decision.command is not None:
            robot.command_positions(decision.command)
        for _ in range(SUBSTEPS):
            robot.step_period()


def recovery_dataset(cfg: RecoveryConfig, say: Say = print) -> dict[str, Any]:
    """Record ``cfg.episodes`` model-then-expert episodes, keep the rescued ones; returns the ``recovery`` summary."""
    from eipl_trt.predictor import Predictor
    from eipl_trt.sim.live import robot_limits

    meta = _base_meta(cfg.base)
    limits = robot_limits(cfg.model)
    predictor = Predictor.from_model(cfg.model, backend="onnxruntime")
    rng = np.random.default_rng(cfg.seed)
    images, joints, finals, handovers = [], [], [], []
    with PusherScene(int(meta["image_size"][0])) as scene:
        robot = SimRobot(scene, seed=cfg.seed)
        for e in range(cfg.episodes):
            setup = robot.start_episode(e)
            predictor.reset_state()
            k = int(rng.integers(cfg.handover[0], cfg.handover[1] + 1))
            _model_drives(scene, robot, predictor, limits, k)
            layout = Layout(object_xy=tuple(float(v) for v in scene.object_xy()), goal_xy=setup.layout.goal_xy)
            expert = ReplannedExpert(scene, layout, setup.rng, robot.config, t0=scene.time_s)
            ep_images, ep_joints = record_expert(scene, robot, expert, cfg.frames)
            finals.append(robot.finish_episode())
            handovers.append(k)
            if finals[-1].success:
                images.append(ep_images)
                joints.append(ep_joints)
            say(f"episode {e}: model for {k} frames, then the expert: final distance "
                f"{finals[-1].final_distance_m * 100:.1f} cm{'' if finals[-1].success else ' (failed: dropped)'}")
    if not images:
        raise InputError(f"the expert rescued none of {cfg.episodes} episodes; nothing written. Give it more "
                         "--frames after the hand-over (it needs about 61 for a push) or an earlier --handover")
    summary = {"model": str(cfg.model), "episodes": cfg.episodes, "seed": cfg.seed, "handover_frames": handovers,
               "kept": len(images), "final_distances_m": [round(f.final_distance_m, 4) for f in finals],
               "control_period_s": CONTROL_PERIOD_S}
    meta.pop("episode_seeds", None)
    meta.update({"episodes": {"train": len(images), "test": meta["episodes"]["test"]}, "recovery": summary})
    write_derived_dataset(Path(cfg.out), Path(cfg.base), np.stack(images), np.stack(joints), meta)
    return summary
