"""ROS message <-> numpy conversions and the attention overlay (real message classes, no DDS)."""

from __future__ import annotations

import array

import numpy as np
import pytest
from builtin_interfaces.msg import Time as TimeMsg
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from eipl_trt.errors import InputError
from eipl_trt.ros import convert


def padded_image_msg(pixels: np.ndarray, encoding: str, pad: int) -> Image:
    h, w = pixels.shape[:2]
    rows = np.concatenate([pixels.reshape(h, -1), np.full((h, pad), 255, np.uint8)], axis=1)
    return Image(header=Header(stamp=TimeMsg(sec=12, nanosec=500_000_000), frame_id="cam"), height=h, width=w,
                 encoding=encoding, step=rows.shape[1], data=array.array("B", rows.tobytes()))


def test_frame_from_msg_strips_padding_and_keeps_the_header() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    frame = convert.frame_from_msg(padded_image_msg(pixels, "bgr8", pad=3), receipt_s=13.0)
    np.testing.assert_array_equal(frame.image, pixels)
    assert frame.encoding == "bgr8" and frame.stamp_s == 12.5 and frame.receipt_s == 13.0
    assert frame.header.frame_id == "cam"


def test_frame_from_msg_rejects_bad_messages() -> None:
    msg = padded_image_msg(np.zeros((4, 4, 3), np.uint8), "rgb8", pad=0)
    msg.encoding = "nv12"
    with pytest.raises(InputError, match="unsupported image encoding 'nv12'"):
        convert.frame_from_msg(msg, 0.0)


def test_frame_from_msg_converts_camera_encodings_and_compressed_frames() -> None:
    cv2 = pytest.importorskip("cv2")
    from sensor_msgs.msg import CompressedImage

    mosaic = np.tile(np.array([[200, 100], [100, 40]], np.uint8), (4, 4))[:, :, None]  # RGGB of one colour
    frame = convert.frame_from_msg(padded_image_msg(mosaic, "bayer_rggb8", pad=2), 13.0, channel_order="bgr")
    assert frame.encoding == "bgr8" and frame.image[3, 3].tolist() == [40, 100, 200] and frame.decode_s > 0
    pixels = np.random.default_rng(2).integers(0, 256, (6, 4, 3), dtype=np.uint8)
    msg = CompressedImage(header=Header(stamp=TimeMsg(sec=3), frame_id="cam"), format="rgb8; png compressed bgr8",
                          data=array.array("B", cv2.imencode(".png", pixels)[1].tobytes()))
    frame = convert.frame_from_msg(msg, 4.0)
    np.testing.assert_array_equal(frame.image, pixels)
    assert frame.encoding == "bgr8" and frame.stamp_s == 3.0 and frame.header.frame_id == "cam"
    msg.data = msg.data[:-20]
    with pytest.raises(InputError, match="truncated"):
        convert.frame_from_msg(msg, 4.0)


def test_image_msg_round_trip() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (6, 4, 3), dtype=np.uint8)
    msg = convert.image_msg(pixels, "rgb8", Header(frame_id="x"))
    assert (msg.height, msg.width, msg.step, msg.encoding) == (6, 4, 12, "rgb8")
    np.testing.assert_array_equal(convert.frame_from_msg(msg, 0.0).image, pixels)


def test_command_messages() -> None:
    q = np.array([0.1, -0.2, 0.3])
    forward = convert.forward_command_msg(q)
    assert list(forward.data) == [0.1, -0.2, 0.3] and forward.layout.dim[0].size == 3
    traj = convert.trajectory_msg(["a", "b", "c"], q, 0.1)
    assert list(traj.joint_names) == ["a", "b", "c"] and len(traj.points) == 1
    assert list(traj.points[0].positions) == [0.1, -0.2, 0.3]
    assert (traj.points[0].time_from_start.sec, traj.points[0].time_from_start.nanosec) == (0, 100_000_000)
    assert (traj.header.stamp.sec, traj.header.stamp.nanosec) == (0, 0)  # "start now" for the controller
    state = convert.joint_state_msg(["a", "b", "c"], q, Header(frame_id="base"))
    assert list(state.name) == ["a", "b", "c"] and list(state.position) == [0.1, -0.2, 0.3]
    assert list(state.velocity) == [] and state.header.frame_id == "base"
    timing = convert.named_values_msg({"inference_ms": 1.5, "step_ms": 2.0}, Header())
    assert dict(zip(timing.name, timing.position)) == {"inference_ms": 1.5, "step_ms": 2.0}


def test_polygon_points_are_pixels() -> None:
    msg = convert.polygon_msg(np.array([[10.5, 3.25], [0.0, 63.0]], np.float32), Header(frame_id="cam"))
    assert [(p.x, p.y, p.z) for p in msg.polygon.points] == [(10.5, 3.25, 0.0), (0.0, 63.0, 0.0)]


def test_draw_points_marks_enc_discs_and_dec_rings() -> None:
    image = np.zeros((40, 60, 3), np.uint8)
    out = convert.draw_points(image, np.array([[10.0, 20.0]]), np.array([[45.0, 15.0], [np.nan, 1.0]]), radius_px=3)
    assert image.max() == 0  # the input is not modified
    assert tuple(out[20, 10]) == convert.ENC_COLOR  # disc centre filled
    assert tuple(out[15, 45]) == (0, 0, 0)  # ring centre empty
    assert tuple(out[15, 45 + 4]) == convert.DEC_COLOR or tuple(out[15, 45 + 5]) == convert.DEC_COLOR
    assert tuple(out[0, 0]) == (0, 0, 0)
    edge = convert.draw_points(image, np.array([[-1.0, 39.5]]), None)  # clipped at the border, no error
    assert edge[39, 0].any()


@pytest.mark.parametrize("t_s,sec,nanosec", [(2000.1, 2000, 100_000_000), (12.5, 12, 500_000_000),
                                             (3.9999999999, 4, 0), (0.0, 0, 0)])
def test_seconds_to_stamp_rounds_to_the_nanosecond_and_carries_into_seconds(t_s: float, sec: int, nanosec: int) -> None:
    stamp = convert.s_to_stamp(t_s)
    assert (stamp.sec, stamp.nanosec) == (sec, nanosec)
    assert abs(convert.stamp_to_s(stamp) - t_s) < 1e-9
