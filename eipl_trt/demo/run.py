"""``make demo``: the node on ONNX Runtime, fed a recorded rosbag over ROS 2, with a summary.

What it does, end to end, exactly as on a robot:

1. starts ``eipl_trt_node`` as its own process (the console script, as the launch file would) with
   the bundled SARNN on ONNX Runtime, ``trigger: image`` (one step per camera frame);
2. reads the bundled sample bag (or ``--bag``; raw or compressed camera frames) with ``rosbags`` and
   publishes its ``sensor_msgs/Image`` (``CompressedImage`` for a compressed bag) and
   ``sensor_msgs/JointState`` messages over DDS at the recorded rate, calling ``~/reset`` at each
   episode start (the bag's episodes are separated by pauses); the joint states that follow a frame
   wait (at most 0.5 s) for its prediction, so that on a loaded machine too each frame is stepped on
   the joints recorded before it;
3. listens to ``~/predicted_joint_states`` and ``~/timing``;
4. prints frames, step latency p50/p99, and the joint MSE of the predictions against the joints
   recorded one control period later, beside the hold-last baseline; writes ``summary.json``,
   ``predictions.csv`` and ``demo.png`` into ``--out``.

Needs rclpy (the PyPI wheels or a ROS install), rosbags and matplotlib; not torch.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from eipl_trt.common.atomic import write_bytes_atomic, write_text_atomic
from eipl_trt.common.progress import Progress
from eipl_trt.demo.report import DemoResult, plot_png, print_summary, summarize
from eipl_trt.errors import EipltrtError
from eipl_trt.paths import DEFAULT_MODEL, resolve_model, share_dir

__all__ = ["main", "DemoResult"]

NODE_NAME = "eipl_trt"
_FRAME_LAG_S = 0.01  # publish a frame this long after the joint states stamped with it (s; joints come at 50 Hz)
_FIRST_FRAME_LAG_S = 0.05  # ... and the first frame of an episode this long after (s)
SAMPLE_BAG = "data/pusher_sample"


def _node_command(model: str, extra: Sequence[str]) -> list[str]:
    script = Path(sys.executable).with_name("eipl_trt_node")
    base = [str(script)] if script.is_file() else [sys.executable, "-m", "eipl_trt.ros.node"]
    return [*base, "--ros-args", "-p", f"model:={model}", "-p", "backend:=onnxruntime",
            "-p", "trigger:=image", "-p", "max_input_age:=2.0", *extra]


def _stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _load_bag(path: Path) -> tuple[list[tuple[int, str, Any]], list[slice], Any]:
    """All Image and JointState messages in stamp order, the episode spans, and the bag streams."""
    from eipl_trt.bagio import read_bag, split_episodes

    streams = read_bag(path)
    order = np.argsort(streams.image_stamps, kind="stable")
    events: list[tuple[int, str, Any]] = []
    for i in order:
        events.append((int(round(streams.image_stamps[i] * 1e9)), "image", i))
    for j in range(len(streams.joint_stamps)):
        events.append((int(round(streams.joint_stamps[j] * 1e9)), "joints", j))
    events.sort(key=lambda e: (e[0], 0 if e[1] == "joints" else 1))  # joints first at equal stamps
    return events, split_episodes(streams.image_stamps, 1.0), streams


class _Client:
    """The test-bench side: publishers, subscribers and the reset client, spun in a thread."""

    def __init__(self, namespace: str, joint_names: Sequence[str], compressed: bool = False):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import CompressedImage, Image, JointState
        from std_srvs.srv import Trigger

        rclpy.init()
        self.rclpy = rclpy
        self.node = rclpy.create_node("eipl_trt_demo_player")
        self.Image, self.JointState = Image, JointState
        self.CompressedImage = CompressedImage if compressed else None
        self.image_pub = (self.node.create_publisher(CompressedImage, "image_raw/compressed", 10) if compressed
                          else self.node.create_publisher(Image, "image_raw", 10))
        self.joint_pub = self.node.create_publisher(JointState, "joint_states", 50)
        self.reset = self.node.create_client(Trigger, f"{namespace}/reset")
        self.trigger_req = Trigger.Request()
        from rcl_interfaces.srv import GetParameters

        self.barrier = self.node.create_client(GetParameters, f"{namespace}/get_parameters")
        self.barrier_req = GetParameters.Request(names=[])
        self.result = DemoResult()
        self.lock = threading.Lock()
        self.model_joints = list(joint_names)
        self.pred_sub = self.node.create_subscription(
            JointState, f"{namespace}/predicted_joint_states", self._on_prediction, 100)
        self.node.create_subscription(JointState, f"{namespace}/timing", self._on_timing, 100)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_prediction(self, msg: Any) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        joints = np.array([msg.position[index[n]] for n in self.model_joints])
        with self.lock:
            self.result.predictions[_stamp_ns(msg.header)] = joints

    def _on_timing(self, msg: Any) -> None:
        with self.lock:
            self.result.timings.append(dict(zip(msg.name, msg.position)))

    def wait_ready(self, timeout_s: float, node_proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if node_proc.poll() is not None:
                raise EipltrtError(f"the node exited with code {node_proc.returncode} before it was ready; see its log")
            if (self.reset.service_is_ready() and self.barrier.service_is_ready()
                    and self.image_pub.get_subscription_count() > 0
                    and self.joint_pub.get_subscription_count() > 0 and self.pred_sub.get_publisher_count() > 0):
                time.sleep(1.5)  # discovery is per endpoint pair: let the node's side match ours too
                return
            time.sleep(0.1)
        raise EipltrtError(f"the node did not come up within {timeout_s:.0f} s (no ~/reset service or image subscriber)")

    def wait_joints_delivered(self, timeout_s: float = 0.5) -> None:
        """Wait (briefly) until the node has handled every joint state sent so far.

        A round trip to the node's ``get_parameters`` service: the node runs its callbacks in the
        order their messages reached it, and they reach it in the order this process sent them, so
        its answer comes after its ``joint_states`` callback ran. (The node's joint reader is best
        effort: ``wait_for_all_acked`` would return at once.) Without it a frame could step on the
        previous joints whenever the node is slow to take the joints; the replay then scores a step
        the node took on stale joints. Gives up after ``timeout_s``.
        """
        future = self.barrier.call_async(self.barrier_req)
        deadline = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.0005)

    def wait_prediction(self, stamp_ns: int, timeout_s: float = 0.5) -> None:
        """Wait (briefly) for the node's prediction for the frame stamped ``stamp_ns``.

        The node steps on a frame with the latest joints it holds *when the step runs*; on a loaded
        machine the step can start after the next joint states arrived, and the replay would then
        score a step on joints recorded after the frame. Holding those joint states back until the
        prediction came (or ``timeout_s`` passed: a frame lost in transit never gets one) keeps
        every frame paired with the joints recorded before it.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if stamp_ns in self.result.predictions:
                    return
            time.sleep(0.0005)

    def call_reset(self) -> None:
        future = self.reset.call_async(self.trigger_req)
        deadline = time.monotonic() + 5.0
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.005)
        if not future.done() or not future.result().success:
            raise EipltrtError("the node did not answer ~/reset")

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown()


def _publish(client: _Client, streams: Any, events: list[tuple[int, str, Any]], episodes: list[slice],
             speed: float, gap_s: float, progress: bool) -> None:
    starts = sorted(int(round(streams.image_stamps[s.start] * 1e9)) - 1_000_000 for s in episodes)
    bar = Progress(len(streams.image_stamps), "replaying", "frame", enabled=progress)
    next_joint = _next_joint_stamps(events)
    t_wall = time.monotonic()
    t_bag = events[0][0]
    last_frame: int | None = None
    for i, (stamp, kind, index) in enumerate(events):
        if starts and stamp >= starts[0]:
            # a new episode (1 ms before its first image, so its first joint states count too):
            # compress the recorded pause to gap_s and zero the node's recurrent state
            t_bag = starts.pop(0)
            t_wall = time.monotonic() + gap_s
            while time.monotonic() < t_wall:
                time.sleep(0.01)
            client.call_reset()
        # A camera frame goes out a few ms after the joint states of the same instant, so the node
        # (which steps on the frame with the latest joints it holds) sees the joints first even
        # though DDS does not order messages across topics; the first frame of an episode waits
        # longer, since the joints the node holds before it come from the previous episode.
        lag = (_FIRST_FRAME_LAG_S if kind == "image" and stamp - t_bag < 2_000_000 else
               _FRAME_LAG_S if kind == "image" else 0.0)
        if kind == "image" and next_joint[i] is not None:
            # never so late that the next joint states go out right behind the frame: the node would
            # step on whichever of the two it handled first
            lag = min(lag, max(0.0, (next_joint[i] - stamp) / 1e9 / speed / 2))
        delay = t_wall + (stamp - t_bag) / 1e9 / speed + lag - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if kind == "image":
            client.wait_joints_delivered()
            client.image_pub.publish(_image_msg(client, streams, index, stamp))
            client.result.published_frames += 1
            last_frame = stamp
            bar.update(1)
        else:
            if last_frame is not None:
                client.wait_prediction(last_frame)  # the frame before these joints steps on the joints before it
                last_frame = None
            client.joint_pub.publish(_joint_msg(client, streams, index, stamp))
    bar.close()


def _next_joint_stamps(events: Sequence[tuple[int, str, Any]]) -> list[int | None]:
    """For each event, the stamp (ns) of the first joint_states event after it (``None`` at the end)."""
    out: list[int | None] = [None] * len(events)
    upcoming: int | None = None
    for i in range(len(events) - 1, -1, -1):
        out[i] = upcoming
        if events[i][1] != "image":
            upcoming = events[i][0]
    return out


def _header(stamp_ns: int, frame: str) -> Any:
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    return Header(stamp=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000), frame_id=frame)


def _image_msg(client: _Client, streams: Any, index: int, stamp: int) -> Any:
    img = np.ascontiguousarray(streams.images[index])
    h, w = img.shape[:2]
    if client.CompressedImage is not None:  # lossless PNG of the decoded frame: the node sees the bag's pixels
        from eipl_trt.camera import encode_compressed

        fmt, data = encode_compressed(img, f"{streams.channel_order}8", "png")
        return client.CompressedImage(header=_header(stamp, "camera_optical_frame"), format=fmt, data=data)
    return client.Image(header=_header(stamp, "camera_optical_frame"), height=h, width=w,
                        encoding=f"{streams.channel_order}8", is_bigendian=0, step=w * 3, data=img.tobytes())


def _joint_msg(client: _Client, streams: Any, index: int, stamp: int) -> Any:
    row = streams.joint_positions[index]
    keep = ~np.isnan(row)
    names = [n for n, k in zip(streams.joint_names, keep) if k]
    return client.JointState(header=_header(stamp, ""), name=names, position=[float(v) for v in row[keep]])


def run_demo(model: str, bag: Path, out: Path, *, speed: float = 1.0, gap_s: float = 0.5,
             progress: bool = True, node_args: Sequence[str] = (), image_transport: str = "auto") -> dict[str, Any]:
    """Run the whole demo and return the summary (see module docstring).

    ``image_transport``: ``raw`` publishes sensor_msgs/Image, ``compressed`` CompressedImage (PNG of
    the bag's decoded frames) with the node's ``image_transport: compressed``; ``auto`` = compressed
    when the bag's camera topic is compressed.
    """
    spec = resolve_model(model)
    events, episodes, streams = _load_bag(bag)
    compressed = image_transport == "compressed" or (image_transport == "auto" and "compressed" in streams.encoding)
    if compressed:
        node_args = [*node_args, "-p", "image_transport:=compressed"]
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "node.log"
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
    os.environ["ROS_DOMAIN_ID"] = env["ROS_DOMAIN_ID"]
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(_node_command(model, node_args), stdout=log_file,
                                stderr=subprocess.STDOUT, env=env)
        client = None
        try:
            client = _Client(f"/{NODE_NAME}", spec.joint_names, compressed)
            client.wait_ready(60.0, proc)
            _publish(client, streams, events, episodes, speed, gap_s, progress)
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline and len(client.result.predictions) < client.result.published_frames:
                time.sleep(0.05)
        finally:
            if client is not None:
                client.close()
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    result = client.result
    summary = summarize(result, streams, episodes, spec.joint_names, spec.rate_hz)
    summary.update({"model": str(spec.directory), "bag": str(bag), "episodes": len(episodes),
                    "node_exit_code": proc.returncode, "backend": "onnxruntime", "trigger": "image",
                    "image_transport": "compressed" if compressed else "raw"})
    rows = ["image_stamp_ns," + ",".join(spec.joint_names)]
    rows += [f"{k}," + ",".join(f"{v:.9g}" for v in result.predictions[k]) for k in sorted(result.predictions)]
    write_text_atomic(out / "predictions.csv", "\n".join(rows) + "\n")
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_bytes_atomic(out / "demo.png", plot_png(result, streams, spec.joint_names, spec.period_s))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m eipl_trt.demo`` (what ``make demo`` runs)."""
    parser = argparse.ArgumentParser(prog="eipl_trt.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="bundled model name or directory (default %(default)s)")
    parser.add_argument("--bag", type=Path, default=None, help="rosbag2 to replay (default: the bundled sample bag)")
    parser.add_argument("--speed", type=float, default=1.0, help="playback speed factor (default %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("results/demo"), help="output directory (default %(default)s)")
    parser.add_argument("--image-transport", choices=("auto", "raw", "compressed"), default="auto",
                        help="frames to the node as Image or CompressedImage (default: as in the bag)")
    args = parser.parse_args(argv)
    try:
        bag = args.bag or share_dir() / SAMPLE_BAG
        summary = run_demo(args.model, bag, args.out, speed=args.speed, image_transport=args.image_transport)
    except EipltrtError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print_summary(summary, args.out)
    return 0 if summary["predictions_received"] > 0 else 1
