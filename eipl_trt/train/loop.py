"""EIPL's training procedure: full BPTT with teacher forcing, loss weighting, best-test checkpointing.

Per batch of whole sequences (eipl-models.md §3.3): the LSTM state starts at zeros, the model
steps t = 0..T-2 on the noisy inputs x[:, t], and the loss is the weighted sum of
``MSE(y_image, image[:, 1:])``, ``MSE(y_joint, joints[:, 1:])`` and, for SARNN,
``MSE(dec_pts[:-1], enc_pts[1:])``, whose weight ramps up with an s-curve
:class:`~eipl_trt.train.schedule.LossScheduler` advanced once per training batch. Adam
(eps 1e-7). Every ``eval_every`` epochs the clean test split is scored with full weights, and the
state with the lowest test loss is saved as ``model.pth``.

Deviations from EIPL, on purpose: the ramp advances on training batches only (EIPL also
advances it on test batches, so its ramp depends on the test-set size), and the test loss uses
the full point weight so that checkpoints from different epochs compare fairly.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from eipl_trt.common.atomic import write_json_atomic
from eipl_trt.common.progress import Progress
from eipl_trt.errors import EipltrtError
from eipl_trt.train.bptt import evaluate, sequence_losses, total_loss
from eipl_trt.train.config import TrainConfig, TrainResult
from eipl_trt.train.data import Split, TrainData, joint_tensor, load_dataset, to_tensors
from eipl_trt.train.device import model_device, training_device
from eipl_trt.train.frozen import encode_split, freeze_image_path, recurrent_losses
from eipl_trt.train.metrics import joint_prediction_mse
from eipl_trt.train.noise import add_joint_noise, add_noise
from eipl_trt.train.outputs import (
    ARGS,
    BOUNDS,
    CHECKPOINT,
    LOG,
    METRICS,
    args_dict,
    save_checkpoint,
    write_bounds,
    write_log,
    write_metrics,
)
from eipl_trt.train.schedule import LossScheduler

__all__ = ["train", "init_eipl_weights", "ADAM_EPS"]

logger = logging.getLogger(__name__)

ADAM_EPS = 1e-7


def init_eipl_weights(model: nn.Module) -> None:
    """eipl HEAD's SARNN init: xavier-uniform weights and zero biases for Conv/ConvT/Linear; LSTM
    ``weight_ih`` xavier-uniform, ``weight_hh`` orthogonal, zero biases."""
    for m in model.modules():
        if isinstance(m, nn.LSTMCell):
            nn.init.xavier_uniform_(m.weight_ih)
            nn.init.orthogonal_(m.weight_hh)
            nn.init.zeros_(m.bias_ih)
            nn.init.zeros_(m.bias_hh)
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


class _Run:
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


def train(config: TrainConfig, data_dir: str | Path, out_dir: str | Path, progress: bool = True) -> TrainResult:
    """Train ``config.model`` on the dataset in ``data_dir`` and write EIPL-format outputs to ``out_dir``.

    Stops after ``config.epochs`` epochs, when ``config.max_minutes`` runs out (the budget counts
    from the call, data loading included; at least one batch is always trained, and a batch is
    not started when it and the final evaluation would overrun), or on Ctrl-C. In every case the
    best checkpoint so far is kept, the current state is evaluated, and logs and metrics are written.

    Args:
        config: the run's settings.
        data_dir: EIPL dataset directory (see :mod:`eipl_trt.train.data`).
        out_dir: output directory (created). Outputs of an earlier run there are replaced; a stale
            ``model.pth`` / ``metrics.json`` is deleted at the start so it can never be mistaken
            for this run's.
        progress: show progress on stderr (a bar on a terminal, a line every few seconds in a log).

    Returns:
        Losses, timing, stop reason, output paths and test-set joint metrics.

    Raises:
        EipltrtError: invalid settings or dataset, or a diverged (non-finite) loss.
    """
    started = time.monotonic()
    config.validate()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise EipltrtError(f"--out {out} exists and is not a directory; choose another output directory")
    device = training_device(config.device)
    data = load_dataset(data_dir, config.model, config.im_size)
    initial = _initial_state(config.init_from) if config.init_from else None
    out.mkdir(parents=True, exist_ok=True)
    for stale in (out / CHECKPOINT, out / METRICS):
        if stale.exists():
            logger.warning("replacing %s from an earlier run", stale)
            stale.unlink()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.num_threads)
    try:
        return _train(config, data, out, started, progress, initial, device)
    finally:
        torch.set_num_threads(previous_threads)


def _initial_state(path: str) -> dict[str, torch.Tensor]:
    """The state_dict of ``--init-from`` (EIPL dict or bare state_dict, loaded weights-only)."""
    from eipl_trt.models.checkpoint import load_state_dict_file

    return load_state_dict_file(path)


def _train(
    config: TrainConfig,
    data: TrainData,
    out: Path,
    started: float,
    progress: bool,
    initial: dict[str, torch.Tensor] | None,
    device: torch.device,
) -> TrainResult:
    from eipl_trt.models import build_model

    torch.manual_seed(config.seed)
    model = build_model(config.model, **config.architecture(data.joint_dim))
    if config.model == "sarnn":
        init_eipl_weights(model)
    if initial is not None:
        try:
            model.load_state_dict(initial)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise EipltrtError(
                f"--init-from {config.init_from} does not fit a {config.model} with {config.architecture(data.joint_dim)} "
                f"({first}); pass the same model options (--model, --rec-dim, --k-dim, --feat-dim, --im-size) "
                f"as the run that wrote it"
            ) from exc
        logger.info("starting from the weights in %s", config.init_from)
    model.to(device)
    model.train()
    trainable = freeze_image_path(model) if config.freeze_image else list(model.parameters())
    optimizer = torch.optim.Adam(trainable, lr=config.lr, eps=ADAM_EPS)
    scheduler = LossScheduler(config.decay_end, "s")
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    write_json_atomic(out / ARGS, args_dict(config, data))
    write_bounds(out / BOUNDS, data.path / "joint_bounds.npy")
    logger.info(
        "training %s on %s: %d train / %d test sequences of %d steps, %dx%d px, %d joints, %s, %d threads",
        config.model, data.path, data.train.num_sequences, data.test.num_sequences, data.train.seq_len,
        *data.image_size, data.joint_dim, device, config.num_threads,
    )
    run = _Run(config, out, started)
    stop_reason = _loop(run, model, optimizer, scheduler, generator, rng, data, progress)
    if run.rows and "test_loss" not in run.rows[-1]:
        run.evaluate_last(model, data.test)
    if run.best[1] < 0:
        raise EipltrtError("training stopped before any epoch finished; no checkpoint was written. Run longer")
    checkpoint = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["model_state_dict"])
    metrics = joint_prediction_mse(model, data.test, data.scaler, config.batch_size)
    metrics["epoch"] = int(checkpoint["epoch"])
    write_metrics(out / METRICS, metrics)
    last = run.rows[-1]
    return TrainResult(
        model=config.model,
        epochs_run=len(run.rows),
        batches_run=run.batches,
        best_epoch=run.best[1],
        best_train_loss=run.best[2],
        best_test_loss=run.best[0],
        final_train_loss=last["train_loss"],
        final_test_loss=last.get("test_loss", math.nan),
        wall_time_s=time.monotonic() - started,
        stop_reason=stop_reason,
        out_dir=out,
        checkpoint=out / CHECKPOINT,
        args_json=out / ARGS,
        log_csv=out / LOG,
        joint_bounds=out / BOUNDS,
        metrics_json=out / METRICS,
        metrics=metrics,
    )


def _loop(
    run: _Run,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LossScheduler,
    generator: torch.Generator,
    rng: np.random.Generator,
    data: TrainData,
    progress: bool,
) -> str:
    """The epoch loop. Returns the stop reason; leaves a row per epoch that trained a batch."""
    config = run.config
    weights = config.loss_weights
    deadline = run.started + config.max_minutes * 60.0 if config.max_minutes else math.inf
    n_train = data.train.num_sequences
    batch_s = 0.0
    reason = "completed"
    bar = Progress(config.epochs, config.model, "epoch", enabled=progress)
    epoch, sums, batches, pt_weight = 0, {}, 0, 0.0
    features = encode_split(model, data.train) if config.freeze_image else None
    device = model_device(model)
    try:
        for epoch in range(config.epochs):
            sums, batches = {}, 0
            order = rng.permutation(n_train)
            for start in range(0, n_train, config.batch_size):
                if run.batches and time.monotonic() + batch_s + run.eval_s > deadline:
                    reason = "time_limit"
                    break
                t0 = time.monotonic()
                index = order[start : start + config.batch_size]
                if features is None:
                    clean_img, clean_joint = to_tensors(data.train, index, device)
                    x_img, x_joint = add_noise(clean_img, clean_joint, config.stdev, generator, data.channel_order)
                    losses = sequence_losses(model, x_img, x_joint, clean_img, clean_joint, config.input_mix)
                else:  # --freeze-image: the recurrent part alone, on cached features
                    clean_joint = joint_tensor(data.train, index, device)
                    x_joint = add_joint_noise(clean_joint, config.stdev, generator)
                    losses = recurrent_losses(model, features[index], x_joint, clean_joint, config.input_mix)
                pt_weight = scheduler(weights[2])
                loss = total_loss(losses, weights, pt_weight) if features is None else \
                    weights[1] * losses["joint"] + pt_weight * losses.get("pt", 0.0)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses["loss"] = loss
                for key, value in losses.items():
                    sums[key] = sums.get(key, 0.0) + float(value.detach())
                batches += 1
                run.batches += 1
                batch_s = time.monotonic() - t0
            if batches:
                run.add_row(epoch, sums, batches, pt_weight)
                last = reason != "completed" or epoch == config.epochs - 1
                if last or (epoch + 1) % config.eval_every == 0:
                    run.evaluate_last(model, data.test)
                else:
                    write_log(run.out / LOG, run.rows)
                row = run.rows[-1]
                bar.set_postfix(
                    {"train": f"{row['train_loss']:.4g}", "test": f"{row.get('test_loss', math.nan):.4g}", "best": f"{run.best[0]:.4g}"}
                )
                bar.update(1)
                if not math.isfinite(row["train_loss"]):
                    raise EipltrtError(
                        f"training diverged: train loss is {row['train_loss']} at epoch {epoch}; lower --lr "
                        f"(now {config.lr}). The best checkpoint so far is kept in {run.out / CHECKPOINT}"
                    )
            if reason != "completed":
                break
    except KeyboardInterrupt:
        reason = "interrupted"
        logger.warning("interrupted: evaluating and saving the current model")
        if batches and (not run.rows or run.rows[-1]["epoch"] != epoch):
            run.add_row(epoch, sums, batches, pt_weight)
    finally:
        bar.close()
    return reason
