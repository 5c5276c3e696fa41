"""Simulated demonstrations: a scripted expert pushing an object with the MuJoCo Pusher arm.

Modules:
    pusher: the gymnasium ``Pusher-v5`` scene (physics, state, offscreen camera).
    expert: the scripted push expert (Cartesian plan, inverse kinematics, joint PD).
    record: episodes -> EIPL dataset directory (+ rosbag2); :func:`record.generate_dataset`.
    bagwrite: episodes -> rosbag2 (MCAP) with Image and JointState topics.
    robot: the arm as a position-controlled robot (joint PD, robot-side limit check, scoring), no ROS.
    baselines: the expert and hold-still episodes a control run is compared with.
    ros_robot, robot_loop: ``eipl_trt_sim_robot``, the simulated robot as a ROS 2 process.
    launch_plan: sim.launch.py's argument mapping (shared with ``eipl-trt control``).
    live, report: ``eipl-trt control`` (robot + node processes, listener) and its report/video.

mujoco and gymnasium (the ``[sim]`` extra) are imported only when a scene is created, and
``rosbags`` only when a bag is written; nothing outside this package needs them.
"""

from __future__ import annotations
