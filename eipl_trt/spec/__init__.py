"""The ``model.json`` contract: what an exported model directory holds and what the runtime reads from it.

:mod:`model` (:class:`ModelSpec`, the parsed sidecar, and its file layout), :mod:`rules` (model
kinds, precisions, tensor roles and :func:`check_spec`) and :mod:`variants` (the precision
variants' ONNX files and hashes). Everything public is re-exported here, so
``from eipl_trt.spec import ModelSpec, PRECISIONS`` works.
"""

from __future__ import annotations

from eipl_trt.spec.model import FORMAT, FORMAT_VERSION, ModelSpec, joint_bounds_from_rows
from eipl_trt.spec.rules import (
    CHANNEL_ORDERS, INPUT_NAMES, MODEL_KINDS, OUTPUT_NAMES, OUTPUT_ROLES, PRECISIONS, SIDECAR_NAME, VARIANT_PRECISIONS, SpecFields,
    check_spec,
)
from eipl_trt.spec.variants import VARIANT_FILES, Variant, sha256_file

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MODEL_KINDS",
    "PRECISIONS",
    "VARIANT_PRECISIONS",
    "INPUT_NAMES",
    "OUTPUT_NAMES",
    "ModelSpec",
    "Variant",
    "VARIANT_FILES",
    "sha256_file",
    "joint_bounds_from_rows",
    "CHANNEL_ORDERS",
    "OUTPUT_ROLES",
    "SIDECAR_NAME",
    "SpecFields",
    "check_spec",
]
