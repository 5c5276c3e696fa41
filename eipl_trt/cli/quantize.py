"""Add an INT8 variant (model.int8.onnx) to an exported model, calibrated on real sequences.

The FP32 model is rolled out closed-loop over the calibration episodes (state fed back, as on the
robot) and every step's inputs, recurrent state included, become calibration samples for ONNX
Runtime's static Q/DQ quantizer. Only Conv/ConvTranspose are quantized; the LSTM, the heads, the
spatial softmax and LayerNorms stay FP32. model.json then lists the int8 precision, so the node and
`eipl-trt evaluate`/`bench` can use it.

    eipl-trt quantize --model engines/sarnn --calibration data_work/pusher --split train
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "add an INT8 ONNX Runtime variant calibrated on a bag or dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `eipl-trt quantize`."""
    parser.add_argument("--model", required=True, help="exported model directory (or bundled model name)")
    parser.add_argument("--calibration", required=True, type=Path,
                        help="rosbag2 or EIPL dataset directory with representative episodes")
    parser.add_argument("--split", default="train",
                        help="dataset split to calibrate on (default %(default)s; keep test data for evaluation)")
    parser.add_argument("--method", default="entropy", choices=("entropy", "minmax", "percentile"),
                        help="activation range calibration (default %(default)s)")
    parser.add_argument("--max-steps", type=int, default=512, help="calibration steps in total (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Record calibration feeds, quantize, register the variant."""
    from eipl_trt.evaluate import load_for_model
    from eipl_trt.paths import resolve_model
    from eipl_trt.quantize import quantize_int8, record_calibration_feeds

    spec = resolve_model(args.model)
    episodes = load_for_model(args.calibration, spec, split=args.split)
    feeds = record_calibration_feeds(
        spec, [(e.images, e.joints, f"{e.channel_order}8") for e in episodes], max_feeds=args.max_steps
    )
    updated = quantize_int8(spec, feeds, method=args.method)
    path = updated.variant_path("int8")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) from {len(feeds)} calibration steps "
          f"({args.method}); {updated.directory / 'model.json'} now lists: {', '.join(updated.variants)}")
    return 0
