"""Which library converts camera frames: ``cv_bridge`` (a robot's ROS install) or OpenCV.

``cv_bridge`` is ROS's own converter; where a ROS install provides it, raw frames in the encodings
numpy cannot simply view (YUV 4:2:2, Bayer, 16 bit) go through it, so the node sees exactly what
every other ROS node on the robot sees. Elsewhere (pip installs, the PyPI ROS wheels, which have no
cv_bridge) the same conversions run on OpenCV with the very ``cv2.cvtColor`` codes and 16 -> 8 bit
scaling cv_bridge uses (see :mod:`eipl_trt.camera.raw`). OpenCV is also what decodes
``sensor_msgs/CompressedImage`` (``cv2.imdecode``, as ``compressed_image_transport`` does).

OpenCV is optional: ``pip install eipl_trt[camera]`` (``opencv-python-headless``). Without it the
node still takes rgb8, bgr8, rgba8, bgra8, mono8 and the 16-bit encodings (numpy alone).
"""

from __future__ import annotations

import functools
import os
from typing import Any

from eipl_trt.errors import InputError

__all__ = ["CONVERTERS", "opencv", "cv_bridge", "converter_name"]

#: Values of ``EIPL_TRT_CAMERA_CONVERTER`` (and of the ``converter`` arguments): ``auto`` takes
#: cv_bridge when it imports, else OpenCV.
CONVERTERS = ("auto", "cv_bridge", "opencv")

_INSTALL_HINT = (
    "install OpenCV with `pip install eipl_trt[camera]` (opencv-python-headless), or on a robot "
    "`sudo apt install python3-opencv` (rosdep installs it from package.xml)"
)


@functools.lru_cache(maxsize=1)
def _import_cv2() -> Any:
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def opencv(why: str) -> Any:
    """The ``cv2`` module.

    Args:
        why: what needs it, for the error message (e.g. "decoding JPEG").

    Raises:
        InputError: OpenCV is not installed (the message says how to install it).
    """
    cv2 = _import_cv2()
    if cv2 is None:
        raise InputError(f"{why} needs OpenCV, which is not installed; {_INSTALL_HINT}")
    return cv2


@functools.lru_cache(maxsize=1)
def _bridge() -> Any:
    try:
        from cv_bridge import CvBridge  # type: ignore[import-not-found]

        return CvBridge()
    except Exception:  # ImportError, or a cv_bridge whose compiled part does not load in this Python
        return None


def cv_bridge() -> Any:
    """A ``cv_bridge.CvBridge`` when the ROS install provides one, else ``None``."""
    return _bridge()


def converter_name(requested: str | None = None) -> str:
    """The converter raw frames go through: ``cv_bridge`` or ``opencv``.

    Args:
        requested: ``auto``, ``cv_bridge`` or ``opencv``; None reads ``EIPL_TRT_CAMERA_CONVERTER``
            (default ``auto``: cv_bridge when it imports, else OpenCV).

    Raises:
        InputError: an unknown name, or ``cv_bridge`` asked for but not importable.
    """
    name = requested or os.environ.get("EIPL_TRT_CAMERA_CONVERTER", "auto") or "auto"
    if name not in CONVERTERS:
        raise InputError(f"camera converter {name!r} must be one of {', '.join(CONVERTERS)}")
    if name == "cv_bridge" and cv_bridge() is None:
        raise InputError("the cv_bridge converter was asked for but `from cv_bridge import CvBridge` fails; "
                         "source the ROS install that has ros-$ROS_DISTRO-cv-bridge, or use auto/opencv")
    if name == "auto":
        return "cv_bridge" if cv_bridge() is not None else "opencv"
    return name
