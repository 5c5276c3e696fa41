"""Demonstrations recorded as a lab records them, over real DDS into a real rosbag2, then made a training set.

``eipl-trt sim record`` starts the simulated robot and the scripted expert (``eipl_trt_sim_expert``) as
their own processes; the expert commands the arm through its joint_trajectory controller with DART noise
on the executed targets, and this process records the topics into an MCAP bag. ``eipl-trt dataset`` with
``--target-topic /expert/intent`` turns it into a dataset whose labels are the expert's clean targets.
Lockstep here (the scores do not depend on the CI machine's load); the real-time clock is the same code.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

for _module in ("mujoco", "gymnasium", "rclpy", "rosbags"):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(f"{_module} is not installed", allow_module_level=True)

from ros_helpers import new_domain_id  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.fixture
def domain(monkeypatch: pytest.MonkeyPatch) -> int:
    domain_id = new_domain_id()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain_id))
    return domain_id


def test_record_then_dataset_with_the_experts_intent_as_labels(domain: int, tmp_path: Path) -> None:
    from eipl_trt.bagio.dataset import bags_to_dataset
    from eipl_trt.sim.collect import RecordConfig, record
    from eipl_trt.sim.pusher import JOINT_NAMES

    cfg = RecordConfig(out=str(tmp_path / "rec"), episodes=2, seed=900, frames=15, clock="lockstep",
                       latency_s=(0.02, 0.02), camera_jitter_s=0.0, frame_drop=0.0, joint_divisors=(1,),
                       appearance=0.1, dart_sigma=(0.05, 0.05))
    summary = record(cfg)
    assert summary["episodes"] == 2 and summary["limit_violations"] == 0
    counts = summary["messages"]
    assert counts["/camera/image_raw"] == counts["/expert/intent"] == 2 * 15  # a command per frame
    assert counts["/sim/episode"] == counts["/sim/result"] == 2
    assert json.loads((tmp_path / "rec" / "record.json").read_text())["bag"].endswith("bag")

    out = tmp_path / "data"
    meta = bags_to_dataset([tmp_path / "rec" / "bag"], out, image_size=64, test_episodes=1,
                           image_topic="/camera/image_raw", joint_topic="/joint_states", target_topic="/expert/intent",
                           marker_topic="/sim/episode")
    assert meta["episodes"] == {"train": 1, "test": 1} and meta["joint_names"] == list(JOINT_NAMES)
    joints, targets = np.load(out / "train" / "joints.npy"), np.load(out / "train" / "targets.npy")
    assert joints.shape == targets.shape == (1, 15, 7)
    # the labels are the expert's clean intent, not where the arm went (it executed noisy targets, 20 ms late,
    # and its PD lags a fast approach by up to ~0.6 rad)...
    assert 0.005 < float(np.abs(targets[0, 1:] - joints[0, 1:]).mean()) < 1.0
    # ...but track it: the intent is where the expert wanted the arm one frame later
    moving = int(np.argmax(np.ptp(joints[0], axis=0)))  # the joint that moves most
    assert np.corrcoef(targets[0, 1:, moving], joints[0, 1:, moving])[0, 1] > 0.9
    assert os.path.getsize(tmp_path / "rec" / "bag" / "metadata.yaml") > 0

    # eipl-trt sim dagger's dataset step (one recorded round: round/rec/bag), with either kind of label
    from eipl_trt.paths import resolve_model
    from eipl_trt.sim import dagger

    for labels in ("joints", "intent"):
        here = tmp_path / labels
        here.mkdir()
        (here / "rec").symlink_to(tmp_path / "rec")
        data = dagger._dataset(here, "sarnn8", drive=True, labels=labels)
        assert np.array_equal(np.load(data / "joint_bounds.npy")[0], np.float32(resolve_model("sarnn8").joint_min))
        assert (data / "train" / "targets.npy").exists() == (labels == "intent")
