"""eipl_trt: run EIPL deep-predictive-learning models (SARNN, CNNRNN, CNNRNNLN) in real time.

The package core (this module and everything it imports) needs only numpy. ONNX Runtime,
TensorRT, torch and rclpy are imported lazily by the modules that need them, so
``import eipl_trt`` works on any machine.
"""

from __future__ import annotations

from eipl_trt.errors import EipltrtError

#: The package version; package.xml holds the same string (setup.py reads it from there).
__version__ = "0.2.0"

__all__ = ["EipltrtError", "__version__"]
