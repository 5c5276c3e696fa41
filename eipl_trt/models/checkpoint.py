"""Load EIPL training checkpoints (``model.pth`` + ``args.json``) into the models of this package.

EIPL saves ``torch.save({"epoch", "model_state_dict", "train_loss", "test_loss"}, path)``;
``torch.compile`` runs prefix every key with ``_orig_mod.``; ``args.json`` beside the file holds
the training arguments (eipl-models.md §3.3). Checkpoints are always read with
``weights_only=True``: a file that needs to run unpickling code is refused, never executed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from eipl_trt.errors import ModelError
from eipl_trt.models import build_model
from eipl_trt.models.state_dict import (
    SIGNATURE_KEYS,
    guess_kind,
    infer_dims,
    listing,
    load_weights,
    resolve_im_size,
)

__all__ = [
    "load_state_dict_file",
    "read_args_json",
    "guess_kind",
    "model_from_checkpoint",
    "normalization_from_args",
]

logger = logging.getLogger(__name__)

_PREFIXES = ("_orig_mod.", "module.")
_ARCH_ARGS = {"sarnn": ("rec_dim", "k_dim"), "cnnrnn": ("rec_dim", "feat_dim"), "cnnrnnln": ("rec_dim", "feat_dim")}


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a checkpoint file and return its model state_dict (CPU tensors).

    Accepts EIPL's ``{"model_state_dict": ...}`` dicts, ``{"state_dict": ...}`` dicts and bare
    state_dicts; strips ``_orig_mod.`` (torch.compile) and ``module.`` (DataParallel) prefixes.

    Args:
        path: the ``.pth`` file.

    Raises:
        ModelError: the file is missing, is not a torch checkpoint, holds pickled Python
            objects (refused by ``weights_only=True``), or holds no tensors.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"checkpoint {p} does not exist; pass the model.pth written by EIPL training")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights only" in str(exc).lower() or "weights_only" in str(exc):
            raise ModelError(
                f"checkpoint {p} contains pickled Python objects besides tensors ({first}). eipl_trt "
                f"loads checkpoints with weights_only=True and never runs code from a model file. "
                f"Re-save only the weights where the model was trained: "
                f"torch.save({{'model_state_dict': model.state_dict()}}, 'model.pth')"
            ) from exc
        raise ModelError(f"checkpoint {p} is not a readable torch checkpoint ({first})") from exc
    except Exception as exc:  # torch raises many types on garbage input (IndexError, RuntimeError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{p} is not a torch checkpoint or is truncated/corrupted ({first}); "
            f"pass the model.pth file written by EIPL training (torch.save)"
        ) from exc

    state = _extract_state_dict(obj, p)
    return _strip_prefixes(state)


def _extract_state_dict(obj: Any, path: Path) -> Mapping[str, Any]:
    if isinstance(obj, Mapping):
        for key in ("model_state_dict", "state_dict"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors and len(tensors) == len(obj) and all(isinstance(k, str) for k in obj):
            return tensors
        raise ModelError(
            f"checkpoint {path} holds a dict without model weights (keys: {listing(sorted(map(str, obj)))}). Expected "
            f"EIPL's {{'model_state_dict': ...}} or a bare state_dict of tensors"
        )
    raise ModelError(
        f"checkpoint {path} holds a {type(obj).__name__}, not a state_dict. Expected EIPL's "
        f"{{'model_state_dict': ...}} or a bare state_dict of tensors"
    )


def _strip_prefixes(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = key
        stripped = True
        while stripped:
            stripped = False
            for prefix in _PREFIXES:
                if name.startswith(prefix):
                    name = name[len(prefix):]
                    stripped = True
        if name in out:
            raise ModelError(f"checkpoint has key {name!r} twice (with and without a {_PREFIXES} prefix)")
        out[name] = value
    return out


def read_args_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read EIPL's ``args.json`` (the training argparse dict).

    Raises:
        ModelError: missing file, invalid JSON, or not a JSON object.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"args file {p} does not exist; pass the args.json saved beside model.pth") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read args file {p}: {exc}. It should be EIPL's args.json") from exc
    if not isinstance(data, dict):
        raise ModelError(f"args file {p} does not hold a JSON object; it should be EIPL's args.json")
    return data


def normalization_from_args(args: Mapping[str, Any] | None) -> tuple[float, float]:
    """The (vmin, vmax) normalization range from args.json; EIPL's default (0, 1) if absent.

    Raises:
        ModelError: non-numeric values or ``vmax <= vmin``.
    """
    args = args or {}
    try:
        vmin = float(args.get("vmin", 0.0))
        vmax = float(args.get("vmax", 1.0))
    except (TypeError, ValueError) as exc:
        raise ModelError(f"args.json vmin/vmax must be numbers: {exc}") from exc
    if not (math.isfinite(vmin) and math.isfinite(vmax) and vmax > vmin):
        raise ModelError(f"args.json has vmin={vmin}, vmax={vmax}; vmax must be greater than vmin")
    return vmin, vmax


def _positive_arg(args: Mapping[str, Any], name: str, default: float) -> float:
    value = args.get(name)
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"args.json {name}={value!r} is not a number") from exc
    if not (math.isfinite(number) and number > 0):
        raise ModelError(f"args.json {name}={value!r} must be a positive number")
    return number


def model_from_checkpoint(
    kind: str,
    state_dict: Mapping[str, torch.Tensor],
    args: Mapping[str, Any] | None = None,
    leaky_slope: float | None = None,
    im_size: Sequence[int] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Build a model of ``kind`` and load ``state_dict`` into it, checking everything on the way.

    Sizes (rec_dim, joint_dim, k_dim or feat_dim) are read off the weight shapes and checked
    against ``args`` (EIPL's args.json; unrelated keys are ignored). SARNN's temperature and
    heatmap_size come from ``args`` (EIPL defaults 1e-4 and 0.1), its input size from the
    ``issm.pos_xy`` / ``pos_encoder.6.pos_x`` buffers when present (which are also checked
    against freshly generated grids).

    Args:
        kind: ``"sarnn"``, ``"cnnrnn"`` or ``"cnnrnnln"``.
        state_dict: from :func:`load_state_dict_file`.
        args: the parsed args.json, or ``None``.
        leaky_slope: SARNN only; ``None`` means 0.3 (eipl HEAD) with a warning, since the slope
            is not stored in checkpoints (eipl-deploy/pretrained 128 px weights need 0.01).
        im_size: (height, width) in px, or ``None`` to infer it.

    Returns:
        ``(model in eval mode, architecture dict)``; ``build_model(kind, **arch)`` rebuilds it.

    Raises:
        ModelError: wrong kind, sizes that disagree with args.json or ``im_size``, corrupted
            buffers, missing/unexpected keys or shape mismatches.
    """
    _check_kind(kind, state_dict, leaky_slope)
    args = dict(args or {})
    dims = infer_dims(kind, state_dict)
    _check_args_agree(kind, dims, args)
    arch: dict[str, Any] = dict(dims)
    size = resolve_im_size(kind, state_dict, im_size)
    if kind == "sarnn":
        arch.update(_sarnn_settings(args, size, leaky_slope))
    model = build_model(kind, **arch)
    load_weights(model, kind, state_dict)
    return model, model.architecture()  # type: ignore[operator]


def _check_kind(kind: str, state_dict: Mapping[str, torch.Tensor], leaky_slope: float | None) -> None:
    """Refuse an unknown ``kind``, a checkpoint of another kind, or a slope for a model without one."""
    if kind not in SIGNATURE_KEYS:
        raise ModelError(f"unknown model kind {kind!r}; choose one of sarnn, cnnrnn, cnnrnnln")
    guessed = guess_kind(state_dict)
    if guessed is None:
        raise ModelError(
            f"checkpoint keys ({listing(sorted(state_dict))}) match none of SARNN, CNNRNN, CNNRNNLN; "
            f"is this an EIPL model checkpoint?"
        )
    if guessed != kind:
        raise ModelError(
            f"this looks like a {guessed.upper()} checkpoint, not {kind.upper()} (it has "
            f"{SIGNATURE_KEYS[guessed]!r}); pass --model {guessed}"
        )
    if leaky_slope is not None and kind != "sarnn":
        raise ModelError(f"--leaky-slope only applies to SARNN; {kind.upper()} has fixed activations")


def _check_args_agree(kind: str, dims: Mapping[str, int], args: Mapping[str, Any]) -> None:
    """Refuse sizes in args.json that differ from those of the checkpoint's weights."""
    for name in _ARCH_ARGS[kind]:
        if name not in args or args[name] is None:
            continue
        try:
            value = int(args[name])
        except (TypeError, ValueError) as exc:
            raise ModelError(f"args.json {name}={args[name]!r} is not an integer") from exc
        if value != dims[name]:
            raise ModelError(
                f"args.json says {name}={args[name]} but the checkpoint weights have {name}={dims[name]}; "
                f"args.json and model.pth come from different training runs"
            )


def _sarnn_settings(args: Mapping[str, Any], size: tuple[int, int], leaky_slope: float | None) -> dict[str, Any]:
    """SARNN's constructor arguments beyond the sizes: temperature, heatmap_size, im_size, leaky_slope."""
    if leaky_slope is None:
        hint = " This checkpoint is 128 px, like those: check which it is." if size == (128, 128) else ""
        logger.warning(
            "SARNN LeakyReLU slope not given: using 0.3 (eipl HEAD). The slope is not stored in "
            "checkpoints; eipl-deploy/pretrained 128 px weights need --leaky-slope 0.01.%s",
            hint,
        )
        leaky_slope = 0.3
    return dict(
        temperature=_positive_arg(args, "temperature", 1e-4),
        heatmap_size=_positive_arg(args, "heatmap_size", 0.1),
        im_size=list(size),
        leaky_slope=float(leaky_slope),
    )
