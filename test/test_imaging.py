"""Image decoding, channel order, resize parity with OpenCV, normalization."""

from __future__ import annotations

import numpy as np
import pytest

from eipl_trt.errors import InputError
from eipl_trt.imaging import (
    JointScaler,
    Resizer,
    decode_image,
    image_to_tensor,
    resize_bilinear,
    tensor_to_image,
    to_channel_order,
)


def _rgb(h: int = 6, w: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
@pytest.mark.parametrize("padding", [0, 3])
def test_decode_handles_every_encoding_and_row_padding(encoding: str, padding: int) -> None:
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}[encoding]
    h, w = 4, 5
    pixels = np.arange(h * w * channels, dtype=np.uint8).reshape(h, w, channels)
    step = w * channels + padding
    rows = np.full((h, step), 0xEE, np.uint8)
    rows[:, : w * channels] = pixels.reshape(h, -1)
    out = decode_image(h, w, encoding, step, rows.tobytes())
    np.testing.assert_array_equal(out, pixels)


def test_same_pixels_in_every_encoding_give_the_same_rgb() -> None:
    rgb = _rgb()
    bgr = rgb[:, :, ::-1].copy()
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], axis=2)
    bgra = np.concatenate([bgr, np.full(rgb.shape[:2] + (1,), 9, np.uint8)], axis=2)
    for image, enc in ((rgb, "rgb8"), (bgr, "bgr8"), (rgba, "rgba8"), (bgra, "bgra8")):
        np.testing.assert_array_equal(to_channel_order(image, enc, "rgb"), rgb)
        np.testing.assert_array_equal(to_channel_order(image, enc, "bgr"), bgr)
    mono = rgb[:, :, 0]
    np.testing.assert_array_equal(to_channel_order(mono, "mono8", "bgr"), np.repeat(mono[:, :, None], 3, axis=2))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((4, 5, "yuv422", 10, bytes(40)), "unsupported image encoding 'yuv422'"),
        ((4, 5, "rgb8", 14, bytes(60)), "step 14 is smaller than width"),
        ((4, 5, "rgb8", 15, bytes(50)), "truncated"),
        ((0, 5, "rgb8", 15, b""), "empty"),
    ],
)
def test_decode_rejects_bad_messages(args: tuple, match: str) -> None:
    with pytest.raises(InputError, match=match):
        decode_image(*args)


@pytest.mark.parametrize(
    ("image", "encoding", "match"),
    [
        (np.zeros((4, 4, 3), np.float32), "rgb8", "must be uint8"),
        (np.zeros((4, 4, 4), np.uint8), "rgb8", r"shape \(H, W, 3\)"),
        (np.zeros((4, 4, 3), np.uint8), "16UC1", "unsupported image encoding"),
        (np.zeros((0, 4, 3), np.uint8), "rgb8", "empty"),
    ],
)
def test_channel_order_rejects_bad_arrays(image: np.ndarray, encoding: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        to_channel_order(image, encoding, "rgb")


@pytest.mark.parametrize(("src", "dst"), [((128, 128), (64, 64)), ((480, 640), (64, 64)), ((50, 70), (128, 128)), ((33, 17), (20, 40))])
def test_resize_matches_opencv_inter_linear(src: tuple[int, int], dst: tuple[int, int]) -> None:
    cv2 = pytest.importorskip("cv2")
    image = np.random.default_rng(1).integers(0, 256, (*src, 3), dtype=np.uint8)
    ref_float = cv2.resize(image.astype(np.float32), (dst[1], dst[0]), interpolation=cv2.INTER_LINEAR)
    ours_float = resize_bilinear(image.astype(np.float32), dst)
    np.testing.assert_allclose(ours_float, ref_float, atol=1e-3)
    # OpenCV's uint8 path uses 11-bit fixed-point weights, so it may differ by one grey level.
    ref_u8 = cv2.resize(image, (dst[1], dst[0]), interpolation=cv2.INTER_LINEAR)
    diff = np.abs(resize_bilinear(image, dst).astype(int) - ref_u8.astype(int))
    assert diff.max() <= 1


def test_resize_is_identity_at_the_same_size_and_keeps_constants() -> None:
    image = _rgb(8, 8)
    assert resize_bilinear(image, (8, 8)) is image
    flat = np.full((30, 40, 3), 77, np.uint8)
    assert np.all(resize_bilinear(flat, (13, 9)) == 77)


def test_image_tensor_round_trip_and_range() -> None:
    image = _rgb(4, 6)
    tensor = image_to_tensor(image, 0.0, 1.0)
    assert tensor.shape == (1, 3, 4, 6) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[0, 1], image[:, :, 1] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(tensor_to_image(tensor), image)
    shifted = image_to_tensor(image, 0.1, 0.9)
    np.testing.assert_allclose(shifted[0, 0], image[:, :, 0] / 255.0 * 0.8 + 0.1, rtol=1e-6)
    np.testing.assert_array_equal(tensor_to_image(shifted, 0.1, 0.9), image)
    assert tensor_to_image(np.full((3, 2, 2), 5.0, np.float32)).max() == 255


def test_joint_scaler_round_trip_and_zero_width_error() -> None:
    scaler = JointScaler([-1.0, 0.0], [1.0, 2.0])
    q = np.array([0.5, 0.5])
    np.testing.assert_allclose(scaler.normalize(q), [0.75, 0.25])
    np.testing.assert_allclose(scaler.denormalize(scaler.normalize(q)), q, atol=1e-6)
    with pytest.raises(InputError, match="zero width"):
        JointScaler([0.0, 1.0], [1.0, 1.0])


@pytest.mark.parametrize("shape,size", [((128, 128, 3), (64, 64)), ((96, 128, 3), (64, 64)), ((30, 50, 4), (64, 64))])
def test_resizer_matches_resize_bilinear_bit_for_bit_and_reuses_its_buffers(
    shape: tuple[int, int, int], size: tuple[int, int]
) -> None:
    rng = np.random.default_rng(3)
    resizer = Resizer(size)
    outputs = []
    for _ in range(2):
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        for view in (image[:, :, :3], image[:, :, 2::-1]):  # rgb, and a channel-swapped (strided) view
            got = resizer(view)
            np.testing.assert_array_equal(got, resize_bilinear(view, size).astype(np.float32))
            np.testing.assert_array_equal(image_to_tensor(got), image_to_tensor(resize_bilinear(view, size)))
            outputs.append(got)
    assert all(o is outputs[0] for o in outputs)  # one buffer, no allocation per frame
    same = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    assert resizer(same) is same
