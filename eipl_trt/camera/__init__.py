"""Camera frames as ROS cameras publish them -> the uint8 frames the predictor takes (no ROS needed).

* :func:`decode_raw`: ``sensor_msgs/Image`` fields in rgb8/bgr8/rgba8/bgra8/mono8 (a zero-copy
  view), 16-bit (mono16, rgb16, bgr16, ...), YUV 4:2:2 (yuv422/uyvy, yuv422_yuy2/yuyv) and Bayer
  (bayer_rggb8, ...), converted as ``cv_bridge`` converts them (:mod:`eipl_trt.camera.raw`).
* :func:`decode_compressed`: ``sensor_msgs/CompressedImage`` JPEG and PNG with
  ``compressed_image_transport``'s format strings (:mod:`eipl_trt.camera.compressed`).
* :func:`decode_message`: either, from a message object (rclpy's or rosbags').

Why OpenCV (the optional ``camera`` extra, ``opencv-python-headless``) and not Pillow: it is the
library ``cv_bridge`` and ``compressed_image_transport`` are built on, so ``cv2.imdecode`` and
``cv2.cvtColor`` with cv_bridge's codes give the same pixels as a C++ ROS node; and it has the
YUV 4:2:2 and Bayer conversions, which Pillow lacks. Where a ROS install provides ``cv_bridge``,
raw conversions go through it (see :mod:`eipl_trt.camera.backend`).
"""

from __future__ import annotations

from typing import Any

from eipl_trt.camera.backend import CONVERTERS, converter_name
from eipl_trt.camera.compressed import CODECS, CompressedFormat, decode_compressed, encode_compressed, parse_format
from eipl_trt.camera.raw import RAW_ENCODINGS, DecodedImage, convert_array, decode_raw, scale_16_to_8
from eipl_trt.imaging import ENCODINGS

__all__ = [
    "CODECS", "CONVERTERS", "RAW_ENCODINGS", "CompressedFormat", "DecodedImage", "convert_array",
    "converter_name", "decode_compressed", "decode_message", "decode_raw", "encode_compressed", "is_compressed",
    "needs_conversion",
    "parse_format",
    "scale_16_to_8",
]


def is_compressed(msg: Any) -> bool:
    """True for a ``sensor_msgs/CompressedImage`` (it has ``format``), False for an ``Image``."""
    return hasattr(msg, "format") and not hasattr(msg, "encoding")


def needs_conversion(msg: Any) -> bool:
    """True when decoding ``msg`` is real work (JPEG/PNG, YUV, Bayer, 16 bit), False for a zero-copy view."""
    return is_compressed(msg) or msg.encoding not in ENCODINGS


def decode_message(msg: Any, channel_order: str = "bgr") -> DecodedImage:
    """Decode an ``Image`` or ``CompressedImage`` message object (rclpy's or rosbags').

    Args:
        msg: the message.
        channel_order: ``rgb`` or ``bgr``, for frames that need a colour conversion (the model's order).

    Raises:
        InputError: see :func:`decode_raw` and :func:`decode_compressed`.
    """
    if is_compressed(msg):
        return decode_compressed(msg.format, msg.data, channel_order=channel_order)
    return decode_raw(msg.height, msg.width, msg.encoding, msg.step, msg.data, bool(msg.is_bigendian),
                      channel_order=channel_order)
