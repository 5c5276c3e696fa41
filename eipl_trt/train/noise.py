"""EIPL's training input noise (pretrained era), in torch without torchvision.

Images get a ColorJitter-like brightness / contrast / saturation jitter (factors drawn once per
sequence, ops in random order, strengths 0.5 / 0.5 / 0.1) plus N(0, stdev); joints get
N(0, stdev) in normalized units. Unlike EIPL, noisy images are clamped to [0, 1], the range a
real camera frame can have. All randomness comes from a caller-supplied ``torch.Generator``.
"""

from __future__ import annotations

import torch

__all__ = ["color_jitter", "add_noise", "add_joint_noise"]

_GRAY_RGB = (0.2989, 0.587, 0.114)


def _gaussian(shape: torch.Size, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """N(0, 1) noise of ``shape`` on ``like``'s device and dtype, drawn from ``generator``.

    The generator stays on the CPU (the small draws of :func:`color_jitter` use it directly); on
    another device a generator there is seeded from it, so a run is as reproducible on a GPU as on
    the CPU and the frames' noise never crosses the bus.
    """
    if like.device == generator.device:
        return torch.randn(shape, generator=generator, dtype=like.dtype)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    local = torch.Generator(device=like.device).manual_seed(seed)
    return torch.randn(shape, generator=local, dtype=like.dtype, device=like.device)


def _uniform(n: int, spread: float, generator: torch.Generator) -> torch.Tensor:
    low = max(0.0, 1.0 - spread)
    return low + (1.0 + spread - low) * torch.rand(n, generator=generator)


def color_jitter(
    images: torch.Tensor,
    generator: torch.Generator,
    brightness: float = 0.5,
    contrast: float = 0.5,
    saturation: float = 0.1,
    channel_order: str = "rgb",
) -> torch.Tensor:
    """Random brightness / contrast / saturation jitter like torchvision's ``ColorJitter``.

    Per sequence, one factor per op is drawn from ``[max(0, 1 - x), 1 + x]`` and the three ops
    run in a random order; every step is clamped to [0, 1]. Contrast blends with the mean gray
    level of each frame, saturation with the gray image.

    Args:
        images: (B, T, 3, H, W) float in [0, 1].
        generator: source of randomness (seed it for reproducible noise).
        brightness, contrast, saturation: jitter strengths (EIPL pretrained era: 0.5, 0.5, 0.1).
        channel_order: ``"rgb"`` or ``"bgr"``; picks the gray-level weights.

    Returns:
        A new (B, T, 3, H, W) tensor in [0, 1].
    """
    b = images.shape[0]
    weights = _GRAY_RGB if channel_order == "rgb" else _GRAY_RGB[::-1]
    gray_w = torch.tensor(weights, dtype=images.dtype, device=images.device).view(3, 1, 1)
    factors = torch.stack([_uniform(b, s, generator) for s in (brightness, contrast, saturation)], dim=1)
    orders = torch.stack([torch.randperm(3, generator=generator) for _ in range(b)])
    out = []
    for i in range(b):
        x = images[i]
        for op in orders[i].tolist():
            f = float(factors[i, op])
            if op == 0:
                x = (x * f).clamp_(0.0, 1.0)
            else:
                gray = (x * gray_w).sum(dim=-3, keepdim=True)
                other = gray.mean(dim=(-2, -1), keepdim=True) if op == 1 else gray
                x = (f * x + (1.0 - f) * other).clamp_(0.0, 1.0)
        out.append(x)
    return torch.stack(out)


def add_noise(
    images: torch.Tensor,
    joints: torch.Tensor,
    stdev: float,
    generator: torch.Generator,
    channel_order: str = "rgb",
) -> tuple[torch.Tensor, torch.Tensor]:
    """EIPL training input noise: jitter + N(0, stdev) on images (clamped to [0, 1]), N(0, stdev) on joints.

    Args:
        images: clean (B, T, 3, H, W) images in [0, 1].
        joints: clean (B, T, D) normalized joints.
        stdev: Gaussian noise std in normalized units (EIPL: 0.02).
        generator: source of randomness.
        channel_order: channel order of ``images``.

    Returns:
        ``(noisy images, noisy joints)``; the inputs are not modified.
    """
    x_img = color_jitter(images, generator, channel_order=channel_order)
    if stdev > 0:
        x_img = x_img + stdev * _gaussian(x_img.shape, x_img, generator)
    return x_img.clamp_(0.0, 1.0), add_joint_noise(joints, stdev, generator)


def add_joint_noise(joints: torch.Tensor, stdev: float, generator: torch.Generator) -> torch.Tensor:
    """EIPL training noise on the joints alone: a new tensor ``joints + N(0, stdev)`` (a copy when 0)."""
    if stdev > 0:
        return joints + stdev * _gaussian(joints.shape, joints, generator)
    return joints.clone()
