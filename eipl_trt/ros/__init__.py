"""The ROS 2 adapter of eipl_trt: the ``eipl_trt_node`` lifecycle node and its helpers.

Importing this package never imports rclpy, so ``import eipl_trt.ros`` works on a machine
without ROS 2; :func:`require_rclpy` raises a clear :class:`~eipl_trt.errors.BackendUnavailableError`
when the node is actually started there. The modules that need rclpy (``lifecycle``,
``convert``, ``outputs``, ``diagnostics``) import it at module level and are only imported on
that path; ``params``, ``inputs``, ``runtime`` and ``switcher`` are pure Python.

Start the node with the ``eipl_trt_node`` console script (see :mod:`eipl_trt.ros.node` for its
topics, services and parameters). :mod:`~eipl_trt.ros.launch_args` maps launch arguments to node
parameters (``launch/robot.launch.py``); :mod:`~eipl_trt.ros.trajectory` times the
``JointTrajectory`` points the node sends. Both are pure Python.
"""

from __future__ import annotations

import importlib.util

from eipl_trt.errors import BackendUnavailableError

__all__ = ["require_rclpy", "ROS_PACKAGES"]

#: Python packages the node imports (ROS 2 client library and message packages).
ROS_PACKAGES = (
    "rclpy",
    "sensor_msgs",
    "std_msgs",
    "std_srvs",
    "geometry_msgs",
    "trajectory_msgs",
    "diagnostic_msgs",
    "rosgraph_msgs",
    "lifecycle_msgs",
)


def require_rclpy() -> None:
    """Check that rclpy and the message packages the node uses are importable.

    Raises:
        BackendUnavailableError: one is missing; the message names them and says how to get them.
    """
    missing = [name for name in ROS_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise BackendUnavailableError(
            f"the eipl_trt ROS 2 node needs {', '.join(missing)}, which cannot be imported here. "
            f"On a robot, source your ROS 2 install first (`source /opt/ros/<distro>/setup.bash`); "
            f"on a development machine, `pip install -r requirements/ros.txt` (ROS 2 wheels from PyPI). "
            f"The rest of eipl_trt (export, evaluate, bench) works without ROS."
        )
