"""One teacher-forced full-BPTT pass over whole sequences, its losses, and clean evaluation.

Shapes: images (B, T, 3, H, W) float in [0, 1], joints (B, T, D) normalized. The LSTM state
starts at zeros for every sequence; step t reads x[:, t] and is scored against y[:, t + 1].
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from eipl_trt.train.data import Split, label_tensor, to_tensors
from eipl_trt.train.device import model_device

__all__ = ["sequence_losses", "mixed_input", "recurrent_rollout", "total_loss", "evaluate"]

_mse = nn.functional.mse_loss


def mixed_input(x_joint: torch.Tensor, previous: torch.Tensor | None, input_mix: float) -> torch.Tensor:
    """The joint input of one step: ``input_mix * x_joint + (1 - input_mix) * previous`` prediction.

    The same blend :class:`~eipl_trt.predictor.Predictor` applies at run time (normalized units);
    training with it (gradients flow through ``previous``) teaches the model to follow its own
    predictions, which is what a closed loop feeds it. ``input_mix = 1`` is teacher forcing.
    """
    if input_mix >= 1.0 or previous is None:
        return x_joint
    return input_mix * x_joint + (1.0 - input_mix) * previous


def sequence_losses(
    model: nn.Module, x_img: torch.Tensor, x_joint: torch.Tensor, y_img: torch.Tensor, y_joint: torch.Tensor,
    input_mix: float = 1.0, tbptt: int = 0,
) -> dict[str, torch.Tensor]:
    """Unweighted losses of one teacher-forced pass over whole sequences.

    SARNN goes through :func:`_sarnn_sequence_losses`, which computes the same thing with its
    convolutions batched over all time steps; other models are stepped with their ``forward``.

    Args:
        model: SARNN (forward returns 5 values) or CNNRNN/CNNRNNLN (3 values).
        x_img, x_joint: (B, T, 3, H, W) / (B, T, D) model inputs (noisy while training).
        y_img, y_joint: the clean targets, same shapes; step t is scored against t + 1.
        input_mix: blend of measured joints and the previous prediction fed as input (:func:`mixed_input`).
        tbptt: truncated backpropagation through time: the recurrent state is carried on but cut from the
            gradient every ``tbptt`` steps (0 = full BPTT, EIPL's procedure).

    Returns:
        ``{"img", "joint"}`` plus ``"pt"`` for SARNN: scalar MSEs.
    """
    if all(isinstance(getattr(model, name, None), nn.Module) for name in _SARNN_PARTS):
        return _sarnn_sequence_losses(model, x_img, x_joint, y_img, y_joint, input_mix, tbptt)
    state = None
    images, joints = [], []
    for t in range(x_img.shape[1] - 1):
        out = model(x_img[:, t], mixed_input(x_joint[:, t], joints[-1] if joints else None, input_mix), state)
        state = _truncate(out[-1], t, tbptt)
        images.append(out[0])
        joints.append(out[1])
    return {
        "img": _mse(torch.stack(images, dim=1), y_img[:, 1:]),
        "joint": _mse(torch.stack(joints, dim=1), y_joint[:, 1:]),
    }


#: The SARNN submodules :func:`_sarnn_sequence_losses` calls (see :class:`eipl_trt.models.sarnn.SARNN`).
_SARNN_PARTS = ("im_encoder", "pos_encoder", "rec", "decoder_joint", "decoder_point", "issm", "decoder_image")


def _truncate(state: Any, t: int, tbptt: int) -> Any:
    """``state`` cut from the graph after step ``t`` when a truncation window ends there."""
    if tbptt > 0 and (t + 1) % tbptt == 0:
        return tuple(s.detach() for s in state)
    return state


def _sarnn_sequence_losses(
    model: nn.Module, x_img: torch.Tensor, x_joint: torch.Tensor, y_img: torch.Tensor, y_joint: torch.Tensor,
    input_mix: float, tbptt: int = 0,
) -> dict[str, torch.Tensor]:
    """SARNN's :func:`sequence_losses`, its image path run once over all B x (T-1) frames.

    SARNN's two encoders read only the frame and its image decoder only the frame's features and
    the step's predicted points, so just the LSTM and the two small decoders need the time loop.
    The result equals stepping ``forward`` (to float rounding; a test checks it), with 3 large
    convolution passes per batch instead of 3 small ones per step: on a GPU that removes most
    kernel launches; on a CPU the two cost about the same (10.8 vs 13.1 s for a 16 x 70-step
    batch at k_dim 8, 2 threads).
    """
    b, t_all = x_img.shape[:2]
    steps = t_all - 1
    frames = x_img[:, :steps].flatten(0, 1)
    im_hid = model.im_encoder(frames)
    enc = model.pos_encoder(frames)[0].reshape(b, steps, 2 * model.k_dim)
    joints, dec_pts = recurrent_rollout(model, enc, x_joint, steps, input_mix, points=True, tbptt=tbptt)
    heatmap = model.issm(dec_pts.reshape(b * steps, model.k_dim, 2))
    y_image = model.decoder_image(heatmap * im_hid).reshape(b, steps, *y_img.shape[2:])
    return {
        "img": _mse(y_image, y_img[:, 1:]),
        "joint": _mse(joints, y_joint[:, 1:]),
        "pt": _mse(dec_pts[:, :-1], enc[:, 1:]),
    }


def recurrent_rollout(
    model: nn.Module, features: torch.Tensor, x_joint: torch.Tensor, steps: int, input_mix: float, points: bool,
    tbptt: int = 0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The recurrent part alone for ``steps`` steps: ``model.rec`` on ``[features[:, t], joint input]``,
    then the joint head (and SARNN's point head when ``points``).

    Shared by SARNN's batched pass above and ``--freeze-image`` training
    (:func:`eipl_trt.train.frozen.recurrent_losses`), which feed it encoder features computed
    outside the time loop.

    Returns:
        ``(joints (B, steps, D), points (B, steps, 2K) or None)``: the predictions made at each step.
    """
    state = None
    joints, dec = [], []
    for t in range(steps):
        joint_in = mixed_input(x_joint[:, t], joints[-1] if joints else None, input_mix)
        state = model.rec(torch.cat([features[:, t], joint_in], dim=-1), state)
        joints.append(model.decoder_joint(state[0]))
        if points:
            dec.append(model.decoder_point(state[0]))
        state = _truncate(state, t, tbptt)
    return torch.stack(joints, dim=1), torch.stack(dec, dim=1) if points else None


def total_loss(losses: dict[str, Any], weights: tuple[float, float, float], pt_weight: float) -> Any:
    """``img_w * img + joint_w * joint (+ pt_weight * pt)`` for tensors or floats.

    Args:
        losses: unweighted terms from :func:`sequence_losses` (or their float means).
        weights: (img, joint, pt) weights; the pt entry is ignored in favour of ``pt_weight``.
        pt_weight: the (possibly ramped) point-loss weight.
    """
    total = weights[0] * losses["img"] + weights[1] * losses["joint"]
    if "pt" in losses:
        total = total + pt_weight * losses["pt"]
    return total


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, weights: tuple[float, float, float], batch_size: int = 5,
             input_mix: float = 1.0) -> dict[str, float]:
    """Clean (noise-free) losses over a whole split, with full weights, fed as in training (``input_mix``).

    Returns:
        ``{"loss", "img", "joint", "pt"}``; per-term MSEs averaged over all sequences
        (``pt`` is nan for models without points).
    """
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    device = model_device(model)
    for start in range(0, split.num_sequences, batch_size):
        images, joints = to_tensors(split, slice(start, start + batch_size), device)
        labels = label_tensor(split, slice(start, start + batch_size), device)
        for key, value in sequence_losses(model, images, joints, images, labels, input_mix).items():
            sums[key] = sums.get(key, 0.0) + float(value) * images.shape[0]
    model.train(was_training)
    result = {k: v / split.num_sequences for k, v in sums.items()}
    result["loss"] = float(total_loss(result, weights, weights[2]))
    result.setdefault("pt", math.nan)
    return result
