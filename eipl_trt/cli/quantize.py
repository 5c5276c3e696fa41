"""Add FP16 and INT8 variants (model.fp16.onnx, model.int8.onnx) to an exported model, chosen on real sequences.

The FP32 model is rolled out closed-loop over the calibration episodes (state fed back, as on the
robot); every step's inputs, recurrent state included, become calibration samples. The last
``--heldout`` episodes are kept out of calibration: a per-layer sensitivity pass replays them with
one layer (INT8) or one module (FP16) at a time in reduced precision and keeps in FP32 what would
cost accuracy. Both files are checked (symmetric int8 Q/DQ with zero points 0 and per-channel
weights; FP32 graph I/O; opset; ONNX Runtime loads them) and registered in model.json with their
recipe. Nothing in the model directory changes until every variant is built: an interrupted run
(Ctrl-C, kill -9) leaves model.json and the existing variants as they were.

    eipl-trt quantize --model engines/sarnn --precision fp16 int8 --calibration data_work/pusher --split train --sensitivity
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "add FP16 and symmetric INT8 ONNX variants chosen by a per-layer sensitivity pass on real sequences"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `eipl-trt quantize`."""
    parser.add_argument("--model", required=True, help="exported model directory (or bundled model name)")
    parser.add_argument("--calibration", required=True, type=Path,
                        help="rosbag2 or EIPL dataset directory with representative episodes")
    parser.add_argument("--split", default="train",
                        help="dataset split to calibrate on (default %(default)s; keep test data for evaluation)")
    parser.add_argument("--precision", nargs="+", default=["fp16", "int8"], choices=("fp16", "int8"),
                        help="variants to make (default: %(default)s)")
    parser.add_argument("--method", default="minmax", choices=("minmax", "entropy", "percentile"),
                        help="INT8 activation range calibration (default %(default)s)")
    parser.add_argument("--max-steps", type=int, default=256,
                        help="calibration steps in total (default %(default)s)")
    parser.add_argument("--heldout", type=int, default=3,
                        help="episodes kept out of calibration for the sensitivity pass (default %(default)s)")
    parser.add_argument("--episodes", type=int, default=0,
                        help="use only the first N episodes of the split (default: all)")
    parser.add_argument("--sensitivity", action="store_true", help="print the per-layer sensitivity tables")


def run(args: argparse.Namespace) -> int:
    """Record calibration feeds, run the sensitivity pass, write and register the variants."""
    from eipl_trt.errors import InputError
    from eipl_trt.evaluate import load_for_model
    from eipl_trt.paths import resolve_model
    from eipl_trt.precision import Options, make_variants, prepare_episodes

    if args.max_steps < 1 or args.heldout < 1 or args.episodes < 0:
        raise InputError("--max-steps and --heldout must be at least 1, --episodes at least 0")
    spec = resolve_model(args.model)
    episodes = load_for_model(args.calibration, spec, split=args.split)
    if args.episodes:
        episodes = episodes[: args.episodes]
    tensors = prepare_episodes(spec, [(e.images, e.joints, f"{e.channel_order}8") for e in episodes])
    options = Options(method=args.method, max_feeds=args.max_steps, heldout=args.heldout)
    precisions = list(dict.fromkeys(args.precision))
    updated, built = make_variants(spec, tensors, precisions, options, out=sys.stdout,
                                   calibration_source=f"{args.calibration} ({args.split})")
    if args.sensitivity:
        for precision in precisions:
            print()
            print(built.tables[precision])
    print()
    for v in built.variants:
        path = updated.variant_path(v.precision)
        held = v.recipe.get("heldout") or {}
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, opset {v.opset}, TensorRT >= {v.min_tensorrt}); "
              f"held-out error rate vs fp32 {held.get('error_rate', float('nan')):.4f}")
    print(f"from {built.calibration_steps} calibration steps ({args.method}); "
          f"{updated.directory / 'model.json'} now lists: {', '.join(updated.variants)}")
    return 0
