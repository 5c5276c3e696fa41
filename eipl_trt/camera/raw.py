"""Raw ``sensor_msgs/Image`` bytes in the encodings cameras publish -> uint8 frames (no ROS needed).

The five encodings the predictor takes directly (rgb8, bgr8, rgba8, bgra8, mono8) stay a zero-copy
view of the message (:func:`eipl_trt.imaging.decode_image`). The others are converted the way
``cv_bridge`` converts them (``cv_bridge.cpp``, ``getConversionCodes`` and ``toCvCopyImpl``):

==========================================  ===========================================  ==========
encoding                                    conversion (cv_bridge's)                     result
==========================================  ===========================================  ==========
``yuv422`` / ``uyvy`` (usb_cam, UVC)         ``cv2.COLOR_YUV2{RGB,BGR}_UYVY``              rgb8/bgr8
``yuv422_yuy2`` / ``yuyv``                   ``cv2.COLOR_YUV2{RGB,BGR}_YUY2``              rgb8/bgr8
``bayer_rggb8`` / ``bayer_bggr8``            ``cv2.COLOR_BayerBG2*`` / ``BayerRG2*``       rgb8/bgr8
``bayer_gbrg8`` / ``bayer_grbg8``            ``cv2.COLOR_BayerGR2*`` / ``BayerGB2*``       rgb8/bgr8
``bayer_*16``                               the same codes, then 16 -> 8 bit              rgb8/bgr8
``mono16``, ``rgb16``, ``bgr16``, ...16      16 -> 8 bit: ``convertTo(CV_8U, 255/65535)``  mono8, ...
==========================================  ===========================================  ==========

(OpenCV names Bayer patterns by the second row's first two pixels, hence RGGB -> ``BayerBG``.)
16 -> 8 bit is cv_bridge's linear scaling with OpenCV's round-to-nearest, ``round(v / 257)``: a
16-bit image that only uses the low bits (a 12-bit sensor) comes out dark, exactly as cv_bridge
makes it. Big-endian 16-bit data is byte-swapped first, as cv_bridge does.

Colour results are produced directly in the ``channel_order`` asked for (the model's), so no
further swap is needed. The conversion runs on ``cv_bridge`` when it imports (a robot's ROS
install), otherwise on OpenCV with the same codes; 16-bit encodings need neither (numpy).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, NamedTuple, Sequence

import numpy as np

from eipl_trt.camera.backend import converter_name, cv_bridge, opencv
from eipl_trt.errors import InputError
from eipl_trt.imaging import ENCODINGS, decode_image

__all__ = ["DecodedImage", "RAW_ENCODINGS", "decode_raw", "convert_array", "scale_16_to_8"]


class DecodedImage(NamedTuple):
    """A frame the predictor takes.

    Attributes:
        image: ``(H, W, C)`` uint8 array (C = 1, 3 or 4); may share memory with the message.
        encoding: its layout, one of :data:`eipl_trt.imaging.ENCODINGS` (rgb8, bgr8, rgba8, bgra8, mono8).
    """

    image: np.ndarray
    encoding: str


@dataclass(frozen=True)
class _Layout:
    channels: int  # channels in the message
    itemsize: int  # bytes per channel value (1 or 2)
    kind: str  # "wide" (a 16-bit version of a core encoding), "yuv" or "bayer"
    bridge_name: str  # the name cv_bridge knows
    code: str = ""  # OpenCV conversion code stem: COLOR_{code}2RGB / 2BGR (+ suffix)
    suffix: str = ""  # e.g. "_UYVY"
    narrow: str = ""  # the 8-bit core encoding of a "wide" one


def _table() -> dict[str, _Layout]:
    t: dict[str, _Layout] = {}
    for wide, narrow, ch in (("mono16", "mono8", 1), ("rgb16", "rgb8", 3), ("bgr16", "bgr8", 3),
                             ("rgba16", "rgba8", 4), ("bgra16", "bgra8", 4)):
        t[wide] = _Layout(ch, 2, "wide", wide, narrow=narrow)
    for names, suffix, bridge in ((("yuv422", "uyvy"), "_UYVY", "yuv422"),
                                  (("yuv422_yuy2", "yuyv"), "_YUY2", "yuv422_yuy2")):
        for name in names:
            t[name] = _Layout(2, 1, "yuv", bridge, "YUV", suffix)
    for pattern, code in (("rggb", "BayerBG"), ("bggr", "BayerRG"), ("gbrg", "BayerGR"), ("grbg", "BayerGB")):
        for bits in (8, 16):
            name = f"bayer_{pattern}{bits}"
            t[name] = _Layout(1, bits // 8, "bayer", name, code)
    return t


_LAYOUTS = _table()

#: Every raw encoding :func:`decode_raw` takes -> the encoding of what it returns
#: (``{order}8`` means the ``channel_order`` asked for).
RAW_ENCODINGS: dict[str, str] = {
    **{e: e for e in ENCODINGS},
    **{e: (lay.narrow or "{order}8") for e, lay in _LAYOUTS.items()},
}


def scale_16_to_8(values: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 as cv_bridge does it: ``convertTo(CV_8U, 255.0 / 65535.0)``, i.e. ``round(v / 257)``.

    Exact integer arithmetic (``v / 257`` is never halfway between two integers, so OpenCV's
    round-half-to-even does not matter).
    """
    return ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _unpad(data: Any, height: int, width: int, channels: int, itemsize: int, step: int,
           encoding: str, is_bigendian: bool) -> np.ndarray:
    """Message bytes -> a contiguous ``(H, W, C)`` array of uint8 or native uint16."""
    if height <= 0 or width <= 0:
        raise InputError(f"image is empty ({width}x{height}); check the camera driver")
    row = width * channels * itemsize
    if step < row:
        raise InputError(f"image step {step} is smaller than width*channels*bytes = {width}*{channels}*{itemsize} = "
                         f"{row} for {encoding}; the message is malformed (wrong step or encoding)")
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1).view(np.uint8)
    if buf.size < step * (height - 1) + row:
        raise InputError(f"image data has {buf.size} bytes but {width}x{height} {encoding} with step {step} needs "
                         f"{step * height}; the message is truncated or step/padding is wrong")
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, row), strides=(step, 1), writeable=False)
    packed = np.ascontiguousarray(rows)
    if itemsize == 2:
        packed = packed.view(">u2" if is_bigendian else "<u2").astype(np.uint16)
    return packed.reshape(height, width, channels)


def _target(layout: _Layout, channel_order: str) -> str:
    return layout.narrow or f"{channel_order}8"


def _opencv_convert(image: np.ndarray, layout: _Layout, encoding: str, target: str) -> np.ndarray:
    """cv_bridge's conversion of ``image`` (as laid out in the message) to ``target`` on OpenCV."""
    if layout.kind == "wide":
        return scale_16_to_8(image)
    cv2 = opencv(f"converting {encoding} images")
    code = getattr(cv2, f"COLOR_{layout.code}2{target[:3].upper()}{layout.suffix}")
    src = image[:, :, 0] if layout.channels == 1 else image
    try:
        out = cv2.cvtColor(src, code)
    except cv2.error as exc:
        raise InputError(f"OpenCV cannot convert this {encoding} image ({image.shape[1]}x{image.shape[0]}): "
                         f"{str(exc).strip().splitlines()[-1]}") from None
    return scale_16_to_8(out) if out.dtype == np.uint16 else out


def _bridge_convert(image: np.ndarray, layout: _Layout, encoding: str, target: str) -> np.ndarray:
    """The same conversion by cv_bridge itself (``CvBridge.imgmsg_to_cv2``), from a message-like object."""
    bridge = cv_bridge()
    h, w, c = image.shape
    msg = SimpleNamespace(height=h, width=w, encoding=layout.bridge_name, is_bigendian=int(sys.byteorder == "big"),
                          step=w * c * layout.itemsize, data=np.ascontiguousarray(image).tobytes())
    try:
        out = bridge.imgmsg_to_cv2(msg, desired_encoding=target)
    except Exception as exc:  # CvBridgeError, or cv2.error from inside it
        raise InputError(f"cv_bridge cannot convert this {encoding} image to {target}: {exc}") from None
    return np.asarray(out, dtype=np.uint8)


def convert_array(image: np.ndarray, encoding: str, channel_order: str = "bgr",
                  converter: str | None = None) -> DecodedImage:
    """Convert an array laid out as ``encoding`` (as in the message, 16-bit values native-endian) to a frame.

    Args:
        image: ``(H, W, C)`` (or ``(H, W)`` for one channel) uint8, or uint16 for ``*16`` encodings.
        encoding: a key of :data:`RAW_ENCODINGS`.
        channel_order: ``rgb`` or ``bgr``: the order colour conversions produce (the model's).
        converter: ``auto``, ``cv_bridge`` or ``opencv`` (see :func:`~eipl_trt.camera.backend.converter_name`).

    Returns:
        The frame in one of the five core encodings.

    Raises:
        InputError: unknown encoding, wrong array shape/dtype, OpenCV missing where needed, or a
            conversion the library refuses (e.g. odd width for YUV 4:2:2).
    """
    if channel_order not in ("rgb", "bgr"):
        raise InputError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
    if encoding in ENCODINGS:
        return DecodedImage(image if image.ndim == 3 else image[:, :, None], encoding)
    layout = _LAYOUTS.get(encoding)
    if layout is None:
        raise InputError(f"unsupported image encoding {encoding!r}; supported: {', '.join(RAW_ENCODINGS)}. "
                         f"Convert the stream first (e.g. image_proc), or publish rgb8/bgr8")
    if image.ndim == 2:
        image = image[:, :, None]
    want = np.uint16 if layout.itemsize == 2 else np.uint8
    if image.ndim != 3 or image.shape[2] != layout.channels or image.dtype != want:
        raise InputError(f"a {encoding} image must be (H, W, {layout.channels}) {np.dtype(want).name}, "
                         f"got {image.shape} {image.dtype}")
    target = _target(layout, channel_order)
    convert = _bridge_convert if converter_name(converter) == "cv_bridge" else _opencv_convert
    out = convert(image, layout, encoding, target)
    return DecodedImage(out if out.ndim == 3 else out[:, :, None], target)


def decode_raw(
    height: int, width: int, encoding: str, step: int,
    data: bytes | bytearray | memoryview | Sequence[int] | np.ndarray, is_bigendian: bool = False,
    *, channel_order: str = "bgr", converter: str | None = None,
) -> DecodedImage:
    """Decode the fields of a ``sensor_msgs/Image`` in any encoding of :data:`RAW_ENCODINGS`.

    Args:
        height, width: image size (px).
        encoding: the message's encoding.
        step: bytes per row, including padding.
        data: the pixel bytes.
        is_bigendian: byte order of 16-bit values.
        channel_order: ``rgb`` or ``bgr``: the order of converted colour frames (the model's).
        converter: ``auto``, ``cv_bridge`` or ``opencv``.

    Returns:
        The frame in a core encoding; for the five core encodings a view of ``data``.

    Raises:
        InputError: unknown encoding, size/step/data inconsistent, or a conversion that fails.
    """
    if encoding in ENCODINGS:
        return DecodedImage(decode_image(height, width, encoding, step, data, is_bigendian), encoding)
    layout = _LAYOUTS.get(encoding)
    if layout is None:
        raise InputError(f"unsupported image encoding {encoding!r}; supported: {', '.join(RAW_ENCODINGS)}. "
                         f"Convert the stream first (e.g. image_proc), or publish rgb8/bgr8")
    image = _unpad(data, height, width, layout.channels, layout.itemsize, step, encoding, bool(is_bigendian))
    return convert_array(image, encoding, channel_order, converter)
