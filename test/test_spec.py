"""The model.json sidecar: round trip, validation messages, variant hashes, atomic writes."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from eipl_trt.common.atomic import atomic_open, write_json_atomic
from eipl_trt.errors import ModelError
from eipl_trt.spec import ModelSpec, sha256_file


def _spec(**overrides: object) -> ModelSpec:
    fields: dict[str, object] = dict(
        model="sarnn",
        image_height=64,
        image_width=64,
        channel_order="rgb",
        joint_names=("a", "b"),
        joint_min=(-1.0, 0.0),
        joint_max=(1.0, 2.0),
        rate_hz=10.0,
        architecture={"rec_dim": 50, "k_dim": 5, "joint_dim": 2},
        attention={"feature_height": 58, "feature_width": 58, "offset_px": 3.0},
    )
    fields.update(overrides)
    return ModelSpec(**fields)  # type: ignore[arg-type]


def test_round_trip_through_disk(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"not really onnx")
    spec = _spec().with_variant("fp32", "model.onnx", sha256_file(tmp_path / "model.onnx"))
    spec.save(tmp_path)
    loaded = ModelSpec.load(tmp_path)
    assert loaded.to_dict() == spec.to_dict()
    assert loaded.directory == tmp_path.resolve()
    assert ModelSpec.load(tmp_path / "model.onnx").joint_names == ("a", "b")
    assert loaded.verify_variant("fp32") == tmp_path.resolve() / "model.onnx"
    assert loaded.outputs == {
        "image": "o.image", "joint": "o.joint", "enc_pts": "o.enc_pts",
        "dec_pts": "o.dec_pts", "state_h": "o.state_h", "state_c": "o.state_c",
    }
    assert loaded.output_shapes()["enc_pts"] == (1, 10)


def test_cnn_models_have_no_point_outputs() -> None:
    spec = _spec(model="cnnrnn", image_height=128, image_width=128, attention=None,
                 architecture={"rec_dim": 50, "feat_dim": 10, "joint_dim": 2})
    assert not spec.has_points and spec.k_dim == 0
    assert set(spec.outputs) == {"image", "joint", "state_h", "state_c"}


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"model": "caebn"}, "model kind 'caebn'"),
        ({"joint_max": (1.0, 0.0)}, "zero-width or inverted bounds"),
        ({"joint_min": (-1.0,)}, "joint bounds have 1/2 entries"),
        ({"joint_names": ("a", "a")}, "duplicates"),
        ({"rate_hz": 0.0}, "rate_hz"),
        ({"channel_order": "yuv"}, "channel_order"),
        ({"attention": None}, "SARNN needs an 'attention' block"),
        ({"architecture": {"k_dim": 5}}, "rec_dim"),
        ({"vmin": 1.0, "vmax": 0.0}, "vmax > vmin"),
        # non-finite joint bounds (normalization would turn every joint into NaN)
        ({"joint_max": (math.inf, 2.0)}, r"joint 'a' has non-finite bounds \[-1.0, inf\]"),
        ({"joint_min": (-1.0, math.nan)}, r"joint 'b' has non-finite bounds \[nan, 2.0\]"),
        ({"vmin": -math.inf}, r"normalization range \[-inf, 1.0\] must satisfy vmax > vmin"),
        ({"rate_hz": math.nan}, "rate_hz nan must be a positive number"),
        # image size
        ({"image_height": 0}, r"image size 0x64 must be positive"),
        ({"image_width": -64}, r"image size 64x-64 must be positive"),
        # joints
        ({"joint_names": (), "joint_min": (), "joint_max": (), "architecture": {"rec_dim": 50, "k_dim": 5}},
         "joint_names is empty"),
        ({"architecture": {"rec_dim": 50, "k_dim": 5, "joint_dim": 3}}, r"architecture.joint_dim 3 != 2 joint names"),
        ({"architecture": {"rec_dim": 0, "k_dim": 5}}, "architecture.rec_dim is missing or not positive"),
        # tensor roles
        ({"inputs": {"image": "i.image", "joint": "i.joint", "state_h": "i.state_h"}},
         r"tensors.inputs lacks roles \['state_c'\]"),
        ({"outputs": {"image": "o.image", "joint": "o.joint", "state_h": "o.state_h", "state_c": "o.state_c"}},
         r"tensors.outputs has roles \['image', 'joint', 'state_c', 'state_h'\], expected \['dec_pts', 'enc_pts', "
         r"'image', 'joint', 'state_c', 'state_h'\]"),
        ({"model": "cnnrnn", "attention": None, "architecture": {"rec_dim": 50, "joint_dim": 2},
          "outputs": {"image": "o.image", "joint": "o.joint", "enc_pts": "o.enc_pts", "dec_pts": "o.dec_pts",
                      "state_h": "o.state_h", "state_c": "o.state_c"}},
         r"tensors.outputs has roles .*expected \['image', 'joint', 'state_c', 'state_h'\]"),
        # SARNN's attention points
        ({"architecture": {"rec_dim": 50, "joint_dim": 2}}, "SARNN needs architecture.k_dim > 0"),
        ({"architecture": {"rec_dim": 50, "k_dim": 0, "joint_dim": 2}}, "SARNN needs architecture.k_dim > 0"),
    ],
)
def test_validation_names_the_problem(overrides: dict, match: str) -> None:
    with pytest.raises(ModelError, match=match):
        _spec(**overrides)


def test_load_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model sidecar"):
        ModelSpec.load(tmp_path)
    (tmp_path / "model.json").write_text("{ not json")
    with pytest.raises(ModelError, match="Re-export"):
        ModelSpec.load(tmp_path)
    data = _spec().to_dict()
    data["format_version"] = 99
    (tmp_path / "model.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="format_version 99"):
        ModelSpec.load(tmp_path)
    data["format_version"] = 1
    del data["joints"]
    (tmp_path / "model.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="missing or has an invalid field"):
        ModelSpec.load(tmp_path)


def test_variant_checks(tmp_path: Path) -> None:
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"one")
    spec = _spec().with_variant("fp32", "model.onnx", sha256_file(onnx))
    spec.save(tmp_path)
    spec = ModelSpec.load(tmp_path)
    with pytest.raises(ModelError, match="no int8 variant"):
        spec.variant_path("int8")
    onnx.write_bytes(b"two")
    with pytest.raises(ModelError, match="does not match the sha256"):
        spec.verify_variant("fp32")
    onnx.unlink()
    with pytest.raises(ModelError, match="does not exist"):
        spec.verify_variant("fp32")
    with pytest.raises(ModelError, match="plain name"):
        _spec().with_variant("fp32", "../elsewhere.onnx", "0" * 64)


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(target) as handle:
            handle.write('{"v": 2, "half')
            raise RuntimeError("interrupted")
    assert json.loads(target.read_text()) == {"v": 1}
    assert os.listdir(tmp_path) == ["report.json"]
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask  # like open(), not mkstemp's 0600


def test_variant_metadata_round_trips(tmp_path: Path) -> None:
    onnx = tmp_path / "model.fp16.onnx"
    onnx.write_bytes(b"half")
    recipe = {"tool": "eipl_trt.precision", "fp32_nodes": ["/pos_encoder/Softmax"]}
    spec = _spec().with_variant("fp16", onnx.name, sha256_file(onnx), opset=17, min_tensorrt="8.6", recipe=recipe)
    spec.save(tmp_path)
    raw = json.loads((tmp_path / "model.json").read_text())["variants"]["fp16"]
    assert raw == {"file": "model.fp16.onnx", "sha256": sha256_file(onnx), "opset": 17,
                   "min_tensorrt": "8.6", "recipe": recipe}
    loaded = ModelSpec.load(tmp_path).variants["fp16"]
    assert (loaded.opset, loaded.min_tensorrt, dict(loaded.recipe)) == (17, "8.6", recipe)
    # a sidecar written before these fields existed still loads, and saves back unchanged
    plain = _spec().with_variant("fp32", "model.onnx", "0" * 64).to_dict()["variants"]["fp32"]
    assert plain == {"file": "model.onnx", "sha256": "0" * 64}
