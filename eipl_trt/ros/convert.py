"""ROS message <-> numpy conversions (no cv_bridge) and the attention overlay drawn with numpy.

Array fields are filled with ``array.array`` so the generated message setters take their fast
path on every distro (Humble's setters check each element of a plain sequence).
"""

from __future__ import annotations

import array
import time
from typing import Sequence

import numpy as np
from builtin_interfaces.msg import Duration as DurationMsg
from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import Point32, PolygonStamped
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray, Header, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from eipl_trt.camera import decode_message, needs_conversion
from eipl_trt.ros.inputs import Frame

__all__ = [
    "frame_from_msg",
    "intake_frame",
    "stamp_to_s",
    "s_to_stamp",
    "image_msg",
    "joint_state_msg",
    "polygon_msg",
    "named_values_msg",
    "forward_command_msg",
    "trajectory_msg",
    "draw_points",
    "ENC_COLOR",
    "DEC_COLOR",
]

#: Overlay colours (R, G, B): where the model looked (enc) and where it expects the points next (dec).
ENC_COLOR = (255, 40, 40)
DEC_COLOR = (40, 120, 255)


def stamp_to_s(stamp: TimeMsg) -> float:
    """A ``builtin_interfaces/Time`` in seconds."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def s_to_stamp(t_s: float) -> TimeMsg:
    """``t_s`` seconds as a ``builtin_interfaces/Time``, to the nearest nanosecond (the inverse of :func:`stamp_to_s`)."""
    sec, nanosec = divmod(int(round(t_s * 1e9)), 1_000_000_000)
    return TimeMsg(sec=sec, nanosec=nanosec)


def frame_from_msg(msg: Image | CompressedImage, receipt_s: float, channel_order: str = "bgr") -> Frame:
    """Decode a ``sensor_msgs/Image`` or ``CompressedImage`` into a :class:`Frame`, timing the decode.

    rgb8/bgr8/rgba8/bgra8/mono8 frames are a view of the message bytes; other encodings (YUV 4:2:2,
    Bayer, 16 bit) and JPEG/PNG are converted by :func:`eipl_trt.camera.decode_message`, colour
    conversions straight to ``channel_order`` (the model's).

    Raises:
        InputError: unsupported encoding, empty image, ``step``/``data`` inconsistent with the size,
            corrupt or truncated compressed data, or OpenCV missing for a format that needs it.
    """
    started = time.perf_counter()
    decoded = decode_message(msg, channel_order)
    return Frame(decoded.image, decoded.encoding, stamp_to_s(msg.header.stamp), receipt_s, msg.header,
                 time.perf_counter() - started)


_NO_IMAGE = np.zeros((0, 0, 3), np.uint8)


def intake_frame(msg: Image | CompressedImage, receipt_s: float, channel_order: str = "bgr") -> Frame:
    """What the image callback stores: a view for rgb8/bgr8/rgba8/bgra8/mono8, else a *deferred* frame.

    A deferred frame (JPEG/PNG, YUV, Bayer, 16 bit) carries the message and decodes it only when a
    step uses it (``frame.decoder()``, see :class:`~eipl_trt.ros.inputs.Frame`), on the step thread.

    Raises:
        InputError: a malformed view-able frame (wrong ``step``, truncated data); deferred frames
            raise from their ``decoder`` instead.
    """
    if not needs_conversion(msg):
        return frame_from_msg(msg, receipt_s, channel_order)
    return Frame(_NO_IMAGE, "", stamp_to_s(msg.header.stamp), receipt_s, msg.header,
                 decoder=lambda: frame_from_msg(msg, receipt_s, channel_order))


def image_msg(image: np.ndarray, encoding: str, header: Header) -> Image:
    """``(H, W, C)`` uint8 array -> ``sensor_msgs/Image`` (packed rows, no padding)."""
    img = np.ascontiguousarray(image)
    height, width = int(img.shape[0]), int(img.shape[1])
    channels = 1 if img.ndim == 2 else int(img.shape[2])
    msg = Image(header=header, height=height, width=width, encoding=encoding, is_bigendian=0, step=width * channels)
    msg.data = array.array("B", img.tobytes())
    return msg


def _doubles(values: Sequence[float] | np.ndarray) -> array.array:
    return array.array("d", np.asarray(values, dtype=np.float64).reshape(-1).tolist())


def joint_state_msg(names: Sequence[str], positions: Sequence[float] | np.ndarray, header: Header) -> JointState:
    """A JointState with names and positions only (velocity/effort empty)."""
    return JointState(header=header, name=list(names), position=_doubles(positions))


def polygon_msg(points_px: np.ndarray, header: Header) -> PolygonStamped:
    """``(K, 2)`` attention points ``(x=column, y=row)`` in image pixels -> PolygonStamped (z = 0)."""
    msg = PolygonStamped(header=header)
    msg.polygon.points = [Point32(x=float(x), y=float(y), z=0.0) for x, y in np.asarray(points_px, np.float64)]
    return msg


def named_values_msg(values: dict[str, float], header: Header) -> JointState:
    """Named numbers as a JointState (``name[i]`` labels ``position[i]``), a plottable stand-in for a custom msg."""
    return joint_state_msg(list(values), [float(v) for v in values.values()], header)


def forward_command_msg(positions: np.ndarray) -> Float64MultiArray:
    """Positions for a ros2_control ``forward_command_controller`` (array order = its ``joints`` order)."""
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label="joints", size=int(np.size(positions)), stride=int(np.size(positions)))]
    msg.data = _doubles(positions)
    return msg


def trajectory_msg(names: Sequence[str], positions: np.ndarray, time_from_start_s: float,
                   start_s: float = 0.0, more: Sequence[tuple[float, np.ndarray]] = ()) -> JointTrajectory:
    """A JointTrajectory reaching ``positions`` (rad) ``time_from_start_s`` after its start, then ``more`` points.

    ``start_s`` is the header stamp (s): 0 leaves it zero, which joint_trajectory_controller reads as
    "start now"; otherwise the trajectory starts then (see :mod:`eipl_trt.ros.trajectory`). ``more``:
    further ``(time_from_start s, positions)`` points, e.g. the coast point.
    """
    points = []
    for t, q in ((time_from_start_s, positions), *more):
        sec = int(t)
        points.append(JointTrajectoryPoint(positions=_doubles(q),
                                           time_from_start=DurationMsg(sec=sec, nanosec=int(round((t - sec) * 1e9)))))
    msg = JointTrajectory(joint_names=list(names), points=points)
    if start_s > 0.0:
        msg.header.stamp = s_to_stamp(start_s)
    return msg


def _disc_mask(
    height: int, width: int, cx: float, cy: float, radius: float, ring: bool
) -> tuple[slice, slice, np.ndarray]:
    """Row/column slices around ``(cx, cy)`` (px) and the disc (or ring) mask inside them."""
    r = int(np.ceil(radius)) + 1
    x0, x1 = max(int(np.floor(cx)) - r, 0), min(int(np.ceil(cx)) + r + 1, width)
    y0, y1 = max(int(np.floor(cy)) - r, 0), min(int(np.ceil(cy)) + r + 1, height)
    if x0 >= x1 or y0 >= y1:
        return slice(0, 0), slice(0, 0), np.zeros((0, 0), bool)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    dist = np.hypot(xx - cx, yy - cy)
    mask = (np.abs(dist - radius) <= 0.75) if ring else (dist <= radius)
    return slice(y0, y1), slice(x0, x1), mask


def draw_points(
    image: np.ndarray,
    enc_px: np.ndarray | None,
    dec_px: np.ndarray | None,
    radius_px: float | None = None,
) -> np.ndarray:
    """Draw attention points on a copy of an ``(H, W, 3)`` uint8 RGB/BGR image.

    Args:
        image: the camera frame, 3 channels (convert mono/alpha first).
        enc_px: ``(K, 2)`` points ``(x, y)`` in pixels drawn as filled discs in :data:`ENC_COLOR`.
        dec_px: ``(K, 2)`` points drawn as rings in :data:`DEC_COLOR`.
        radius_px: disc radius in pixels (default: 2% of the larger image side, at least 2).

    Returns:
        A new ``(H, W, 3)`` uint8 image. Colours are given in RGB; the caller swaps them for BGR.
    """
    out = np.array(image, dtype=np.uint8, copy=True)
    height, width = out.shape[:2]
    radius = float(radius_px) if radius_px is not None else max(2.0, 0.02 * max(height, width))
    for points, color, ring in ((enc_px, ENC_COLOR, False), (dec_px, DEC_COLOR, True)):
        if points is None:
            continue
        for x, y in np.asarray(points, np.float64).reshape(-1, 2):
            if not (np.isfinite(x) and np.isfinite(y)):
                continue
            rows, cols, mask = _disc_mask(height, width, x, y, radius * (1.5 if ring else 1.0), ring)
            out[rows, cols][mask] = color
    return out
