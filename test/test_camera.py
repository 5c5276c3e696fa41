"""eipl_trt.camera: raw encodings converted as cv_bridge does, and compressed frames as compressed_image_transport does.

cv_bridge cannot be installed here (it comes with a ROS install, not PyPI), so the OpenCV path is
checked against OpenCV calls with the codes and scaling copied from cv_bridge.cpp
(``getConversionCodes``, ``toCvCopyImpl``) and against small hand-built images whose right answer
is known without OpenCV. Where cv_bridge imports, the two paths are compared pixel for pixel.
"""

from __future__ import annotations

import array

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from eipl_trt.camera import (  # noqa: E402
    RAW_ENCODINGS, backend, convert_array, decode_compressed, decode_message, decode_raw, is_compressed, parse_format,
)
from eipl_trt.errors import InputError  # noqa: E402

#: cv_bridge.cpp getConversionCodes(): source encoding -> (code to RGB, code to BGR).
CV_BRIDGE_CODES = {
    "yuv422": (cv2.COLOR_YUV2RGB_UYVY, cv2.COLOR_YUV2BGR_UYVY),
    "yuv422_yuy2": (cv2.COLOR_YUV2RGB_YUY2, cv2.COLOR_YUV2BGR_YUY2),
    "bayer_rggb8": (cv2.COLOR_BayerBG2RGB, cv2.COLOR_BayerBG2BGR),
    "bayer_bggr8": (cv2.COLOR_BayerRG2RGB, cv2.COLOR_BayerRG2BGR),
    "bayer_gbrg8": (cv2.COLOR_BayerGR2RGB, cv2.COLOR_BayerGR2BGR),
    "bayer_grbg8": (cv2.COLOR_BayerGB2RGB, cv2.COLOR_BayerGB2BGR),
}
EXTENDED = sorted(e for e in RAW_ENCODINGS if e not in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8"))


def _rng() -> np.random.Generator:
    return np.random.default_rng(13)


def _cv_convert_to(values: np.ndarray) -> np.ndarray:
    """cv_bridge's 16 -> 8 bit step, ``convertTo(CV_8U, 255. / 65535.)``, done by OpenCV."""
    return cv2.convertScaleAbs(values.astype(np.float64), alpha=255.0 / 65535.0)


def _padded(image: np.ndarray, pad: int, dtype: str = "<u2") -> tuple[bytes, int]:
    """Message bytes of ``image`` with ``pad`` bytes of padding per row; returns (data, step)."""
    h, w = image.shape[:2]
    raw = np.ascontiguousarray(image).astype(dtype) if image.dtype == np.uint16 else np.ascontiguousarray(image)
    rows = raw.reshape(h, -1).view(np.uint8)
    out = np.concatenate([rows, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    return out.tobytes(), out.shape[1]


# ---------------------------------------------------------------------------------------------- raw
def test_core_encodings_stay_zero_copy_views() -> None:
    img = _rng().integers(0, 256, (5, 7, 3), dtype=np.uint8)
    data, step = _padded(img, 3)
    buf = bytearray(data)
    out = decode_raw(5, 7, "rgb8", step, buf)
    assert out.encoding == "rgb8" and np.array_equal(out.image, img)
    buf[0] = 255 - buf[0]
    assert out.image[0, 0, 0] == buf[0], "a core encoding must be a view of the message bytes"


def test_16_to_8_bit_matches_cv_bridge_scaling_for_every_value() -> None:
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    out = decode_raw(256, 256, "mono16", 512, values.astype("<u2").tobytes(), converter="opencv")
    assert out.encoding == "mono8"
    assert np.array_equal(out.image[:, :, 0], _cv_convert_to(values))
    assert out.image[0, 0, 0] == 0 and out.image[-1, -1, 0] == 255 and out.image[0, 128, 0] == 0  # 128/257 rounds down


@pytest.mark.parametrize("encoding,narrow,channels", [("rgb16", "rgb8", 3), ("bgr16", "bgr8", 3), ("rgba16", "rgba8", 4),
                                                      ("bgra16", "bgra8", 4), ("mono16", "mono8", 1)])
@pytest.mark.parametrize("bigendian", [False, True])
def test_16_bit_colour_keeps_its_order_and_handles_padding_and_byte_order(encoding: str, narrow: str, channels: int,
                                                                           bigendian: bool) -> None:
    img = _rng().integers(0, 65536, (4, 6, channels), dtype=np.uint16)
    data, step = _padded(img, 4, ">u2" if bigendian else "<u2")
    out = decode_raw(4, 6, encoding, step, data, bigendian, channel_order="rgb", converter="opencv")
    assert out.encoding == narrow
    assert np.array_equal(out.image, _cv_convert_to(img.reshape(4, -1)).reshape(4, 6, channels))


@pytest.mark.parametrize("encoding", sorted(CV_BRIDGE_CODES))
@pytest.mark.parametrize("order", ["rgb", "bgr"])
def test_yuv_and_bayer_use_cv_bridges_opencv_codes(encoding: str, order: str) -> None:
    channels = 2 if encoding.startswith("yuv") else 1
    img = _rng().integers(0, 256, (6, 8, channels), dtype=np.uint8)
    data, step = _padded(img, 5)
    out = decode_raw(6, 8, encoding, step, data, channel_order=order, converter="opencv")
    code = CV_BRIDGE_CODES[encoding][0 if order == "rgb" else 1]
    assert out.encoding == f"{order}8"
    assert np.array_equal(out.image, cv2.cvtColor(img if channels == 2 else img[:, :, 0], code))


@pytest.mark.parametrize("alias,name", [("uyvy", "yuv422"), ("yuyv", "yuv422_yuy2")])
def test_new_yuv_names_are_the_old_ones(alias: str, name: str) -> None:
    img = _rng().integers(0, 256, (2, 4, 2), dtype=np.uint8)
    a = decode_raw(2, 4, alias, 8, img.tobytes(), converter="opencv")
    b = decode_raw(2, 4, name, 8, img.tobytes(), converter="opencv")
    assert np.array_equal(a.image, b.image)


def test_yuv422_hand_built_grey_levels_and_byte_layouts() -> None:
    # BT.601 video range: Y 16 is black, 235 white; U = V = 128 is grey. One row, four pixels.
    ys = np.array([16, 235, 126, 126], np.uint8)
    uyvy = np.array([128, ys[0], 128, ys[1], 128, ys[2], 128, ys[3]], np.uint8)
    yuyv = np.array([ys[0], 128, ys[1], 128, ys[2], 128, ys[3], 128], np.uint8)
    a = decode_raw(1, 4, "yuv422", 8, uyvy.tobytes(), converter="opencv").image
    b = decode_raw(1, 4, "yuv422_yuy2", 8, yuyv.tobytes(), converter="opencv").image
    assert np.array_equal(a, b)
    assert a[0, 0].tolist() == [0, 0, 0] and a[0, 1].tolist() == [255, 255, 255]
    assert np.all(np.abs(a[0, 2].astype(int) - round((126 - 16) * 255 / 219)) <= 1)
    # a saturated red in YUV (Y 81, U 90, V 240) comes out red in the order asked for
    red = np.array([90, 81, 240, 81], np.uint8)
    rgb = decode_raw(1, 2, "uyvy", 4, red.tobytes(), channel_order="rgb", converter="opencv").image
    bgr = decode_raw(1, 2, "uyvy", 4, red.tobytes(), channel_order="bgr", converter="opencv").image
    assert rgb[0, 0, 0] > 240 and rgb[0, 0, 1] < 15 and rgb[0, 0, 2] < 15
    assert np.array_equal(bgr, rgb[:, :, ::-1])


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
@pytest.mark.parametrize("bits", [8, 16])
def test_bayer_hand_built_mosaic_of_one_colour(pattern: str, bits: int) -> None:
    """A uniform (R, G, B) scene sampled through each 2x2 filter pattern demosaics back to (R, G, B)."""
    scale = 257 if bits == 16 else 1
    colour = {"r": 200 * scale, "g": 100 * scale, "b": 40 * scale}
    cell = np.array([[colour[pattern[0]], colour[pattern[1]]], [colour[pattern[2]], colour[pattern[3]]]])
    mosaic = np.tile(cell, (4, 5)).astype(np.uint16 if bits == 16 else np.uint8)  # 8 x 10
    data = mosaic.astype("<u2").tobytes() if bits == 16 else mosaic.tobytes()
    out = decode_raw(8, 10, f"bayer_{pattern}{bits}", 10 * bits // 8, data, channel_order="rgb", converter="opencv")
    assert out.encoding == "rgb8"
    assert np.array_equal(out.image[2:-2, 2:-2].reshape(-1, 3), np.tile([200, 100, 40], (4 * 6, 1)))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(height=2, width=4, encoding="nv12", step=8, data=bytes(16)), "unsupported image encoding 'nv12'"),
        (dict(height=2, width=4, encoding="yuv422", step=6, data=bytes(16)), "smaller than width"),
        (dict(height=2, width=4, encoding="mono16", step=8, data=bytes(10)), "truncated"),
        (dict(height=0, width=4, encoding="bayer_rggb8", step=4, data=b""), "empty"),
        (dict(height=2, width=3, encoding="yuv422", step=6, data=bytes(12)), "OpenCV cannot convert"),
    ],
)
def test_bad_raw_frames_are_input_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        decode_raw(**kwargs, converter="opencv")


def test_without_opencv_16_bit_still_works_and_yuv_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "_import_cv2", lambda: None)
    assert decode_raw(1, 2, "mono16", 4, np.array([0, 65535], "<u2").tobytes(), converter="opencv").image.ravel(
    ).tolist() == [0, 255]
    with pytest.raises(InputError, match=r"pip install eipl_trt\[camera\]"):
        decode_raw(1, 2, "yuv422", 4, bytes(4), converter="opencv")
    with pytest.raises(InputError, match=r"decoding JPEG.*pip install eipl_trt\[camera\]"):
        decode_compressed("jpeg", cv2.imencode(".jpg", np.zeros((4, 4, 3), np.uint8))[1])


def test_converter_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "_bridge", lambda: None)
    assert backend.converter_name() == "opencv"
    monkeypatch.setenv("EIPL_TRT_CAMERA_CONVERTER", "cv_bridge")
    with pytest.raises(InputError, match="cv_bridge converter was asked for"):
        backend.converter_name()
    with pytest.raises(InputError, match="must be one of"):
        backend.converter_name("pillow")


def test_convert_array_checks_layout() -> None:
    with pytest.raises(InputError, match=r"must be \(H, W, 2\) uint8"):
        convert_array(np.zeros((2, 4, 3), np.uint8), "yuv422")
    with pytest.raises(InputError, match="channel_order"):
        convert_array(np.zeros((2, 4, 2), np.uint8), "yuv422", "hsv")


@pytest.mark.skipif(backend.cv_bridge() is None, reason="cv_bridge is not installed (it comes with a ROS install)")
def test_cv_bridge_and_opencv_paths_agree() -> None:
    for encoding in EXTENDED:
        channels = 2 if "yu" in encoding or encoding == "uyvy" else 1 if "bayer" in encoding or "mono" in encoding else (
            4 if "a16" in encoding else 3)
        wide = encoding.endswith("16")
        img = _rng().integers(0, 65536 if wide else 256, (6, 8, channels), dtype=np.uint16 if wide else np.uint8)
        for bigendian in (False, True):
            data, step = _padded(img, 6, ">u2" if bigendian else "<u2")
            for order in ("rgb", "bgr"):
                a = decode_raw(6, 8, encoding, step, data, bigendian, channel_order=order, converter="cv_bridge")
                b = decode_raw(6, 8, encoding, step, data, bigendian, channel_order=order, converter="opencv")
                assert a.encoding == b.encoding, encoding
                assert np.array_equal(a.image, b.image), (encoding, order, bigendian)


# ---------------------------------------------------------------------------------------- compressed
@pytest.mark.parametrize(
    "fmt,expected",
    [
        ("rgb8; jpeg compressed bgr8", ("jpeg", "rgb8", True)),
        ("bgr8; png compressed bgr8", ("png", "bgr8", True)),
        ("rgb8; png compressed rgb8", ("png", "rgb8", False)),
        ("mono8; jpeg compressed mono8", ("jpeg", "mono8", False)),
        ("bayer_rggb8; png compressed ", ("png", "bayer_rggb8", False)),
        ("jpeg", ("jpeg", "", False)),
        ("jpg", ("jpeg", "", False)),
        ("PNG", ("png", "", False)),
        ("", ("", "", False)),
    ],
)
def test_format_strings(fmt: str, expected: tuple) -> None:
    assert tuple(parse_format(fmt)) == expected


@pytest.mark.parametrize("fmt,match", [("16UC1; compressedDepth png", "compressedDepth"),
                                       ("rgb8; tiff compressed ", "tiff"), ("theora", "theora")])
def test_unsupported_formats(fmt: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        parse_format(fmt)


def _smooth(h: int = 24, w: int = 32) -> np.ndarray:
    """A smooth BGR test picture (JPEG keeps it within a few levels)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (h + w - 2)], -1).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["rgb8; jpeg compressed bgr8", "bgr8; jpeg compressed bgr8", "jpeg"])
def test_jpeg_as_compressed_image_transport_writes_it(fmt: str) -> None:
    bgr = _smooth()
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    out = decode_compressed(fmt, array.array("B", data.tobytes()))
    assert out.encoding == "bgr8"
    assert np.array_equal(out.image, cv2.imdecode(data, cv2.IMREAD_UNCHANGED))  # exactly imdecode's pixels
    assert np.abs(out.image.astype(int) - bgr).mean() < 2.0


def test_png_channel_orders_depths_and_mono() -> None:
    bgr = _smooth()
    png = cv2.imencode(".png", bgr)[1]
    assert decode_compressed("rgb8; png compressed bgr8", png).encoding == "bgr8"
    same = decode_compressed("rgb8; png compressed rgb8", png)  # channels stored as given: RGB data
    assert same.encoding == "rgb8" and np.array_equal(same.image, bgr)
    rgba = decode_compressed("bgra8; png compressed bgra8", cv2.imencode(".png", np.dstack([bgr, bgr[:, :, :1]]))[1])
    assert rgba.encoding == "bgra8" and rgba.image.shape[2] == 4
    mono = decode_compressed("mono8; jpeg compressed mono8", cv2.imencode(".png", bgr[:, :, 1])[1])
    assert mono.encoding == "mono8" and np.array_equal(mono.image[:, :, 0], bgr[:, :, 1])
    wide = (bgr.astype(np.uint16) * 257 + 100).astype(np.uint16)
    deep = decode_compressed("bgr16; png compressed bgr16", cv2.imencode(".png", wide)[1])
    assert deep.encoding == "bgr8" and np.array_equal(deep.image, _cv_convert_to(wide.reshape(24, -1)).reshape(bgr.shape))


def test_png_bayer_mosaic_is_demosaiced() -> None:
    mosaic = np.tile(np.array([[200, 100], [100, 40]], np.uint8), (4, 5))
    out = decode_compressed("bayer_rggb8; png compressed ", cv2.imencode(".png", mosaic)[1], channel_order="rgb")
    assert out.encoding == "rgb8" and out.image[3, 4].tolist() == [200, 100, 40]


@pytest.mark.parametrize("cut", ["half", "no_eoi", "header"])
@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_and_corrupt_data_are_input_errors(cut: str, ext: str) -> None:
    data = cv2.imencode(ext, _smooth())[1].tobytes()
    bad = {"half": data[: len(data) // 2], "no_eoi": data[:-2], "header": b"\x00" * 8 + data[8:]}[cut]
    with pytest.raises(InputError, match="truncated|neither JPEG nor PNG"):
        decode_compressed("rgb8; jpeg compressed bgr8", bad)


def test_garbage_after_a_valid_header_is_an_input_error() -> None:
    data = bytearray(cv2.imencode(".png", _smooth())[1].tobytes())
    data[20:60] = bytes(40)  # IHDR chunk destroyed, still ends with IEND
    with pytest.raises(InputError, match="could not decode"):
        decode_compressed("png", bytes(data))
    with pytest.raises(InputError, match="no data"):
        decode_compressed("jpeg", b"")


def test_zero_padded_mjpeg_frames_and_trailing_bytes_decode() -> None:
    data = cv2.imencode(".jpg", _smooth())[1].tobytes()
    for tail in (bytes(64), b"trailer\x01\x02"):
        assert decode_compressed("jpeg", data + tail).image.shape == (24, 32, 3)


def test_a_jpeg_cut_after_an_embedded_thumbnail_is_still_truncated() -> None:
    """An EXIF thumbnail brings its own FF D9 near the start; only an EOI after the main scan counts."""
    thumb = cv2.imencode(".jpg", _smooth(8, 8))[1].tobytes()
    main = cv2.imencode(".jpg", _smooth())[1].tobytes()
    app1 = b"Exif\x00\x00" + thumb  # not a real EXIF block, but libjpeg skips APPn segments by length
    segment = b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1
    whole = main[:2] + segment + main[2:]
    assert decode_compressed("jpeg", whole).image.shape == (24, 32, 3)
    with pytest.raises(InputError, match="truncated"):
        decode_compressed("jpeg", whole[: len(whole) - 200])


def test_messages_of_either_type_rclpy_and_rosbags() -> None:
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_JAZZY)
    data = cv2.imencode(".png", _smooth())[1]
    msg = ts.types["sensor_msgs/msg/CompressedImage"](header=None, format="bgr8; png compressed bgr8", data=data)
    assert is_compressed(msg) and decode_message(msg).encoding == "bgr8"
    img = ts.types["sensor_msgs/msg/Image"](header=None, height=1, width=2, encoding="yuv422", is_bigendian=0, step=4,
                                            data=np.array([128, 16, 128, 235], np.uint8))
    assert not is_compressed(img)
    assert decode_message(img, "rgb").image[0].tolist() == [[0, 0, 0], [255, 255, 255]]
    from sensor_msgs.msg import CompressedImage, Image

    assert is_compressed(CompressedImage()) and not is_compressed(Image())
