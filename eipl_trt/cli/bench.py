"""Latency (and energy) per frame of the Predictor step, for each model and precision, side by side.

For every model, each precision available on the backend runs the full step (preprocess,
inference, postprocess) on the same inputs, interleaved in blocks so machine noise hits all columns
alike; eager PyTorch of the same weights (model.pth beside model.json) is the baseline column.
Energy per frame is measured where a power source exists (Jetson INA3221/jtop, NVIDIA NVML).
Writes bench.md, bench.csv and environment.json into --out.

    eipl-trt bench --steps 500 --out results/bench
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "latency and energy per frame of the bundled or given models"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `eipl-trt bench`."""
    parser.add_argument("--model", nargs="+", default=None,
                        help="bundled model names or model directories (default: every bundled model)")
    parser.add_argument("--backend", default="auto", help="auto | onnxruntime | tensorrt (default %(default)s)")
    parser.add_argument("--precision", nargs="+", default=None,
                        help="precisions to run (default: every one available on the backend)")
    parser.add_argument("--steps", type=int, default=500, help="timed steps per column (default %(default)s)")
    parser.add_argument("--warm-up", type=int, default=50, help="untimed steps first (default %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="inference threads (default %(default)s)")
    parser.add_argument("--frame-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="camera frame size fed to the predictor (default: the model's input size)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the eager PyTorch column")
    parser.add_argument("--power", default="auto", help="power source: auto | none | ina3221 | jtop | nvml (default %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="write bench.md, bench.csv, environment.json here")


def _cases(spec, args):  # noqa: ANN001, ANN202 - small helper
    from eipl_trt.bench import BenchCase
    from eipl_trt.predictor import Predictor
    from eipl_trt.runners import available_precisions, create_runner, resolve_backend

    backend = resolve_backend(args.backend)
    name = spec.directory.name if spec.directory else spec.model
    precisions = args.precision or available_precisions(spec, backend)
    cases = [
        BenchCase(name, backend, p, lambda p=p: Predictor(create_runner(spec, backend, p, args.threads)))
        for p in precisions
    ]
    if not args.no_baseline:
        reason = _baseline_unavailable(spec)
        if reason:
            log.warning("no eager PyTorch baseline for %s: %s", name, reason)
        else:
            from eipl_trt.runners.torch_eager import TorchRunner

            cases.append(BenchCase(name, "torch", "fp32", lambda: Predictor(TorchRunner(spec, num_threads=args.threads))))
    return cases


def _baseline_unavailable(spec) -> str:  # noqa: ANN001
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (pip install .[models])"
    if spec.directory is None or not (spec.directory / "model.pth").is_file():
        return "no model.pth beside model.json"
    return ""


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print the table."""
    from eipl_trt.bench import environment, markdown_table, run_benchmark, synthetic_inputs, write_reports
    from eipl_trt.errors import EipltrtError
    from eipl_trt.paths import bundled_models, resolve_model

    names = args.model or list(bundled_models())
    if not names:
        raise EipltrtError("no bundled models found; pass --model DIR")
    from eipl_trt.power import measure_idle_power_w, probe_power_monitor

    monitor, power_note = probe_power_monitor(args.power)
    idle_w = measure_idle_power_w(monitor, 5.0) if monitor is not None else 0.0
    results = []
    try:
        for name in names:
            spec = resolve_model(name)
            inputs = synthetic_inputs(spec, 64, frame_hw=tuple(args.frame_size) if args.frame_size else None)
            cases = _cases(spec, args)
            print(f"# {name}: {', '.join(f'{c.backend}/{c.precision}' for c in cases)}; {args.steps} steps each", flush=True)
            results += run_benchmark(cases, inputs, steps=args.steps, warm_up=args.warm_up,
                                     power=monitor, idle_power_w=idle_w)
    finally:
        if monitor is not None:
            monitor.stop()
    env = environment(args.threads)
    env["power"] = power_note if monitor is None else f"{power_note} (idle {idle_w:.2f} W subtracted)"
    env["frame_size"] = "model input size" if not args.frame_size else f"{args.frame_size[0]}x{args.frame_size[1]}"
    print(markdown_table(results))
    print("".join(f"- {k}: {v}\n" for k, v in env.items()))
    if args.out:
        for path in write_reports(results, env, args.out):
            print(f"wrote {path}")
    return 0
