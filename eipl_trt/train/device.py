"""Where a training run's tensors live: ``--device cpu`` (the default) or a CUDA GPU.

Everything else in :mod:`eipl_trt.train` follows the model: inputs are moved to
:func:`model_device`, the noise is drawn there, and checkpoints are saved as CPU tensors.
"""

from __future__ import annotations

import torch
from torch import nn

from eipl_trt.errors import EipltrtError

__all__ = ["training_device", "model_device"]


def model_device(model: nn.Module) -> torch.device:
    """The device ``model``'s parameters are on (inputs are moved there); the CPU if it has none."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def training_device(name: str) -> torch.device:
    """``--device`` as a torch device, refused with the fix when PyTorch cannot use it."""
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise EipltrtError(
                f"--device {name}: this PyTorch ({torch.__version__}) sees no CUDA device "
                f"(built for CUDA {torch.version.cuda or 'none'}); install a CUDA build of torch on a machine "
                f"with an NVIDIA GPU and driver, or train with --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise EipltrtError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible "
                f"(cuda:0..cuda:{torch.cuda.device_count() - 1}); check CUDA_VISIBLE_DEVICES"
            )
    return device
