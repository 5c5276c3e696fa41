"""What a valid ``model.json`` may hold: model kinds, precisions, tensor roles, and the checks.

:meth:`eipl_trt.spec.ModelSpec.validate` runs :func:`check_spec`; the names are re-exported by
:mod:`eipl_trt.spec`, whose :mod:`~eipl_trt.spec.model` documents the sidecar's layout. This module
does not import :mod:`~eipl_trt.spec.model`: :func:`check_spec` reads the fields named by
:class:`SpecFields`, which :class:`~eipl_trt.spec.ModelSpec` has.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Protocol

from eipl_trt.errors import ModelError

__all__ = ["MODEL_KINDS", "PRECISIONS", "VARIANT_PRECISIONS", "CHANNEL_ORDERS", "INPUT_NAMES", "OUTPUT_NAMES", "OUTPUT_ROLES",
           "SIDECAR_NAME", "SpecFields", "check_spec"]

SIDECAR_NAME = "model.json"

MODEL_KINDS = ("sarnn", "cnnrnn", "cnnrnnln")
#: The arithmetic a runner can be asked for. Each name means what it says on every backend: ``fp32`` is
#: IEEE single precision throughout, ``fp16`` half precision (the fp16 variant, or FP16 hardware
#: arithmetic), ``bf16`` bfloat16 (OpenVINO on CPUs with AMX or AVX512-BF16; its own error rate per
#: model), ``int8`` the quantized variant.
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
#: The precisions ``model.json`` may list an ONNX file for (bf16 runs the fp32 file with bf16 arithmetic).
VARIANT_PRECISIONS = ("fp32", "fp16", "int8")
CHANNEL_ORDERS = ("rgb", "bgr")

#: Tensor names by role, identical to eipl-deploy's so engines and tools stay interchangeable.
INPUT_NAMES: dict[str, str] = {
    "image": "i.image",
    "joint": "i.joint",
    "state_h": "i.state_h",
    "state_c": "i.state_c",
}
OUTPUT_NAMES: dict[str, str] = {
    "image": "o.image",
    "joint": "o.joint",
    "enc_pts": "o.enc_pts",
    "dec_pts": "o.dec_pts",
    "state_h": "o.state_h",
    "state_c": "o.state_c",
}
#: Output roles each model kind has (CNNRNN/CNNRNNLN have no attention points).
OUTPUT_ROLES: dict[str, tuple[str, ...]] = {
    "sarnn": ("image", "joint", "enc_pts", "dec_pts", "state_h", "state_c"),
    "cnnrnn": ("image", "joint", "state_h", "state_c"),
    "cnnrnnln": ("image", "joint", "state_h", "state_c"),
}


class _VariantFile(Protocol):
    @property
    def file(self) -> str: ...


class SpecFields(Protocol):
    """The fields of a :class:`~eipl_trt.spec.ModelSpec` that :func:`check_spec` reads."""

    @property
    def model(self) -> str: ...
    @property
    def image_height(self) -> int: ...
    @property
    def image_width(self) -> int: ...
    @property
    def channel_order(self) -> str: ...
    @property
    def joint_names(self) -> tuple[str, ...]: ...
    @property
    def joint_min(self) -> tuple[float, ...]: ...
    @property
    def joint_max(self) -> tuple[float, ...]: ...
    @property
    def rate_hz(self) -> float: ...
    @property
    def architecture(self) -> Mapping[str, Any]: ...
    @property
    def vmin(self) -> float: ...
    @property
    def vmax(self) -> float: ...
    @property
    def inputs(self) -> Mapping[str, str]: ...
    @property
    def outputs(self) -> Mapping[str, str]: ...
    @property
    def attention(self) -> Mapping[str, float] | None: ...
    @property
    def variants(self) -> Mapping[str, _VariantFile]: ...
    @property
    def directory(self) -> Path | None: ...


def check_spec(spec: SpecFields) -> None:
    """Check a spec's internal consistency; raise :class:`ModelError` naming the first problem."""

    def fail(msg: str) -> None:
        where = f" in {spec.directory / SIDECAR_NAME}" if spec.directory else ""
        raise ModelError(f"invalid model sidecar{where}: {msg}")

    if spec.model not in MODEL_KINDS:
        fail(f"model kind {spec.model!r} is not one of {', '.join(MODEL_KINDS)}")
    if spec.image_height <= 0 or spec.image_width <= 0:
        fail(f"image size {spec.image_height}x{spec.image_width} must be positive")
    if spec.channel_order not in CHANNEL_ORDERS:
        fail(f"channel_order {spec.channel_order!r} must be 'rgb' or 'bgr'")
    n = len(spec.joint_names)
    if n == 0:
        fail("joint_names is empty")
    if len(set(spec.joint_names)) != n:
        fail(f"joint_names has duplicates: {list(spec.joint_names)}")
    if len(spec.joint_min) != n or len(spec.joint_max) != n:
        fail(f"joint bounds have {len(spec.joint_min)}/{len(spec.joint_max)} entries for {n} joints")
    for name, lo, hi in zip(spec.joint_names, spec.joint_min, spec.joint_max):
        if not (math.isfinite(lo) and math.isfinite(hi)):
            fail(f"joint {name!r} has non-finite bounds [{lo}, {hi}]")
        if not hi > lo:
            fail(
                f"joint {name!r} has zero-width or inverted bounds [{lo}, {hi}]; min-max "
                f"normalization would divide by zero. Widen the bounds in joint_bounds.npy "
                f"(e.g. min-0.01, max+0.01 for a joint that never moved)"
            )
    if not (math.isfinite(spec.vmin) and math.isfinite(spec.vmax) and spec.vmax > spec.vmin):
        fail(f"normalization range [{spec.vmin}, {spec.vmax}] must satisfy vmax > vmin")
    if not (math.isfinite(spec.rate_hz) and spec.rate_hz > 0):
        fail(f"rate_hz {spec.rate_hz} must be a positive number")
    if "rec_dim" not in spec.architecture or int(spec.architecture["rec_dim"]) <= 0:
        fail("architecture.rec_dim is missing or not positive")
    if int(spec.architecture.get("joint_dim", n)) != n:
        fail(f"architecture.joint_dim {spec.architecture['joint_dim']} != {n} joint names")
    missing_in = set(INPUT_NAMES) - set(spec.inputs)
    if missing_in:
        fail(f"tensors.inputs lacks roles {sorted(missing_in)}")
    expected_out = set(OUTPUT_ROLES[spec.model])
    if set(spec.outputs) != expected_out:
        fail(f"tensors.outputs has roles {sorted(spec.outputs)}, expected {sorted(expected_out)}")
    if spec.model == "sarnn":
        if int(spec.architecture.get("k_dim", 0)) <= 0:
            fail("SARNN needs architecture.k_dim > 0")
        if spec.attention is None:
            fail("SARNN needs an 'attention' block (feature_height, feature_width, offset_px)")
    for precision, variant in spec.variants.items():
        if precision not in VARIANT_PRECISIONS:
            fail(f"variant {precision!r} is not one of {', '.join(VARIANT_PRECISIONS)}")
        if not variant.file or os.path.isabs(variant.file) or ".." in Path(variant.file).parts:
            fail(f"variant {precision} file {variant.file!r} must be a plain name beside model.json")
