"""Quantization lab: bit-width sweeps and integer-only models for FPGA/MCU/NPU targets (numpy, no GPU).

``sweep`` fake-quantizes weights and activations of the FP32 ONNX model at each bit width, with
float or power-of-two (fixed point) scales and nearest/floor/stochastic rounding, replays held-out
episodes with the LSTM state fed back and reports the joint error rate vs FP32 and the state drift
(sweep.csv, sweep.md, sweep.png, plus a per-layer sensitivity table with --sensitivity-bits).
The first --calibration-episodes episodes set the activation ranges; the next --episodes are scored.

    eipl-trt quantlab sweep --model engines/sarnn --data data/pusher_sample --out results/quantlab/sarnn \\
        --bits 16 8 6 4 --steps 40 --sensitivity-bits 6

``integer`` converts the model to an integer-only file (int8 weights, int32 biases, requantization
as multiplier + shift, LUT activations) and scores it the same way; see eipl_trt/precision/lab/integer.

Tip: the numpy executor is single-step; export OMP_NUM_THREADS=1 on a shared machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "quantization lab: bit-width sweeps with rounding modes, integer-only models (numpy)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `eipl-trt quantlab sweep|integer`."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = sub.add_parser("sweep", help="error rate vs bits, scale kind and rounding over whole episodes")
    _common(s, "--data")
    s.add_argument("--bits", type=int, nargs="+", default=[16, 12, 8, 6, 4], help="bit widths (default %(default)s)")
    s.add_argument("--scales", nargs="+", default=["float", "pow2"], choices=("float", "channel", "pow2"),
                   help="weight/activation scale kinds: float per tensor, float per channel (weights), power of two")
    s.add_argument("--rounding", nargs="+", default=["nearest", "floor", "stochastic"],
                   choices=("nearest", "floor", "stochastic"), help="rounding modes (default: all three)")
    s.add_argument("--acc-bits", type=int, nargs="+", default=[0],
                   help="accumulator widths with saturation; 0 = wide enough never to saturate (default)")
    s.add_argument("--quantize", default="both", choices=("both", "weights", "activations"),
                   help="what runs at the swept width (default %(default)s)")
    s.add_argument("--sensitivity-bits", type=int, default=0,
                   help="also quantize one layer at a time at this width (0 = skip)")
    s.add_argument("--no-plot", action="store_true", help="skip sweep.png")
    s.add_argument("--jobs", type=int, default=1,
                   help="score configurations in this many processes (Linux; results do not depend on it; "
                   "set OMP_NUM_THREADS=1) (default %(default)s)")
    i = sub.add_parser("integer", help="convert to an integer-only model and score it against FP32")
    _common(i, "--calibration")
    i.add_argument("--float-layers", nargs="*", default=[], help="node names (or op types) left in float (hybrid)")
    i.add_argument("--pow2", action="store_true", help="power-of-two scales: every requantization a shift (divisions by model constants keep a multiplier)")
    i.add_argument("--state-bits", type=int, default=16,
                   help="width of the LSTM state path, softmax and small tensors (default %(default)s); feature maps are 8 bit")
    i.add_argument("--wide-elements", type=int, default=1024,
                   help="tensors of at most this many values get --state-bits (default %(default)s; 0 = state path only)")
    i.add_argument("--lut-bits", type=int, default=10,
                   help="sigmoid/tanh/exp tables are indexed by this many top input bits (default %(default)s)")


def _common(p: argparse.ArgumentParser, data_flag: str) -> None:
    p.add_argument("--model", required=True, help="exported model directory (or bundled model name)")
    p.add_argument(data_flag, dest="data", required=True, type=Path, help="rosbag2 or EIPL dataset directory")
    p.add_argument("--split", default="test", help="dataset split (default %(default)s)")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--calibration-episodes", type=int, default=1, help="episodes for activation ranges (default 1)")
    p.add_argument("--episodes", type=int, default=1, help="held-out episodes to score (default 1)")
    p.add_argument("--steps", type=int, default=0, help="at most this many steps per episode (0 = all)")
    p.add_argument("--headroom", type=float, default=1.25, help="range = headroom x calibrated max |x| (default 1.25)")


def _episodes(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from eipl_trt.errors import InputError
    from eipl_trt.evaluate import load_for_model
    from eipl_trt.paths import resolve_model
    from eipl_trt.precision.calibration import prepare_episodes

    if args.episodes < 1 or args.calibration_episodes < 0 or args.steps < 0:
        raise InputError("--episodes must be at least 1, --calibration-episodes and --steps at least 0")
    spec = resolve_model(args.model)
    episodes = load_for_model(args.data, spec, split=args.split)
    tensors = prepare_episodes(spec, [(e.images, e.joints, f"{e.channel_order}8") for e in episodes])
    k = args.calibration_episodes if len(tensors) > args.calibration_episodes else 0
    held = tensors[k: k + args.episodes]
    if not held:
        raise InputError(f"{args.data} has {len(tensors)} episodes: none left to score after {k} for calibration")
    return spec, tensors[:k], held, k


def run(args: argparse.Namespace) -> int:
    """Dispatch to the sweep or the integer conversion."""
    if args.action == "integer":
        from eipl_trt.precision.lab.integer.cli import run_integer

        return run_integer(args, _episodes(args))
    return _run_sweep(args)


def _run_sweep(args: argparse.Namespace) -> int:
    from eipl_trt.errors import InputError
    from eipl_trt.precision.lab.report import write_sweep
    from eipl_trt.precision.lab.sweep import Lab, Result, score_many, sweep_configs

    if any(not 2 <= b <= 16 for b in args.bits) or not 0 <= args.sensitivity_bits <= 16:
        raise InputError("--bits and --sensitivity-bits must be in 2..16")
    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {args.jobs}")
    spec, calibration, held, k = _episodes(args)
    started = time.perf_counter()
    lab = Lab(spec, calibration, held, steps=args.steps or None, headroom=args.headroom)
    configs = sweep_configs(sorted(set(args.bits), reverse=True), args.scales, args.rounding,
                            [a or None for a in args.acc_bits], args.quantize)
    print(f"{spec.model}: FP32 reference mse {lab.reference_mse:.4g} rad² on {len(held)} held-out episode(s); "
          f"{len(configs)} configurations", flush=True)
    def report(n: int, r: Result) -> None:
        print(f"[{n}/{len(configs)}] {r.label}: error rate {r.error_rate:.3f}, h drift {r.h_drift_final:.3g}", flush=True)

    rows = score_many(lab, [(cfg, "", "") for cfg in configs], args.jobs, report)
    sens = lab.sensitivity(args.sensitivity_bits, jobs=args.jobs) if args.sensitivity_bits else []
    meta = {"model": spec.model, "model_dir": str(spec.directory), "data": f"{args.data} ({args.split})",
            "calibration_episodes": k, "held_out_episodes": f"{len(held)} (episodes {k}..{k + len(held) - 1})",
            "steps_per_episode": args.steps or "all", "jobs": args.jobs, "headroom": args.headroom,
            "quantize": args.quantize,
            "fp32_mse_rad2": lab.reference_mse, "wall_s": round(time.perf_counter() - started, 1)}
    for path in write_sweep(args.out, rows, sens, meta, plot=not args.no_plot):
        print(f"wrote {path}")
    return 0
