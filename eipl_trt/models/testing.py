"""Small, deterministic test models for other test suites (predictor, node, evaluate, bench).

Typical pytest fixture::

    from eipl_trt.models.testing import make_test_model, torch_reference, torch_step

    @pytest.fixture(scope="module")
    def sarnn_dir(tmp_path_factory):
        out = tmp_path_factory.mktemp("sarnn")
        make_test_model("sarnn", out, seed=0)          # writes out/model.onnx + out/model.json
        return out

    spec = ModelSpec.load(sarnn_dir)
    ref = torch_reference("sarnn", seed=0)             # the same weights, eager PyTorch
    outs = torch_step(ref, image, joint, h, c)         # role -> numpy array, same as the ONNX graph

Weights are random but fixed by ``seed`` and scaled so outputs are well behaved: SARNN's
attention is soft (not one-hot; keys stay inside the image), predicted points sit near the
image centre and predicted joints near the middle of the normalized range. A model takes well
under 2 s to build and export on 2 CPU cores. The weights mean nothing: never drive a robot
with them.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from eipl_trt.models import build_model, default_im_size
from eipl_trt.spec import OUTPUT_ROLES, ModelSpec

__all__ = ["torch_reference", "make_test_model", "torch_step", "default_test_bounds", "smooth_inputs"]

#: Target spread of SARNN attention logits, in units of the softmax temperature.
_ATTENTION_SPREAD = 2.0


def default_test_bounds(joint_dim: int) -> np.ndarray:
    """Distinct, plausible joint bounds (2, D) in rad: joint i spans [-1 - 0.1 i, 1 + 0.05 i]."""
    i = np.arange(joint_dim, dtype=np.float64)
    return np.stack([-1.0 - 0.1 * i, 1.0 + 0.05 * i])


def smooth_inputs(
    image_size: Sequence[int], joint_dim: int, steps: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random input sequence in [0, 1] (normalized, as the model sees it).

    Args:
        image_size: (height, width) in px.
        joint_dim: number of joints D.
        steps: sequence length T.
        seed: numpy seed.

    Returns:
        ``(images (T, 1, 3, H, W), joints (T, 1, D))`` float32: a blurred random background with
        a bright blob drifting across it, and joints following slow sinusoids.
    """
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in image_size)
    coarse = rng.random((3, 5, 5))
    rows = np.linspace(0, 4, height)
    cols = np.linspace(0, 4, width)
    r0, c0 = np.floor(rows).astype(int).clip(0, 3), np.floor(cols).astype(int).clip(0, 3)
    fr, fc = (rows - r0)[:, None], (cols - c0)[None, :]
    background = (
        coarse[:, r0][:, :, c0] * (1 - fr) * (1 - fc)
        + coarse[:, r0 + 1][:, :, c0] * fr * (1 - fc)
        + coarse[:, r0][:, :, c0 + 1] * (1 - fr) * fc
        + coarse[:, r0 + 1][:, :, c0 + 1] * fr * fc
    )
    t = np.arange(steps, dtype=np.float64)[:, None, None]
    cy = 0.5 + 0.3 * np.sin(2 * np.pi * t / max(steps, 1) + rng.uniform(0, np.pi))
    cx = 0.5 + 0.3 * np.cos(2 * np.pi * t / max(steps, 1) + rng.uniform(0, np.pi))
    yy = np.linspace(0, 1, height)[None, :, None]
    xx = np.linspace(0, 1, width)[None, None, :]
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.01)  # (T, H, W)
    images = 0.6 * background[None] + 0.4 * blob[:, None]
    phase = rng.uniform(0, 2 * np.pi, joint_dim)
    freq = rng.uniform(0.5, 2.0, joint_dim)
    joints = 0.5 + 0.4 * np.sin(2 * np.pi * freq * t[:, :, 0] / max(steps, 1) + phase)
    return images[:, None].astype(np.float32).clip(0, 1), joints[:, None].astype(np.float32)


def _shape_sarnn(model: nn.Module, seed: int) -> None:
    """Scale the attention convolution per channel so logits spread over ~2 temperatures."""
    images, _ = smooth_inputs(model.im_size, model.joint_dim, 1, seed)  # type: ignore[attr-defined]
    conv = model.pos_encoder[4]  # type: ignore[index]
    with torch.no_grad():
        logits = model.pos_encoder[:6](torch.from_numpy(images[0]))  # type: ignore[index]
        spread = logits.flatten(2).std(dim=-1)[0].clamp_min(1e-12)  # (K,)
        scale = _ATTENTION_SPREAD * model.temperature / spread  # type: ignore[attr-defined]
        conv.weight.mul_(scale[:, None, None, None])
        conv.bias.mul_(scale)
        point = model.decoder_point[0]  # type: ignore[index]
        point.weight.mul_(0.2)
        point.bias.fill_(0.5)


def torch_reference(
    kind: str,
    *,
    seed: int = 0,
    im_size: Sequence[int] | None = None,
    joint_dim: int = 8,
    rec_dim: int = 50,
    leaky_slope: float = 0.3,
) -> nn.Module:
    """The eager PyTorch model that :func:`make_test_model` exports with the same arguments.

    Args:
        kind: ``"sarnn"``, ``"cnnrnn"`` or ``"cnnrnnln"``.
        seed: weight seed; the same seed gives the same weights on every machine.
        im_size: (height, width) px; default 64x64 for SARNN, 128x128 (the only option) for CNN*.
        joint_dim: number of joints D.
        rec_dim: LSTM hidden size.
        leaky_slope: SARNN LeakyReLU slope (ignored by CNN*).

    Returns:
        The model in eval mode.
    """
    size = tuple(int(v) for v in (im_size or default_im_size(kind)))
    if kind == "sarnn":
        arch: dict[str, Any] = dict(
            rec_dim=rec_dim, k_dim=5, joint_dim=joint_dim, im_size=size, leaky_slope=leaky_slope
        )
    else:
        arch = dict(rec_dim=rec_dim, joint_dim=joint_dim, feat_dim=10, im_size=size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(kind, **arch)
    with torch.no_grad():
        joint_head = model.decoder_joint[0]  # type: ignore[index]
        joint_head.weight.mul_(0.5)
        joint_head.bias.fill_(0.5)
    if kind == "sarnn":
        _shape_sarnn(model, seed)
    return model.eval()


def make_test_model(
    kind: str,
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    im_size: Sequence[int] | None = None,
    joint_dim: int = 8,
    rec_dim: int = 50,
    leaky_slope: float = 0.3,
    joint_names: Sequence[str] | None = None,
    joint_bounds: Any = None,
    rate_hz: float = 10.0,
    channel_order: str = "rgb",
) -> ModelSpec:
    """Export a random-weight model of ``kind`` to ``out_dir`` (model.onnx + model.json).

    Args:
        kind, seed, im_size, joint_dim, rec_dim, leaky_slope: see :func:`torch_reference`.
        out_dir: output directory (created if missing).
        joint_names: D names; default ``joint_0 ..``.
        joint_bounds: (2, D) raw bounds (rad); default :func:`default_test_bounds`.
        rate_hz: control rate recorded in the sidecar (Hz).
        channel_order: ``"rgb"`` or ``"bgr"``, recorded in the sidecar.

    Returns:
        The loaded sidecar (``spec.directory == out_dir``).
    """
    from eipl_trt.models.export import export_onnx

    model = torch_reference(
        kind, seed=seed, im_size=im_size, joint_dim=joint_dim, rec_dim=rec_dim, leaky_slope=leaky_slope
    )
    return export_onnx(
        model,
        kind,
        out_dir,
        architecture=model.architecture(),  # type: ignore[operator]
        joint_bounds=default_test_bounds(joint_dim) if joint_bounds is None else joint_bounds,
        image_size=model.im_size,  # type: ignore[arg-type]
        joint_names=joint_names,
        channel_order=channel_order,
        rate_hz=rate_hz,
        producer={"test_model": {"seed": seed, "note": "random weights for tests; not a trained model"}},
    )


def torch_step(
    model: nn.Module, image: np.ndarray, joint: np.ndarray, state_h: np.ndarray, state_c: np.ndarray
) -> dict[str, np.ndarray]:
    """Run one eager step with numpy in and out, keyed like the ONNX graph's output roles.

    Args:
        model: a model from this package (e.g. :func:`torch_reference`).
        image: (1, 3, H, W) normalized image.
        joint: (1, D) normalized joints.
        state_h, state_c: (1, rec_dim) LSTM state (zeros at sequence start).

    Returns:
        role -> float32 array: ``image``, ``joint``, [``enc_pts``, ``dec_pts``], ``state_h``, ``state_c``.
    """
    as_t = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in (image, joint, state_h, state_c)]
    with torch.no_grad():
        *outs, (h, c) = model(as_t[0], as_t[1], (as_t[2], as_t[3]))
    roles = OUTPUT_ROLES[model.kind]  # type: ignore[index]
    return {role: t.numpy().copy() for role, t in zip(roles, (*outs, h, c))}
