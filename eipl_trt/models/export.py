"""Export EIPL models to ONNX with explicit recurrent state, plus the ``model.json`` sidecar.

The exported graph is a single time step with static batch 1, float32, opset 17 (legacy
TorchScript exporter, ``dynamo=False``)::

    inputs:  i.image (1,3,H,W)  i.joint (1,D)  i.state_h (1,R)  i.state_c (1,R)
    outputs: o.image (1,3,H,W)  o.joint (1,D)  [o.enc_pts (1,2K)  o.dec_pts (1,2K)]  o.state_h  o.state_c

``o.enc_pts``/``o.dec_pts`` exist for SARNN only. The caller owns the state: zeros at sequence
start, then the previous step's ``o.state_*`` (eipl-models.md §1.5, pitfall 6). Tensor names
match eipl-deploy, so its engines and tools are interchangeable with ours.

Both files are written atomically (temp file in the output directory, then rename).
"""

from __future__ import annotations

import datetime
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from eipl_trt import __version__
from eipl_trt.common.atomic import unlink_durably, write_bytes_atomic
from eipl_trt.errors import ModelError
from eipl_trt.models.bounds import load_joint_bounds, resolve_joint_names, validate_joint_bounds
from eipl_trt.spec import (
    CHANNEL_ORDERS, INPUT_NAMES, OUTPUT_NAMES, OUTPUT_ROLES, SIDECAR_NAME, ModelSpec, sha256_file,
)

__all__ = [
    "OPSET",
    "ONNX_NAME",
    "StepGraph",
    "export_onnx",
    "export_checkpoint",
    "check_onnx_graph",
    "validate_joint_bounds",
    "resolve_joint_names",
    "load_joint_bounds",
]

logger = logging.getLogger(__name__)

OPSET = 17
ONNX_NAME = "model.onnx"
_INPUT_ORDER = ("image", "joint", "state_h", "state_c")


class StepGraph(nn.Module):
    """Wraps a model as ``(image, joint, state_h, state_c) -> flat outputs`` for export.

    Output order is ``OUTPUT_ROLES[kind]``: image, joint, [enc_pts, dec_pts], state_h, state_c.
    """

    def __init__(self, model: nn.Module, kind: str) -> None:
        super().__init__()
        self.model = model
        self.kind = kind

    def forward(
        self, image: torch.Tensor, joint: torch.Tensor, state_h: torch.Tensor, state_c: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        *outputs, (h, c) = self.model(image, joint, (state_h, state_c))
        return (*outputs, h, c)


def producer_info(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Provenance for the sidecar: package versions and the UTC export time."""
    import onnx

    info: dict[str, Any] = {
        "tool": "eipl_trt.export",
        "eipl_trt": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "opset": OPSET,
        "exported_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    info.update(extra or {})
    return info


def check_onnx_graph(proto: Any, spec: ModelSpec) -> None:
    """Check an exported graph against the sidecar: opset, names, static shapes, float32, no Shape ops.

    Raises:
        ModelError: listing every deviation.
    """
    import onnx

    problems: list[str] = []
    opset = {o.domain: o.version for o in proto.opset_import}.get("", None)
    if opset != OPSET:
        problems.append(f"opset {opset}, expected {OPSET}")

    def dims(value: Any) -> tuple[int | str, ...]:
        shape = value.type.tensor_type.shape.dim
        return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in shape)

    for kind, values, names, shapes in (
        ("input", proto.graph.input, spec.inputs, spec.input_shapes()),
        ("output", proto.graph.output, spec.outputs, spec.output_shapes()),
    ):
        want = [(names[r], shapes[r]) for r in (_INPUT_ORDER if kind == "input" else OUTPUT_ROLES[spec.model])]
        got = [(v.name, dims(v)) for v in values]
        if got != want:
            problems.append(f"{kind}s {got}, expected {want}")
        for v in values:
            if v.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
                problems.append(f"{kind} {v.name} is not float32")
    shape_ops = sum(1 for n in proto.graph.node if n.op_type == "Shape")
    if shape_ops:
        problems.append(f"{shape_ops} Shape op(s): the graph is not fully static")
    if problems:
        raise ModelError("exported ONNX graph is not what eipl_trt expects: " + "; ".join(problems))


def export_onnx(
    model: nn.Module,
    kind: str,
    out_dir: str | os.PathLike[str],
    *,
    architecture: Mapping[str, Any],
    joint_bounds: Any,
    image_size: Sequence[int],
    joint_names: Sequence[str] | None = None,
    channel_order: str = "rgb",
    rate_hz: float = 10.0,
    vmin: float = 0.0,
    vmax: float = 1.0,
    producer: Mapping[str, Any] | None = None,
) -> ModelSpec:
    """Export ``model`` to ``out_dir/model.onnx`` and write ``out_dir/model.json``.

    Args:
        model: a SARNN/CNNRNN/CNNRNNLN from :mod:`eipl_trt.models` (weights loaded).
        kind: ``"sarnn"``, ``"cnnrnn"`` or ``"cnnrnnln"``.
        out_dir: output directory (created if missing); existing files are replaced atomically.
        architecture: constructor arguments (``architecture_of(model)``), stored in the sidecar.
        joint_bounds: (2, D) raw joint bounds (row 0 min, row 1 max; rad for revolute joints).
        image_size: model input (height, width) in px.
        joint_names: D names in model order; default ``joint_0 .. joint_{D-1}``.
        channel_order: channel order of the training images, ``"rgb"`` or ``"bgr"``.
        rate_hz: control rate the model was trained at (Hz).
        vmin, vmax: normalization range of images and joints (EIPL: 0, 1).
        producer: extra provenance merged into the sidecar's ``producer`` block.

    Returns:
        The sidecar as loaded back from ``out_dir`` (``spec.directory`` set).

    Raises:
        ModelError: invalid bounds/names/sizes, or a graph that fails the ONNX checker or
            :func:`check_onnx_graph`.
    """
    spec = _export_spec(model, kind, architecture, joint_bounds, image_size, joint_names, channel_order,
                        rate_hz, vmin, vmax, producer)
    proto = _step_graph_onnx(model, spec)
    return _save_export(proto, spec, Path(out_dir))


def _export_spec(
    model: nn.Module, kind: str, architecture: Mapping[str, Any], joint_bounds: Any, image_size: Sequence[int],
    joint_names: Sequence[str] | None, channel_order: str, rate_hz: float, vmin: float, vmax: float,
    producer: Mapping[str, Any] | None,
) -> ModelSpec:
    """The sidecar of an export, once the model, its kind, joints and image size agree (else ModelError)."""
    if kind not in OUTPUT_ROLES:
        raise ModelError(f"unknown model kind {kind!r}; choose one of {', '.join(OUTPUT_ROLES)}")
    model_kind = getattr(model, "kind", kind)
    if model_kind != kind:
        raise ModelError(f"kind {kind!r} given for a {model_kind.upper()} model; pass kind={model_kind!r}")
    arch = dict(architecture)
    joint_dim = int(arch.get("joint_dim", 0))
    if joint_dim <= 0:
        raise ModelError(f"architecture {arch} lacks a positive joint_dim; use architecture_of(model)")
    names = resolve_joint_names(joint_names, joint_dim)
    bounds = validate_joint_bounds(joint_bounds, joint_dim, names)
    height, width = (int(v) for v in image_size)
    model_size = tuple(int(v) for v in getattr(model, "im_size", (height, width)))
    if model_size != (height, width):
        raise ModelError(f"image_size {height}x{width} does not match the model's {model_size[0]}x{model_size[1]} px")
    attention = None
    if kind == "sarnn":
        feat_h, feat_w = model.feature_size  # type: ignore[attr-defined]
        attention = {"feature_height": int(feat_h), "feature_width": int(feat_w), "offset_px": 3.0}
    return ModelSpec(
        model=kind,
        image_height=height,
        image_width=width,
        channel_order=channel_order,
        joint_names=names,
        joint_min=tuple(float(v) for v in bounds[0]),
        joint_max=tuple(float(v) for v in bounds[1]),
        rate_hz=float(rate_hz),
        architecture=arch,
        vmin=float(vmin),
        vmax=float(vmax),
        attention=attention,
        producer=producer_info(producer),
    )


def _step_graph_onnx(model: nn.Module, spec: ModelSpec) -> Any:
    """One step of ``model`` traced to an ONNX ``ModelProto``, checked by ONNX and :func:`check_onnx_graph`."""
    import onnx

    kind = spec.model
    shapes = spec.input_shapes()
    gen = torch.Generator().manual_seed(0)
    example = tuple(torch.rand(shapes[r], generator=gen) for r in _INPUT_ORDER)
    buffer = io.BytesIO()
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        torch.onnx.export(
            StepGraph(model, kind),
            example,
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAMES[r] for r in _INPUT_ORDER],
            output_names=[OUTPUT_NAMES[r] for r in OUTPUT_ROLES[kind]],
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, {"eipl_trt.model": kind, "eipl_trt.architecture": json.dumps(spec.architecture)})
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ModelError(f"exported ONNX graph for {kind} fails the ONNX checker: {exc}") from exc
    check_onnx_graph(proto, spec)
    return proto


def _save_export(proto: Any, spec: ModelSpec, out: Path) -> ModelSpec:
    """Write ``model.onnx``, then ``model.json`` naming its sha256; returns the sidecar loaded back."""
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / ONNX_NAME
    # model.json goes first and comes back last: a kill in between leaves no sidecar (no model),
    # never a sidecar whose sha256 names the previous ONNX file.
    unlink_durably(out / SIDECAR_NAME)
    write_bytes_atomic(onnx_path, proto.SerializeToString())
    spec = spec.with_variant("fp32", ONNX_NAME, sha256_file(onnx_path))
    spec.save(out)
    logger.info("exported %s to %s (%d bytes)", spec.model, onnx_path, onnx_path.stat().st_size)
    return ModelSpec.load(out)


def export_checkpoint(
    kind: str,
    checkpoint: str | os.PathLike[str],
    *,
    joint_bounds: str | os.PathLike[str] | Any,
    out_dir: str | os.PathLike[str],
    args_json: str | os.PathLike[str] | None = None,
    leaky_slope: float | None = None,
    im_size: Sequence[int] | None = None,
    joint_names: Sequence[str] | None = None,
    rate_hz: float | None = None,
    channel_order: str | None = None,
) -> ModelSpec:
    """Load an EIPL checkpoint and export it (the library behind ``eipl-trt export``).

    ``joint_names``, ``rate_hz``, ``channel_order`` and SARNN's ``leaky_slope`` left at ``None`` are
    taken from ``args.json`` when it records them (``eipl-trt train`` does; EIPL's own does not),
    else they default to ``joint_0 ..``, 10 Hz, ``"rgb"`` and 0.3.

    Args:
        kind: ``"sarnn"``, ``"cnnrnn"`` or ``"cnnrnnln"``.
        checkpoint: EIPL's ``model.pth``.
        joint_bounds: path to ``joint_bounds.npy`` or a (2, D) array (raw units, rad).
        out_dir: output directory for ``model.onnx`` and ``model.json``.
        args_json: EIPL's ``args.json``; ``None`` uses ``args.json`` beside the checkpoint if
            there is one.
        leaky_slope: SARNN LeakyReLU slope (0.3 eipl HEAD, 0.01 eipl-deploy); ``None`` = 0.3
            with a warning.
        im_size: input (height, width) px; ``None`` infers it (SARNN) or uses 128 (CNN*).
        joint_names: D names in model order.
        rate_hz: training control rate (Hz).
        channel_order: ``"rgb"`` or ``"bgr"`` (AIREC and OpenManipulator data are BGR).

    Raises:
        ModelError: any problem with the inputs, with a message that says how to fix it.
    """
    from eipl_trt.models.checkpoint import (
        load_state_dict_file, model_from_checkpoint, normalization_from_args, read_args_json,
    )

    bounds = load_joint_bounds(joint_bounds) if isinstance(joint_bounds, (str, os.PathLike)) else joint_bounds
    ckpt = Path(checkpoint)
    if args_json is None and (ckpt.parent / "args.json").is_file():
        args_json = ckpt.parent / "args.json"
        logger.info("using %s", args_json)
    args = read_args_json(args_json) if args_json is not None else None
    joint_names, rate_hz, channel_order, leaky_slope = _settings_from_args(
        args or {}, kind, joint_names, rate_hz, channel_order, leaky_slope)
    vmin, vmax = normalization_from_args(args)
    state = load_state_dict_file(ckpt)
    model, arch = model_from_checkpoint(kind, state, args, leaky_slope=leaky_slope, im_size=im_size)
    names = resolve_joint_names(joint_names, arch["joint_dim"])
    bounds = validate_joint_bounds(bounds, arch["joint_dim"], names)
    extra = {
        "checkpoint": ckpt.name,
        "checkpoint_sha256": sha256_file(ckpt),
        "args_json": Path(args_json).name if args_json is not None else None,
    }
    return export_onnx(
        model, kind, out_dir, architecture=arch, joint_bounds=bounds,
        image_size=model.im_size,  # type: ignore[arg-type]
        joint_names=names, channel_order=channel_order, rate_hz=rate_hz, vmin=vmin, vmax=vmax, producer=extra,
    )


def _settings_from_args(
    recorded: Mapping[str, Any], kind: str, joint_names: Sequence[str] | None, rate_hz: float | None,
    channel_order: str | None, leaky_slope: float | None,
) -> tuple[Sequence[str] | None, float, str, float | None]:
    """``joint_names, rate_hz, channel_order, leaky_slope``: those given, else what ``args.json`` recorded,
    else the defaults (``leaky_slope`` and ``joint_names`` may stay ``None``: the model and the export default them).

    Raises:
        ModelError: a channel order other than rgb/bgr, or a rate that is not a positive number.
    """
    if joint_names is None and recorded.get("joint_names"):
        joint_names = [str(n) for n in recorded["joint_names"]]
    rate_hz = float(recorded.get("rate_hz", 10.0)) if rate_hz is None else rate_hz
    channel_order = str(recorded.get("channel_order", "rgb")) if channel_order is None else channel_order
    if leaky_slope is None and kind == "sarnn" and recorded.get("leaky_slope") is not None:
        leaky_slope = float(recorded["leaky_slope"])
    if channel_order not in CHANNEL_ORDERS:
        raise ModelError(f"channel order {channel_order!r} must be 'rgb' or 'bgr'")
    if not (isinstance(rate_hz, (int, float)) and np.isfinite(rate_hz) and rate_hz > 0):
        raise ModelError(f"rate_hz {rate_hz} must be a positive number (the training control rate in Hz)")
    return joint_names, rate_hz, channel_order, leaky_slope
