"""``eipl-trt train``: EIPL's training procedure on CPU, writing EIPL-format checkpoints.

Imports torch (the training path only; the runtime never imports this package)::

    from eipl_trt.train import TrainConfig, train
    result = train(TrainConfig(model="sarnn", epochs=50), "data/pusher", "out/sarnn")
    print(result.best_test_loss, result.metrics["model_mse"], result.metrics["hold_mse"])

Modules: :mod:`~eipl_trt.train.config` (settings and result), :mod:`~eipl_trt.train.data`
(dataset loading, normalization), :mod:`~eipl_trt.train.noise` (input noise),
:mod:`~eipl_trt.train.schedule` (loss ramp), :mod:`~eipl_trt.train.bptt` (one full-BPTT pass,
clean evaluation), :mod:`~eipl_trt.train.loop` (the epoch loop, time budget, checkpointing),
:mod:`~eipl_trt.train.outputs` (model.pth, args.json, log.csv) and
:mod:`~eipl_trt.train.metrics` (joint MSE vs the hold baseline).
"""

from __future__ import annotations

from eipl_trt.train.config import DEFAULT_LOSS_WEIGHTS, TrainConfig, TrainResult
from eipl_trt.train.bptt import evaluate, sequence_losses
from eipl_trt.train.data import DatasetError, TrainData, load_dataset
from eipl_trt.train.loop import train
from eipl_trt.train.metrics import joint_prediction_mse
from eipl_trt.train.noise import add_noise, color_jitter
from eipl_trt.train.schedule import LossScheduler

__all__ = [
    "DEFAULT_LOSS_WEIGHTS",
    "TrainConfig",
    "TrainResult",
    "DatasetError",
    "TrainData",
    "load_dataset",
    "add_noise",
    "color_jitter",
    "LossScheduler",
    "train",
    "evaluate",
    "sequence_losses",
    "joint_prediction_mse",
]
