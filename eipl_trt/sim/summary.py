"""What ``eipl-trt sim`` writes beside the frames: ``dataset.json``'s summary and the rosbag2 of the episodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from eipl_trt import __version__
from eipl_trt.sim.bagwrite import write_episodes_bag
from eipl_trt.sim.pusher import CONTROL_PERIOD_S, DEFAULT_CAMERA, JOINT_NAMES, OBJECT_MASS_KG

__all__ = ["dataset_summary", "write_bag"]


def dataset_summary(records: dict[str, list[Any]], counts: dict[str, int], seed: int, steps: int,
                    image_size: int, constants: dict[str, Any]) -> dict[str, Any]:
    """``dataset.json``: the scene, the expert's scores, every layout (``constants``: generator version, rate, success radius)."""
    all_records = records["train"] + records["test"]
    errors = np.array([r.final_error_m for r in all_records])
    return {
        "format": "eipl",
        "generator": "eipl_trt.sim: gymnasium Pusher-v5 (MuJoCo) with a scripted push expert",
        "generator_version": constants["generator_version"],
        "eipl_trt_version": __version__,
        "joint_names": list(JOINT_NAMES),
        "rate_hz": constants["rate_hz"],
        "steps": steps,
        "image_size": [image_size, image_size],
        "channel_order": "rgb",
        "seed": seed,
        "episodes": counts,
        "episode_seeds": {s: [list(r.seed) for r in records[s]] for s in ("train", "test")},
        "expert": {
            "success_rate": float(np.mean(errors <= constants["success_radius_m"])),
            "success_radius_m": constants["success_radius_m"],
            "final_error_m": {"mean": float(errors.mean()), "max": float(errors.max())},
            "plan_s_max": float(max(r.plan_s for r in all_records)),
        },
        "layouts": {
            s: [{"object_xy": list(r.layout.object_xy), "goal_xy": list(r.layout.goal_xy),
                 "final_error_m": r.final_error_m} for r in records[s]]
            for s in ("train", "test")
        },
        "scene": {"env": "Pusher-v5", "control_period_s": CONTROL_PERIOD_S, "object_mass_kg": OBJECT_MASS_KG,
                  "camera": {"lookat": list(DEFAULT_CAMERA.lookat), "distance": DEFAULT_CAMERA.distance,
                             "elevation": DEFAULT_CAMERA.elevation, "azimuth": DEFAULT_CAMERA.azimuth}},
    }


def write_bag(tmp: Path, bag_path: Path, bag_inside: bool, records: dict[str, list[Any]],
              bag_splits: tuple[str, ...], counts: dict[str, int]) -> dict[str, Any]:
    """The rosbag2 of ``bag_splits`` (inside the staged dataset or beside it); returns its dataset.json entry."""
    bag_recs = [r for s in bag_splits for r in records[s]]
    where = tmp / bag_path.name if bag_inside else bag_path
    starts = write_episodes_bag(where, [r.to_bag_episode() for r in bag_recs], joint_names=JOINT_NAMES)
    return {
        "path": bag_path.name if bag_inside else str(bag_path), "storage": "mcap", "splits": list(bag_splits),
        "image_topic": "/camera/image_raw", "joint_topic": "/joint_states", "joint_rate_hz": 50.0,
        "episodes": [{"split": s, "index": i, "start_stamp_s": starts[n]}
                     for n, (s, i) in enumerate((s, i) for s in bag_splits for i in range(counts[s]))],
    }
