"""Latency benchmark of the full Predictor step, backends side by side in one run.

Every configuration (a model on a backend at a precision) runs the *same* pipeline,
:meth:`eipl_trt.predictor.Predictor.step`, on the same inputs, so the columns differ only in the
runner. Configurations are interleaved in blocks (A, B, A, B, ...) so that slow drifts of a noisy
machine hit all of them alike. Warm-up steps are excluded.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from eipl_trt.common.atomic import write_text_atomic
from eipl_trt.predictor import Predictor
from eipl_trt.spec import ModelSpec

__all__ = ["BenchCase", "BenchResult", "run_benchmark", "environment", "markdown_table", "csv_text"]

STAGES = ("preprocess", "inference", "postprocess", "total")


@dataclass
class BenchCase:
    """One column of the table: a label and a factory for its predictor (opened lazily)."""

    model: str
    backend: str
    precision: str
    make_predictor: Callable[[], Predictor]
    predictor: Predictor | None = None


@dataclass
class BenchResult:
    """Per-step wall-clock seconds of one case, by stage (plus backend-specific inference detail)."""

    model: str
    backend: str
    precision: str
    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    detail: dict[str, list[float]] = field(default_factory=dict)
    energy_j_per_frame: float | None = None

    def stat(self, stage: str, q: float) -> float:
        """Percentile ``q`` (0..100) of ``stage`` in milliseconds."""
        values = self.stages.get(stage) or self.detail.get(stage) or []
        return float(np.percentile(values, q) * 1e3) if values else float("nan")


def synthetic_inputs(spec: ModelSpec, n: int, seed: int = 0, frame_hw: tuple[int, int] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` (frame, joints) pairs: smooth random frames at ``frame_hw`` (default: model size), joints inside the bounds."""
    rng = np.random.default_rng(seed)
    h, w = frame_hw or (spec.image_height, spec.image_width)
    base = rng.integers(0, 256, (h, w, 3)).astype(np.float32)
    drift = rng.normal(0, 20, base.shape).astype(np.float32)
    lo, hi = np.array(spec.joint_min), np.array(spec.joint_max)
    phase = rng.uniform(0, 2 * np.pi, spec.joint_dim)
    return [
        (
            np.clip(base + drift * np.sin(0.3 * t), 0, 255).astype(np.uint8),
            lo + (hi - lo) * (0.5 + 0.4 * np.sin(0.2 * t + phase)),
        )
        for t in range(n)
    ]


def run_benchmark(
    cases: Sequence[BenchCase],
    inputs: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    steps: int = 500,
    warm_up: int = 50,
    block: int = 50,
    encoding: str = "rgb8",
    want_image: bool = True,
    progress: Callable[[str], None] | None = None,
    power: Any = None,
    idle_power_w: float = 0.0,
) -> list[BenchResult]:
    """Time ``steps`` Predictor steps of every case, interleaved in blocks of ``block`` steps.

    The recurrent state is fed back throughout (as on the robot); inputs cycle through ``inputs``.
    With a started :class:`eipl_trt.power.PowerMonitor` as ``power``, the energy of each block is
    read from it and each case gets joules per frame above ``idle_power_w`` (W).
    """
    results = [BenchResult(c.model, c.backend, c.precision) for c in cases]
    for case in cases:
        if case.predictor is None:
            case.predictor = case.make_predictor()
        for i in range(warm_up):
            frame, q = inputs[i % len(inputs)]
            case.predictor.step(frame, q, encoding, want_image=want_image)
        case.predictor.reset_state()
    energy = [0.0] * len(cases)
    done = 0
    while done < steps:
        n = min(block, steps - done)
        for c, (case, result) in enumerate(zip(cases, results)):
            assert case.predictor is not None
            mark = power.read() if power is not None else None
            for i in range(done, done + n):
                frame, q = inputs[i % len(inputs)]
                t = case.predictor.step(frame, q, encoding, want_image=want_image).timings
                result.stages["preprocess"].append(t.preprocess_s)
                result.stages["inference"].append(t.inference_s)
                result.stages["postprocess"].append(t.postprocess_s)
                result.stages["total"].append(t.total_s)
                for key, value in t.inference_detail.items():
                    result.detail.setdefault(key, []).append(value)
            if mark is not None:
                from eipl_trt.power import energy_per_step_j

                energy[c] += energy_per_step_j(mark, power.read(), n, idle_power_w) * n
        done += n
        if progress:
            progress(f"{done}/{steps} steps")
    if power is not None:
        for c, result in enumerate(results):
            result.energy_j_per_frame = energy[c] / steps
    return results


def environment(threads: int | None = None) -> dict[str, str]:
    """CPU, OS and library versions to record beside the numbers."""
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cpu_count": str(os.cpu_count()),
        "numpy": np.__version__,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if threads is not None:
        env["threads"] = str(threads)
    for module in ("onnxruntime", "openvino", "torch", "tensorrt"):
        try:
            env[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - absent or broken optional dependency
            continue
    return env


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _baseline_of(result: BenchResult, results: Iterable[BenchResult], baseline_backend: str) -> BenchResult | None:
    """The baseline row of the same model (and the same `` xN`` thread label when columns have one)."""
    threads = result.backend.rpartition(" x")[2] if " x" in result.backend else ""
    want = f"{baseline_backend} x{threads}" if threads else baseline_backend
    for other in results:
        if other.model == result.model and other.backend == want:
            return other
    return None


def markdown_table(results: Sequence[BenchResult], baseline_backend: str = "torch") -> str:
    """A Markdown table: per-stage median and p99 (ms) and the end-to-end speedup over the baseline backend."""
    energy = any(r.energy_j_per_frame is not None for r in results)
    split = any("h2d" in r.detail for r in results)  # TensorRT: copy/compute split from CUDA events
    header = (
        "| model | backend | precision | preprocess p50 | inference p50 | postprocess p50 | "
        f"step p50 | step p99 | speedup vs {baseline_backend} (p50) |" + (" energy/frame (mJ) |" if energy else "")
        + (" H2D p50 | compute p50 | D2H p50 |" if split else "")
    )
    lines = [header, "|" + "---|" * (9 + energy + 3 * split)]
    for r in results:
        base = _baseline_of(r, results, baseline_backend)
        speedup = f"{base.stat('total', 50) / r.stat('total', 50):.2f}x" if base is not None else "n/a"
        lines.append(
            f"| {r.model} | {r.backend} | {r.precision} | {r.stat('preprocess', 50):.3f} | "
            f"{r.stat('inference', 50):.3f} | {r.stat('postprocess', 50):.3f} | {r.stat('total', 50):.3f} | "
            f"{r.stat('total', 99):.3f} | {speedup} |"
            + (f" {r.energy_j_per_frame * 1e3:.3f} |" if r.energy_j_per_frame is not None else (" n/a |" if energy else ""))
            + ("".join(f" {r.stat(k, 50):.3f} |" if k in r.detail else " n/a |" for k in ("h2d", "compute", "d2h"))
               if split else "")
        )
    note = " H2D/compute/D2H: TensorRT stages timed by CUDA events on the runner's stream." if split else ""
    if any(r.backend == "onnxruntime" and r.precision == "fp16" for r in results):
        note += (" ONNX Runtime fp16 rows are an accuracy preview of the TensorRT FP16 variant: a CPU without FP16"
                 " arithmetic runs it through casts, so it is not faster there.")
    return "\n".join(lines) + f"\n\nAll times in milliseconds per step (median = p50).{note}\n"


def csv_text(results: Sequence[BenchResult]) -> str:
    """CSV: one row per case and stage with p50, p90, p99, max in ms and the step count."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["model", "backend", "precision", "stage", "p50_ms", "p90_ms", "p99_ms", "max_ms", "steps", "energy_j_per_frame"])
    for r in results:
        for stage in [*STAGES, *sorted(k for k in r.detail if k not in STAGES)]:  # the runner's own 'total' is the inference stage
            values = r.stages.get(stage) or r.detail.get(stage) or []
            writer.writerow([
                r.model, r.backend, r.precision, stage,
                f"{r.stat(stage, 50):.4f}", f"{r.stat(stage, 90):.4f}", f"{r.stat(stage, 99):.4f}", f"{r.stat(stage, 100):.4f}",
                len(values), "" if r.energy_j_per_frame is None else f"{r.energy_j_per_frame:.6f}",
            ])
    return buf.getvalue()


def write_reports(results: Sequence[BenchResult], env: dict[str, str], out_dir: Path, baseline_backend: str = "torch") -> list[Path]:
    """Write ``bench.md``, ``bench.csv`` and ``environment.json`` into ``out_dir`` atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = "# eipl_trt benchmark\n\n" + markdown_table(results, baseline_backend) + "\n## Environment\n\n" + "".join(
        f"- {k}: {v}\n" for k, v in env.items()
    )
    paths = [out_dir / "bench.md", out_dir / "bench.csv", out_dir / "environment.json"]
    write_text_atomic(paths[0], md)
    write_text_atomic(paths[1], csv_text(results))
    write_text_atomic(paths[2], json.dumps(env, indent=2) + "\n")
    return paths
