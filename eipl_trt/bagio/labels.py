"""Training labels and episode starts read from a bag beside its camera and joints (``eipl-trt dataset``).

EIPL trains a model to predict the next *measured* joints. A demonstrator that knows what it meant to do
can record that instead: ``eipl-trt sim record`` publishes the expert's clean joint targets on
``/expert/intent`` (a JointState stamped with the time each target is due) while the arm executes them
with DART noise, so the data holds recoveries while the labels stay the expert's intent. With
``--target-topic`` the dataset gets ``targets.npy`` (the labels sampled at the same ticks as the joints;
:mod:`eipl_trt.train.data` trains on them instead of the next measured joints).

With ``--start-topic`` an episode starts at the first message of that topic inside it (e.g.
``/expert/takeover``, when the expert took over from a model) and episodes without one are dropped:
the model's own part of such an episode would teach its own mistakes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

from eipl_trt.bagio.episodes import Episode, select_joints
from eipl_trt.errors import InputError

__all__ = ["StampedJoints", "read_stamped_joints", "read_start_stamps", "with_targets", "from_starts"]


@dataclasses.dataclass(frozen=True)
class StampedJoints:
    """A JointState topic as arrays: ``stamps`` (M,) s and ``positions`` (M, D) in ``names`` order."""

    stamps: np.ndarray
    names: tuple[str, ...]
    positions: np.ndarray


def _messages(bag: str | Path, topic: str) -> list[tuple[int, object]]:
    """``(log time ns, message)`` of ``topic`` in ``bag``."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    from eipl_trt.bagio.streams import _bag_dir, _deserialize

    out: list[tuple[int, object]] = []
    with AnyReader([_bag_dir(Path(bag))], default_typestore=get_typestore(Stores.ROS2_JAZZY)) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        if not conns:
            raise InputError(f"topic {topic} is not in {bag}; topics: "
                             f"{', '.join(sorted({c.topic for c in reader.connections}))}")
        for conn, log_ns, raw in reader.messages(connections=conns):
            out.append((log_ns, _deserialize(reader.typestore, raw, conn.msgtype)))
    return out


def _stamp_s(msg: object, log_ns: int) -> float:
    header = getattr(msg, "header", msg)  # a std_msgs/Header message is its own header
    stamp = getattr(header, "stamp", None)
    t = 0.0 if stamp is None else stamp.sec + stamp.nanosec * 1e-9
    return t if t > 0.0 else log_ns * 1e-9


def read_stamped_joints(bag: str | Path, topic: str, joint_names: Sequence[str]) -> StampedJoints:
    """The positions of ``joint_names`` on JointState ``topic``, sorted by header stamp."""
    rows = [(_stamp_s(m, t), list(m.name), np.asarray(m.position, np.float64)) for t, m in _messages(bag, topic)]
    if not rows:
        raise InputError(f"target topic {topic} in {bag} has no messages")
    rows.sort(key=lambda r: r[0])
    positions = np.stack([select_joints(names, pos[None, :], joint_names)[0] for _, names, pos in rows])
    return StampedJoints(np.array([r[0] for r in rows]), tuple(joint_names), positions)


def read_start_stamps(bag: str | Path, topic: str) -> np.ndarray:
    """Sorted stamps (s) of ``topic``'s messages (header stamp, else log time)."""
    return np.sort(np.array([_stamp_s(m, t) for t, m in _messages(bag, topic)], np.float64))


def with_targets(episodes: Sequence[Episode], targets: StampedJoints) -> list[Episode]:
    """Each episode with ``targets`` interpolated at its ticks (before the first target: the joints themselves).

    The label of step t is the target due at tick t + 1 (what the demonstrator meant the arm to reach by
    the next frame), exactly as the next measured joints would be.
    """
    out = []
    for e in episodes:
        inside = (targets.stamps >= e.stamps[0] - 1e-6) & (targets.stamps <= e.stamps[-1] + 1e-6)
        if inside.sum() < 2:
            raise InputError(f"{e.source} has {int(inside.sum())} target message(s) in its span; was the target "
                             f"topic recorded for the whole episode?")
        t, q = targets.stamps[inside], targets.positions[inside]
        labels = np.stack([np.interp(e.stamps, t, q[:, c]) for c in range(q.shape[1])], axis=1)
        before = e.stamps < t[0] - 1e-6
        labels[before] = e.joints[before]
        out.append(dataclasses.replace(e, targets=labels))
    return out


def from_starts(episodes: Sequence[Episode], starts: np.ndarray, min_steps: int = 3) -> list[Episode]:
    """Each episode from its first start stamp on; episodes without one (or too short after it) are dropped."""
    out = []
    for e in episodes:
        inside = starts[(starts >= e.stamps[0] - 1e-6) & (starts <= e.stamps[-1] + 1e-6)]
        if inside.size == 0:
            continue
        first = int(np.searchsorted(e.stamps, inside[0] - 1e-6))
        if len(e) - first < min_steps:
            continue
        cut = slice(first, None)
        out.append(dataclasses.replace(e, images=e.images[cut], joints=e.joints[cut], stamps=e.stamps[cut],
                                       targets=None if e.targets is None else e.targets[cut],
                                       source=f"{e.source} from step {first}"))
    return out
