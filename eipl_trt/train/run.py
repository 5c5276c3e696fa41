"""The bookkeeping of one training run: log rows, the best checkpoint, evaluation timing."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from torch import nn

from eipl_trt.errors import EipltrtError
from eipl_trt.train.bptt import evaluate
from eipl_trt.train.config import TrainConfig
from eipl_trt.train.data import Split
from eipl_trt.train.outputs import CHECKPOINT, LOG, save_checkpoint, write_log

__all__ = ["Run"]


class Run:
    """Mutable bookkeeping of one training run (rows of log.csv, best checkpoint, timing)."""

    def __init__(self, config: TrainConfig, out: Path, started: float) -> None:
        self.config = config
        self.out = out
        self.started = started
        self.rows: list[dict[str, Any]] = []
        self.best = (math.inf, -1, math.nan)  # (test loss, epoch, train loss)
        self.batches = 0
        self.eval_s = 0.0

    def add_row(self, epoch: int, sums: dict[str, float], batches: int, pt_weight: float) -> None:
        row = {"epoch": epoch, "batches": batches, "pt_weight": pt_weight, "best": 0}
        for key in ("loss", "img", "joint", "pt"):
            row[f"train_{key}"] = sums[key] / batches if key in sums else math.nan
        row["seconds"] = time.monotonic() - self.started
        self.rows.append(row)

    def evaluate_last(self, model: nn.Module, test: Split) -> None:
        """Score the current model, fill the last row, and save it if it is the best so far."""
        row = self.rows[-1]
        t0 = time.monotonic()
        scores = evaluate(model, test, self.config.loss_weights, self.config.batch_size, self.config.input_mix)
        self.eval_s = time.monotonic() - t0
        for key, value in scores.items():
            row[f"test_{key}"] = value
        if not math.isfinite(scores["loss"]):
            write_log(self.out / LOG, self.rows)
            raise EipltrtError(
                f"training diverged: test loss is {scores['loss']} at epoch {row['epoch']}; lower --lr "
                f"(now {self.config.lr}) or check the dataset for outliers. The best checkpoint so far "
                f"(if any) is kept in {self.out / CHECKPOINT}"
            )
        score = scores[self.config.select_by]
        if score < self.best[0]:
            self.best = (score, row["epoch"], row["train_loss"])
            row["best"] = 1
            save_checkpoint(self.out / CHECKPOINT, model, row["epoch"], row["train_loss"], scores["loss"])
        row["seconds"] = time.monotonic() - self.started
        write_log(self.out / LOG, self.rows)


