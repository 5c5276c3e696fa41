"""Training the recurrent part with the image path frozen (``--freeze-image``).

On a CPU, almost all of a training step is the convolutional encoder and decoder (128x128 px for
CNNRNN/CNNRNNLN, SARNN's two encoders and its decoder at 64 px); the LSTM and the joint decoder
are a few percent of it. When the image path has already been
trained (a run continued with ``--init-from``), freezing it lets the recurrent part take
hundreds of times more optimizer steps in the same wall time:

- the encoder's features of every training frame are computed once, from the clean frames
  (the image noise of EIPL's procedure is not applied in this mode; the joint noise is);
- each step is the same teacher-forced full BPTT over whole sequences as :mod:`bptt`, scored on
  the joint loss (the image decoder is not run; its weights do not change). SARNN's cached
  features are its encoder's attention points (``enc_pts``), and its point decoder keeps training
  on the point loss (the predicted points against the next frame's encoded ones), so the points the
  node draws and the image decoder reads stay consistent with the retrained LSTM;
- the test split is still scored with the whole model, so the logged image loss shows what the
  unchanged image decoder makes of the new LSTM state.

A run in this mode is usually followed by a short ordinary run (``--init-from`` its checkpoint)
that lets the image decoder follow the retrained LSTM.
"""

from __future__ import annotations

import torch
from torch import nn

from eipl_trt.errors import EipltrtError
from eipl_trt.train.bptt import recurrent_rollout
from eipl_trt.train.data import Split, to_tensors
from eipl_trt.train.device import model_device

__all__ = ["FROZEN_MODULES", "SARNN_FROZEN_MODULES", "freeze_image_path", "encode_split", "recurrent_losses"]

#: The modules frozen in this mode (both CNN models name them alike).
FROZEN_MODULES = ("encoder_image", "decoder_image")
#: SARNN's image path: feature encoder, attention-point encoder, image decoder.
SARNN_FROZEN_MODULES = ("im_encoder", "pos_encoder", "decoder_image")


def _is_sarnn(model: nn.Module) -> bool:
    return isinstance(getattr(model, "pos_encoder", None), nn.Module)


def freeze_image_path(model: nn.Module) -> list[nn.Parameter]:
    """Stop gradients into the image path; returns the parameters left to train.

    Raises:
        EipltrtError: the model has no separate image encoder/decoder.
    """
    frozen = SARNN_FROZEN_MODULES if _is_sarnn(model) else FROZEN_MODULES
    missing = [name for name in frozen if not isinstance(getattr(model, name, None), nn.Module)]
    if missing:
        raise EipltrtError(
            f"--freeze-image needs a model with {' and '.join(frozen)} (SARNN, CNNRNN, CNNRNNLN); "
            f"{type(model).__name__} has no {', '.join(missing)}"
        )
    for name in frozen:
        getattr(model, name).requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


@torch.no_grad()
def encode_split(model: nn.Module, split: Split, batch_size: int = 4) -> torch.Tensor:
    """The image encoder's features of every frame of ``split``: (N, T, feat_dim) float32.

    For SARNN the features are the attention points ``enc_pts``, (N, T, 2K). They are left on the
    model's device.
    """
    sarnn = _is_sarnn(model)
    encoder = model.pos_encoder if sarnn else model.encoder_image
    was_training = encoder.training
    encoder.eval()
    chunks = []
    for start in range(0, split.num_sequences, batch_size):
        images, _ = to_tensors(split, slice(start, start + batch_size), model_device(model))
        b, t = images.shape[:2]
        out = encoder(images.flatten(0, 1))
        chunks.append((out[0] if sarnn else out).reshape(b, t, -1))
    encoder.train(was_training)
    return torch.cat(chunks)


def recurrent_losses(
    model: nn.Module, features: torch.Tensor, x_joint: torch.Tensor, y_joint: torch.Tensor, input_mix: float = 1.0
) -> dict[str, torch.Tensor]:
    """The joint loss (and SARNN's point loss) of one teacher-forced pass from precomputed features.

    Args:
        model: uses ``rec`` and ``decoder_joint`` (and SARNN's ``decoder_point``).
        features: (B, T, F) encoder features of the clean frames (SARNN: attention points).
        x_joint: (B, T, D) model joint inputs (noisy while training).
        y_joint: (B, T, D) clean joints; step t is scored against t + 1.
        input_mix: blend of measured joints and the previous prediction fed as input
            (:func:`eipl_trt.train.bptt.mixed_input`).

    Returns:
        ``{"joint": scalar MSE}`` (plus ``"pt"`` for SARNN), the same terms as
        :func:`eipl_trt.train.bptt.sequence_losses`.
    """
    sarnn = _is_sarnn(model)
    joints, points = recurrent_rollout(model, features, x_joint, features.shape[1] - 1, input_mix, points=sarnn)
    losses = {"joint": nn.functional.mse_loss(joints, y_joint[:, 1:])}
    if sarnn:  # as sequence_losses: the points predicted at t against those encoded at t + 1
        losses["pt"] = nn.functional.mse_loss(points[:, :-1], features[:, 1:-1])
    return losses
