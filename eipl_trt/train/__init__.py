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

import importlib
from typing import Any

#: Public name -> submodule that defines it. Loaded on first access (PEP 562), so importing
#: ``eipl_trt.train.config`` or ``eipl_trt.train.schedule`` does not pull in torch.
_EXPORTS = {
    "DEFAULT_LOSS_WEIGHTS": "config",
    "TrainConfig": "config",
    "TrainResult": "config",
    "DatasetError": "data",
    "TrainData": "data",
    "load_dataset": "data",
    "add_noise": "noise",
    "color_jitter": "noise",
    "LossScheduler": "schedule",
    "train": "loop",
    "evaluate": "bptt",
    "sequence_losses": "bptt",
    "joint_prediction_mse": "metrics",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
