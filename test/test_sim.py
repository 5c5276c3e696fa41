"""Simulated demonstrations: the real MuJoCo Pusher, the scripted expert, dataset and bag output."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from eipl_trt.errors import InputError

# Skip without the [sim] extra, but do not import mujoco here: eipl_trt.sim picks its offscreen
# GL backend (MUJOCO_GL) before mujoco's first import.
for _module in ("mujoco", "gymnasium", "rosbags"):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(f"{_module} is not installed (the [sim] extra)", allow_module_level=True)

from eipl_trt.bagio import load_dataset_dir, read_bag, resample  # noqa: E402
from eipl_trt.cli import main  # noqa: E402
from eipl_trt.sim.expert import ArmKinematics, ExpertConfig  # noqa: E402
from eipl_trt.sim.pusher import JOINT_NAMES, PusherScene  # noqa: E402
from eipl_trt.sim.record import SUCCESS_RADIUS_M, generate_dataset, record_episode  # noqa: E402

STEPS = 10


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """1 train + 1 test episode of 10 frames at 64 px, with a bag of both."""
    out = tmp_path_factory.mktemp("sim") / "pusher"
    summary = generate_dataset(out, n_train=1, n_test=1, seed=3, steps=STEPS, image_size=64, progress=False)
    return out, summary


def test_dataset_layout_shapes_and_metadata(small_dataset: tuple[Path, dict[str, Any]]) -> None:
    out, summary = small_dataset
    for split in ("train", "test"):
        images = np.load(out / split / "images.npy")
        joints = np.load(out / split / "joints.npy")
        assert images.shape == (1, STEPS, 64, 64, 3) and images.dtype == np.uint8
        assert joints.shape == (1, STEPS, 7) and joints.dtype == np.float32
        assert images.std() > 20  # a real scene, not a blank frame
        assert np.abs(np.diff(images[0].astype(np.int16), axis=0)).max(axis=(1, 2, 3)).min() > 0  # arm moves every frame
        assert np.ptp(joints[0], axis=0).max() > 0.1  # rad within 1 s of the approach
    bounds = np.load(out / "joint_bounds.npy")
    both = np.concatenate([np.load(out / s / "joints.npy").reshape(-1, 7) for s in ("train", "test")])
    assert bounds.shape == (2, 7) and bounds.dtype == np.float32
    assert np.all(bounds[0] <= both.min(axis=0)) and np.all(bounds[1] >= both.max(axis=0))
    assert np.all(bounds[1] - bounds[0] > np.ptp(both, axis=0))  # widened by a margin
    meta = json.loads((out / "dataset.json").read_text())
    assert meta == summary
    assert meta["joint_names"] == list(JOINT_NAMES) and meta["rate_hz"] == 10.0 and meta["steps"] == STEPS
    assert meta["image_size"] == [64, 64] and meta["channel_order"] == "rgb" and meta["seed"] == 3
    assert meta["episodes"] == {"train": 1, "test": 1} and meta["episode_seeds"] == {"train": [[3, 0]], "test": [[3, 1]]}
    assert 0.0 <= meta["expert"]["success_rate"] <= 1.0 and meta["generator_version"] >= 1
    assert meta["bag"]["path"] == "bag" and meta["bag"]["splits"] == ["train", "test"]
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_bag_reads_back_like_the_dataset(small_dataset: tuple[Path, dict[str, Any]]) -> None:
    out, summary = small_dataset
    streams = read_bag(out / "bag")
    assert streams.joint_names == JOINT_NAMES and streams.encoding == "rgb8"
    assert len(streams.joint_stamps) == 2 * (1 + (STEPS - 1) * 5)  # joint states at 50 Hz
    assert streams.image_stamps[0] == pytest.approx(summary["bag"]["episodes"][0]["start_stamp_s"])
    assert 1767225600 < streams.image_stamps[0] < 1798761600  # stamped in 2026
    episodes = resample(streams, 10.0)
    dataset = load_dataset_dir(out, "train") + load_dataset_dir(out, "test")
    assert [len(e) for e in episodes] == [STEPS, STEPS]
    for got, want in zip(episodes, dataset):
        np.testing.assert_array_equal(got.images, want.images)
        np.testing.assert_allclose(got.joints, want.joints, atol=1e-6)
    assert episodes[1].stamps[0] - episodes[0].stamps[-1] > 2.5  # a pause between episodes


def test_expert_pushes_the_object_onto_the_goal_deterministically() -> None:
    config = ExpertConfig()
    with PusherScene(image_size=32) as scene:
        kin = ArmKinematics(scene, config)
        first = record_episode(scene, kin, (0, 0), 70, config)
        again = record_episode(scene, kin, (0, 0), 12, config)
    assert first.final_error_m < SUCCESS_RADIUS_M and first.success
    start = np.asarray(first.layout.object_xy)
    goal = np.asarray(first.layout.goal_xy)
    assert np.linalg.norm(goal - start) >= 0.15  # it really had to move the object
    assert first.plan_s < 6.9  # the plan fits the 7 s episode
    np.testing.assert_array_equal(again.joints, first.joints[:12])
    np.testing.assert_array_equal(again.images, first.images[:12])
    assert np.abs(first.joint_efforts).max() <= 2.0  # motor limits respected


def test_joint_bounds_margin_stays_within_joint_limits() -> None:
    from types import SimpleNamespace

    from eipl_trt.sim.record import _joint_bounds

    joints = np.array([[[0.0, -1.5], [1.0, -1.5]]], np.float32)  # joint 1 rests on its lower limit
    limits = np.array([[-3.0, 3.0], [-1.5, 1.5]])
    bounds = _joint_bounds([SimpleNamespace(joints=joints[0])], limits)  # type: ignore[list-item]
    np.testing.assert_allclose(bounds, [[-0.06, -1.5], [1.06, -1.49]], atol=1e-6)


def test_generate_dataset_refuses_bad_arguments(tmp_path: Path, small_dataset: tuple[Path, dict[str, Any]]) -> None:
    out, _ = small_dataset
    with pytest.raises(InputError, match="already exists and is not empty; pass --overwrite"):
        generate_dataset(out, n_train=1, n_test=0, steps=3, progress=False)
    with pytest.raises(InputError, match="at least 1 train episode"):
        generate_dataset(tmp_path / "x", n_train=0, n_test=1, progress=False)
    with pytest.raises(InputError, match="image size must be 16..1024"):
        PusherScene(image_size=8)


def test_derived_dataset_keeps_the_base_test_split_and_bounds(tmp_path: Path,
                                                             small_dataset: tuple[Path, dict[str, Any]]) -> None:
    from eipl_trt.sim.derived import write_derived_dataset

    base, _ = small_dataset
    images = np.zeros((2, STEPS, 64, 64, 3), np.uint8)
    joints = np.ones((2, STEPS, 7), np.float32)
    write_derived_dataset(tmp_path / "d", base, images, joints, {"format": "eipl", "note": "derived"})
    assert np.array_equal(np.load(tmp_path / "d/train/joints.npy"), joints)
    assert np.array_equal(np.load(tmp_path / "d/joint_bounds.npy"), np.load(base / "joint_bounds.npy"))
    assert np.array_equal(np.load(tmp_path / "d/test/joints.npy"), np.load(base / "test/joints.npy"))
    assert json.loads((tmp_path / "d/dataset.json").read_text())["note"] == "derived"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # the staging directory is gone
    with pytest.raises(InputError, match="already exists; choose another --out"):
        write_derived_dataset(tmp_path / "d", base, images, joints, {})


def test_cli_bag_test_only_and_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    args = ["sim", "--out", str(out), "--train", "1", "--test", "1", "--steps", "3", "--image-size", "32",
            "--bag-test-only", "--no-progress"]
    assert main(args) == 0
    assert "expert success" in capsys.readouterr().out
    assert len(resample(read_bag(out / "bag"), 10.0)) == 1
    assert main(args) == 1 and "pass --overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--no-bag"]) == 1
    assert "contradict" in capsys.readouterr().err
    assert main([*args[:-2], "--overwrite", "--no-bag"]) == 0
    assert not (out / "bag").exists() and (out / "test" / "images.npy").is_file()


def test_mujoco_imported_with_another_gl_backend_is_a_clear_error() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    code = ("import mujoco\nfrom eipl_trt.sim.pusher import PusherScene\n"
            "try:\n    PusherScene(32)\nexcept Exception as e:\n    print(type(e).__name__, e)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "BackendUnavailableError mujoco was imported with the " in out.stdout, out.stderr
    assert "set MUJOCO_GL=egl (or osmesa)" in out.stdout
