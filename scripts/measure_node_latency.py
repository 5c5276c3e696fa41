#!/usr/bin/env python3
"""End-to-end latency, losses and cost of the eipl_trt node over DDS, three processes (issue #7).

Starts ``eipl_trt_node`` (the command line robot.launch.py produces) and a publisher process
(``scripts/latency_harness.py``: camera frames and joint states on one absolute schedule); this
process only receives (predictions, ``~/timing``, diagnostics) and reads ``/proc``. So the node,
the publisher and the receiver each have their own CPU time, reported apart.

For each trigger mode (``image``: one step per received image; ``timer``: steps at ``--rate-hz``
with the latest inputs), one node runs these phases in order:

1. warm-up: ``--rate`` Hz frames with joint states at the same rate (unmeasured);
2. one steady phase per ``--joint-rates`` entry: ``--rate`` Hz frames (128x128 rgb8 by default)
   with joint states at that rate, ``--duration`` s each. A joint rate equal to ``--rate`` is the
   "no joint traffic" reference: one joint message just before each frame;
3. the burst: ``--burst-rate`` Hz frames (joint states at ``--burst-joint-rate``, 0 = one per
   frame) for ``--burst-duration`` s.

Per phase: frames published and predicted (a frame is *lost* when no prediction carries its stamp;
in timer mode frames the timer skipped are not losses, see ``frames used``), e2e latency (frame
publish = its header stamp -> receipt of the prediction with that stamp; timer mode: the newest
frame used -> prediction, so it includes the wait for the tick), the node's ``step_ms`` and
``frame_wait_ms`` (frame receipt -> step start) from ``~/timing``, the step rate, node CPU time
per frame and CPU % (``/proc/<pid>/stat``), the publisher's and this receiver's CPU %, the
publisher's own lateness, and in timer mode the timer jitter (step start intervals minus the
period, from the stamps in ``~/timing``). The node's RSS is sampled every 2 s; the growth after the
first minute is reported (needs a run longer than a minute). The load average is recorded per
phase.

Prints Markdown tables and writes JSON (atomically). Runs in its own ROS_DOMAIN_ID. Without
``--model`` it exports a random-weight SARNN (64 px) into a temp dir (needs torch).

Example (the issue's table, bundled SARNN)::

    .venv/bin/python scripts/measure_node_latency.py --model engines/sarnn --triggers image,timer \\
        --joint-rates 30,100,500,1000 --duration 60 --burst-duration 20 --output results/node_latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency_harness import proc_cpu_s, rss_mb  # noqa: E402

from eipl_trt.common.atomic import write_json_atomic  # noqa: E402
from eipl_trt.ros.launch_args import NodeLaunch, default_params_file, write_overrides_file  # noqa: E402
from eipl_trt.spec import ModelSpec  # noqa: E402

NODE = "eipl_trt"
HARNESS = Path(__file__).resolve().parent / "latency_harness.py"
REPO = Path(__file__).resolve().parent.parent


def pct(values: list[float] | np.ndarray, q: float) -> float:
    """The q-th percentile (0-100) of ``values``, NaN if empty."""
    return float(np.percentile(values, q)) if len(values) else float("nan")


def environment() -> dict[str, Any]:
    """CPU, OS and package versions (eipl_trt.bench's list plus the ROS side), for the JSON."""
    from rclpy.utilities import get_rmw_implementation_identifier

    from eipl_trt.bench import environment as bench_environment

    env: dict[str, Any] = dict(bench_environment())
    env["rmw"] = get_rmw_implementation_identifier()
    for dist in ("eipl_trt", "ros-rclpy", "ros-rmw-fastrtps-cpp", "ros-fastdds"):
        try:
            env[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            env[dist] = "not installed"
    return env


class Receiver:
    """Subscribes to the node's outputs; keeps the first receipt time of each prediction by stamp."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState

        self.context = rclpy.context.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("latency_receiver", context=self.context)
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(JointState, f"/{NODE}/predicted_joint_states", self._on_prediction, reliable)
        self.node.create_subscription(JointState, f"/{NODE}/timing", self._on_timing, reliable)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.lock = threading.Lock()
        self.predicted: dict[int, int] = {}  # stamp ns -> first receipt ns
        self.timing: list[tuple[int, int, dict[str, float]]] = []  # (stamp ns, receipt ns, values)
        self.diagnostics: dict[str, str] = {}
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.spinner.start()

    @staticmethod
    def _stamp(msg: Any) -> int:
        return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec

    def _on_prediction(self, msg: Any) -> None:
        received = time.time_ns()
        stamp = self._stamp(msg)
        with self.lock:
            self.predicted.setdefault(stamp, received)  # timer mode may step twice on one frame

    def _on_timing(self, msg: Any) -> None:
        received = time.time_ns()
        values = dict(zip(msg.name, msg.position))
        with self.lock:
            self.timing.append((self._stamp(msg), received, values))

    def _on_diagnostics(self, msg: Any) -> None:
        values = {kv.key: kv.value for status in msg.status if status.name.startswith(f"{NODE}: ")
                  for kv in status.values}
        if values:
            with self.lock:
                self.diagnostics = values

    def count(self) -> int:
        with self.lock:
            return len(self.predicted)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


class PublisherProcess:
    """The publisher child (scripts/latency_harness.py) driven over stdin/stdout."""

    def __init__(self, domain_id: int, width: int, height: int, spec: ModelSpec, env: dict[str, str]):
        mid = (np.asarray(spec.joint_min, float) + np.asarray(spec.joint_max, float)) / 2
        cmd = [sys.executable, str(HARNESS), "publish", str(domain_id), str(width), str(height),
               ",".join(spec.joint_names), ",".join(f"{v:.6f}" for v in mid)]
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = json.loads(self._readline())
        self.pid = int(ready["pid"])

    def _readline(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the publisher process ended (exit code {self.proc.poll()})")
        return line

    def run(self, phase: str, camera_hz: float, joint_hz: float, duration_s: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"phase": phase, "camera_hz": camera_hz, "joint_hz": joint_hz,
                                          "duration": duration_s}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self._readline())

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.write('{"quit": true}\n')
            self.proc.stdin.flush()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class RssSampler(threading.Thread):
    """Samples the node's VmRSS every ``period_s``."""

    def __init__(self, pid: int, period_s: float = 2.0):
        super().__init__(daemon=True)
        self.pid, self.period_s = pid, period_s
        self.samples: list[tuple[float, float]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(self.period_s):
            self.samples.append((time.monotonic(), rss_mb(self.pid)))

    def at(self, t: float) -> float:
        """The first sample at or after monotonic time ``t`` (NaN if none)."""
        return next((v for s, v in self.samples if s >= t), float("nan"))


def summarize(name: str, trigger: str, period_s: float, camera_hz: float, joint_hz: float, pub: dict[str, Any],
              rx: Receiver, cpu: dict[str, float], wall_s: float) -> dict[str, Any]:
    """One phase's figures from the published stamps and what the receiver collected."""
    stamps = pub["stamps"]
    lo, hi = (stamps[0], stamps[-1]) if stamps else (0, -1)
    with rx.lock:
        predicted = {s: r for s, r in rx.predicted.items() if lo <= s <= hi}
        timing = [(s, r, v) for s, r, v in rx.timing if lo <= s <= hi]
    # Timer mode keeps stepping on the last frame after the phase (until max_input_age): not the phase's steps.
    timing = [(s, r, v) for s, r, v in timing if r <= hi + int((period_s + 0.05) * 1e9)]
    published = set(stamps)
    e2e = np.array([(predicted[s] - s) / 1e6 for s in stamps if s in predicted])
    step_ms = [v.get("step_ms", float("nan")) for _, _, v in timing]
    wait_ms = [v["frame_wait_ms"] for _, _, v in timing if "frame_wait_ms" in v]
    frames = len(stamps)
    used = len(set(predicted) & published)
    out: dict[str, Any] = {
        "phase": name, "trigger": trigger, "camera_hz": camera_hz, "joint_hz": joint_hz, "seconds": wall_s,
        "frames_published": frames, "joint_msgs_published": pub["joint_msgs"],
        "frames_predicted": used, "frames_lost": frames - used if trigger == "image" else None,
        "e2e_ms": {"p50": pct(e2e, 50), "p90": pct(e2e, 90), "p99": pct(e2e, 99),
                   "max": float(e2e.max()) if e2e.size else float("nan")},
        "step_ms": {"p50": pct(step_ms, 50), "p99": pct(step_ms, 99), "max": max(step_ms, default=float("nan"))},
        "frame_wait_ms": {"p50": pct(wait_ms, 50), "p99": pct(wait_ms, 99), "max": max(wait_ms, default=float("nan"))},
        "steps": len(timing), "step_rate_hz": len(timing) / wall_s if wall_s > 0 else float("nan"),
        "node_cpu_ms_per_frame": cpu["node"] * 1e3 / frames if frames else float("nan"),
        "node_cpu_pct": 100 * cpu["node"] / wall_s, "publisher_cpu_pct": 100 * pub["cpu_s"] / wall_s,
        "receiver_cpu_pct": 100 * cpu["receiver"] / wall_s,
        "publisher_late_ms": {"p99": pub["late_ms_p99"], "max": pub["late_ms_max"]},
        "loadavg_1min": os.getloadavg()[0],
    }
    if trigger == "timer":  # step starts on the node's clock: stamp + (receipt - stamp) + (start - receipt)
        starts = sorted(s / 1e6 + v["image_latency_ms"] + v["frame_wait_ms"] for s, _, v in timing
                        if "frame_wait_ms" in v and np.isfinite(v.get("image_latency_ms", float("nan"))))
        source = "step start (node clock)"
        if len(starts) < 3:  # a node without frame_wait_ms: ~/timing receipt times (adds transport jitter)
            starts, source = sorted(r / 1e6 for _, r, _ in timing), "~/timing receipt (includes transport)"
        jitter = np.abs(np.diff(starts) - period_s * 1e3) if len(starts) > 2 else np.array([])
        out["timer_jitter_ms"] = {"p50": pct(jitter, 50), "p99": pct(jitter, 99),
                                  "max": float(jitter.max()) if jitter.size else float("nan"), "source": source}
        received = np.diff(sorted(r / 1e6 for _, r, _ in timing)) - period_s * 1e3  # comparable across versions
        out["timer_jitter_receipt_ms"] = {"p50": pct(np.abs(received), 50), "p99": pct(np.abs(received), 99),
                                          "max": float(np.abs(received).max()) if received.size else float("nan")}
    return out


def node_command(args: argparse.Namespace, launch: NodeLaunch, overrides_file: Path) -> list[str]:
    """The launch file's command line, with ``python -m eipl_trt.ros.node`` for the console script
    (the eipl_trt this interpreter imports, so a stale console script cannot skew the measurement)."""
    extra = ["--executor", args.node_executor] if args.node_executor else []
    if args.node_step_thread:
        extra.append("--step-thread" if args.node_step_thread == "on" else "--no-step-thread")
    return [sys.executable, "-m", "eipl_trt.ros.node", *extra, *launch.ros_arguments(overrides_file)]


def measure_mode(args: argparse.Namespace, spec: ModelSpec, trigger: str, tmp: Path) -> dict[str, Any]:
    """Start the node with ``trigger`` and run the phases against it."""
    overrides = {"model": str(spec.directory), "trigger": trigger, "rate_hz": float(args.rate_hz),
                 "max_input_age": 0.5, "backend": "onnxruntime"}
    launch = NodeLaunch(params_file=args.params_file or default_params_file(), overrides=overrides)
    command = node_command(args, launch, write_overrides_file(overrides, tmp))
    env = dict(os.environ, ROS_DOMAIN_ID=str(args.domain_id))
    node_env = dict(env)
    # The node runs this checkout's eipl_trt (or --node-code, e.g. an older one exported with `git archive`).
    node_env["PYTHONPATH"] = os.pathsep.join([args.node_code or str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    log_path = tmp / f"node_{trigger}.log"
    print(f"[{trigger}] starting: {' '.join(command)}", flush=True)
    with open(log_path, "w") as log:
        # cwd: `python -m` puts the working directory first on sys.path, ahead of PYTHONPATH.
        node = subprocess.Popen(command, env=node_env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    rx = Receiver(args.domain_id)
    pub = PublisherProcess(args.domain_id, args.width, args.height, spec, env)
    rss = RssSampler(node.pid)
    rss.start()
    period_s = 1.0 / args.rate_hz if trigger == "timer" else 1.0 / args.rate
    phases: list[dict[str, Any]] = []
    profiles: list[subprocess.Popen[bytes]] = []
    try:
        deadline = time.monotonic() + args.startup_timeout
        while rx.count() < 5:
            if time.monotonic() > deadline or node.poll() is not None:
                raise SystemExit(f"the node produced no predictions in {args.startup_timeout} s; see {log_path}:\n"
                                 + log_path.read_text()[-3000:])
            pub.run("startup", 10.0, 10.0, 1.0)
        pub.run("warm-up", args.rate, args.rate, args.warmup)
        first_start = time.monotonic()
        plan = [(f"joints {jr:g} Hz", args.rate, jr, args.duration) for jr in args.joint_rates]
        if args.burst_duration > 0:
            plan.append(("burst", args.burst_rate, args.burst_joint_rate or args.burst_rate, args.burst_duration))
        for name, cam_hz, joint_hz, duration in plan:
            if args.py_spy:
                out = Path(args.py_spy) / f"{trigger}_{name.replace(' ', '_')}.txt"
                out.parent.mkdir(parents=True, exist_ok=True)
                profiles.append(subprocess.Popen(
                    [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(node.pid), "--rate", "200",
                     "--duration", str(int(duration)), "--format", "raw", "--threads", "--nonblocking",
                     "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            cpu0 = {"node": proc_cpu_s(node.pid), "receiver": proc_cpu_s(os.getpid())}
            t0 = time.monotonic()
            result = pub.run(name, cam_hz, joint_hz, duration)
            wall = time.monotonic() - t0
            time.sleep(0.5)  # let the last predictions arrive
            cpu = {k: proc_cpu_s(node.pid if k == "node" else os.getpid()) - v for k, v in cpu0.items()}
            phase = summarize(name, trigger, period_s, cam_hz, joint_hz, result, rx, cpu, wall)
            print(json.dumps({k: phase[k] for k in ("phase", "frames_lost", "e2e_ms", "step_ms", "node_cpu_pct")}),
                  flush=True)
            phases.append(phase)
        end = time.monotonic()
        rss_report = {"first_minute_mb": rss.at(first_start + 60.0), "end_mb": rss_mb(node.pid),
                      "start_mb": rss.at(first_start), "run_s_after_warmup": end - first_start}
        rss_report["growth_after_first_minute_mb"] = rss_report["end_mb"] - rss_report["first_minute_mb"]
        diagnostics = dict(rx.diagnostics)
    finally:
        rss.stop_event.set()
        for p in profiles:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        pub.close()
        rx.close()
        node.send_signal(signal.SIGINT)
        try:
            node.wait(timeout=15)
        except subprocess.TimeoutExpired:
            node.kill()
    return {"trigger": trigger, "rate_hz_param": args.rate_hz if trigger == "timer" else None,
            "node_executor": args.label or args.node_executor or "default", "phases": phases, "rss_mb": rss_report,
            "diagnostics_at_end": diagnostics, "node_exit_code": node.returncode}


def targets(result: dict[str, Any]) -> list[str]:
    """The issue's targets, checked against the reference phase (joint rate = frame rate)."""
    phases = result["phases"]
    ref = next((p for p in phases if p["joint_hz"] == p["camera_hz"] and p["phase"] != "burst"), None)
    if ref is None:
        return []
    idle = ref["step_ms"]["p50"]
    lines = []
    for p in phases:
        ratio = p["step_ms"]["p50"] / idle
        limit = 1.2 if p["phase"] == "burst" else 1.1
        line = f"{result['trigger']} {p['phase']}: step p50 {ratio:.2f}x idle ({'ok' if ratio <= limit else 'MISS'} <= {limit})"
        if p["phase"] != "burst":
            bound = 2 * p["step_ms"]["p50"] + 2
            line += (f"; e2e p99 {p['e2e_ms']['p99']:.1f} ms vs 2 x step p50 + 2 = {bound:.1f} "
                     f"({'ok' if p['e2e_ms']['p99'] <= bound else 'MISS'})")
            if p["frames_lost"] is not None:
                line += f"; frames lost {p['frames_lost']} ({'ok' if p['frames_lost'] == 0 else 'MISS'})"
        lines.append(line)
    growth = result["rss_mb"]["growth_after_first_minute_mb"]
    if np.isfinite(growth):
        lines.append(f"{result['trigger']} RSS growth after the first minute: {growth:+.1f} MB "
                     f"({'ok' if growth < 5 else 'MISS'} < 5) over {result['rss_mb']['run_s_after_warmup']:.0f} s")
    return lines


def markdown(results: list[dict[str, Any]]) -> str:
    rows = [
        "| executor | trigger | phase | frames | lost | e2e p50 / p99 / max ms | step p50 / p99 ms | "
        "frame wait p50 / p99 ms | steps/s | node CPU ms/frame | node CPU % | pub CPU % | rx CPU % | "
        "timer jitter p50 / p99 / max ms | load 1 min |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for p in r["phases"]:
            e, s, w = p["e2e_ms"], p["step_ms"], p["frame_wait_ms"]
            j = p.get("timer_jitter_ms")
            lost = "-" if p["frames_lost"] is None else f"{p['frames_lost']}"
            rows.append(
                f"| {r['node_executor']} | {r['trigger']} | {p['phase']} ({p['camera_hz']:g} Hz frames) | "
                f"{p['frames_published']} | {lost} | {e['p50']:.1f} / {e['p99']:.1f} / {e['max']:.1f} | "
                f"{s['p50']:.2f} / {s['p99']:.2f} | {w['p50']:.2f} / {w['p99']:.2f} | {p['step_rate_hz']:.1f} | "
                f"{p['node_cpu_ms_per_frame']:.2f} | {p['node_cpu_pct']:.0f} | {p['publisher_cpu_pct']:.0f} | "
                f"{p['receiver_cpu_pct']:.0f} | "
                + (f"{j['p50']:.2f} / {j['p99']:.2f} / {j['max']:.2f}" if j else "-")
                + f" | {p['loadavg_1min']:.2f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", help="model directory; default: export a random-weight SARNN (64 px)")
    parser.add_argument("--params-file", help="node params file; default: the installed config/eipl_trt.yaml")
    parser.add_argument("--duration", type=float, default=60.0, help="length of each steady phase, s")
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate of the steady phases, Hz")
    parser.add_argument("--joint-rates", "--joint-rate-hz", type=lambda s: [float(x) for x in s.split(",")],
                        default=[30.0, 500.0], help="joint_states rates, one steady phase each (30..1000 Hz)")
    parser.add_argument("--burst-rate", type=float, default=200.0, help="camera rate of the burst, Hz")
    parser.add_argument("--burst-joint-rate", type=float, default=0.0,
                        help="joint_states rate during the burst, Hz (0 = one message per frame)")
    parser.add_argument("--burst-duration", type=float, default=20.0, help="burst length, s (0 = no burst)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured input before the steady phases, s")
    parser.add_argument("--rate-hz", type=float, default=30.0, help="node rate_hz in timer mode, Hz")
    parser.add_argument("--triggers", default="image,timer", help="comma-separated trigger modes to measure")
    parser.add_argument("--node-executor", default="", help="the node's --executor (default: the node's default)")
    parser.add_argument("--node-step-thread", choices=("", "on", "off"), default="",
                        help="the node's --step-thread / --no-step-thread (default: the node's default)")
    parser.add_argument("--node-code", default="", help="directory put first on the node's PYTHONPATH (another "
                        "eipl_trt checkout, e.g. `git archive <rev> eipl_trt | tar -x -C DIR`); default: this "
                        "script's checkout")
    parser.add_argument("--label", default="", help="name of this configuration in the tables")
    parser.add_argument("--width", type=int, default=128, help="published image width, px")
    parser.add_argument("--height", type=int, default=128, help="published image height, px")
    parser.add_argument("--domain-id", type=int, default=80 + os.getpid() % 20, help="ROS_DOMAIN_ID for all three")
    parser.add_argument("--startup-timeout", type=float, default=60.0, help="wait for the first predictions, s")
    parser.add_argument("--py-spy", default="", help="directory: record a py-spy profile (raw) of the node per phase")
    parser.add_argument("--output", default="results/node_latency.json", help="JSON report path")
    args = parser.parse_args(argv)
    bad = [r for r in args.joint_rates if not 1.0 <= r <= 1000.0]
    if bad:
        parser.error(f"--joint-rates must lie in 1..1000 Hz, got {bad}")
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="eipl_latency_") as tmp_name:
        tmp = Path(tmp_name)
        if args.model:
            spec = ModelSpec.load(args.model)
        else:
            from eipl_trt.models.testing import make_test_model

            spec = make_test_model("sarnn", tmp / "sarnn", seed=0)
        results = [measure_mode(args, spec, trigger.strip(), tmp)
                   for trigger in args.triggers.split(",") if trigger.strip()]
    table = markdown(results)
    print(table)
    checks = [line for r in results for line in targets(r)]
    print("\n".join(checks))
    print(f"load average (1 min) before/after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    report = {
        "what": "eipl_trt node end-to-end latency over DDS (frame publish -> prediction receipt); node, publisher "
                "and receiver in three processes",
        "model": {"kind": spec.model, "image_hw": [spec.image_height, spec.image_width],
                  "joints": len(spec.joint_names), "rate_hz": spec.rate_hz,
                  "directory": str(args.model) if args.model else "random-weight SARNN (make_test_model)"},
        "published_image": {"width": args.width, "height": args.height, "encoding": "rgb8"},
        "command": " ".join(sys.argv),
        "args": vars(args),
        "environment": {**environment(), "loadavg_1_5_15min_before": load_before,
                        "loadavg_1_5_15min_after": os.getloadavg()},
        "results": results, "targets": checks, "markdown": table,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.output, report)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
