#!/usr/bin/env python3
"""Predictor step latency: ONNX Runtime vs eager PyTorch of the same weights, side by side.

Models: SARNN 64 px (LeakyReLU 0.3), SARNN 128 px (0.01, eipl-deploy dialect), CNNRNN, CNNRNNLN, with
random weights (fixed seed) unless --model points at exported model directories that hold
model.pth beside model.json. One thread per runtime by default; the median of --steps steps after
--warm-up, interleaved in blocks so both columns see the same machine noise.

    .venv/bin/python scripts/bench_predictor.py --steps 500 --out results/bench_predictor
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from eipl_trt.bench import BenchCase, environment, markdown_table, run_benchmark, synthetic_inputs, write_reports
from eipl_trt.predictor import Predictor
from eipl_trt.runners import create_runner
from eipl_trt.runners.torch_eager import TorchRunner

CONFIGS = {
    "sarnn64": dict(kind="sarnn", im_size=(64, 64), leaky_slope=0.3),
    "sarnn128": dict(kind="sarnn", im_size=(128, 128), leaky_slope=0.01),
    "cnnrnn": dict(kind="cnnrnn"),
    "cnnrnnln": dict(kind="cnnrnnln"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=500, help="timed steps per configuration (default %(default)s)")
    parser.add_argument("--warm-up", type=int, default=50, help="untimed steps first (default %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="threads for ONNX Runtime and torch (default %(default)s)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of %(default)s")
    parser.add_argument("--out", type=Path, default=None, help="write bench.md/bench.csv/environment.json here")
    args = parser.parse_args(argv)

    from eipl_trt.models import testing

    cases: list[BenchCase] = []
    inputs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs.split(","):
            cfg = dict(CONFIGS[name])
            kind = cfg.pop("kind")
            spec = testing.make_test_model(kind, Path(tmp) / name, seed=0, **cfg)
            model = testing.torch_reference(kind, seed=0, **cfg)
            inputs[name] = synthetic_inputs(spec, 64)
            cases.append(BenchCase(name, "onnxruntime", "fp32",
                                   lambda s=spec: Predictor(create_runner(s, "onnxruntime", "fp32", args.threads))))
            cases.append(BenchCase(name, "torch", "fp32",
                                   lambda s=spec, m=model: Predictor(TorchRunner(s, m, num_threads=args.threads))))
        results = []
        for i in range(0, len(cases), 2):
            pair = cases[i:i + 2]
            print(f"# {pair[0].model}: {args.steps} steps x {len(pair)} runtimes", file=sys.stderr)
            results += run_benchmark(pair, inputs[pair[0].model], steps=args.steps, warm_up=args.warm_up)
    env = environment(args.threads)
    print(markdown_table(results))
    print("".join(f"- {k}: {v}\n" for k, v in env.items()))
    if args.out:
        for path in write_reports(results, env, args.out):
            print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
