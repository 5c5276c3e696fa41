"""Precision variants of an exported model: the ONNX files beside ``model.json`` and their hashes.

Re-exported by :mod:`eipl_trt.spec` (``Variant``, ``VARIANT_FILES``, ``sha256_file``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["VARIANT_FILES", "Variant", "sha256_file"]


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: Conventional file name of each precision variant, beside ``model.json``.
VARIANT_FILES: dict[str, str] = {"fp32": "model.onnx", "fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}


@dataclass(frozen=True)
class Variant:
    """One precision variant of the model: an ONNX file beside the sidecar and its hash.

    Attributes:
        file: file name beside ``model.json`` (see :data:`VARIANT_FILES`).
        sha256: hex SHA-256 of that file.
        opset: the ONNX default-domain opset of the file (``None`` when not recorded).
        min_tensorrt: the oldest TensorRT (``"8.6"``, ``"10.0"``, ...) whose ONNX parser and
            builder accept the file; ``None`` = any supported version. The TensorRT runner refuses
            the variant on an older TensorRT with this reason.
        recipe: how the variant was made (tool and version, method, excluded nodes, calibration
            data hash, measured error rate, ...): free-form, for people and reports.
    """

    file: str
    sha256: str
    opset: int | None = None
    min_tensorrt: str | None = None
    recipe: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON entry: ``file`` and ``sha256`` always, the optional fields when set."""
        out: dict[str, Any] = {"file": self.file, "sha256": self.sha256}
        if self.opset is not None:
            out["opset"] = int(self.opset)
        if self.min_tensorrt is not None:
            out["min_tensorrt"] = str(self.min_tensorrt)
        if self.recipe:
            out["recipe"] = dict(self.recipe)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Variant":
        """Parse a JSON entry (older sidecars have only ``file`` and ``sha256``)."""
        opset = data.get("opset")
        min_trt = data.get("min_tensorrt")
        return cls(
            file=str(data["file"]),
            sha256=str(data["sha256"]),
            opset=int(opset) if opset is not None else None,
            min_tensorrt=str(min_trt) if min_trt is not None else None,
            recipe=dict(data.get("recipe") or {}),
        )
