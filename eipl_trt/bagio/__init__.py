"""Camera + joint episodes from rosbag2 bags or EIPL dataset directories, for offline evaluation.

Everything after reading works on plain numpy arrays, so evaluation runs without ROS:

* :func:`read_bag` reads one camera topic (``sensor_msgs/msg/Image`` in any encoding
  :mod:`eipl_trt.camera` converts, or ``sensor_msgs/msg/CompressedImage`` JPEG/PNG) and one
  ``sensor_msgs/msg/JointState`` topic from a rosbag2 (MCAP or sqlite3, via the pip ``rosbags``
  library, imported inside) into a :class:`BagStreams`, decoding frames with the very code the node
  uses. Times are header stamps (the bag's log time when a stamp is zero).
* :func:`resample` splits the streams into episodes at gaps (and at the messages of an optional
  marker topic) and samples each at the control rate: at every tick the latest image at or before
  the tick and the joints linearly interpolated between their two neighbouring messages.
* :func:`load_dataset_dir` reads an EIPL dataset split (``images.npy``/``joints.npy``).
* :func:`load_episodes` does either, depending on what ``path`` is.

JointState messages may carry extra joints, other orders, or only some joints (e.g. an arm and a
gripper published separately): positions are kept per name, NaN where a message lacked a joint,
and :func:`select_joints` picks the model's joints by name.

Also here, imported on their own: :mod:`~eipl_trt.bagio.compat` (writing bags every ROS 2 release
plays), :mod:`~eipl_trt.bagio.dataset` (bags to an EIPL dataset directory, ``eipl-trt dataset``),
:mod:`~eipl_trt.bagio.recode` (a bag rewritten as a robot records it, ``eipl-trt dataset recode``)
and :mod:`~eipl_trt.bagio.merge` (train splits joined, ``eipl-trt dataset merge``).
"""

from __future__ import annotations

from eipl_trt.bagio.datasets import DatasetMeta, load_dataset_dir, load_episodes, read_dataset_meta
from eipl_trt.bagio.episodes import Episode, resample, select_joints, split_episodes
from eipl_trt.bagio.streams import COMPRESSED_TYPE, IMAGE_TYPE, JOINT_TYPE, BagStreams, read_bag

__all__ = [
    "IMAGE_TYPE", "COMPRESSED_TYPE", "JOINT_TYPE", "BagStreams", "Episode", "read_bag", "select_joints",
    "split_episodes", "resample", "DatasetMeta", "read_dataset_meta", "load_dataset_dir", "load_episodes",
]
