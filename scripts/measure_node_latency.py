#!/usr/bin/env python3
"""End-to-end latency of the eipl_trt node over DDS, between two processes (issue #3 closing note).

Starts ``eipl_trt_node`` as a subprocess (the command line robot.launch.py produces), publishes
camera images and joint states to it from this process, and times each prediction from the
image's publish time (its header stamp, which the node copies to its outputs) to its receipt.

For each trigger mode (``image``: one step per received image; ``timer``: steps at ``rate_hz``
with the latest inputs):

1. ``--rate`` Hz input (default 30) for ``--duration`` s (default 60): latency p50/p90/p99/max.
2. ``--burst-rate`` Hz input (default 200) for ``--burst-duration`` s: the step rate the node
   holds, how many inputs were dropped rather than queued (node diagnostics ``dropped_images``,
   and published-minus-processed images), latency while overloaded, and the node's resident
   memory (VmRSS from /proc/<pid>/status) before and after.

Prints a Markdown table and writes JSON (atomically) with the environment. Runs in its own
ROS_DOMAIN_ID. Without ``--model`` it exports a random-weight SARNN (64 px) into a temp dir
(needs torch); such a model means nothing except its cost.

Example::

    .venv/bin/python scripts/measure_node_latency.py --duration 60 --output results/node_latency.json
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from eipl_trt.atomic import write_json_atomic
from eipl_trt.launch_args import NodeLaunch, default_params_file, write_overrides_file
from eipl_trt.spec import ModelSpec

NODE = "eipl_trt"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values``, NaN if empty."""
    return float(np.percentile(values, q)) if values else float("nan")


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` (VmRSS), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def environment() -> dict[str, Any]:
    """CPU, OS and package versions (eipl_trt.bench's list plus the ROS side), for the JSON."""
    from rclpy.utilities import get_rmw_implementation_identifier

    from eipl_trt.bench import environment as bench_environment

    env: dict[str, Any] = dict(bench_environment())
    env["rmw"] = get_rmw_implementation_identifier()
    for dist in ("eipl_trt", "ros-rclpy", "ros-rmw-fastrtps-cpp"):
        try:
            env[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            env[dist] = "not installed"
    return env


def node_command(launch: NodeLaunch, overrides_file: Path) -> list[str]:
    """The launch file's command line, with ``python -m eipl_trt.ros.node`` for the console script.

    The module form runs the eipl_trt this interpreter imports (the same code the console script
    of a fresh ``make install`` runs), so a stale console script cannot skew the measurement.
    """
    return [sys.executable, "-m", "eipl_trt.ros.node", *launch.ros_arguments(overrides_file)]


@dataclass
class Phase:
    """Counters of one measurement phase."""

    name: str
    rate_hz: float
    published: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    processed_stamps: set[int] = field(default_factory=set)
    step_ms: list[float] = field(default_factory=list)
    step_times: list[float] = field(default_factory=list)
    inference_ms: list[float] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0


class Harness:
    """The measuring side: publishes images/joints, receives predictions, timing and diagnostics."""

    def __init__(self, spec: ModelSpec, width: int, height: int, domain_id: int) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import Image, JointState

        self.context = rclpy.context.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("latency_probe", context=self.context)
        self.Image, self.JointState = Image, JointState
        self.image_pub = self.node.create_publisher(Image, "/image_raw", qos_profile_sensor_data)
        self.joint_pub = self.node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(JointState, f"/{NODE}/predicted_joint_states", self._on_prediction, reliable)
        self.node.create_subscription(JointState, f"/{NODE}/timing", self._on_timing, reliable)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.joint_names = list(spec.joint_names)
        self.joint_mid = ((np.asarray(spec.joint_min) + np.asarray(spec.joint_max)) / 2).tolist()
        rng = np.random.default_rng(0)
        self.frames = [rng.integers(0, 255, (height, width, 3), dtype=np.uint8).tobytes() for _ in range(8)]
        self.width, self.height = width, height
        self.phase: Phase | None = None
        self.lock = threading.Lock()
        self.diagnostics: dict[str, str] = {}
        self.predictions = 0
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.spinner.start()

    def _now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def _on_prediction(self, msg: Any) -> None:
        received = self._now_ns()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with self.lock:
            self.predictions += 1
            phase = self.phase
            # Timer mode may step twice on one image; its latency is that of the first prediction.
            if phase is not None and stamp >= int(phase.started * 1e9) and stamp not in phase.processed_stamps:
                phase.latencies_ms.append((received - stamp) / 1e6)
                phase.processed_stamps.add(stamp)

    def _on_timing(self, msg: Any) -> None:
        values = dict(zip(msg.name, msg.position))
        with self.lock:
            phase = self.phase
            if phase is not None and "step_ms" in values:
                phase.step_times.append(time.time())
                phase.step_ms.append(values["step_ms"])
                phase.inference_ms.append(values.get("inference_ms", float("nan")))

    def _on_diagnostics(self, msg: Any) -> None:
        values: dict[str, str] = {}
        for status in msg.status:
            if status.name.startswith(f"{NODE}: "):
                values.update({kv.key: kv.value for kv in status.values})
        if values:
            with self.lock:
                self.diagnostics = values

    def publish_once(self, index: int) -> int:
        """Publish joints and one image stamped now (ns); returns the stamp."""
        stamp_ns = self._now_ns()
        stamp = self.node.get_clock().now().to_msg()
        stamp.sec, stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        joints = self.JointState(name=self.joint_names, position=self.joint_mid)
        joints.header.stamp = stamp
        self.joint_pub.publish(joints)
        image = self.Image(height=self.height, width=self.width, encoding="rgb8", step=3 * self.width)
        image.header.stamp = stamp
        image.header.frame_id = "camera"
        image.data = self.frames[index % len(self.frames)]
        self.image_pub.publish(image)
        return stamp_ns

    def run_phase(self, name: str, rate_hz: float, duration_s: float) -> Phase:
        """Publish at ``rate_hz`` for ``duration_s`` (absolute schedule, no drift), then wait 0.5 s."""
        phase = Phase(name=name, rate_hz=rate_hz)
        period = 1.0 / rate_hz
        with self.lock:
            phase.started = time.time()
            self.phase = phase
        start = time.perf_counter()
        count = int(duration_s * rate_hz)
        for i in range(count):
            delay = start + i * period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.publish_once(i)
            phase.published += 1
        phase.ended = time.time()
        time.sleep(0.5)  # let the last predictions arrive
        with self.lock:
            self.phase = None
        return phase

    def wait_for_predictions(self, timeout_s: float) -> bool:
        """Publish at 10 Hz until predictions flow (node configured and active)."""
        deadline = time.monotonic() + timeout_s
        i = 0
        while time.monotonic() < deadline:
            self.publish_once(i)
            i += 1
            time.sleep(0.1)
            with self.lock:
                if self.predictions >= 5:
                    return True
        return False

    def diagnostic(self, key: str) -> str | None:
        with self.lock:
            return self.diagnostics.get(key)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def measure_mode(args: argparse.Namespace, spec: ModelSpec, trigger: str, domain_id: int, tmp: Path) -> dict[str, Any]:
    """Start the node with ``trigger`` and run the steady and burst phases against it."""
    overrides = {"model": str(spec.directory), "trigger": trigger, "rate_hz": float(args.rate_hz),
                 "max_input_age": 0.5, "backend": "onnxruntime"}
    launch = NodeLaunch(params_file=args.params_file or default_params_file(), overrides=overrides)
    command = node_command(launch, write_overrides_file(overrides, tmp))
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id))
    log_path = tmp / f"node_{trigger}.log"
    print(f"[{trigger}] starting: {' '.join(command)}", flush=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    harness = Harness(spec, args.width, args.height, domain_id)
    try:
        if not harness.wait_for_predictions(args.startup_timeout):
            raise SystemExit(f"the node produced no predictions in {args.startup_timeout} s; see {log_path}:\n"
                             + log_path.read_text()[-3000:])
        harness.run_phase("warm-up", args.rate, args.warmup)
        rss_start = rss_mb(proc.pid)
        steady = harness.run_phase("steady", args.rate, args.duration)
        time.sleep(1.2)  # one diagnostics period
        dropped_before = int(harness.diagnostic("dropped_images") or 0)
        rss_before_burst = rss_mb(proc.pid)
        burst = harness.run_phase("burst", args.burst_rate, args.burst_duration)
        time.sleep(1.2)
        dropped_after = int(harness.diagnostic("dropped_images") or 0)
        rss_after_burst = rss_mb(proc.pid)
    finally:
        harness.close()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    burst_s = burst.ended - burst.started
    return {
        "trigger": trigger,
        "rate_hz_param": args.rate_hz if trigger == "timer" else None,
        "steady": summarize(steady),
        "burst": {
            **summarize(burst),
            "step_rate_hz": sum(burst.started <= t <= burst.ended for t in burst.step_times) / burst_s
            if burst_s > 0 else float("nan"),
            "publish_rate_hz": burst.published / burst_s if burst_s > 0 else float("nan"),
            "not_processed": burst.published - len(burst.processed_stamps),
            "node_dropped_images": dropped_after - dropped_before,
        },
        "rss_mb": {"after_warmup": rss_start, "before_burst": rss_before_burst, "after_burst": rss_after_burst},
        "node_exit_code": proc.returncode,
    }


def summarize(phase: Phase) -> dict[str, Any]:
    """Latency percentiles (ms) of the first prediction per image, and the node's own step times."""
    lat = phase.latencies_ms
    return {
        "input_rate_hz": phase.rate_hz,
        "published": phase.published,
        "predictions": len(lat),
        "node_step_ms_p50": percentile(phase.step_ms, 50),
        "node_inference_ms_p50": percentile(phase.inference_ms, 50),
        "latency_ms": {
            "p50": percentile(lat, 50), "p90": percentile(lat, 90), "p99": percentile(lat, 99),
            "max": max(lat) if lat else float("nan"), "mean": statistics.fmean(lat) if lat else float("nan"),
        },
    }


def markdown(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    rows = [
        "| trigger | input | published | images predicted | e2e p50 ms | e2e p99 ms | e2e max ms | "
        "node step p50 ms | step rate Hz | dropped by node | not processed | VmRSS MiB before -> after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        trig = r["trigger"] + (f" ({r['rate_hz_param']:g} Hz)" if r["rate_hz_param"] else "")
        s, b, m = r["steady"], r["burst"], r["rss_mb"]
        rows.append(f"| {trig} | {s['input_rate_hz']:g} Hz, {args.duration:g} s | {s['published']} | "
                    f"{s['predictions']} | {s['latency_ms']['p50']:.2f} | {s['latency_ms']['p99']:.2f} | "
                    f"{s['latency_ms']['max']:.2f} | {s['node_step_ms_p50']:.2f} | | | | "
                    f"{m['after_warmup']:.1f} -> {m['before_burst']:.1f} |")
        rows.append(f"| {trig} | {b['input_rate_hz']:g} Hz, {args.burst_duration:g} s | {b['published']} | "
                    f"{b['predictions']} | {b['latency_ms']['p50']:.2f} | {b['latency_ms']['p99']:.2f} | "
                    f"{b['latency_ms']['max']:.2f} | {b['node_step_ms_p50']:.2f} | {b['step_rate_hz']:.1f} | "
                    f"{b['node_dropped_images']} | "
                    f"{b['not_processed']} | {m['before_burst']:.1f} -> {m['after_burst']:.1f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", help="model directory; default: export a random-weight SARNN (64 px)")
    parser.add_argument("--params-file", help="node params file; default: the installed config/eipl_trt.yaml")
    parser.add_argument("--duration", type=float, default=60.0, help="steady phase length, s")
    parser.add_argument("--rate", type=float, default=30.0, help="steady input rate, Hz")
    parser.add_argument("--burst-rate", type=float, default=200.0, help="overload input rate, Hz")
    parser.add_argument("--burst-duration", type=float, default=20.0, help="overload phase length, s")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured input before the steady phase, s")
    parser.add_argument("--rate-hz", type=float, default=30.0, help="node rate_hz in timer mode, Hz")
    parser.add_argument("--triggers", default="image,timer", help="comma-separated trigger modes to measure")
    parser.add_argument("--width", type=int, default=128, help="published image width, px")
    parser.add_argument("--height", type=int, default=128, help="published image height, px")
    parser.add_argument("--domain-id", type=int, default=80 + os.getpid() % 20, help="ROS_DOMAIN_ID for both sides")
    parser.add_argument("--startup-timeout", type=float, default=60.0, help="wait for the first predictions, s")
    parser.add_argument("--output", default="results/node_latency.json", help="JSON report path")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="eipl_latency_") as tmp_name:
        tmp = Path(tmp_name)
        if args.model:
            spec = ModelSpec.load(args.model)
        else:
            from eipl_trt.models.testing import make_test_model

            spec = make_test_model("sarnn", tmp / "sarnn", seed=0)
        results = [measure_mode(args, spec, trigger.strip(), args.domain_id, tmp)
                   for trigger in args.triggers.split(",") if trigger.strip()]
    table = markdown(results, args)
    print(table)
    print(f"load average (1 min) before/after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    report = {
        "what": "eipl_trt node end-to-end latency over DDS (image publish -> prediction receipt), two processes",
        "model": {"kind": spec.model, "image_hw": [spec.image_height, spec.image_width],
                  "joints": len(spec.joint_names), "rate_hz": spec.rate_hz,
                  "directory": str(args.model) if args.model else "random-weight SARNN (make_test_model)"},
        "published_image": {"width": args.width, "height": args.height, "encoding": "rgb8"},
        "args": vars(args),
        "environment": {**environment(), "loadavg_1_5_15min_before": load_before,
                        "loadavg_1_5_15min_after": os.getloadavg()},
        "results": results,
        "markdown": table,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.output, report)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
