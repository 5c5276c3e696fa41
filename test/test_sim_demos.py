"""``eipl-trt sim perturbed`` and ``eipl-trt sim recovery``: in-process closed-loop training data on the real
MuJoCo Pusher (eipl_trt.sim.demos)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from eipl_trt.errors import InputError

for _module in ("mujoco", "gymnasium", "rosbags"):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(f"{_module} is not installed (the [sim] extra)", allow_module_level=True)

from eipl_trt.cli import main  # noqa: E402
from eipl_trt.sim.demos import (PerturbedConfig, PerturbedExpert, RecoveryConfig, perturbed_dataset,  # noqa: E402
                                record_expert, recovery_dataset)
from eipl_trt.sim.expert import PushExpert  # noqa: E402
from eipl_trt.sim.pusher import PusherScene  # noqa: E402
from eipl_trt.sim.record import generate_dataset  # noqa: E402
from eipl_trt.sim.robot import SimRobot  # noqa: E402

STEPS = 8


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 train + 1 test episodes of 8 frames at 64 px (no bag)."""
    out = tmp_path_factory.mktemp("demos") / "base"
    generate_dataset(out, n_train=2, n_test=1, seed=3, steps=STEPS, image_size=64, bag=False, progress=False)
    return out


def _episode(expert_kind: str, sigma: float = 0.0, frames: int = 12) -> np.ndarray:
    with PusherScene(64) as scene:
        robot = SimRobot(scene, seed=5)
        setup = robot.start_episode(0)
        if expert_kind == "plain":
            expert: PushExpert = PushExpert(scene, setup.layout, setup.rng, robot.config)
        else:
            expert = PerturbedExpert(scene, setup.layout, setup.rng, robot.config, sigma=sigma, tau=0.3,
                                     noise=np.random.default_rng(0))
        return record_expert(scene, robot, expert, frames)[1]


def test_a_zero_offset_is_the_plain_expert_and_a_nonzero_one_leaves_its_path() -> None:
    plain = _episode("plain")
    # sigma 0: the offset stays 0, but the reference is then clipped to the joint range; the expert's own
    # reference never leaves it, so the torques and hence the joints are bit-identical.
    assert np.array_equal(_episode("perturbed", 0.0), plain)
    moved = np.abs(_episode("perturbed", 0.08) - plain).max()
    assert moved > 0.01  # rad: 1.2 s of a 0.08 rad OU offset, far above any numerical difference (0 above)


def test_the_offset_is_an_ou_process_with_std_sigma() -> None:
    with PusherScene(32) as scene:
        robot = SimRobot(scene, seed=5)
        setup = robot.start_episode(0)
        expert = PerturbedExpert(scene, setup.layout, setup.rng, robot.config, sigma=0.05, tau=0.3,
                                 noise=np.random.default_rng(1))
        draws = np.array([expert.reference_offset() for _ in range(20000)])[1000:]
    # 19000 draws at 0.02 s with tau 0.3 s are about 19000 * (1 - d) / (1 + d) ~ 630 independent samples per
    # joint (d = exp(-0.02 / 0.3)), so the sample std is within ~3 % of sigma (1 sigma); 7 joints pooled: ~1 %.
    assert draws.std() == pytest.approx(0.05, rel=0.05)
    lag1 = np.mean([np.corrcoef(draws[:-1, j], draws[1:, j])[0, 1] for j in range(7)])
    assert lag1 == pytest.approx(np.exp(-0.02 / 0.3), abs=0.01)


def test_perturbed_dataset_adds_its_episodes_to_the_base_train_split(base: Path, tmp_path: Path) -> None:
    out = tmp_path / "dart"
    summary = perturbed_dataset(PerturbedConfig(base=str(base), out=str(out), episodes=2, seed=7, frames=STEPS),
                                say=lambda _: None)
    joints = np.load(out / "train/joints.npy")
    assert joints.shape == (4, STEPS, 7) and np.load(out / "train/images.npy").shape == (4, STEPS, 64, 64, 3)
    assert np.array_equal(joints[:2], np.load(base / "train/joints.npy"))  # the base episodes first, unchanged
    assert not np.array_equal(joints[2:], joints[:2])
    for name in ("test/joints.npy", "test/images.npy", "joint_bounds.npy"):
        assert np.array_equal(np.load(out / name), np.load(base / name))
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["episodes"] == {"train": 4, "test": 1} and meta["perturbed"] == summary
    assert summary["kept"] == 2 and len(summary["final_distances_m"]) == 2 and summary["sigma_rad"] == 0.08


def test_perturbed_refuses_what_it_cannot_write(base: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"has {STEPS}-frame episodes and --frames is 5"):
        perturbed_dataset(PerturbedConfig(base=str(base), out=str(tmp_path / "a"), episodes=1, frames=5))
    with pytest.raises(InputError, match="solved no episode"):  # 0.5 s cannot push the object home
        perturbed_dataset(PerturbedConfig(base=str(base), out=str(tmp_path / "b"), episodes=1, frames=5,
                                          base_train=False, successful_only=True), say=lambda _: None)
    with pytest.raises(InputError, match="has no dataset.json"):
        perturbed_dataset(PerturbedConfig(base=str(tmp_path), out=str(tmp_path / "c"), episodes=1))
    with pytest.raises(InputError, match="--tau > 0"):
        PerturbedConfig(base="", out="", tau=0.0)
    assert not any((tmp_path / n).exists() for n in "abc")


def test_recovery_keeps_only_rescued_episodes_and_says_when_none_was(base: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="rescued none of 1 episodes; nothing written"):
        recovery_dataset(RecoveryConfig(model="sarnn", base=str(base), out=str(tmp_path / "r"), episodes=1,
                                        handover=(2, 2), frames=5), say=lambda _: None)
    assert not (tmp_path / "r").exists()
    with pytest.raises(InputError, match="0 <= MIN <= MAX"):
        RecoveryConfig(model="sarnn", base="", out="", handover=(5, 2))


def test_recovery_records_the_expert_after_the_models_frames(base: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rescue"
    assert main(["sim", "recovery", "--model", "sarnn", "--base", str(base), "--out", str(out), "--episodes", "1",
                 "--seed", "0", "--handover", "2", "2", "--frames", "70"]) == 0
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["recovery"]["handover_frames"] == [2] and meta["recovery"]["kept"] == 1
    assert meta["episodes"] == {"train": 1, "test": 1}
    assert np.load(out / "train/joints.npy").shape == (1, 70, 7)
    assert "wrote" in capsys.readouterr().out
