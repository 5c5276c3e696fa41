"""Joint-prediction accuracy on a split, in raw units, against the "hold the last joint" baseline.

The metric is eipl-deploy's ``result.txt`` "MSE of joint angle" (eipl-models.md §4.5): the model
runs teacher-forced over each sequence from a zero state (clean inputs), and the denormalized
prediction made at step t is compared with the measured joints at t + 1, for t = 0..T-2. The
baseline predicts q[t + 1] = q[t].
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from eipl_trt.imaging import JointScaler
from eipl_trt.train.data import Split, to_tensors
from eipl_trt.train.device import model_device

__all__ = ["predict_joints", "joint_prediction_mse"]


@torch.no_grad()
def predict_joints(model: nn.Module, split: Split, batch_size: int = 5) -> np.ndarray:
    """Normalized one-step joint predictions for every sequence of ``split``.

    Args:
        model: a SARNN/CNNRNN/CNNRNNLN (forward returns y_joint second).
        split: clean inputs at model resolution.
        batch_size: sequences per forward pass.

    Returns:
        (N, T-1, D) float32: the prediction made at step t for step t + 1.
    """
    was_training = model.training
    model.eval()
    chunks = []
    device = model_device(model)
    for start in range(0, split.num_sequences, batch_size):
        images, joints = to_tensors(split, slice(start, start + batch_size), device)
        state = None
        steps = []
        for t in range(split.seq_len - 1):
            out = model(images[:, t], joints[:, t], state)
            state = out[-1]
            steps.append(out[1])
        chunks.append(torch.stack(steps, dim=1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(chunks, axis=0)


def joint_prediction_mse(model: nn.Module, split: Split, scaler: JointScaler, batch_size: int = 5) -> dict[str, Any]:
    """Test-set joint MSE (raw units squared, rad^2 for revolute joints) of model and hold baseline.

    Args:
        model: the trained model.
        split: the evaluation split (clean).
        scaler: the dataset's joint normalization.
        batch_size: sequences per forward pass.

    Returns:
        ``{"model_mse", "hold_mse", "ratio" (model / hold), "model_mse_per_joint",
        "hold_mse_per_joint", "model_mse_max_step", "sequences", "steps"}``; means run over all
        sequences, steps t = 0..T-2 and joints.
    """
    pred = scaler.denormalize(predict_joints(model, split, batch_size))
    target = split.raw_joints[:, 1:]
    hold = split.raw_joints[:, :-1]
    err_model = (pred - target) ** 2
    err_hold = (hold - target) ** 2
    model_mse = float(err_model.mean())
    hold_mse = float(err_hold.mean())
    return {
        "model_mse": model_mse,
        "hold_mse": hold_mse,
        "ratio": model_mse / hold_mse if hold_mse > 0 else float("inf"),
        "model_mse_per_joint": err_model.mean(axis=(0, 1)).tolist(),
        "hold_mse_per_joint": err_hold.mean(axis=(0, 1)).tolist(),
        "model_mse_max_step": float(err_model.mean(axis=2).max()),
        "sequences": int(split.num_sequences),
        "steps": int(pred.shape[0] * pred.shape[1]),
    }
