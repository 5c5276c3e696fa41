"""SARNN: spatial attention with a recurrent neural network (EIPL), loadable from EIPL checkpoints.

The module tree reproduces EIPL's state_dict keys and Sequential indices exactly
(eipl-models.md §1.1). Two dialects exist and differ only in things a checkpoint does not
record, so both are constructor options:

* eipl HEAD: ``leaky_slope=0.3``, usually ``im_size=(64, 64)``;
* eipl-deploy / the pretrained AIREC weights: ``leaky_slope=0.01``, ``im_size=(128, 128)``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from eipl_trt.models.layers import InverseSpatialSoftmax, SpatialSoftmax

__all__ = ["SARNN", "SARNN_DEFAULT_IM_SIZE"]

#: eipl HEAD's default input size (px).
SARNN_DEFAULT_IM_SIZE = (64, 64)

State = tuple[torch.Tensor, torch.Tensor]


def _conv_stack(k_dim: int, slope: float) -> list[nn.Module]:
    """Three 3x3 valid convolutions 3 -> 16 -> 32 -> k_dim, each followed by LeakyReLU."""
    return [
        nn.Conv2d(3, 16, 3, 1, 0),
        nn.LeakyReLU(slope),
        nn.Conv2d(16, 32, 3, 1, 0),
        nn.LeakyReLU(slope),
        nn.Conv2d(32, k_dim, 3, 1, 0),
        nn.LeakyReLU(slope),
    ]


class SARNN(nn.Module):
    """EIPL's SARNN.

    Args:
        rec_dim: LSTM hidden size (50 in every published configuration).
        k_dim: number of attention points.
        joint_dim: number of joints ``D``.
        temperature: spatial-softmax temperature.
        heatmap_size: inverse-spatial-softmax width (normalized units squared).
        kernel_size: only used, as in EIPL, to compute the feature size
            ``im_size - 3 * (kernel_size - 1)``; the convolutions are always 3x3.
        im_size: input (height, width) in px.
        leaky_slope: LeakyReLU negative slope: 0.3 (eipl HEAD) or 0.01 (eipl-deploy).
    """

    kind = "sarnn"

    def __init__(
        self,
        rec_dim: int,
        k_dim: int = 5,
        joint_dim: int = 8,
        temperature: float = 1e-4,
        heatmap_size: float = 0.1,
        kernel_size: int = 3,
        im_size: Sequence[int] = SARNN_DEFAULT_IM_SIZE,
        leaky_slope: float = 0.3,
    ) -> None:
        super().__init__()
        height, width = (int(v) for v in im_size)
        feat_h = height - 3 * (kernel_size - 1)
        feat_w = width - 3 * (kernel_size - 1)
        if feat_h < 2 or feat_w < 2:
            raise ValueError(f"im_size {height}x{width} is too small for SARNN (needs at least 8x8 px)")
        self.rec_dim = int(rec_dim)
        self.k_dim = int(k_dim)
        self.joint_dim = int(joint_dim)
        self.temperature = float(temperature)
        self.heatmap_size = float(heatmap_size)
        self.kernel_size = int(kernel_size)
        self.im_size = (height, width)
        self.feature_size = (feat_h, feat_w)
        self.leaky_slope = float(leaky_slope)

        self.pos_encoder = nn.Sequential(
            *_conv_stack(self.k_dim, self.leaky_slope),
            SpatialSoftmax(feat_h, feat_w, self.temperature),
        )
        self.im_encoder = nn.Sequential(*_conv_stack(self.k_dim, self.leaky_slope))
        self.rec = nn.LSTMCell(self.joint_dim + 2 * self.k_dim, self.rec_dim)
        self.decoder_joint = nn.Sequential(nn.Linear(self.rec_dim, self.joint_dim), nn.LeakyReLU(self.leaky_slope))
        self.decoder_point = nn.Sequential(nn.Linear(self.rec_dim, 2 * self.k_dim), nn.LeakyReLU(self.leaky_slope))
        self.issm = InverseSpatialSoftmax(feat_h, feat_w, self.heatmap_size)
        self.decoder_image = nn.Sequential(
            nn.ConvTranspose2d(self.k_dim, 32, 3, 1, 0),
            nn.LeakyReLU(self.leaky_slope),
            nn.ConvTranspose2d(32, 16, 3, 1, 0),
            nn.LeakyReLU(self.leaky_slope),
            nn.ConvTranspose2d(16, 3, 3, 1, 0),
            nn.LeakyReLU(self.leaky_slope),
        )

    def architecture(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-ready dict; ``SARNN(**arch)`` rebuilds this model."""
        return {
            "rec_dim": self.rec_dim,
            "k_dim": self.k_dim,
            "joint_dim": self.joint_dim,
            "temperature": self.temperature,
            "heatmap_size": self.heatmap_size,
            "kernel_size": self.kernel_size,
            "im_size": list(self.im_size),
            "leaky_slope": self.leaky_slope,
        }

    def forward(
        self, xi: torch.Tensor, xv: torch.Tensor, state: State | None = None, decode_image: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor, State]:
        """One time step.

        Args:
            xi: image (B, 3, H, W), normalized to [vmin, vmax], channel order of the training data.
            xv: normalized joints (B, D).
            state: LSTM ``(h, c)``, each (B, rec_dim); ``None`` means zeros (sequence start).
            decode_image: ``False`` skips the image encoder and decoder and returns ``None`` for
                the image (the joints, points and state do not depend on them).

        Returns:
            ``(y_image (B,3,H,W), y_joint (B,D), enc_pts (B,2K), dec_pts (B,2K), (h, c))``:
            the predicted next image and joints, the attention points encoded from ``xi`` and
            those predicted for the next step (``[x0, y0, x1, y1, ...]`` in [0, 1] on the
            H'xW' feature map), and the new LSTM state.
        """
        keys, _ = self.pos_encoder(xi)
        enc_pts = keys.reshape(-1, 2 * self.k_dim)
        h, c = self.rec(torch.cat([enc_pts, xv], dim=-1), state)
        y_joint = self.decoder_joint(h)
        dec_pts = self.decoder_point(h)
        y_image = None
        if decode_image:
            heatmap = self.issm(dec_pts.reshape(-1, self.k_dim, 2))
            y_image = self.decoder_image(heatmap * self.im_encoder(xi))
        return y_image, y_joint, enc_pts, dec_pts, (h, c)
