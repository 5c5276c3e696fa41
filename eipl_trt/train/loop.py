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
from eipl_trt.train.config import TrainConfig, TrainResult
from eipl_trt.train.data import TrainData, load_dataset
from eipl_trt.train.device import training_device
from eipl_trt.train.epochs import State, end_epoch, restore, run_epoch
from eipl_trt.train.frozen import encode_split, freeze_image_path
from eipl_trt.train.metrics import joint_prediction_mse
from eipl_trt.train.outputs import ARGS, BOUNDS, CHECKPOINT, LOG, METRICS, args_dict, write_bounds, write_metrics
from eipl_trt.train.resume import RESUME, load_resume
from eipl_trt.train.run import Run
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


def train(config: TrainConfig, data_dir: str | Path, out_dir: str | Path, progress: bool = True,
          resume: bool = False) -> TrainResult:
    """Train ``config.model`` on the dataset in ``data_dir`` and write EIPL-format outputs to ``out_dir``.

    Stops after ``config.epochs`` epochs, when ``config.max_minutes`` runs out (the budget counts
    from the call, data loading included; at least one batch is always trained, and a batch is
    not started when it and the final evaluation would overrun), or on Ctrl-C. In every case the
    best checkpoint so far is kept, the current state is evaluated, and logs and metrics are written.
    After every epoch ``resume.pt`` holds what continuing needs (:mod:`eipl_trt.train.resume`).

    Args:
        config: the run's settings.
        data_dir: EIPL dataset directory (see :mod:`eipl_trt.train.data`).
        out_dir: output directory (created). Outputs of an earlier run there are replaced; a stale
            ``model.pth`` / ``metrics.json`` is deleted at the start so it can never be mistaken
            for this run's.
        progress: show progress on stderr (a bar on a terminal, a line every few seconds in a log).
        resume: continue the run in ``out_dir`` from its ``resume.pt`` (same settings but the budget):
            the result is the one an uninterrupted run gives.

    Returns:
        Losses, timing, stop reason, output paths and test-set joint metrics.

    Raises:
        EipltrtError: invalid settings or dataset, a diverged (non-finite) loss, or a resume that does
            not match the saved run.
    """
    started = time.monotonic()
    config.validate()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise EipltrtError(f"--out {out} exists and is not a directory; choose another output directory")
    device = training_device(config.device)
    data = load_dataset(data_dir, config.model, config.im_size)
    saved = load_resume(out / RESUME) if resume else None
    initial = _initial_state(config.init_from) if config.init_from and saved is None else None
    out.mkdir(parents=True, exist_ok=True)
    for stale in ((out / METRICS,) if resume else (out / CHECKPOINT, out / METRICS, out / RESUME)):
        if stale.exists():
            logger.warning("replacing %s from an earlier run", stale)
            stale.unlink()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.num_threads)
    try:
        return _train(config, data, out, started, progress, initial, device, saved)
    finally:
        torch.set_num_threads(previous_threads)


def _initial_state(path: str) -> dict[str, torch.Tensor]:
    """The state_dict of ``--init-from`` (EIPL dict or bare state_dict, loaded weights-only)."""
    from eipl_trt.models.checkpoint import load_state_dict_file

    return load_state_dict_file(path)


def _build(config: TrainConfig, data: TrainData, initial: dict[str, torch.Tensor] | None,
           device: torch.device) -> nn.Module:
    """The model: EIPL's init, then ``--init-from``'s weights when given."""
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
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    return model


def _train(
    config: TrainConfig,
    data: TrainData,
    out: Path,
    started: float,
    progress: bool,
    initial: dict[str, torch.Tensor] | None,
    device: torch.device,
    saved: dict[str, Any] | None = None,
) -> TrainResult:
    model = _build(config, data, initial, device)
    trainable = freeze_image_path(model) if config.freeze_image else list(model.parameters())
    state = State(model, torch.optim.Adam(trainable, lr=config.lr, eps=ADAM_EPS), LossScheduler(config.decay_end, "s"),
                   torch.Generator().manual_seed(config.seed), np.random.default_rng(config.seed))
    run = Run(config, out, started)
    first_epoch = 0 if saved is None else restore(saved, config, state, run)
    write_json_atomic(out / ARGS, args_dict(config, data))
    write_bounds(out / BOUNDS, data.path / "joint_bounds.npy")
    logger.info(
        "training %s on %s: %d train / %d test sequences of %d steps, %dx%d px, %d joints, %s, %d threads%s%s",
        config.model, data.path, data.train.num_sequences, data.test.num_sequences, data.train.seq_len,
        *data.image_size, data.joint_dim, device, config.num_threads,
        ", bf16 autocast" if config.autocast == "bf16" else "", f", resumed after epoch {first_epoch - 1}" if saved else "",
    )
    stop_reason = _loop(run, state, data, progress, first_epoch)
    if run.rows and "test_loss" not in run.rows[-1]:
        run.evaluate_last(model, data.test)
    if run.best[1] < 0:
        raise EipltrtError("training stopped before any epoch finished; no checkpoint was written. Run longer")
    checkpoint = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["model_state_dict"])
    metrics = joint_prediction_mse(model, data.test, data.scaler, config.batch_size)
    metrics["epoch"] = int(checkpoint["epoch"])
    write_metrics(out / METRICS, metrics)
    return _result(config, run, out, started, stop_reason, metrics)


def _result(config: TrainConfig, run: Run, out: Path, started: float, stop_reason: str,
            metrics: dict[str, Any]) -> TrainResult:
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


def _loop(run: Run, state: State, data: TrainData, progress: bool, first_epoch: int = 0) -> str:
    """The epoch loop. Returns the stop reason; leaves a row per epoch that trained a batch."""
    config = run.config
    deadline = run.started + config.max_minutes * 60.0 if config.max_minutes else math.inf
    reason = "completed"
    bar = Progress(config.epochs, config.model, "epoch", enabled=progress)
    bar.update(first_epoch)
    features = encode_split(state.model, data.train) if config.freeze_image else None
    epoch, sums, batches, pt_weight = first_epoch, {}, 0, 0.0
    try:
        for epoch in range(first_epoch, config.epochs):
            sums, batches, pt_weight, train_s, reason = run_epoch(run, state, data, features, deadline)
            if batches:
                end_epoch(run, state, data, epoch, sums, batches, pt_weight, train_s, reason, bar)
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
