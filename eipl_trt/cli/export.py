"""Export an EIPL training checkpoint to ONNX plus the model.json sidecar the runtime reads.

Examples:
  eipl-trt export --model sarnn --checkpoint weights/SARNN/model.pth \\
      --joint-bounds data/joint_bounds.npy --channel-order bgr --out models/sarnn
  eipl-trt export --model sarnn --checkpoint pretrained/SARNN/model.pth --leaky-slope 0.01 \\
      --joint-bounds joint_bounds.npy --out models/sarnn128

The graph is one time step, batch 1, opset 17, with the LSTM state as explicit inputs and
outputs (i.state_h/i.state_c -> o.state_h/o.state_c). args.json beside the checkpoint is used
when --args is not given.
"""

from __future__ import annotations

import argparse

from eipl_trt.errors import ModelError

HELP = "export an EIPL checkpoint (model.pth) to model.onnx + model.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the export flags."""
    parser.add_argument("--model", required=True, choices=("sarnn", "cnnrnn", "cnnrnnln"), help="model kind")
    parser.add_argument("--checkpoint", required=True, metavar="PTH", help="EIPL model.pth (loaded weights-only)")
    parser.add_argument(
        "--args", dest="args_json", metavar="JSON", default=None,
        help="EIPL args.json (default: args.json beside the checkpoint, if present)",
    )
    parser.add_argument(
        "--joint-bounds", required=True, metavar="NPY",
        help="joint_bounds.npy of the training data, shape (2, D): row 0 min, row 1 max (rad)",
    )
    parser.add_argument(
        "--leaky-slope", type=float, default=None, metavar="S",
        help="SARNN LeakyReLU slope, not stored in checkpoints: 0.3 = eipl HEAD (default), "
        "0.01 = eipl-deploy/pretrained 128 px weights",
    )
    parser.add_argument(
        "--im-size", type=int, nargs=2, default=None, metavar=("H", "W"),
        help="input size in px (default: inferred from SARNN buffers; 128 128 for CNNRNN/CNNRNNLN)",
    )
    parser.add_argument(
        "--joint-names", default=None, metavar="A,B,...",
        help="comma-separated joint names in model order (default: args.json's joint_names, else joint_0,joint_1,...)",
    )
    parser.add_argument(
        "--rate-hz", type=float, default=None, metavar="HZ",
        help="control rate the model was trained at, in Hz (default: args.json's rate_hz, else 10)",
    )
    parser.add_argument(
        "--channel-order", choices=("rgb", "bgr"), default=None,
        help="channel order of the training images; AIREC/OpenManipulator data are bgr "
        "(default: args.json's channel_order, else rgb)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory for model.onnx and model.json")


def _split_names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",")]
    if not any(names):
        raise ModelError("--joint-names is empty; pass comma-separated names such as j1,j2,j3 or leave it out")
    return names


def run(args: argparse.Namespace) -> int:
    """Export and print a summary (files, tensor names and shapes, sha256)."""
    from eipl_trt.models.export import export_checkpoint

    spec = export_checkpoint(
        args.model,
        args.checkpoint,
        args_json=args.args_json,
        joint_bounds=args.joint_bounds,
        leaky_slope=args.leaky_slope,
        im_size=args.im_size,
        joint_names=_split_names(args.joint_names),
        rate_hz=args.rate_hz,
        channel_order=args.channel_order,
        out_dir=args.out,
    )
    onnx_path = spec.variant_path("fp32")
    print(f"exported {spec.model} ({', '.join(f'{k}={v}' for k, v in spec.architecture.items())})")
    print(f"  {onnx_path}  sha256 {spec.variants['fp32'].sha256}")
    print(f"  {onnx_path.parent / 'model.json'}")
    print(f"  image {spec.image_height}x{spec.image_width} {spec.channel_order}, {spec.joint_dim} joints "
          f"({', '.join(spec.joint_names)}), {spec.rate_hz:g} Hz, normalized to [{spec.vmin:g}, {spec.vmax:g}]")
    in_shapes, out_shapes = spec.input_shapes(), spec.output_shapes()
    print("  inputs:  " + "  ".join(f"{spec.inputs[r]} {in_shapes[r]}" for r in in_shapes))
    print("  outputs: " + "  ".join(f"{spec.outputs[r]} {out_shapes[r]}" for r in out_shapes))
    return 0
