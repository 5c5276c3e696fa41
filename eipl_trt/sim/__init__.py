"""Simulated demonstrations: a scripted expert pushing an object with the MuJoCo Pusher arm.

Modules:
    pusher: the gymnasium ``Pusher-v5`` scene (physics, state, offscreen camera).
    expert: the scripted push expert (Cartesian plan, inverse kinematics, joint PD).
    record: episodes -> EIPL dataset directory (+ rosbag2); :func:`record.generate_dataset`.
    bagwrite: episodes -> rosbag2 (MCAP) with Image and JointState topics.

mujoco and gymnasium (the ``[sim]`` extra) are imported only when a scene is created, and
``rosbags`` only when a bag is written; nothing outside this package needs them.
"""

from __future__ import annotations
