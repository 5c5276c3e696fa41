"""CNNRNNLN (EIPL zoo): CNNRNN with ReLU and a whole-tensor LayerNorm after every conv/linear.

Every LayerNorm normalizes over the complete (C, H, W) (or (F,)) tensor with per-element
affine parameters, eps 1e-5; exported at opset 17 each becomes one ``LayerNormalization``
node (12 in total). Keys and indices match EIPL (eipl-models.md §1.3).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from eipl_trt.models.cnnrnn import CNN_IM_SIZE
from eipl_trt.models.layers import StaticReshape

__all__ = ["CNNRNNLN"]

State = tuple[torch.Tensor, torch.Tensor]

#: Encoder convs (out channels, output side in px) at 128 px input.
_ENC = ((64, 64), (32, 32), (16, 16), (12, 8), (8, 4))
#: Decoder transposed convs (out channels, output side in px), the last one has no LayerNorm.
_DEC = ((12, 8), (16, 16), (32, 32), (64, 64))


class CNNRNNLN(nn.Module):
    """EIPL's CNNRNNLN.

    Args:
        rec_dim: LSTM hidden size.
        joint_dim: number of joints ``D``.
        feat_dim: image feature size fed to the LSTM.
    """

    kind = "cnnrnnln"

    def __init__(self, rec_dim: int = 50, joint_dim: int = 8, feat_dim: int = 10) -> None:
        super().__init__()
        self.rec_dim = int(rec_dim)
        self.joint_dim = int(joint_dim)
        self.feat_dim = int(feat_dim)
        self.im_size = CNN_IM_SIZE

        enc: list[nn.Module] = []
        in_ch = 3
        for out_ch, side in _ENC:  # indices 0..14: conv, LN, ReLU
            enc += [nn.Conv2d(in_ch, out_ch, 3, 2, 1), nn.LayerNorm([out_ch, side, side]), nn.ReLU()]
            in_ch = out_ch
        enc += [
            nn.Flatten(),  # 15
            nn.Linear(8 * 4 * 4, 50),  # 16
            nn.LayerNorm([50]),
            nn.ReLU(),
            nn.Linear(50, self.feat_dim),  # 19
            nn.LayerNorm([self.feat_dim]),
            nn.ReLU(),
        ]
        self.encoder_image = nn.Sequential(*enc)
        self.rec = nn.LSTMCell(self.feat_dim + self.joint_dim, self.rec_dim)
        self.decoder_joint = nn.Sequential(nn.Linear(self.rec_dim, self.joint_dim), nn.ReLU())

        dec: list[nn.Module] = [
            nn.Linear(self.rec_dim, 8 * 4 * 4),  # 0
            nn.LayerNorm([8 * 4 * 4]),
            nn.ReLU(),
            StaticReshape((8, 4, 4)),  # 3 (nn.Unflatten in EIPL)
        ]
        in_ch = 8
        for out_ch, side in _DEC:  # indices 4..15: ConvT, LN, ReLU
            dec += [
                nn.ConvTranspose2d(in_ch, out_ch, 3, 2, padding=1, output_padding=1),
                nn.LayerNorm([out_ch, side, side]),
                nn.ReLU(),
            ]
            in_ch = out_ch
        dec += [nn.ConvTranspose2d(64, 3, 3, 2, padding=1, output_padding=1), nn.ReLU()]  # 16, 17
        self.decoder_image = nn.Sequential(*dec)

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
            ``(y_image (B,3,128,128), y_joint (B,D), (h, c))``; both outputs are >= 0 (ReLU).
        """
        im_feat = self.encoder_image(xi)
        h, c = self.rec(torch.cat([im_feat, xv], dim=-1), state)
        return self.decoder_image(h) if decode_image else None, self.decoder_joint(h), (h, c)
