"""Generate simulated demonstrations: a scripted expert pushes an object to a goal with the 7-joint
MuJoCo Pusher arm (gymnasium Pusher-v5). The camera (RGB) and the joint positions are recorded at
10 Hz into an EIPL dataset directory (train/ and test/ images.npy + joints.npy, joint_bounds.npy,
dataset.json) and, unless --no-bag, into a rosbag2 (MCAP) with /camera/image_raw and
/joint_states (50 Hz), as a robot would record them.

Example:
    eipl-trt sim --out data_work/pusher --train 32 --test 8 --seed 0
"""

from __future__ import annotations

import argparse

HELP = "generate MuJoCo Pusher demonstrations (EIPL dataset + MCAP rosbag2)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``sim`` flags."""
    parser.add_argument("--out", required=True, help="dataset directory to create")
    parser.add_argument("--train", type=int, default=24, help="number of training episodes (default: %(default)s)")
    parser.add_argument("--test", type=int, default=6, help="number of test episodes (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed; episode i uses (seed, i) (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=70,
                        help="frames per episode at 10 Hz; the expert needs about 6.1 s (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=128,
                        help="camera image side in px; SARNN's 64 px is made by resizing (default: %(default)s)")
    bag = parser.add_mutually_exclusive_group()
    bag.add_argument("--bag", default=None,
                     help="where to write the rosbag2 directory (default: OUT/bag)")
    bag.add_argument("--no-bag", action="store_true", help="do not write a rosbag2")
    parser.add_argument("--bag-test-only", action="store_true",
                        help="put only the test episodes into the bag (default: train then test)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists and is not empty")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Generate the dataset and print a summary. Returns 0."""
    from eipl_trt.errors import InputError
    from eipl_trt.sim.record import generate_dataset

    if args.bag_test_only and args.no_bag:
        raise InputError("--bag-test-only and --no-bag contradict each other; drop one")
    if args.bag_test_only and args.test < 1:
        raise InputError("--bag-test-only needs --test 1 or more")
    bag = False if args.no_bag else (args.bag if args.bag is not None else True)
    summary = generate_dataset(
        args.out, n_train=args.train, n_test=args.test, seed=args.seed, steps=args.steps,
        image_size=args.image_size, bag=bag, bag_splits=("test",) if args.bag_test_only else ("train", "test"),
        overwrite=args.overwrite, progress=not args.no_progress,
    )
    expert = summary["expert"]
    print(f"wrote {args.train} train + {args.test} test episodes of {args.steps} frames "
          f"({args.image_size}x{args.image_size} RGB, 10 Hz) to {args.out} in {summary['generation_s']:.1f} s")
    print(f"expert success {expert['success_rate'] * 100:.0f}% (object within {expert['success_radius_m'] * 100:.0f} cm "
          f"of the goal; mean error {expert['final_error_m']['mean'] * 100:.1f} cm, "
          f"max {expert['final_error_m']['max'] * 100:.1f} cm)")
    if "bag" in summary:
        print(f"rosbag2 (MCAP): {summary['bag']['path']} with {len(summary['bag']['episodes'])} episodes")
    return 0
