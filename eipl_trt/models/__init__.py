"""PyTorch definitions of the EIPL models (SARNN, CNNRNN, CNNRNNLN). Imports torch.

Only the export/training path imports this package; the runtime core (``import eipl_trt``,
the predictor, the ROS node) never does. :mod:`~eipl_trt.models.export` writes a model directory
(``model.onnx`` + ``model.json``) from a checkpoint (``eipl-trt export``).

Typical use::

    from eipl_trt.models import build_model, architecture_of
    model = build_model("sarnn", rec_dim=50, k_dim=5, joint_dim=8, im_size=(64, 64), leaky_slope=0.3)
    arch = architecture_of(model)           # JSON-ready; build_model("sarnn", **arch) rebuilds it

All models take ``forward(xi, xv, state=None)`` like EIPL: SARNN returns
``(y_image, y_joint, enc_pts, dec_pts, (h, c))``, CNNRNN/CNNRNNLN ``(y_image, y_joint, (h, c))``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from eipl_trt.errors import ModelError
from eipl_trt.models.cnnrnn import CNN_IM_SIZE, CNNRNN
from eipl_trt.models.cnnrnnln import CNNRNNLN
from eipl_trt.models.sarnn import SARNN, SARNN_DEFAULT_IM_SIZE

__all__ = [
    "SARNN",
    "CNNRNN",
    "CNNRNNLN",
    "MODEL_CLASSES",
    "CNN_IM_SIZE",
    "SARNN_DEFAULT_IM_SIZE",
    "build_model",
    "architecture_of",
    "image_size_of",
    "default_im_size",
]

#: Model kind (as in the sidecar and ``--model``) -> class.
MODEL_CLASSES: dict[str, type[nn.Module]] = {"sarnn": SARNN, "cnnrnn": CNNRNN, "cnnrnnln": CNNRNNLN}


def _check_kind(kind: str) -> None:
    if kind not in MODEL_CLASSES:
        raise ModelError(f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_CLASSES)}")


def default_im_size(kind: str) -> tuple[int, int]:
    """The input (height, width) in px a kind uses when none is given: SARNN 64, CNN* 128."""
    _check_kind(kind)
    return SARNN_DEFAULT_IM_SIZE if kind == "sarnn" else CNN_IM_SIZE


def build_model(kind: str, **arch: Any) -> nn.Module:
    """Construct an untrained model of ``kind`` in eval mode.

    Args:
        kind: ``"sarnn"``, ``"cnnrnn"`` or ``"cnnrnnln"``.
        **arch: constructor arguments (see :class:`SARNN`, :class:`CNNRNN`, :class:`CNNRNNLN`),
            e.g. a dict from :func:`architecture_of` or a sidecar's ``architecture`` block.
            For CNNRNN/CNNRNNLN an ``im_size`` of (128, 128) is accepted and ignored; they
            cannot run at any other size.

    Raises:
        ModelError: unknown kind, unknown or invalid arguments.
    """
    _check_kind(kind)
    arch = dict(arch)
    if kind != "sarnn" and "im_size" in arch:
        im_size = tuple(int(v) for v in arch.pop("im_size"))
        if im_size != CNN_IM_SIZE:
            raise ModelError(
                f"{kind.upper()} only works on 128x128 px images (its encoder flattens an 8x4x4 "
                f"map), not {im_size[0]}x{im_size[1]}; drop the image-size option"
            )
    if kind == "sarnn" and "rec_dim" not in arch:
        raise ModelError("SARNN needs rec_dim (the LSTM hidden size, 50 in EIPL's configurations)")
    try:
        model = MODEL_CLASSES[kind](**arch)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"cannot build {kind} with {arch}: {exc}") from exc
    return model.eval()


def architecture_of(model: nn.Module) -> dict[str, Any]:
    """The canonical, JSON-ready architecture dict of a model built here.

    ``build_model(kind, **architecture_of(model))`` rebuilds an identically shaped model.
    """
    getter = getattr(model, "architecture", None)
    if getter is None:
        raise ModelError(f"{type(model).__name__} is not an eipl_trt model (no architecture())")
    return dict(getter())


def image_size_of(model: nn.Module) -> tuple[int, int]:
    """The input (height, width) in px the model expects."""
    return tuple(int(v) for v in model.im_size)  # type: ignore[return-value]
