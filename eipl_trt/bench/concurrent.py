"""Several models stepping together: per-model latency and total throughput (``eipl-trt bench --concurrent N``).

For each ``k`` in ``1..N`` the first ``k`` models of the list (cycled when ``N`` exceeds it) each
get their own :class:`~eipl_trt.predictor.Predictor` and their own thread, as one process serving
``k`` namespaced nodes would. Each tick, every model runs one full step on the same frame and joint
vector, released together by a barrier (a camera frame arriving for all models at once); the tick
ends when the slowest model is done. Rows for different ``k`` are interleaved in blocks so machine
noise hits them alike. Threads, not processes: ONNX Runtime and OpenVINO release the GIL while
they compute, so only the numpy pre/postprocessing of concurrent steps contends for it (measured
in README "Several models at once").
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from eipl_trt.predictor import Predictor

__all__ = ["ConcurrentResult", "run_concurrent", "run_concurrent_processes", "concurrency_table"]


@dataclass
class ConcurrentResult:
    """One row group: ``k`` models stepping together."""

    models: list[str]
    step_s: dict[int, list[float]] = field(default_factory=dict)  # model index -> per-step seconds
    tick_s: list[float] = field(default_factory=list)  # wall time of each tick (slowest model)
    wall_s: float = 0.0

    @property
    def throughput_hz(self) -> float:
        """Model steps per second of wall time, all models together."""
        steps = sum(len(v) for v in self.step_s.values())
        return steps / self.wall_s if self.wall_s > 0 else float("nan")


def _run_block(predictors: Sequence[Predictor], inputs: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]],
               start: int, n: int, result: ConcurrentResult, want_image: bool = True) -> None:
    k = len(predictors)
    barrier = threading.Barrier(k + 1)
    done = threading.Barrier(k + 1)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        times = result.step_s.setdefault(i, [])
        for t in range(start, start + n):
            barrier.wait()
            frame, q = inputs[i][t % len(inputs[i])]
            t0 = time.perf_counter()
            try:
                predictors[i].step(frame, q, want_image=want_image)
            except BaseException as exc:  # noqa: BLE001 - reported by the caller after the block
                errors.append(exc)
            times.append(time.perf_counter() - t0)
            done.wait()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(k)]
    for th in threads:
        th.start()
    for _ in range(n):
        t0 = time.perf_counter()
        barrier.wait()
        done.wait()
        elapsed = time.perf_counter() - t0
        result.tick_s.append(elapsed)
        result.wall_s += elapsed
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


def run_concurrent(
    make_predictor: Callable[[str], Predictor],
    models: Sequence[str],
    inputs_of: Callable[[str], Sequence[tuple[np.ndarray, np.ndarray]]],
    n_max: int,
    *,
    steps: int = 300,
    warm_up: int = 20,
    block: int = 25,
    want_image: bool = True,
) -> list[ConcurrentResult]:
    """Results for ``k = 1..n_max`` models stepping together, interleaved in blocks of ``block`` ticks.

    ``want_image=False`` steps without the predicted image, as the node does while nobody watches it.
    """
    if n_max < 1 or not models:
        raise ValueError("need at least one model and --concurrent >= 1")
    groups = [[models[i % len(models)] for i in range(k)] for k in range(1, n_max + 1)]
    predictors = [[make_predictor(m) for m in g] for g in groups]
    inputs = [[inputs_of(m) for m in g] for g in groups]
    results = [ConcurrentResult(list(g)) for g in groups]
    try:
        for preds, ins in zip(predictors, inputs):
            warm = ConcurrentResult([])
            _run_block(preds, ins, 0, warm_up, warm, want_image)
            for p in preds:
                p.reset_state()
        done = 0
        while done < steps:
            n = min(block, steps - done)
            for preds, ins, result in zip(predictors, inputs, results):
                _run_block(preds, ins, done, n, result, want_image)
            done += n
    finally:
        for preds in predictors:
            for p in preds:
                p.close()
    return results


def _process_worker(model_dir: str, backend: str, precision: str, threads: int, frame_hw: tuple[int, int] | None,
                    ticks: int, warm_up: int, barrier: Any, done: Any, queue: Any, want_image: bool = True) -> None:
    """One model in its own process: warm up, then ``ticks`` lockstep steps; puts its step seconds on ``queue``."""
    from eipl_trt.bench.core import synthetic_inputs
    from eipl_trt.paths import resolve_model
    from eipl_trt.runners import create_runner

    spec = resolve_model(model_dir)
    predictor = Predictor(create_runner(spec, backend, precision, threads))
    inputs = synthetic_inputs(spec, 64, frame_hw=frame_hw)
    for i in range(warm_up):
        predictor.step(*inputs[i % len(inputs)], want_image=want_image)
    predictor.reset_state()
    times = []
    for t in range(ticks):
        barrier.wait()
        t0 = time.perf_counter()
        predictor.step(*inputs[t % len(inputs)], want_image=want_image)
        times.append(time.perf_counter() - t0)
        done.wait()
    predictor.close()
    queue.put((model_dir, times))


def run_concurrent_processes(models: Sequence[str], n: int, *, backend: str, precision: str = "fp32", threads: int = 1,
                             frame_hw: tuple[int, int] | None = None, steps: int = 300,
                             warm_up: int = 20, want_image: bool = True) -> ConcurrentResult:
    """``n`` models (cycling ``models``: model directories or bundled names) each in its own process, in lockstep.

    The process-per-node layout of ``robot.launch.py models:=``; compare with :func:`run_concurrent`
    (threads in one process). Processes are spawned (no fork of a process holding runtime threads).
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    group = [models[i % len(models)] for i in range(n)]
    barrier, done, queue = ctx.Barrier(n + 1), ctx.Barrier(n + 1), ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(m, backend, precision, threads, frame_hw, steps, warm_up,
                                                       barrier, done, queue, want_image), daemon=True) for m in group]
    for proc in procs:
        proc.start()
    result = ConcurrentResult(list(group))
    try:
        for _ in range(steps):
            t0 = time.perf_counter()
            barrier.wait(timeout=120)
            done.wait(timeout=120)
            elapsed = time.perf_counter() - t0
            result.tick_s.append(elapsed)
            result.wall_s += elapsed
        got = [queue.get(timeout=120) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    remaining = list(got)
    for i, m in enumerate(group):  # match results to slots by model (same model twice: either order)
        j = next(k for k, (name, _t) in enumerate(remaining) if name == m)
        result.step_s[i] = remaining.pop(j)[1]
    return result


def concurrency_table(results: Sequence[ConcurrentResult], layout: str = "threads") -> str:
    """Markdown: one row per (k, model) with step p50/p99/max (ms), tick p50, and total throughput."""
    lines = ["| models together | layout | model | step p50 | step p99 | step max | tick p50 | total throughput (steps/s) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        tick = float(np.percentile(r.tick_s, 50) * 1e3)
        for i, name in enumerate(r.models):
            v = np.asarray(r.step_s[i]) * 1e3
            lines.append(f"| {len(r.models)} | {layout} | {name} | {np.percentile(v, 50):.3f} | {np.percentile(v, 99):.3f} | "
                         f"{v.max():.3f} | {tick:.3f} | {r.throughput_hz:.1f} |")
    return "\n".join(lines) + ("\n\nAll times in milliseconds. A tick = every model runs one full Predictor step on "
                               "the same frame, released together; throughput = model steps per wall second.\n")
