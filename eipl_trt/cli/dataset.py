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
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "rosbags from your robot -> an EIPL dataset directory for training"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `eipl-trt dataset`."""
    parser.add_argument("--bag", required=True, nargs="+", type=Path, help="rosbag2 directories, read in this order")
    parser.add_argument("--out", required=True, type=Path, help="dataset directory to create")
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
    parser.add_argument("--min-steps", type=int, default=3,
                        help="drop episodes with fewer steps than this (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists and is not empty")


def run(args: argparse.Namespace) -> int:
    """Write the dataset and print a summary. Returns 0."""
    from eipl_trt.bagio.dataset import bags_to_dataset

    joints = [n.strip() for n in args.joints.split(",") if n.strip()] if args.joints else None
    summary = bags_to_dataset(
        args.bag, args.out, rate_hz=args.rate_hz, image_size=args.image_size, test_episodes=args.test_episodes,
        joint_names=joints, channel_order=args.channel_order, image_topic=args.image_topic,
        joint_topic=args.joint_topic, marker_topic=args.marker_topic, gap_s=args.gap, min_steps=args.min_steps,
        overwrite=args.overwrite,
    )
    eps = summary["episodes"]
    lengths = summary["episode_lengths"]["train"] + summary["episode_lengths"]["test"]
    print(f"wrote {eps['train']} train + {eps['test']} test episodes to {args.out}: {summary['steps']} steps at "
          f"{summary['rate_hz']:g} Hz (episodes {min(lengths)}..{max(lengths)} steps, shorter ones padded), "
          f"{summary['image_size'][0]}x{summary['image_size'][1]} px {summary['channel_order']}, "
          f"{len(summary['joint_names'])} joints: {', '.join(summary['joint_names'])}")
    print(f"images from {summary['image_topic']}, joints from {summary['joint_topic']}")
    return 0
