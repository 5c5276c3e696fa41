"""Camera frames and joint vectors to model tensors and back (numpy only).

Conventions:
    * Images are ``(H, W, C)`` ``uint8`` arrays in the channel layout of their ROS encoding.
    * The model sees ``(3, H, W)`` ``float32`` in the channel order it was trained on, scaled from
      ``[0, 255]`` to ``[vmin, vmax]`` (EIPL: ``pixel / 255``).
    * Resizing is bilinear with half-pixel centres and edge clamping, the semantics of OpenCV's
      ``cv2.resize(..., interpolation=cv2.INTER_LINEAR)`` that EIPL's datasets use. The result is
      rounded back to ``uint8``, so training data and live frames go through the identical path.
    * Joints are min-max normalized per joint: ``(q - min) / (max - min) * (vmax - vmin) + vmin``.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from eipl_trt.errors import InputError

__all__ = [
    "ENCODINGS",
    "decode_image",
    "to_channel_order",
    "resize_bilinear",
    "Resizer",
    "image_to_tensor",
    "tensor_to_image",
    "JointScaler",
]

#: Supported ROS image encodings -> (channels, channel order of the first three channels).
ENCODINGS: dict[str, tuple[int, str]] = {
    "rgb8": (3, "rgb"),
    "bgr8": (3, "bgr"),
    "rgba8": (4, "rgb"),
    "bgra8": (4, "bgr"),
    "mono8": (1, "mono"),
}


def _check_encoding(encoding: str) -> tuple[int, str]:
    try:
        return ENCODINGS[encoding]
    except KeyError:
        raise InputError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(ENCODINGS)}. "
            f"Convert the stream first (e.g. image_proc's debayer/resize nodes, or publish rgb8/bgr8)."
        ) from None


def decode_image(
    height: int, width: int, encoding: str, step: int, data: bytes | bytearray | memoryview | Sequence[int] | np.ndarray,
    is_bigendian: bool = False,
) -> np.ndarray:
    """View the bytes of a ``sensor_msgs/Image`` as an ``(H, W, C)`` uint8 array.

    Row padding (``step > width * channels``) is removed. ``is_bigendian`` does not matter for the
    supported 8-bit encodings and is accepted for signature compatibility.

    Args:
        height, width: image size in pixels.
        encoding: ROS encoding, one of :data:`ENCODINGS`.
        step: bytes per row, including padding.
        data: the raw bytes (``bytes``, ``array.array`` or a uint8 numpy array).

    Returns:
        An ``(H, W, C)`` uint8 array (C = 1, 3 or 4). It may share memory with ``data``.

    Raises:
        InputError: unsupported encoding, zero size, or ``step``/``data`` inconsistent with the size.
    """
    channels, _ = _check_encoding(encoding)
    del is_bigendian
    if height <= 0 or width <= 0:
        raise InputError(f"image is empty ({width}x{height}); check the camera driver")
    row = width * channels
    if step < row:
        raise InputError(
            f"image step {step} is smaller than width*channels = {width}*{channels} = {row} for "
            f"{encoding}; the message is malformed (wrong step or encoding)"
        )
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1).view(np.uint8)
    if buf.size < step * (height - 1) + row:
        raise InputError(
            f"image data has {buf.size} bytes but {width}x{height} {encoding} with step {step} needs "
            f"{step * height}; the message is truncated or step/padding is wrong"
        )
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, row), strides=(step, 1), writeable=False)
    return rows.reshape(height, width, channels)


def to_channel_order(image: np.ndarray, encoding: str, order: str) -> np.ndarray:
    """Convert an ``(H, W, C)`` image in ``encoding`` to ``(H, W, 3)`` uint8 in ``order`` ("rgb"/"bgr").

    Alpha is dropped, mono is replicated to three channels, and the channels are swapped when
    the encoding's order differs from ``order``.

    Raises:
        InputError: wrong dtype, shape or channel count for the encoding.
    """
    channels, enc_order = _check_encoding(encoding)
    if not isinstance(image, np.ndarray):
        raise InputError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InputError(f"image must be uint8 (0..255), got {image.dtype}; scale and convert it first")
    if channels == 1 and image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] != channels:
        raise InputError(
            f"{encoding} image must have shape (H, W, {channels}), got {image.shape}; "
            f"the encoding does not match the pixel data"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError(f"image is empty {image.shape}")
    if channels == 1:
        return np.repeat(image, 3, axis=2)
    rgb = image[:, :, :3]
    if enc_order != order:
        rgb = rgb[:, :, ::-1]
    return rgb


@functools.lru_cache(maxsize=32)
def _axis_table(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour indices and weights for one axis (half-pixel centres, clamped at the edges)."""
    scale = src / dst
    x = (np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5
    x = np.clip(x, 0.0, src - 1)
    i0 = np.floor(x).astype(np.intp)
    i1 = np.minimum(i0 + 1, src - 1)
    frac = (x - i0).astype(np.float32)
    for arr in (i0, i1, frac):
        arr.setflags(write=False)
    return i0, i1, frac


def resize_bilinear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an ``(H, W, C)`` image to ``size = (height, width)`` bilinearly.

    Same sampling as ``cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)``
    (half-pixel centres, edge clamp, no anti-aliasing). uint8 input is rounded back to uint8;
    float input stays float32. An image already at ``size`` is returned unchanged.
    """
    out_h, out_w = int(size[0]), int(size[1])
    if out_h <= 0 or out_w <= 0:
        raise InputError(f"resize target {size} must be positive")
    h, w = image.shape[:2]
    if (h, w) == (out_h, out_w):
        return image
    y0, y1, fy = _axis_table(h, out_h)
    x0, x1, fx = _axis_table(w, out_w)
    src = image.astype(np.float32, copy=False)
    fy_ = fy[:, None, None] if image.ndim == 3 else fy[:, None]
    rows = src[y0] * (1.0 - fy_) + src[y1] * fy_
    fx_ = fx[None, :, None] if image.ndim == 3 else fx[None, :]
    out = rows[:, x0] * (1.0 - fx_) + rows[:, x1] * fx_
    if image.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(np.float32, copy=False)


class Resizer:
    """:func:`resize_bilinear` of uint8 frames into buffers kept between calls (no allocation per frame).

    The result is bit-identical to ``resize_bilinear(image, size)`` (same float32 operations in the
    same order), returned as float32 holding the rounded ``uint8`` values, ready for
    :func:`image_to_tensor`. Tables and buffers are rebuilt only when the frame shape changes. The
    returned array is overwritten by the next call: use it before then. Not thread-safe (one per
    consumer; the Predictor's step is serialized).

    Args:
        size: ``(height, width)`` of the output, px.
    """

    def __init__(self, size: tuple[int, int]):
        self.size = (int(size[0]), int(size[1]))
        if self.size[0] <= 0 or self.size[1] <= 0:
            raise InputError(f"resize target {size} must be positive")
        self._shape: tuple[int, ...] | None = None

    def _prepare(self, shape: tuple[int, ...]) -> None:
        (h, w, c), (oh, ow) = shape, self.size
        self._y0, self._y1, fy = _axis_table(h, oh)
        self._x0, self._x1, fx = _axis_table(w, ow)
        self._wy0, self._wy1 = (1.0 - fy[:, None, None]), fy[:, None, None]
        self._wx0, self._wx1 = (1.0 - fx[None, :, None]), fx[None, :, None]
        self._src = np.empty((h, w, c), np.float32)
        self._r0, self._r1 = np.empty((oh, w, c), np.float32), np.empty((oh, w, c), np.float32)
        self._c0, self._c1 = np.empty((oh, ow, c), np.float32), np.empty((oh, ow, c), np.float32)
        self._shape = shape

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """``(H, W, C)`` uint8 (any strides, e.g. a channel-swapped view) -> ``(h, w, C)`` float32.

        Other dtypes or shapes go through :func:`resize_bilinear` (allocating), as does nothing
        else. A frame already at ``size`` is returned unchanged.
        """
        if image.dtype != np.uint8 or image.ndim != 3:
            return resize_bilinear(image, self.size)
        if image.shape[:2] == self.size:
            return image
        if image.shape != self._shape:
            self._prepare(image.shape)
        src, r0, r1, c0, c1 = self._src, self._r0, self._r1, self._c0, self._c1
        np.copyto(src, image, casting="unsafe")
        np.take(src, self._y0, axis=0, out=r0)
        np.multiply(r0, self._wy0, out=r0)
        np.take(src, self._y1, axis=0, out=r1)
        np.multiply(r1, self._wy1, out=r1)
        np.add(r0, r1, out=r0)
        np.take(r0, self._x0, axis=1, out=c0)
        np.multiply(c0, self._wx0, out=c0)
        np.take(r0, self._x1, axis=1, out=c1)
        np.multiply(c1, self._wx1, out=c1)
        np.add(c0, c1, out=c0)
        np.rint(c0, out=c0)
        np.clip(c0, 0, 255, out=c0)
        return c0


def image_to_tensor(image: np.ndarray, vmin: float = 0.0, vmax: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> ``(1, 3, H, W)`` float32 scaled to ``[vmin, vmax]``.

    Args:
        out: optional preallocated ``(1, 3, H, W)`` float32 buffer to write into.
    """
    chw = image.transpose(2, 0, 1)
    if out is None:
        out = np.empty((1, *chw.shape), dtype=np.float32)
    np.multiply(chw, np.float32((vmax - vmin) / 255.0), out=out[0], casting="unsafe")
    if vmin != 0.0:
        out += np.float32(vmin)
    return out


def tensor_to_image(tensor: np.ndarray, vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """``(1, 3, H, W)`` or ``(3, H, W)`` model image -> ``(H, W, 3)`` uint8, clipped to ``[vmin, vmax]``."""
    chw = tensor[0] if tensor.ndim == 4 else tensor
    scaled = np.multiply(np.subtract(chw.transpose(1, 2, 0), vmin), 255.0 / (vmax - vmin))  # one HWC copy
    np.clip(scaled, 0.0, 255.0, out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8)


class JointScaler:
    """Per-joint min-max normalization between raw joint units and the model's ``[vmin, vmax]``.

    Args:
        joint_min, joint_max: per-joint bounds (raw units); every ``max > min``.
        vmin, vmax: normalized range.

    Raises:
        InputError: mismatched lengths or a zero-width / inverted bound.
    """

    def __init__(self, joint_min: Sequence[float], joint_max: Sequence[float], vmin: float = 0.0, vmax: float = 1.0):
        lo = np.asarray(joint_min, dtype=np.float64)
        hi = np.asarray(joint_max, dtype=np.float64)
        if lo.shape != hi.shape or lo.ndim != 1:
            raise InputError(f"joint bounds must be two equal-length vectors, got {lo.shape} and {hi.shape}")
        bad = np.nonzero(~(hi > lo))[0]
        if bad.size:
            raise InputError(
                f"joint bounds have zero width or are inverted for joint index(es) {bad.tolist()} "
                f"(min {lo[bad].tolist()}, max {hi[bad].tolist()}); min-max normalization would divide by zero"
            )
        self.min = lo
        self.max = hi
        self.vmin = float(vmin)
        self.vmax = float(vmax)
        self._scale = (self.vmax - self.vmin) / (hi - lo)

    @property
    def dim(self) -> int:
        """Number of joints."""
        return int(self.min.size)

    def normalize(self, q: np.ndarray) -> np.ndarray:
        """Raw joints ``(..., D)`` -> normalized float32."""
        return ((np.asarray(q, dtype=np.float64) - self.min) * self._scale + self.vmin).astype(np.float32)

    def denormalize(self, y: np.ndarray) -> np.ndarray:
        """Normalized joints ``(..., D)`` -> raw units, float64."""
        return (np.asarray(y, dtype=np.float64) - self.vmin) / self._scale + self.min
