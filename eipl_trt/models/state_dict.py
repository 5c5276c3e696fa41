"""What an EIPL state_dict says about its model: kind, sizes, SARNN grids; and strict loading.

Used by :mod:`eipl_trt.models.checkpoint`. Every check raises :class:`ModelError` with the
offending keys and what they mean.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import torch
from torch import nn

from eipl_trt.errors import ModelError
from eipl_trt.models.cnnrnn import CNN_IM_SIZE
from eipl_trt.models.layers import position_grids
from eipl_trt.models.sarnn import SARNN_DEFAULT_IM_SIZE

__all__ = [
    "SIGNATURE_KEYS",
    "SARNN_BUFFERS",
    "guess_kind",
    "infer_dims",
    "sarnn_feature_size",
    "check_sarnn_buffers",
    "resolve_im_size",
    "load_weights",
    "listing",
]

logger = logging.getLogger(__name__)

#: SARNN buffers: EIPL saves them, but they are regenerated from the image size.
SARNN_BUFFERS = ("pos_encoder.6.pos_x", "pos_encoder.6.pos_y", "issm.pos_xy")
#: A key that only each kind has.
SIGNATURE_KEYS = {
    "sarnn": "pos_encoder.0.weight",
    "cnnrnnln": "encoder_image.16.weight",
    "cnnrnn": "encoder_image.11.weight",
}
_MAX_LISTED = 8


def guess_kind(state: Mapping[str, torch.Tensor]) -> str | None:
    """The model kind a state_dict's keys belong to, or ``None`` if none matches."""
    for kind, key in SIGNATURE_KEYS.items():
        if key in state:
            return kind
    return None


def _shape(state: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    if key not in state:
        raise ModelError(f"checkpoint lacks {key!r}, so it cannot be the model it claims to be")
    return tuple(state[key].shape)


def infer_dims(kind: str, state: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """Architecture sizes read off the weight shapes."""
    dims = {
        "rec_dim": _shape(state, "rec.weight_hh")[1],
        "joint_dim": _shape(state, "decoder_joint.0.weight")[0],
    }
    if kind == "sarnn":
        dims["k_dim"] = _shape(state, "pos_encoder.4.weight")[0]
    else:
        feat_key = "encoder_image.13.weight" if kind == "cnnrnn" else "encoder_image.19.weight"
        dims["feat_dim"] = _shape(state, feat_key)[0]
    return dims


def sarnn_feature_size(state: Mapping[str, torch.Tensor]) -> tuple[int, int] | None:
    """Feature-map (H', W') from the stored grids, or ``None`` if the checkpoint has none."""
    if "issm.pos_xy" in state:
        shape = tuple(state["issm.pos_xy"].shape)
        if len(shape) != 3 or shape[0] != 2:
            raise ModelError(f"checkpoint buffer issm.pos_xy has shape {shape}, expected (2, H-6, W-6)")
        return shape[1], shape[2]
    pos_x = state.get("pos_encoder.6.pos_x")
    if pos_x is not None and pos_x.ndim == 1 and pos_x.numel() >= 4 and float(pos_x[1]) > 0:
        width = int(round(1.0 / float(pos_x[1]))) + 1
        if pos_x.numel() % width == 0:
            return pos_x.numel() // width, width
        raise ModelError(
            f"checkpoint buffer pos_encoder.6.pos_x (length {pos_x.numel()}) is not an EIPL position grid"
        )
    return None


def check_sarnn_buffers(state: Mapping[str, torch.Tensor], feat: tuple[int, int]) -> None:
    pos_xy, pos_x, pos_y = position_grids(*feat)
    expected = {"issm.pos_xy": pos_xy, "pos_encoder.6.pos_x": pos_x, "pos_encoder.6.pos_y": pos_y}
    for key, ref in expected.items():
        if key not in state:
            continue
        got = state[key]
        if tuple(got.shape) != tuple(ref.shape):
            raise ModelError(
                f"checkpoint buffer {key} has shape {tuple(got.shape)} but a {feat[0] + 6}x{feat[1] + 6} px "
                f"SARNN needs {tuple(ref.shape)}; the buffers disagree with each other or with --im-size"
            )
        diff = float((got.float() - ref).abs().max())
        if not diff <= 1e-6:
            raise ModelError(
                f"checkpoint buffer {key} differs from the position grid EIPL generates (max |diff| "
                f"{diff:.3g}); the file is corrupted or comes from a modified SARNN. Its attention "
                f"points would be wrong, so it is refused"
            )


def resolve_im_size(kind: str, state: Mapping[str, torch.Tensor], im_size: Sequence[int] | None) -> tuple[int, int]:
    given = None if im_size is None else (int(im_size[0]), int(im_size[1]))
    if kind != "sarnn":
        if given is not None and given != CNN_IM_SIZE:
            raise ModelError(
                f"{kind.upper()} only works on 128x128 px images (its encoder flattens an 8x4x4 map); "
                f"--im-size {given[0]} {given[1]} is not possible. Drop --im-size"
            )
        return CNN_IM_SIZE
    feat = sarnn_feature_size(state)
    if feat is not None:
        trained = (feat[0] + 6, feat[1] + 6)
        if given is not None and given != trained:
            raise ModelError(
                f"this SARNN was trained at {trained[0]}x{trained[1]} px (its position-grid buffers are "
                f"{feat[0]}x{feat[1]}) but --im-size {given[0]} {given[1]} was given. Drop --im-size or "
                f"pass --im-size {trained[0]} {trained[1]}"
            )
        check_sarnn_buffers(state, feat)
        return trained
    if given is None:
        logger.warning(
            "checkpoint has no position-grid buffers, so the SARNN input size cannot be inferred; "
            "assuming %dx%d px (eipl HEAD). Pass --im-size 128 128 for eipl-deploy/pretrained weights",
            *SARNN_DEFAULT_IM_SIZE,
        )
        return SARNN_DEFAULT_IM_SIZE
    return given


def load_weights(model: nn.Module, kind: str, state: Mapping[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    optional = set(SARNN_BUFFERS) if kind == "sarnn" else set()
    missing = sorted(k for k in expected if k not in state and k not in optional)
    unexpected = sorted(k for k in state if k not in expected)
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {listing(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches {listing(mismatched)}")
    if problems:
        raise ModelError(
            f"checkpoint does not fit a {kind.upper()} with architecture {_arch_summary(model)}: "
            + "; ".join(problems)
            + ". Check --model and args.json; the checkpoint must come from EIPL's "
            f"{kind.upper()} with the same sizes"
        )
    with torch.no_grad():
        for key, tensor in expected.items():
            if key in state:
                tensor.copy_(state[key].to(tensor.dtype))


def listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return f"[{shown}{f', ... and {more} more' if more > 0 else ''}]"


def _arch_summary(model: nn.Module) -> str:
    arch = model.architecture()  # type: ignore[operator]
    return ", ".join(f"{k}={v}" for k, v in arch.items())
