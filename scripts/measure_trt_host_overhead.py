"""Host-side work per step of TrtRunner, without a GPU: everything but the GPU's (stand-in's) work.

The runner is opened on the TensorRT/CUDA stand-ins (test/standins), then every CUDA and TensorRT
call it makes per step is replaced by a null function that returns cuda-python's success tuple
(or True) at once. What remains in ``runner.infer`` is the runner's own Python: the base class's
input checks, two ``np.copyto`` into pinned views, the facade calls and their error checks, the
parity swap (and the 4 ``set_tensor_address`` calls without graphs), the timing dict. On a GPU the
real binding calls add their own cost (~1-5 us each in the driver); count them in ``calls/step``.

    .venv/bin/python scripts/measure_trt_host_overhead.py --steps 1000 --model sarnn

Prints p50/p99/max (ms) per configuration; target p50 <= 0.10 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "test")]


class _Null:
    """Counts calls; returns cuda-python's success tuple."""

    def __init__(self, ok, value=None):  # noqa: ANN001
        self.ok, self.value, self.calls = ok, value, 0

    def __call__(self, *args):  # noqa: ANN002, ANN204
        self.calls += 1
        return (self.ok,) if self.value is None else (self.ok, self.value)


def measure(model: str, version: str, graphs: bool, steps: int) -> dict[str, float]:
    import pytest

    from eipl_trt.paths import resolve_model
    from eipl_trt.runners.tensorrt import TrtRunner
    from standins.fake_cuda import FakeGpu
    from standins.install import install

    mp = pytest.MonkeyPatch()
    try:
        install(mp, version, FakeGpu(noop_compute=True))
        spec = resolve_model(model)
        with tempfile.TemporaryDirectory() as cache:
            runner = TrtRunner(spec, cache_dir=cache, cuda_graphs=graphs).open()
            c = runner._cuda
            ok = c._ok
            nulls = {"memcpy": _Null(ok), "record": _Null(ok), "launch": _Null(ok), "sync": _Null(ok),
                     "elapsed": _Null(ok, 0.01), "enqueue": _Null(True), "address": _Null(True)}
            c._memcpy, c._record, c._launch = nulls["memcpy"], nulls["record"], nulls["launch"]
            real_rt = c.rt
            c.rt = types.SimpleNamespace(cudaStreamSynchronize=nulls["sync"], cudaEventElapsedTime=nulls["elapsed"],
                                         cudaError_t=real_rt.cudaError_t)
            ctx = types.SimpleNamespace(execute_async_v3=lambda h: nulls["enqueue"]() or True,
                                        set_tensor_address=lambda n, p: nulls["address"]() or True)
            real_ctx, runner._context = runner._context, ctx
            shapes = spec.input_shapes()
            rng = np.random.default_rng(0)
            image = rng.random(shapes["image"], dtype=np.float32)
            joint = rng.random(shapes["joint"], dtype=np.float32)
            for _ in range(100):
                runner.infer(image, joint)
            for n in nulls.values():
                n.calls = 0
            times = np.empty(steps)
            for i in range(steps):
                t0 = time.perf_counter()
                runner.infer(image, joint)
                times[i] = time.perf_counter() - t0
            calls = sum(n.calls for n in nulls.values()) / steps
            runner._context, c.rt = real_ctx, real_rt
            runner.close()
    finally:
        mp.undo()
    return {"p50": np.median(times) * 1e3, "p99": np.percentile(times, 99) * 1e3, "max": times.max() * 1e3,
            "calls": calls}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", nargs="+", default=["sarnn", "cnnrnn"])
    parser.add_argument("--version", nargs="+", default=["8.6.1", "10.3.0", "11.4.0.106"])
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()}")
    print("| model | TensorRT | CUDA graphs | p50 ms | p99 ms | max ms | CUDA/TRT calls per step |")
    print("|---|---|---|---|---|---|---|")
    for model in args.model:
        for version in args.version:
            for graphs in (True, False):
                r = measure(model, version, graphs, args.steps)
                print(f"| {model} | {version} | {'on' if graphs else 'off'} | {r['p50']:.4f} | {r['p99']:.4f} | "
                      f"{r['max']:.4f} | {r['calls']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
