"""EIPL-format training outputs, each written atomically.

* ``model.pth``: ``torch.save({"epoch", "model_state_dict", "train_loss", "test_loss"})`` of the
  checkpoint with the best test loss (EIPL's format; no optimizer state).
* ``args.json``: the run's arguments like EIPL's argparse dict, plus joint names and the data path.
* ``log.csv``: one row per epoch (columns :data:`LOG_COLUMNS`).
* ``joint_bounds.npy``: a copy of the dataset's (2, D) bounds.
* ``metrics.json``: test-split joint MSE of the saved checkpoint vs the hold baseline.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from eipl_trt.common.atomic import atomic_open, write_bytes_atomic, write_json_atomic, write_text_atomic
from eipl_trt.common.signals import deferred_interrupts
from eipl_trt.train.config import TrainConfig
from eipl_trt.train.data import VMAX, VMIN, TrainData

__all__ = [
    "CHECKPOINT",
    "ARGS",
    "LOG",
    "BOUNDS",
    "METRICS",
    "LOG_COLUMNS",
    "save_checkpoint",
    "args_dict",
    "write_log",
    "write_bounds",
    "write_metrics",
]

CHECKPOINT = "model.pth"
ARGS = "args.json"
LOG = "log.csv"
BOUNDS = "joint_bounds.npy"
METRICS = "metrics.json"

#: log.csv columns. Loss terms are unweighted MSEs in normalized units; ``*_loss`` are the
#: weighted totals (train: scheduled point weight, test: full weights); ``seconds`` is the
#: wall time since training started; ``train_seconds`` the epoch's training time and ``frames_per_s`` its
#: throughput in sequence-frames (steps of B sequences) per second. Test columns are empty in epochs without
#: evaluation.
LOG_COLUMNS = (
    "epoch",
    "batches",
    "train_loss",
    "train_img",
    "train_joint",
    "train_pt",
    "pt_weight",
    "test_loss",
    "test_img",
    "test_joint",
    "test_pt",
    "best",
    "seconds",
    "train_seconds",
    "frames_per_s",
)


def save_torch_atomic(path: Path, payload: Any) -> None:
    """``torch.save`` to ``path`` atomically, with Ctrl-C and SIGTERM held until the file is whole.

    Every checkpoint-like file training writes goes through here (:mod:`eipl_trt.common.signals` says why).
    """
    with deferred_interrupts(), atomic_open(path, "wb") as handle:
        torch.save(payload, handle)


def save_checkpoint(path: Path, model: nn.Module, epoch: int, train_loss: float, test_loss: float) -> None:
    """Write an EIPL checkpoint dict atomically (loadable with ``torch.load(weights_only=True)``)."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {"epoch": int(epoch), "model_state_dict": state, "train_loss": float(train_loss), "test_loss": float(test_loss)}
    save_torch_atomic(path, payload)


def args_dict(config: TrainConfig, data: TrainData) -> dict[str, Any]:
    """EIPL-style ``args.json`` contents for ``config`` trained on ``data``."""
    img_w, joint_w, pt_w = config.loss_weights
    return {
        "model": config.model,
        "epoch": config.epochs,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "optimizer": "adam",
        "eps": 1e-7,
        "rec_dim": config.rec_dim,
        "k_dim": config.k_dim,
        "feat_dim": config.feat_dim,
        "heatmap_size": config.heatmap_size,
        "temperature": config.temperature,
        "im_size": config.image_size,
        "leaky_slope": config.leaky_slope,
        "img_loss": img_w,
        "joint_loss": joint_w,
        "pt_loss": pt_w,
        "stdev": config.stdev,
        "vmin": VMIN,
        "vmax": VMAX,
        "decay_end": config.decay_end,
        "eval_every": config.eval_every,
        "seed": config.seed,
        "threads": config.num_threads,
        "max_minutes": config.max_minutes,
        "compile": False,
        "init_from": str(Path(config.init_from).resolve()) if config.init_from else None,
        "select_by": config.select_by,
        "freeze_image": config.freeze_image,
        "input_mix": config.input_mix,
        "device": str(config.device),
        "joint_dim": data.joint_dim,
        "joint_names": list(data.joint_names),
        "channel_order": data.channel_order,
        "rate_hz": data.rate_hz,
        "data": str(data.path),
        "train_sequences": data.train.num_sequences,
        "test_sequences": data.test.num_sequences,
        "seq_len": data.train.seq_len,
        "source_image_size": list(data.source_size),
    }


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.8g}"
    return str(value)


def write_log(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rewrite ``log.csv`` atomically with all rows so far."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(LOG_COLUMNS)
    for row in rows:
        writer.writerow([_fmt(row.get(col)) for col in LOG_COLUMNS])
    write_text_atomic(path, buf.getvalue())


def write_bounds(path: Path, source: Path) -> None:
    """Copy the dataset's ``joint_bounds.npy`` byte for byte, atomically."""
    write_bytes_atomic(path, Path(source).read_bytes())


def write_metrics(path: Path, metrics: Mapping[str, Any]) -> None:
    """Write ``metrics.json`` atomically."""
    write_json_atomic(path, dict(metrics))
