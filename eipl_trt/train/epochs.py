"""One training epoch: the optimizer steps over a shuffled split, then logging, evaluation and ``resume.pt``.

:class:`State` is everything an epoch changes (model, optimizer, loss ramp, the noise and shuffle
generators); :func:`restore` puts a saved one back (:mod:`eipl_trt.train.resume`), so a resumed run
continues bit for bit. Used by :mod:`eipl_trt.train.loop`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from eipl_trt.common.progress import Progress
from eipl_trt.errors import EipltrtError
from eipl_trt.train.bptt import sequence_losses, total_loss
from eipl_trt.train.config import TrainConfig
from eipl_trt.train.data import TrainData, joint_tensor, label_tensor, to_tensors
from eipl_trt.train.device import model_device
from eipl_trt.train.frozen import recurrent_losses
from eipl_trt.train.noise import add_joint_noise, add_noise
from eipl_trt.train.outputs import CHECKPOINT, LOG, save_checkpoint, write_log
from eipl_trt.train.resume import RESUME, check_compatible, restore_rng, save_resume
from eipl_trt.train.run import Run
from eipl_trt.train.schedule import LossScheduler

__all__ = ["State", "restore", "run_epoch", "end_epoch"]


class State:
    """What an epoch changes and a resume restores: model, optimizer, loss ramp, noise and shuffle generators."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: LossScheduler,
                 generator: torch.Generator, rng: np.random.Generator) -> None:
        self.model, self.optimizer, self.scheduler, self.generator, self.rng = model, optimizer, scheduler, generator, rng


def restore(saved: dict[str, Any], config: TrainConfig, state: State, run: Run) -> int:
    """Put the saved run back; returns the first epoch to train."""
    check_compatible(saved["config"], config)
    state.model.load_state_dict(saved["model"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scheduler.calls = int(saved["scheduler_step"])
    state.generator.set_state(saved["generator"])
    restore_rng(state.rng, saved["numpy_rng"])
    run.rows = [dict(r) for r in saved["rows"]]
    run.best = (float(saved["best"][0]), int(saved["best"][1]), float(saved["best"][2]))
    run.batches = int(saved["batches"])
    return int(saved["epoch"]) + 1


def run_epoch(run: Run, state: State, data: TrainData, features: torch.Tensor | None,
           deadline: float) -> tuple[dict[str, float], int, float, float, str]:
    """One pass over the shuffled train split. Returns (loss sums, batches, point weight, seconds, reason)."""
    config = run.config
    sums: dict[str, float] = {}
    batches, pt_weight, train_s, batch_s = 0, 0.0, 0.0, 0.0
    order = state.rng.permutation(data.train.num_sequences)
    for start in range(0, data.train.num_sequences, config.batch_size):
        if run.batches and time.monotonic() + batch_s + run.eval_s > deadline:
            return sums, batches, pt_weight, train_s, "time_limit"
        t0 = time.monotonic()
        losses, pt_weight = step(config, state, data, order[start : start + config.batch_size], features)
        for key, value in losses.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach())
        batches += 1
        run.batches += 1
        batch_s = time.monotonic() - t0
        train_s += batch_s
    return sums, batches, pt_weight, train_s, "completed"


def step(config: TrainConfig, state: State, data: TrainData, index: np.ndarray,
          features: torch.Tensor | None) -> tuple[dict[str, torch.Tensor], float]:
    """One optimizer step on the sequences ``index``. Returns the losses and the point weight used."""
    weights, device = config.loss_weights, model_device(state.model)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.autocast == "bf16"):
        if features is None:
            clean_img, clean_joint = to_tensors(data.train, index, device)
            x_img, x_joint = add_noise(clean_img, clean_joint, config.stdev, state.generator, data.channel_order)
            if config.channels_last:
                x_img = x_img.contiguous(memory_format=torch.channels_last) if x_img.dim() == 4 else x_img
            labels = label_tensor(data.train, index, device)
            losses = sequence_losses(state.model, x_img, x_joint, clean_img, labels, config.input_mix, config.tbptt)
        else:  # --freeze-image: the recurrent part alone, on cached features
            clean_joint = joint_tensor(data.train, index, device)
            x_joint = add_joint_noise(clean_joint, config.stdev, state.generator)
            losses = recurrent_losses(state.model, features[index], x_joint, label_tensor(data.train, index, device),
                                      config.input_mix)
    pt_weight = state.scheduler(weights[2])
    loss = total_loss(losses, weights, pt_weight) if features is None else \
        weights[1] * losses["joint"] + pt_weight * losses.get("pt", 0.0)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.optimizer.step()
    losses["loss"] = loss
    return losses, pt_weight


def end_epoch(run: Run, state: State, data: TrainData, epoch: int, sums: dict[str, float], batches: int,
               pt_weight: float, train_s: float, reason: str, bar: Progress) -> None:
    """Log the epoch, evaluate when due, write ``resume.pt``; raise on a diverged loss."""
    config = run.config
    run.add_row(epoch, sums, batches, pt_weight)
    frames = batches * config.batch_size * max(data.train.seq_len - 1, 1)
    run.rows[-1].update({"train_seconds": train_s, "frames_per_s": frames / train_s if train_s > 0 else math.nan})
    last = reason != "completed" or epoch == config.epochs - 1
    if last or (epoch + 1) % config.eval_every == 0:
        run.evaluate_last(state.model, data.test)
    else:
        write_log(run.out / LOG, run.rows)
    row = run.rows[-1]
    bar.set_postfix({"train": f"{row['train_loss']:.4g}", "test": f"{row.get('test_loss', math.nan):.4g}",
                     "best": f"{run.best[0]:.4g}", "frames/s": f"{row['frames_per_s']:.0f}"})
    bar.update(1)
    if not math.isfinite(row["train_loss"]):
        raise EipltrtError(
            f"training diverged: train loss is {row['train_loss']} at epoch {epoch}; lower --lr "
            f"(now {config.lr}). The best checkpoint so far is kept in {run.out / CHECKPOINT}"
        )
    if config.keep_epochs:
        (run.out / "epochs").mkdir(exist_ok=True)
        save_checkpoint(run.out / "epochs" / f"epoch_{epoch:03d}.pth", state.model, epoch, row["train_loss"],
                        row.get("test_loss", math.nan))
    if reason == "completed":
        save_resume(run.out / RESUME, epoch=epoch, model=state.model, optimizer=state.optimizer,
                    scheduler_step=state.scheduler.calls, generator=state.generator, rng=state.rng, rows=run.rows,
                    best=run.best, batches=run.batches, config=config)
