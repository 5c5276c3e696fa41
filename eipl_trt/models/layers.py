"""Building blocks shared by the EIPL models: spatial softmax, its inverse, a static reshape.

Coordinates follow EIPL exactly (eipl-models.md §1.1 and pitfall 3). On a feature map of
``H'`` rows and ``W'`` columns:

* ``x = column / (W' - 1)`` (horizontal) and ``y = row / (H' - 1)`` (vertical), both in [0, 1];
  ``linspace(0, 1, n)`` is inclusive, so pixel centres sit at ``k / (n - 1)``.
* A keypoint is stored as ``(x, y)``; ``enc_pts``/``dec_pts`` flatten them as ``[x0, y0, x1, y1, ...]``.
* The grids are buffers with EIPL's names and shapes (``pos_x``/``pos_y``: ``(H'*W',)``,
  ``pos_xy``: ``(2, H', W')``), so EIPL state_dicts containing them load unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = [
    "position_grids",
    "SpatialSoftmax",
    "InverseSpatialSoftmax",
    "StaticReshape",
]


def position_grids(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """EIPL's normalized position encoding for a feature map of ``height`` x ``width`` pixels.

    The values are computed exactly as EIPL does (numpy ``linspace`` in float64, ``meshgrid``
    with ``indexing="xy"``, then cast to float32), so they compare bit-exactly with the buffers
    stored in EIPL checkpoints.

    Args:
        height: number of rows ``H'`` of the feature map (px).
        width: number of columns ``W'`` of the feature map (px).

    Returns:
        ``(pos_xy, pos_x, pos_y)``: ``pos_xy`` is (2, H', W') float32 with channel 0 = x =
        column/(W'-1) and channel 1 = y = row/(H'-1); ``pos_x`` and ``pos_y`` are the same two
        grids flattened row-major to (H'*W',).
    """
    if height < 2 or width < 2:
        raise ValueError(f"a position grid needs at least 2x2 pixels, got {height}x{width}")
    grid_x, grid_y = np.meshgrid(np.linspace(0.0, 1.0, width), np.linspace(0.0, 1.0, height), indexing="xy")
    pos_xy = torch.from_numpy(np.stack([grid_x, grid_y], axis=0)).float()
    pos_x = torch.from_numpy(grid_x.reshape(height * width)).float()
    pos_y = torch.from_numpy(grid_y.reshape(height * width)).float()
    return pos_xy, pos_x, pos_y


class SpatialSoftmax(nn.Module):
    """Soft-argmax keypoints of each channel of a feature map (Finn et al., ICRA 2016).

    ``att = softmax((logit - max(logit)) / T)`` over the pixels of each channel, and
    ``key = (sum(pos_x * att), sum(pos_y * att))``. Subtracting the per-channel maximum first
    is mathematically identical to EIPL's ``softmax(logit / T)`` but cannot overflow in
    reduced precision (eipl-models.md pitfall 4), and matches eipl-deploy.

    Args:
        height: feature-map rows ``H'`` (px).
        width: feature-map columns ``W'`` (px).
        temperature: softmax temperature ``T`` (EIPL default 1e-4).

    Buffers:
        ``pos_x``, ``pos_y``: (H'*W',) float32, see :func:`position_grids`.
    """

    def __init__(self, height: int, width: int, temperature: float = 1e-4) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.height = int(height)
        self.width = int(width)
        self.temperature = float(temperature)
        _, pos_x, pos_y = position_grids(self.height, self.width)
        self.register_buffer("pos_x", pos_x)
        self.register_buffer("pos_y", pos_y)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute keypoints and attention maps.

        Args:
            x: logits, (B, K, H', W') float.

        Returns:
            ``(keys, att)``: keys (B, K, 2) as (x, y) in [0, 1]; att (B, K, H', W'), each
            channel summing to 1.
        """
        channels = x.shape[1]
        # Python ints only: the ONNX graph gets a constant Reshape, no Shape/Gather chain.
        logit = x.reshape(-1, channels, self.height * self.width)
        logit = logit - torch.amax(logit, dim=-1, keepdim=True)
        att = torch.softmax(logit / self.temperature, dim=-1)
        grid = torch.stack([self.pos_x, self.pos_y], dim=-1)  # (H'W', 2)
        keys = torch.matmul(att, grid)  # (B, K, 2)
        return keys, att.reshape(-1, channels, self.height, self.width)


class InverseSpatialSoftmax(nn.Module):
    """Gaussian-like heatmaps centred on keypoints (Ichiwara et al., 2021).

    ``heatmap[b, k, r, c] = exp(-((pos_x - kx)^2 + (pos_y - ky)^2) / heatmap_size)``: the peak is
    exactly 1.0 and the divisor is ``heatmap_size`` itself (not 2 sigma^2), as in EIPL with
    ``convex=True``.

    Args:
        height: heatmap rows ``H'`` (px).
        width: heatmap columns ``W'`` (px).
        heatmap_size: width parameter in normalized units squared (EIPL default 0.1).

    Buffers:
        ``pos_xy``: (2, H', W') float32, see :func:`position_grids`.
    """

    def __init__(self, height: int, width: int, heatmap_size: float = 0.1) -> None:
        super().__init__()
        if not heatmap_size > 0:
            raise ValueError(f"heatmap_size must be positive, got {heatmap_size}")
        self.height = int(height)
        self.width = int(width)
        self.heatmap_size = float(heatmap_size)
        pos_xy, _, _ = position_grids(self.height, self.width)
        self.register_buffer("pos_xy", pos_xy)

    def forward(self, keys: torch.Tensor) -> torch.Tensor:
        """Render heatmaps.

        Args:
            keys: (B, K, 2) keypoints as (x, y), normalized to [0, 1].

        Returns:
            (B, K, H', W') heatmaps with values in (0, 1].
        """
        diff = self.pos_xy[None, None] - keys[:, :, :, None, None]  # (B, K, 2, H', W')
        squared = torch.sum(diff * diff, dim=2)
        return torch.exp(-squared / self.heatmap_size)


class StaticReshape(nn.Module):
    """``x.reshape(-1, *shape)`` with a constant target shape.

    Replaces ``nn.Unflatten(1, shape)`` (which has no parameters, so state_dict keys are
    unchanged) because the ONNX export of Unflatten adds Shape/Slice/Concat nodes, while this
    exports as a single Reshape with a constant shape.

    Args:
        shape: the per-sample shape, e.g. ``(8, 4, 4)``.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reshape (B, prod(shape)) to (B, *shape)."""
        return x.reshape((-1,) + self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"
