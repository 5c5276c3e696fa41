"""Offline accuracy from a rosbag2 or an EIPL dataset directory.

Replays the recorded camera and joint streams through the model at its training rate (episodes
split at gaps, state reset at each episode start) and reports EIPL's metric: the per-step MSE
between the predicted joints at t and the measured joints at t+1, beside the hold-last baseline,
for every precision, with the error rate relative to fp32. Writes report.md, metrics.json,
steps.csv and plot.png into --out.

    eipl-trt evaluate --bag share/eipl_trt/data/pusher_sample --out results/eval
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "offline accuracy of a model on a rosbag2 or EIPL dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `eipl-trt evaluate`."""
    parser.add_argument("--bag", required=True, type=Path,
                        help="rosbag2 directory (MCAP or sqlite3), or an EIPL dataset directory")
    parser.add_argument("--model", default=None,
                        help="bundled model name or exported model directory (default: the bundled SARNN)")
    parser.add_argument("--precision", nargs="+", default=None,
                        help="precisions to evaluate (default: every one available on the backend)")
    parser.add_argument("--backend", default="auto",
                        help="auto | onnxruntime | openvino | tensorrt | integer (the integer-only model in <model>/intonly) (default %(default)s)")
    parser.add_argument("--image-topic", default=None,
                        help="camera topic, sensor_msgs/Image (any encoding) or CompressedImage (JPEG/PNG; needs "
                        "pip install eipl_trt[camera]) (default: the bag's only Image topic, else its only "
                        "CompressedImage topic)")
    parser.add_argument("--joint-topic", default=None, help="JointState topic (default: the bag's only one)")
    parser.add_argument("--split", default="test", help="dataset split for a dataset directory (default %(default)s)")
    parser.add_argument("--input-mix", type=float, default=1.0,
                        help="closed-loop mixing of measured and predicted joints, 1 = measured (default %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="inference threads (default %(default)s)")
    parser.add_argument("--camera-check", action="store_true",
                        help="also replay each episode with the next episode's frames (same joints): "
                        "shows whether the model uses the camera at all (needs 2+ episodes)")
    parser.add_argument("--integer-model", type=Path, default=None,
                        help="also run an integer-only model written by `eipl-trt quantlab integer` for this "
                        "model, as the column 'intonly' (bit-exact numpy executor; slow)")
    parser.add_argument("--no-plot", action="store_true", help="skip plot.png")
    parser.add_argument("--out", required=True, type=Path, help="output directory for the report")


def run(args: argparse.Namespace) -> int:
    """Run the evaluation and print the summary table."""
    from eipl_trt.evaluate import evaluate, load_for_model, write_report
    from eipl_trt.paths import DEFAULT_MODEL, resolve_model
    from eipl_trt.runners import available_precisions

    spec = resolve_model(args.model or DEFAULT_MODEL)
    precisions = args.precision or available_precisions(spec, args.backend)
    episodes = load_for_model(args.bag, spec, split=args.split,
                              image_topic=args.image_topic, joint_topic=args.joint_topic)
    report = evaluate(spec, episodes, precisions=precisions, backend=args.backend, num_threads=args.threads,
                      input_mix=args.input_mix, source=str(args.bag), progress=True,
                      camera_check=args.camera_check, integer_model=args.integer_model)
    paths = write_report(report, args.out, plot=not args.no_plot)
    print((args.out / "report.md").read_text(encoding="utf-8"))
    for path in paths:
        print(f"wrote {path}")
    return 0
