"""CNNRNN (EIPL zoo): a convolutional autoencoder around an LSTM cell, Tanh activations.

Module tree and Sequential indices match EIPL's state_dict keys (eipl-models.md §1.2).
``nn.Unflatten`` is replaced by :class:`~eipl_trt.models.layers.StaticReshape` at the same
index; it has no parameters, so the keys are unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from eipl_trt.models.layers import StaticReshape

__all__ = ["CNNRNN", "CNN_IM_SIZE"]

#: CNNRNN and CNNRNNLN only work at 128x128 px: five stride-2 convs flatten to 8x4x4.
CNN_IM_SIZE = (128, 128)

State = tuple[torch.Tensor, torch.Tensor]


class CNNRNN(nn.Module):
    """EIPL's CNNRNN.

    Args:
        rec_dim: LSTM hidden size.
        joint_dim: number of joints ``D``.
        feat_dim: image feature size fed to the LSTM.
    """

    kind = "cnnrnn"

    def __init__(self, rec_dim: int = 50, joint_dim: int = 8, feat_dim: int = 10) -> None:
        super().__init__()
        self.rec_dim = int(rec_dim)
        self.joint_dim = int(joint_dim)
        self.feat_dim = int(feat_dim)
        self.im_size = CNN_IM_SIZE
        self.encoder_image = nn.Sequential(
            nn.Conv2d(3, 64, 3, 2, 1),
            nn.Tanh(),
            nn.Conv2d(64, 32, 3, 2, 1),
            nn.Tanh(),
            nn.Conv2d(32, 16, 3, 2, 1),
            nn.Tanh(),
            nn.Conv2d(16, 12, 3, 2, 1),
            nn.Tanh(),
            nn.Conv2d(12, 8, 3, 2, 1),
            nn.Tanh(),
            nn.Flatten(),
            nn.Linear(8 * 4 * 4, 50),
            nn.Tanh(),
            nn.Linear(50, self.feat_dim),
            nn.Tanh(),
        )
        self.rec = nn.LSTMCell(self.feat_dim + self.joint_dim, self.rec_dim)
        self.decoder_joint = nn.Sequential(nn.Linear(self.rec_dim, self.joint_dim), nn.Tanh())
        self.decoder_image = nn.Sequential(
            nn.Linear(self.rec_dim, 8 * 4 * 4),
            nn.Tanh(),
            StaticReshape((8, 4, 4)),
            nn.ConvTranspose2d(8, 12, 3, 2, padding=1, output_padding=1),
            nn.Tanh(),
            nn.ConvTranspose2d(12, 16, 3, 2, padding=1, output_padding=1),
            nn.Tanh(),
            nn.ConvTranspose2d(16, 32, 3, 2, padding=1, output_padding=1),
            nn.Tanh(),
            nn.ConvTranspose2d(32, 64, 3, 2, padding=1, output_padding=1),
            nn.Tanh(),
            nn.ConvTranspose2d(64, 3, 3, 2, padding=1, output_padding=1),
            nn.Tanh(),
        )

    def architecture(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-ready dict; ``type(self)(**arch)`` rebuilds the model."""
        return {"rec_dim": self.rec_dim, "joint_dim": self.joint_dim, "feat_dim": self.feat_dim}

    def forward(
        self, xi: torch.Tensor, xv: torch.Tensor, state: State | None = None, decode_image: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor, State]:
        """One time step.

        Args:
            xi: image (B, 3, 128, 128), normalized, channel order of the training data.
            xv: normalized joints (B, D).
            state: LSTM ``(h, c)``, each (B, rec_dim); ``None`` means zeros.
            decode_image: ``False`` skips the image decoder and returns ``None`` for the image.

        Returns:
            ``(y_image (B,3,128,128), y_joint (B,D), (h, c))``.
        """
        im_feat = self.encoder_image(xi)
        h, c = self.rec(torch.cat([im_feat, xv], dim=-1), state)
        return self.decoder_image(h) if decode_image else None, self.decoder_joint(h), (h, c)
