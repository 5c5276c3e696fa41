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
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from eipl_trt.atomic import write_json_atomic
from eipl_trt.errors import ModelError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MODEL_KINDS",
    "PRECISIONS",
    "INPUT_NAMES",
    "OUTPUT_NAMES",
    "ModelSpec",
    "Variant",
    "VARIANT_FILES",
    "sha256_file",
    "joint_bounds_from_rows",
]

FORMAT = "eipl_trt.model"
FORMAT_VERSION = 1
SIDECAR_NAME = "model.json"

MODEL_KINDS = ("sarnn", "cnnrnn", "cnnrnnln")
PRECISIONS = ("fp32", "fp16", "int8")
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
        """Check internal consistency; raise :class:`ModelError` naming the first problem."""

        def fail(msg: str) -> None:
            where = f" in {self.directory / SIDECAR_NAME}" if self.directory else ""
            raise ModelError(f"invalid model sidecar{where}: {msg}")

        if self.model not in MODEL_KINDS:
            fail(f"model kind {self.model!r} is not one of {', '.join(MODEL_KINDS)}")
        if self.image_height <= 0 or self.image_width <= 0:
            fail(f"image size {self.image_height}x{self.image_width} must be positive")
        if self.channel_order not in CHANNEL_ORDERS:
            fail(f"channel_order {self.channel_order!r} must be 'rgb' or 'bgr'")
        n = len(self.joint_names)
        if n == 0:
            fail("joint_names is empty")
        if len(set(self.joint_names)) != n:
            fail(f"joint_names has duplicates: {list(self.joint_names)}")
        if len(self.joint_min) != n or len(self.joint_max) != n:
            fail(f"joint bounds have {len(self.joint_min)}/{len(self.joint_max)} entries for {n} joints")
        for name, lo, hi in zip(self.joint_names, self.joint_min, self.joint_max):
            if not (math.isfinite(lo) and math.isfinite(hi)):
                fail(f"joint {name!r} has non-finite bounds [{lo}, {hi}]")
            if not hi > lo:
                fail(
                    f"joint {name!r} has zero-width or inverted bounds [{lo}, {hi}]; min-max "
                    f"normalization would divide by zero. Widen the bounds in joint_bounds.npy "
                    f"(e.g. min-0.01, max+0.01 for a joint that never moved)"
                )
        if not (math.isfinite(self.vmin) and math.isfinite(self.vmax) and self.vmax > self.vmin):
            fail(f"normalization range [{self.vmin}, {self.vmax}] must satisfy vmax > vmin")
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            fail(f"rate_hz {self.rate_hz} must be a positive number")
        if "rec_dim" not in self.architecture or int(self.architecture["rec_dim"]) <= 0:
            fail("architecture.rec_dim is missing or not positive")
        if int(self.architecture.get("joint_dim", n)) != n:
            fail(f"architecture.joint_dim {self.architecture['joint_dim']} != {n} joint names")
        missing_in = set(INPUT_NAMES) - set(self.inputs)
        if missing_in:
            fail(f"tensors.inputs lacks roles {sorted(missing_in)}")
        expected_out = set(OUTPUT_ROLES[self.model])
        if set(self.outputs) != expected_out:
            fail(f"tensors.outputs has roles {sorted(self.outputs)}, expected {sorted(expected_out)}")
        if self.model == "sarnn":
            if int(self.architecture.get("k_dim", 0)) <= 0:
                fail("SARNN needs architecture.k_dim > 0")
            if self.attention is None:
                fail("SARNN needs an 'attention' block (feature_height, feature_width, offset_px)")
        for precision, variant in self.variants.items():
            if precision not in PRECISIONS:
                fail(f"variant {precision!r} is not one of {', '.join(PRECISIONS)}")
            if not variant.file or os.path.isabs(variant.file) or ".." in Path(variant.file).parts:
                fail(f"variant {precision} file {variant.file!r} must be a plain name beside model.json")

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
