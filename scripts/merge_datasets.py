"""Concatenate the train splits of several EIPL dataset directories into one (issue #12's training data).

The test split, ``joint_bounds.npy`` and the metadata come from the first directory: the bounds define
a model's joint normalization, so data added for fine-tuning must keep those of the model's own
dataset. Every directory must have the same sequence length, image size and joint count.

Example:
    python scripts/merge_datasets.py --out data_work/pusher_big data_work/pusher data_work/nominal data_work/perturbed
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from eipl_trt.sim.derived import write_derived_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", type=Path, nargs="+", help="dataset directories; the first gives test/ and bounds")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    images = [np.load(src / "train" / "images.npy", mmap_mode="r") for src in args.sources]
    joints = [np.load(src / "train" / "joints.npy") for src in args.sources]
    shapes = {(i.shape[1:], j.shape[1:]) for i, j in zip(images, joints)}
    if len(shapes) != 1:
        raise SystemExit(f"the train splits differ in (T, H, W, C) / (T, D): {sorted(shapes)}; regenerate them alike")
    first = args.sources[0]
    meta = json.loads((first / "dataset.json").read_text())
    meta["episodes"] = {"train": int(sum(len(j) for j in joints)), "test": meta["episodes"]["test"]}
    if "episode_seeds" in meta:  # train seeds are per source (in each source's dataset.json); test is the first's
        meta["episode_seeds"] = {"test": meta["episode_seeds"].get("test", [])}
    meta["merged_from"] = [{"path": str(src), "train_episodes": len(j)} for src, j in zip(args.sources, joints)]
    write_derived_dataset(args.out, first, np.concatenate(images), np.concatenate(joints).astype(np.float32), meta)
    print(f"wrote {meta['episodes']['train']} train episodes from {len(args.sources)} datasets to {args.out}")


if __name__ == "__main__":
    main()
