"""``make demo``: the node on ONNX Runtime fed the bundled rosbag over ROS 2, and what it reports.

:mod:`run` starts ``eipl_trt_node``, replays the bag to it over DDS and writes the results
(``python -m eipl_trt.demo``, see :mod:`~eipl_trt.demo.__main__`); :mod:`report` scores the
predictions against the bag, plots them and prints the summary. Needs rclpy, rosbags and
matplotlib; not torch.
"""

from __future__ import annotations

from eipl_trt.demo.report import DemoResult
from eipl_trt.demo.run import main, run_demo

__all__ = ["main", "run_demo", "DemoResult"]
