"""Train SARNN / CNNRNN / CNNRNNLN on an EIPL dataset with EIPL's procedure, on the CPU or a CUDA GPU.

Full BPTT with teacher forcing, EIPL's loss weights, input noise and optimizer. Writes into --out:
model.pth (EIPL checkpoint of the best test loss), args.json, log.csv, joint_bounds.npy and
metrics.json (test joint MSE vs the "hold the last joint" baseline); with --export also an ONNX
model with its model.json sidecar in OUT/onnx.

Example:
    eipl-trt train --model sarnn --data data/pusher --out out/sarnn --epochs 200 --max-minutes 10 --export
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eipl_trt.train import TrainConfig, TrainResult

HELP = "train a model on an EIPL dataset (EIPL's full-BPTT procedure, CPU or CUDA) and write model.pth"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``train`` flags."""
    parser.add_argument("--model", required=True, choices=("sarnn", "cnnrnn", "cnnrnnln"), help="model kind")
    parser.add_argument("--data", required=True, type=Path, help="dataset directory (train/, test/, joint_bounds.npy)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--epochs", type=int, default=100, help="maximum epochs (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=5, help="sequences per step (default %(default)s)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default %(default)s)")
    parser.add_argument("--rec-dim", type=int, default=50, help="LSTM hidden size (default %(default)s)")
    parser.add_argument("--k-dim", type=int, default=5, help="SARNN attention points (default %(default)s)")
    parser.add_argument("--feat-dim", type=int, default=10, help="CNNRNN(LN) image features (default %(default)s)")
    parser.add_argument("--im-size", type=int, default=64, help="SARNN input size in px (default %(default)s); CNN models use 128")
    parser.add_argument("--leaky-slope", type=float, default=0.3, help="SARNN LeakyReLU slope (default %(default)s)")
    parser.add_argument("--heatmap-size", type=float, default=0.1, help="SARNN heatmap size (default %(default)s)")
    parser.add_argument("--temperature", type=float, default=1e-4, help="SARNN softmax temperature (default %(default)s)")
    parser.add_argument("--img-loss", type=float, default=None, help="image loss weight (default: 0.1 SARNN, 1.0 CNN)")
    parser.add_argument("--joint-loss", type=float, default=None, help="joint loss weight (default 1.0)")
    parser.add_argument("--pt-loss", type=float, default=None, help="SARNN point loss weight (default 0.1)")
    parser.add_argument("--stdev", type=float, default=0.02, help="input noise std, normalized units (default %(default)s)")
    parser.add_argument("--decay-end", type=int, default=1000, help="batches of point-loss ramp-up (default %(default)s)")
    parser.add_argument("--eval-every", type=int, default=1, help="test-split evaluation period in epochs (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop and save after this many minutes of wall time")
    parser.add_argument(
        "--init-from", default=None, help="start from the weights of this model.pth (continue / fine-tune; same model options)"
    )
    parser.add_argument("--select-by", choices=("loss", "joint"), default="loss",
                        help="test score that picks the saved checkpoint: the weighted total loss (EIPL) or "
                        "the joint prediction loss alone (default: %(default)s)")
    parser.add_argument("--freeze-image", action="store_true",
                        help="keep the image path of --init-from fixed and train the LSTM and joint decoder (SARNN: "
                        "and its point decoder) on cached image features (SARNN: attention points); far faster on a CPU")
    parser.add_argument("--input-mix", type=float, default=1.0,
                        help="joint input while training = a * measured + (1 - a) * previous prediction, as the "
                        "node's input_mix at run time; 1.0 = teacher forcing (default %(default)s)")
    parser.add_argument("--device", default="cpu",
                        help="cpu, or cuda / cuda:N to train on an NVIDIA GPU with a CUDA build of torch (default %(default)s)")
    parser.add_argument("--autocast", choices=("none", "bf16"), default="none",
                        help="bf16: the forward pass in bfloat16 (CPUs with AVX512-BF16 or AMX, GPUs) (default %(default)s)")
    parser.add_argument("--channels-last", action="store_true", help="NHWC memory order for images and convolutions")
    parser.add_argument("--tbptt", type=int, default=0,
                        help="truncated BPTT window in steps (the state carries on, its gradient is cut); "
                        "0 = full BPTT (default %(default)s)")
    parser.add_argument("--keep-epochs", action="store_true",
                        help="also save every epoch's weights as OUT/epochs/epoch_NNN.pth (to pick one by closed-loop "
                        "success: eipl-trt sim dagger does)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its resume.pt (written after every epoch), bit for bit; "
                        "only --epochs, --max-minutes, --threads and --eval-every may change")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--export", action="store_true", help="also export the best checkpoint to OUT/onnx (ONNX + model.json)")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> int:
    """Train, print a summary, optionally export. Returns 0, or 130 if interrupted (after saving).

    SIGTERM is treated like Ctrl-C: the current model is evaluated and the outputs are saved.
    """
    from eipl_trt.train import train

    config = _train_config(args)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = train(config, args.data, args.out, progress=not args.no_progress, resume=args.resume)
    finally:
        signal.signal(signal.SIGTERM, previous)
    m = result.metrics
    print(
        f"{result.model}: {result.epochs_run} epochs ({result.batches_run} batches) in {result.wall_time_s:.0f} s, "
        f"stopped: {result.stop_reason}\n"
        f"  best epoch {result.best_epoch}: train loss {result.best_train_loss:.5g}, "
        f"test {'joint loss' if config.select_by == 'joint' else 'loss'} {result.best_test_loss:.5g}\n"
        f"  last: train loss {result.final_train_loss:.5g}, test loss {result.final_test_loss:.5g}\n"
        f"  test joint MSE {m['model_mse']:.4g} vs hold-last baseline {m['hold_mse']:.4g} (ratio {m['ratio']:.3f})\n"
        f"  wrote {result.checkpoint}, {result.args_json.name}, {result.log_csv.name}, "
        f"{result.joint_bounds.name}, {result.metrics_json.name}"
    )
    if args.export:
        _export(args, config, result)
    return 130 if result.stop_reason == "interrupted" else 0


def _train_config(args: argparse.Namespace) -> TrainConfig:
    """The training settings the flags give."""
    from eipl_trt.train import TrainConfig

    return TrainConfig(
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        rec_dim=args.rec_dim,
        k_dim=args.k_dim,
        feat_dim=args.feat_dim,
        im_size=args.im_size,
        leaky_slope=args.leaky_slope,
        heatmap_size=args.heatmap_size,
        temperature=args.temperature,
        img_loss=args.img_loss,
        joint_loss=args.joint_loss,
        pt_loss=args.pt_loss,
        stdev=args.stdev,
        decay_end=args.decay_end,
        eval_every=args.eval_every,
        seed=args.seed,
        threads=args.threads,
        max_minutes=args.max_minutes,
        init_from=args.init_from,
        select_by=args.select_by,
        freeze_image=args.freeze_image,
        input_mix=args.input_mix,
        device=args.device,
        autocast=args.autocast,
        channels_last=args.channels_last,
        tbptt=args.tbptt,
        keep_epochs=args.keep_epochs,
    )


def _export(args: argparse.Namespace, config: TrainConfig, result: TrainResult) -> None:
    """Export the best checkpoint to OUT/onnx with the joint names, rate and channel order training saved."""
    from eipl_trt.models.export import export_checkpoint

    saved = json.loads(result.args_json.read_text(encoding="utf-8"))
    spec = export_checkpoint(
        args.model,
        result.checkpoint,
        args_json=result.args_json,
        joint_bounds=result.joint_bounds,
        leaky_slope=config.leaky_slope,
        im_size=(config.image_size, config.image_size),
        joint_names=saved["joint_names"],
        rate_hz=float(saved["rate_hz"]),
        channel_order=saved["channel_order"],
        out_dir=result.out_dir / "onnx",
    )
    result.onnx_dir = result.out_dir / "onnx"
    print(f"  exported {spec.model} to {result.onnx_dir}")
