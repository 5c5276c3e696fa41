"""Turn rosbags recorded on your robot into an EIPL dataset directory for `eipl-trt train`.

Reads a camera topic (sensor_msgs/Image in any encoding the node takes, or CompressedImage
JPEG/PNG) and joint_states from each bag, cuts episodes at pauses (or at each message of
--marker-topic), samples them at --rate-hz exactly as `eipl-trt evaluate` and the node see them
(latest frame, joints interpolated in time), resizes frames with the predictor's resize, and
writes train/ and test/ (images.npy, joints.npy), joint_bounds.npy and dataset.json. The last
--test-episodes episodes are the test split.

    ros2 bag record /camera/image_raw/compressed /joint_states      # one or more demonstrations
    eipl-trt dataset --bag rosbag2_* --out data/my_task --rate-hz 10 --image-size 64
    eipl-trt train --model sarnn --data data/my_task --out runs/my_task --export

Two subcommands work on bags and datasets that already exist:

    eipl-trt dataset recode --bag data/pusher_sample --out /tmp/robot_bag --joint-rate-hz 500
    eipl-trt dataset merge --out data_work/pusher_big data_work/pusher data_work/perturbed

`recode` rewrites a bag the way a robot records it (JPEG or PNG CompressedImage frames as
compressed_image_transport writes them, joint_states resampled to a fast rate), to try the path
above on simulated data. `merge` concatenates the train splits of several datasets; the test split,
joint bounds and metadata come from the first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "rosbags from your robot -> an EIPL dataset directory for training (also: recode, merge)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `eipl-trt dataset`, and its subcommands `recode` and `merge`."""
    parser.add_argument("--bag", nargs="+", type=Path,
                        help="rosbag2 directories, read in this order (required without a subcommand)")
    parser.add_argument("--out", type=Path, help="dataset directory to create (required without a subcommand)")
    parser.add_argument("--rate-hz", type=float, default=10.0,
                        help="control rate the model runs at; episodes are sampled at it (default %(default)s)")
    parser.add_argument("--image-size", type=int, default=128, choices=(64, 128),
                        help="frame side in px: the model's input size (SARNN 64, CNNRNN/CNNRNNLN 128) keeps "
                        "training frames identical to what the node feeds it (default %(default)s)")
    parser.add_argument("--test-episodes", type=int, default=None,
                        help="how many of the last episodes form the test split (default: 20%%, at least 1)")
    parser.add_argument("--joints", default=None,
                        help="comma-separated joint names in model order (default: every joint in joint_states)")
    parser.add_argument("--channel-order", choices=("rgb", "bgr"), default=None,
                        help="channel order of the stored frames (default: the camera's; bgr for JPEG/PNG)")
    parser.add_argument("--image-topic", default=None, help="camera topic, Image or CompressedImage "
                        "(default: the bag's only Image topic, else its only CompressedImage topic)")
    parser.add_argument("--joint-topic", default=None, help="JointState topic (default: the bag's only one)")
    parser.add_argument("--marker-topic", default=None,
                        help="a topic of any type whose every message starts a new episode (default: none)")
    parser.add_argument("--gap", type=float, default=None,
                        help="a pause longer than this (s) ends an episode (default: max(1 s, 5 periods))")
    parser.add_argument("--target-topic", default=None,
                        help="a JointState topic whose positions are the training labels (e.g. /expert/intent, "
                        "the demonstrator's clean targets; default: the next measured joints)")
    parser.add_argument("--start-topic", default=None,
                        help="episodes start at this topic's first message inside them, and those without one are "
                        "dropped (e.g. /expert/takeover)")
    parser.add_argument("--joint-bounds", type=Path, default=None,
                        help="use these joint bounds instead of the data's: a model directory (its model.json) or "
                        "a (2, D) .npy; to fine-tune a model, give it its own normalization")
    parser.add_argument("--min-steps", type=int, default=3,
                        help="drop episodes with fewer steps than this (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists and is not empty")
    parser.set_defaults(_dataset_parser=parser, _dataset_run=None)
    sub = parser.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND")
    recode = sub.add_parser("recode", help="rewrite a bag as a robot records it: compressed frames, fast joint_states",
                            description=_doc("eipl_trt.bagio.recode"),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    recode.add_argument("--bag", required=True, type=Path, help="source rosbag2 (one raw Image and one JointState topic)")
    recode.add_argument("--out", required=True, type=Path, help="bag directory to create")
    recode.add_argument("--codec", choices=("jpeg", "png"), default="jpeg",
                        help="frame compression (default %(default)s)")
    recode.add_argument("--quality", type=int, default=95,
                        help="JPEG quality (default %(default)s, as image_transport)")
    recode.add_argument("--joint-rate-hz", type=float, default=None,
                        help="resample joint_states to this rate in Hz (default: keep the recorded messages)")
    recode.add_argument("--gap", type=float, default=0.5,
                        help="a pause (s) between joint messages that separates episodes (default %(default)s)")
    recode.set_defaults(_dataset_run=_run_recode)
    merge = sub.add_parser("merge", help="concatenate the train splits of several EIPL datasets",
                           description=_doc("eipl_trt.bagio.merge"),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    merge.add_argument("sources", type=Path, nargs="+",
                       help="dataset directories; the first gives test/, joint_bounds.npy and dataset.json")
    merge.add_argument("--out", required=True, type=Path, help="dataset directory to create")
    merge.add_argument("--image-size", type=int, default=None, metavar="PX",
                       help="resize every frame to PX x PX (the resize training applies), for sources of different "
                            "sizes (default: they must agree)")
    merge.set_defaults(_dataset_run=_run_merge)


def _doc(module: str) -> str:
    """A module's docstring, read without importing it (the bagio modules import numpy)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return ""
    return ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8"))) or ""


def _bounds(path: Path | None):  # noqa: ANN202 - numpy array or None
    """``--joint-bounds``: a model directory's bounds (model.json) or a (2, D) .npy file."""
    if path is None:
        return None
    import numpy as np

    from eipl_trt.errors import InputError

    if path.is_dir():
        from eipl_trt.paths import resolve_model

        spec = resolve_model(str(path))
        return np.array([spec.joint_min, spec.joint_max], np.float32)
    try:
        bounds = np.load(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"--joint-bounds {path}: not a model directory or a .npy file ({exc})") from None
    if bounds.ndim != 2 or bounds.shape[0] != 2:
        raise InputError(f"--joint-bounds {path} has shape {bounds.shape}; expected (2, D): min row, max row")
    return bounds


def _run_recode(args: argparse.Namespace) -> int:
    from eipl_trt.bagio.recode import recode_bag

    info = recode_bag(args.bag, args.out, codec=args.codec, quality=args.quality, joint_rate_hz=args.joint_rate_hz,
                      gap_s=args.gap)
    print(f"wrote {args.out}: {info['frames']} frames on {info['image_topic']} ({info['format']!r}, "
          f"{info['jpeg_bytes_mean'] / 1024:.1f} KiB each), {info['joint_states']} joint_states on {info['joint_topic']}")
    return 0


def _run_merge(args: argparse.Namespace) -> int:
    from eipl_trt.bagio.merge import merge_datasets

    meta = merge_datasets(args.sources, args.out, image_size=args.image_size)
    print(f"wrote {meta['episodes']['train']} train episodes from {len(args.sources)} datasets "
          f"(test split and bounds of {args.sources[0]}) to {args.out}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run a subcommand, or write the dataset from --bag and print a summary. Returns 0."""
    if args._dataset_run is not None:
        return args._dataset_run(args)
    missing = [flag for flag, value in (("--bag", args.bag), ("--out", args.out)) if value is None]
    if missing:
        args._dataset_parser.error(f"the following arguments are required: {', '.join(missing)} "
                                   f"(or a subcommand: recode, merge)")
    from eipl_trt.bagio.dataset import bags_to_dataset

    joints = [n.strip() for n in args.joints.split(",") if n.strip()] if args.joints else None
    summary = bags_to_dataset(
        args.bag, args.out, rate_hz=args.rate_hz, image_size=args.image_size, test_episodes=args.test_episodes,
        joint_names=joints, channel_order=args.channel_order, image_topic=args.image_topic,
        joint_topic=args.joint_topic, marker_topic=args.marker_topic, gap_s=args.gap, min_steps=args.min_steps,
        overwrite=args.overwrite, target_topic=args.target_topic, start_topic=args.start_topic,
        bounds=_bounds(args.joint_bounds),
    )
    eps = summary["episodes"]
    lengths = summary["episode_lengths"]["train"] + summary["episode_lengths"]["test"]
    print(f"wrote {eps['train']} train + {eps['test']} test episodes to {args.out}: {summary['steps']} steps at "
          f"{summary['rate_hz']:g} Hz (episodes {min(lengths)}..{max(lengths)} steps, shorter ones padded), "
          f"{summary['image_size'][0]}x{summary['image_size'][1]} px {summary['channel_order']}, "
          f"{len(summary['joint_names'])} joints: {', '.join(summary['joint_names'])}")
    print(f"images from {summary['image_topic']}, joints from {summary['joint_topic']}")
    return 0
