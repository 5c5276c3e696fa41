"""``sensor_msgs/CompressedImage`` (JPEG, PNG) -> uint8 frames, as ``compressed_image_transport`` decodes them.

The ``format`` field says what the bytes are. ``compressed_image_transport`` writes
``"<encoding>; <codec> compressed <target>"``, e.g. ``"rgb8; jpeg compressed bgr8"`` (a colour frame
converted to BGR, then JPEG-encoded), ``"mono8; jpeg compressed mono8"``, ``"bgr16; png compressed
bgr16"`` or ``"bayer_rggb8; png compressed "``; older publishers and other tools write just ``"jpeg"``
or ``"png"``. Decoding follows ``CompressedSubscriber::internalCallback``:

* ``cv2.imdecode(data, cv2.IMREAD_UNCHANGED)``: colour comes out in OpenCV's BGR order, grey as one
  channel, 16-bit PNG as uint16;
* a colour ``<encoding>`` whose target says ``compressed bgr`` holds BGR data; one that does not
  (e.g. ``"rgb8; png compressed rgb8"``) holds the channels as they were, so they are RGB;
* a Bayer ``<encoding>`` holds the mosaic: it is demosaiced as a raw Bayer frame would be;
* without a ``;`` the channel count decides (1: mono8, 3: bgr8, 4: bgra8).

16-bit results are scaled to 8 bit as cv_bridge does (``round(v / 257)``). Colour frames keep the
decoded order (the predictor swaps to the model's with a view), except Bayer, converted straight to
``channel_order``.

Bad data is an :class:`~eipl_trt.errors.InputError`, never a crash: data OpenCV cannot decode, and
JPEG/PNG streams cut short (no end-of-image marker after the last scan / no IEND chunk; libjpeg would
otherwise fill the missing rows with grey and only print a warning).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from eipl_trt.camera.backend import opencv
from eipl_trt.camera.raw import RAW_ENCODINGS, DecodedImage, convert_array, scale_16_to_8
from eipl_trt.errors import InputError

__all__ = ["CODECS", "CompressedFormat", "parse_format", "decode_compressed", "encode_compressed"]

#: The codecs decoded (compressed_image_transport's JPEG and PNG).
CODECS = ("jpeg", "png")
_ALIASES = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png"}
_COLOR = ("rgb8", "bgr8", "rgba8", "bgra8", "rgb16", "bgr16", "rgba16", "bgra16")
_JPEG_SOI, _JPEG_SOS, _JPEG_EOI = b"\xff\xd8", b"\xff\xda", b"\xff\xd9"
_PNG_MAGIC, _PNG_IEND = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"


class CompressedFormat(NamedTuple):
    """A parsed ``CompressedImage.format``.

    Attributes:
        codec: ``jpeg`` or ``png`` (``""`` when the format names none; then the data decides).
        encoding: the original image encoding (``rgb8``, ``mono16``, ...), ``""`` for a plain format.
        compressed_bgr: the colour data was converted to BGR before compression.
    """

    codec: str
    encoding: str
    compressed_bgr: bool


def parse_format(fmt: str) -> CompressedFormat:
    """Parse ``"rgb8; jpeg compressed bgr8"``, ``"jpeg"``, ``"png"``, ``""`` ...

    Raises:
        InputError: a codec other than JPEG/PNG (e.g. ``compressedDepth``, ``tiff``).
    """
    text = (fmt or "").strip()
    encoding, _, rest = text.partition(";") if ";" in text else ("", "", text)
    encoding, rest = encoding.strip(), rest.strip()
    if "compresseddepth" in text.lower():
        raise InputError(f"CompressedImage format {fmt!r} is compressedDepth (a depth image transport); "
                         f"subscribe to a camera's image_raw/compressed topic")
    words = rest.lower().replace(",", " ").split()
    codec = ""
    if words:
        codec = _ALIASES.get(words[0], "")
        if not codec:
            raise InputError(f"CompressedImage format {fmt!r}: codec {words[0]!r} is not supported; eipl_trt decodes "
                             f"{' and '.join(CODECS)} (compressed_image_transport's format parameter)")
    return CompressedFormat(codec, encoding, "compressed bgr" in rest.lower())


def _check_complete(buf: np.ndarray, fmt: str) -> str:
    """The codec the bytes really are; InputError when they are not JPEG/PNG or are cut short."""
    head = buf[:8].tobytes()
    actual = "jpeg" if head.startswith(_JPEG_SOI) else "png" if head.startswith(_PNG_MAGIC) else ""
    if not actual:
        raise InputError(f"CompressedImage data ({buf.size} bytes, format {fmt!r}) is neither JPEG nor PNG "
                         f"(starts with {head[:4].hex()}); the data is corrupt or in another format")
    data = buf.tobytes()
    # JPEG: the end-of-image marker must follow the last start-of-scan (entropy-coded data never holds
    # FF D9 or FF DA: a 0xFF byte there is stuffed with 0x00), so an EXIF thumbnail's EOI near the start
    # does not count, while padding or trailing bytes after the EOI (some MJPEG cameras) are fine.
    if actual == "jpeg" and not data.rfind(_JPEG_EOI) > data.rfind(_JPEG_SOS) > 0:
        raise InputError(f"JPEG data ({buf.size} bytes) has no end-of-image marker after its scan: the frame is "
                         f"truncated (a lost packet or a full buffer); dropped")
    if actual == "png" and _PNG_IEND not in data[-4096:]:
        raise InputError(f"PNG data ({buf.size} bytes) has no IEND chunk: the frame is truncated; dropped")
    return actual


def decode_compressed(fmt: str, data: Any, *, channel_order: str = "bgr") -> DecodedImage:
    """Decode a ``sensor_msgs/CompressedImage``'s ``format`` and ``data`` into a frame.

    Args:
        fmt: the message's ``format`` string.
        data: the compressed bytes (``bytes``, ``array.array``, a uint8 array ...).
        channel_order: ``rgb`` or ``bgr``, the order Bayer frames are demosaiced to (the model's).

    Returns:
        The frame in one of the core encodings (rgb8, bgr8, rgba8, bgra8, mono8).

    Raises:
        InputError: empty, corrupt or truncated data, an unsupported codec or encoding, or
            OpenCV not installed.
    """
    parsed = parse_format(fmt)
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1).view(np.uint8)
    if buf.size == 0:
        raise InputError(f"CompressedImage (format {fmt!r}) has no data; check the camera driver")
    codec = _check_complete(buf, fmt)
    cv2 = opencv(f"decoding {codec.upper()} images (sensor_msgs/CompressedImage)")
    try:
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise InputError(f"OpenCV could not decode the {codec.upper()} data ({buf.size} bytes): "
                         f"{str(exc).strip().splitlines()[-1]}") from None
    if image is None or image.size == 0:
        raise InputError(f"OpenCV could not decode the {codec.upper()} data ({buf.size} bytes, format {fmt!r}); "
                         f"the frame is corrupt; dropped")
    if image.ndim == 2:
        image = image[:, :, None]
    enc = parsed.encoding
    if enc.startswith("bayer_"):
        if enc not in RAW_ENCODINGS or image.shape[2] != 1:
            raise InputError(f"CompressedImage format {fmt!r}: a {enc} mosaic must decode to one channel, "
                             f"got {image.shape[2]}")
        want = np.uint16 if enc.endswith("16") else np.uint8
        return convert_array(image.astype(want, copy=False), enc, channel_order)
    if image.dtype == np.uint16:
        image = scale_16_to_8(image)
    elif image.dtype != np.uint8:
        raise InputError(f"decoded {codec.upper()} has {image.dtype} pixels; only 8- and 16-bit images are supported")
    channels = image.shape[2]
    if channels == 1:
        return DecodedImage(image, "mono8")
    if channels not in (3, 4):
        raise InputError(f"decoded {codec.upper()} has {channels} channels; expected 1, 3 or 4")
    order = "bgr" if (not enc or enc not in _COLOR or parsed.compressed_bgr) else "rgb"
    return DecodedImage(image, f"{order}8" if channels == 3 else f"{order}a8")


def encode_compressed(image: np.ndarray, encoding: str, codec: str = "jpeg", quality: int = 95) -> tuple[str, bytes]:
    """Compress a frame as ``compressed_image_transport``'s publisher does (for writing test and demo bags).

    Colour frames are converted to BGR and tagged ``"<encoding>; <codec> compressed bgr8"``; mono8 is
    ``"mono8; <codec> compressed mono8"`` (JPEG) or ``"mono8; png compressed "`` (PNG).

    Args:
        image: ``(H, W, C)`` uint8 in ``encoding`` (rgb8, bgr8, rgba8, bgra8 or mono8).
        encoding: the frame's encoding.
        codec: ``jpeg`` or ``png``.
        quality: JPEG quality 1..100 (compressed_image_transport's default is 95).

    Returns:
        ``(format, data)`` for a ``sensor_msgs/CompressedImage``.

    Raises:
        InputError: an unsupported encoding or codec, or OpenCV missing.
    """
    from eipl_trt.imaging import to_channel_order

    if codec not in CODECS:
        raise InputError(f"codec {codec!r} must be one of {', '.join(CODECS)}")
    cv2 = opencv(f"encoding {codec.upper()} images")
    if encoding == "mono8":
        pixels, target = (image if image.ndim == 2 else image[:, :, 0]), ("mono8" if codec == "jpeg" else "")
    else:
        pixels, target = np.ascontiguousarray(to_channel_order(image, encoding, "bgr")), "bgr8"
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if codec == "jpeg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    ok, data = cv2.imencode(".jpg" if codec == "jpeg" else ".png", pixels, params)
    if not ok:
        raise InputError(f"OpenCV could not encode a {pixels.shape} image as {codec}")
    return f"{encoding}; {codec} compressed {target}", data.tobytes()
