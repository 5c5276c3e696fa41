"""The model sidecar (``model.json``): everything the runtime needs to know about an exported model.

``eipl-trt export`` writes ``DIR/model.onnx`` and ``DIR/model.json``. The runtime never guesses:
image size and channel order, joint names and bounds, normalization range, control rate,
tensor names and the ONNX hash all come from the sidecar.

Layout of ``model.json`` (format version 1)::

    {
      "format": "eipl_trt.model", "format_version": 1,
      "model": "sarnn" | "cnnrnn" | "cnnrnnln",
      "architecture": {"rec_dim": 50, "joint_dim": 8, "k_dim": 5, ...},
      "image": {"height": 64, "width": 64, "channel_order": "rgb"},
      "joints": {"names": [...], "min": [...], "max": [...]},
      "normalization": {"vmin": 0.0, "vmax": 1.0},
      "rate_hz": 10.0,
      "tensors": {"inputs": {"image": "i.image", ...}, "outputs": {"image": "o.image", ...}},
      "attention": {"feature_height": 58, "feature_width": 58, "offset_px": 3.0} | null,
      "variants": {"fp32": {"file": "model.onnx", "sha256": "..."},
                   "fp16": {"file": "model.fp16.onnx", "sha256": "...", "opset": 17,
                            "min_tensorrt": "8.6", "recipe": {...}},
                   "int8": {"file": "model.int8.onnx", ...}},
      "producer": {...}                      # free-form provenance (versions, checkpoint hash, date)
    }
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from eipl_trt.common.atomic import write_json_atomic
from eipl_trt.errors import ModelError
from eipl_trt.spec.rules import (
    INPUT_NAMES, OUTPUT_NAMES, OUTPUT_ROLES, SIDECAR_NAME, check_spec,
)
from eipl_trt.spec.variants import Variant, sha256_file

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelSpec", "joint_bounds_from_rows"]

FORMAT = "eipl_trt.model"
FORMAT_VERSION = 1
@dataclass(frozen=True)
class ModelSpec:
    """The parsed, validated contents of a ``model.json`` sidecar.

    Attributes:
        model: model kind, one of :data:`MODEL_KINDS`.
        image_height, image_width: model input size in pixels.
        channel_order: ``"rgb"`` or ``"bgr"``: the channel order the model was trained on.
        joint_names: joint names in model order.
        joint_min, joint_max: per-joint bounds (raw units, rad for revolute joints) used for
            min-max normalization; ``joint_max > joint_min`` for every joint.
        vmin, vmax: the normalized range images and joints are mapped to (EIPL: 0 and 1).
        rate_hz: the control rate the model was trained at (one step = 1/rate_hz seconds).
        architecture: constructor arguments (rec_dim, joint_dim, k_dim, feat_dim, ...).
        inputs, outputs: role -> tensor name.
        attention: for SARNN, ``{"feature_height", "feature_width", "offset_px"}`` to map
            normalized keypoints to model-input pixels; ``None`` for models without points.
        variants: precision -> :class:`Variant` (ONNX file relative to :attr:`directory`).
        producer: free-form provenance.
        directory: the directory the sidecar was loaded from (``None`` if built in memory).
    """

    model: str
    image_height: int
    image_width: int
    channel_order: str
    joint_names: tuple[str, ...]
    joint_min: tuple[float, ...]
    joint_max: tuple[float, ...]
    rate_hz: float
    architecture: Mapping[str, Any]
    vmin: float = 0.0
    vmax: float = 1.0
    inputs: Mapping[str, str] = field(default_factory=lambda: dict(INPUT_NAMES))
    outputs: Mapping[str, str] = field(default_factory=dict)
    attention: Mapping[str, float] | None = None
    variants: Mapping[str, Variant] = field(default_factory=dict)
    producer: Mapping[str, Any] = field(default_factory=dict)
    directory: Path | None = None

    def __post_init__(self) -> None:
        if not self.outputs:
            roles = OUTPUT_ROLES.get(self.model, ())
            object.__setattr__(self, "outputs", {r: OUTPUT_NAMES[r] for r in roles})
        self.validate()

    # ------------------------------------------------------------------ derived values
    @property
    def joint_dim(self) -> int:
        """Number of joints the model reads and predicts."""
        return len(self.joint_names)

    @property
    def rec_dim(self) -> int:
        """LSTM hidden size (length of h and c)."""
        return int(self.architecture["rec_dim"])

    @property
    def has_points(self) -> bool:
        """True for models with attention points (SARNN)."""
        return "enc_pts" in self.outputs

    @property
    def k_dim(self) -> int:
        """Number of attention points (0 for models without points)."""
        return int(self.architecture.get("k_dim", 0)) if self.has_points else 0

    @property
    def period_s(self) -> float:
        """Control period in seconds (1 / rate_hz)."""
        return 1.0 / self.rate_hz

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Static input shapes by role (batch 1, float32)."""
        return {
            "image": (1, 3, self.image_height, self.image_width),
            "joint": (1, self.joint_dim),
            "state_h": (1, self.rec_dim),
            "state_c": (1, self.rec_dim),
        }

    def output_shapes(self) -> dict[str, tuple[int, ...]]:
        """Static output shapes by role (batch 1, float32)."""
        shapes = {
            "image": (1, 3, self.image_height, self.image_width),
            "joint": (1, self.joint_dim),
            "enc_pts": (1, 2 * self.k_dim),
            "dec_pts": (1, 2 * self.k_dim),
            "state_h": (1, self.rec_dim),
            "state_c": (1, self.rec_dim),
        }
        return {role: shapes[role] for role in self.outputs}

    def variant_path(self, precision: str) -> Path:
        """Absolute path of the ONNX file for ``precision``.

        Raises:
            ModelError: the sidecar has no such variant or was not loaded from a directory.
        """
        if precision not in self.variants:
            have = ", ".join(sorted(self.variants)) or "none"
            raise ModelError(
                f"model {self.model!r} has no {precision} variant (available: {have}). "
                f"Create one with `eipl-trt quantize` or choose one of the available precisions."
            )
        if self.directory is None:
            raise ModelError("this model spec was not loaded from a directory; its files cannot be found")
        return self.directory / self.variants[precision].file

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check internal consistency; raise :class:`ModelError` naming the first problem (see :mod:`eipl_trt.spec.rules`)."""
        check_spec(self)

    # ------------------------------------------------------------------ (de)serialization
    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready sidecar dictionary (see the module docstring)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "architecture": dict(self.architecture),
            "image": {
                "height": self.image_height,
                "width": self.image_width,
                "channel_order": self.channel_order,
            },
            "joints": {
                "names": list(self.joint_names),
                "min": [float(v) for v in self.joint_min],
                "max": [float(v) for v in self.joint_max],
            },
            "normalization": {"vmin": self.vmin, "vmax": self.vmax},
            "rate_hz": self.rate_hz,
            "tensors": {"inputs": dict(self.inputs), "outputs": dict(self.outputs)},
            "attention": dict(self.attention) if self.attention is not None else None,
            "variants": {p: v.to_dict() for p, v in self.variants.items()},
            "producer": dict(self.producer),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], directory: Path | None = None) -> "ModelSpec":
        """Build a spec from a sidecar dictionary.

        Raises:
            ModelError: wrong format, a newer format version, or missing/invalid fields.
        """
        where = f" {directory / SIDECAR_NAME}" if directory else ""
        if data.get("format") != FORMAT:
            raise ModelError(f"{where or 'the file'} is not an eipl_trt model sidecar (format={data.get('format')!r})")
        version = data.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelError(
                f"model sidecar{where} has format_version {version!r}, but this eipl_trt reads "
                f"version {FORMAT_VERSION}. Upgrade eipl_trt or re-export the model with this version."
            )
        try:
            image = data["image"]
            joints = data["joints"]
            norm = data.get("normalization") or {}
            tensors = data.get("tensors") or {}
            return cls(
                model=str(data["model"]),
                image_height=int(image["height"]),
                image_width=int(image["width"]),
                channel_order=str(image.get("channel_order", "rgb")),
                joint_names=tuple(str(n) for n in joints["names"]),
                joint_min=tuple(float(v) for v in joints["min"]),
                joint_max=tuple(float(v) for v in joints["max"]),
                vmin=float(norm.get("vmin", 0.0)),
                vmax=float(norm.get("vmax", 1.0)),
                rate_hz=float(data["rate_hz"]),
                architecture=dict(data["architecture"]),
                inputs=dict(tensors.get("inputs") or INPUT_NAMES),
                outputs=dict(tensors.get("outputs") or {}),
                attention=dict(data["attention"]) if data.get("attention") else None,
                variants={p: Variant.from_dict(v) for p, v in (data.get("variants") or {}).items()},
                producer=dict(data.get("producer") or {}),
                directory=directory,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model sidecar{where} is missing or has an invalid field: {exc!r}") from exc

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "ModelSpec":
        """Load a sidecar from a model directory, a ``model.json`` or a ``model.onnx`` path.

        Raises:
            ModelError: the file is missing, is not JSON, or is not a valid sidecar.
        """
        p = Path(path)
        if p.is_dir():
            p = p / SIDECAR_NAME
        elif p.suffix == ".onnx":
            p = p.parent / SIDECAR_NAME
        if not p.is_file():
            raise ModelError(
                f"no model sidecar at {p}. A model directory holds model.onnx and model.json, "
                f"as written by `eipl-trt export`."
            )
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"cannot read model sidecar {p}: {exc}. Re-export the model.") from exc
        if not isinstance(data, dict):
            raise ModelError(f"model sidecar {p} does not hold a JSON object; re-export the model")
        return cls.from_dict(data, directory=p.parent.resolve())

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``directory/model.json`` atomically and return its path."""
        path = Path(directory) / SIDECAR_NAME
        write_json_atomic(path, self.to_dict())
        return path

    def with_variant(
        self,
        precision: str,
        file: str,
        sha256: str,
        *,
        opset: int | None = None,
        min_tensorrt: str | None = None,
        recipe: Mapping[str, Any] | None = None,
    ) -> "ModelSpec":
        """A copy of this spec with one precision variant added or replaced (see :class:`Variant`)."""
        variants = dict(self.variants)
        variants[precision] = Variant(file, sha256, opset, min_tensorrt, dict(recipe or {}))
        return dataclasses.replace(self, variants=variants)

    def verify_variant(self, precision: str) -> Path:
        """Return the variant's path after checking that it exists and its SHA-256 matches.

        Raises:
            ModelError: the file is missing or was changed after export.
        """
        path = self.variant_path(precision)
        if not path.is_file():
            raise ModelError(f"{path} is listed in model.json but does not exist; re-export the model")
        actual = sha256_file(path)
        if actual != self.variants[precision].sha256:
            raise ModelError(
                f"{path} does not match the sha256 recorded in model.json "
                f"({actual[:12]}... != {self.variants[precision].sha256[:12]}...). The ONNX file was "
                f"replaced or corrupted after export; re-export it so model.json and the model agree."
            )
        return path


def joint_bounds_from_rows(bounds: Sequence[Sequence[float]]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Split EIPL's ``joint_bounds.npy`` layout (2, D): row 0 = min, row 1 = max."""
    if len(bounds) != 2:
        raise ModelError(f"joint bounds must have 2 rows (min, max), got {len(bounds)}")
    return tuple(float(v) for v in bounds[0]), tuple(float(v) for v in bounds[1])
