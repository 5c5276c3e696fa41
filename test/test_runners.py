"""Runner factory and the ONNX Runtime runner's checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from eipl_trt.errors import BackendUnavailableError, EipltrtError, InputError, ModelError
from eipl_trt.runners import RecurrentState, available_precisions, create_runner, resolve_backend
from eipl_trt.spec import ModelSpec, sha256_file

models_testing = pytest.importorskip("eipl_trt.models.testing")


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    return models_testing.make_test_model("cnnrnn", tmp_path_factory.mktemp("m"), seed=1)


def _copy(spec: ModelSpec, dest: Path) -> Path:
    shutil.copytree(spec.directory, dest)
    return dest


def test_backend_resolution_here() -> None:
    assert resolve_backend("auto") == "onnxruntime"
    with pytest.raises(BackendUnavailableError, match="TensorRT backend unavailable.*onnxruntime"):
        resolve_backend("tensorrt")
    with pytest.raises(BackendUnavailableError, match="unknown backend 'cuda'"):
        resolve_backend("cuda")


def test_precisions_follow_the_variants_on_disk(spec: ModelSpec, tmp_path: Path) -> None:
    assert available_precisions(spec, "onnxruntime") == ["fp32"]
    with pytest.raises(BackendUnavailableError, match=r"precision int8 is not available.*available: fp32"):
        create_runner(spec, "onnxruntime", "int8")
    with pytest.raises(BackendUnavailableError, match="unknown precision 'fp8'"):
        create_runner(spec, "onnxruntime", "fp8")
    with pytest.raises(BackendUnavailableError, match="bf16 is not available .*no bf16 path.*use backend openvino"):
        create_runner(spec, "onnxruntime", "bf16")  # bf16 is a precision of its own, not ONNX Runtime's
    d = _copy(spec, tmp_path / "m")
    shutil.copy(d / "model.onnx", d / "model.int8.onnx")
    ModelSpec.load(d).with_variant("int8", "model.int8.onnx", sha256_file(d / "model.int8.onnx")).save(d)
    assert available_precisions(ModelSpec.load(d), "onnxruntime") == ["fp32", "int8"]


def test_runner_lifecycle_and_state(spec: ModelSpec) -> None:
    runner = create_runner(spec, "onnxruntime")
    with pytest.raises(EipltrtError, match="not open"):
        runner.get_state()
    with runner:
        shapes = spec.input_shapes()
        image, joint = np.full(shapes["image"], 0.5, np.float32), np.full(shapes["joint"], 0.5, np.float32)
        first = {k: v.copy() for k, v in runner.infer(image, joint).items()}
        assert set(first) == {"image", "joint"} and first["joint"].shape == (1, spec.joint_dim)
        assert runner.get_state().h.any()
        runner.reset_state()
        np.testing.assert_array_equal(runner.infer(image, joint)["joint"], first["joint"])
        saved = runner.get_state()
        runner.infer(image, joint)
        runner.set_state(saved)
        assert np.array_equal(runner.get_state().c, saved.c)
        with pytest.raises(InputError, match="must be float32"):
            runner.infer(image.astype(np.float64), joint)
        with pytest.raises(InputError, match="has 3 values"):
            runner.set_state(RecurrentState(np.zeros(3), np.zeros(3)))
        with pytest.raises(InputError, match="NaN"):
            runner.set_state(RecurrentState(np.full((1, 50), np.nan), np.zeros((1, 50))))
    assert not runner.is_open


def test_sidecar_that_disagrees_with_the_graph_is_refused(spec: ModelSpec, tmp_path: Path) -> None:
    d = _copy(spec, tmp_path / "m")
    data = json.loads((d / "model.json").read_text())
    data["joints"]["names"] = data["joints"]["names"][:7]
    data["joints"]["min"], data["joints"]["max"] = data["joints"]["min"][:7], data["joints"]["max"][:7]
    data["architecture"]["joint_dim"] = 7
    (d / "model.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"does not match model.json.*i.joint"):
        create_runner(ModelSpec.load(d), "onnxruntime").open()


def test_corrupt_onnx_is_reported(spec: ModelSpec, tmp_path: Path) -> None:
    d = _copy(spec, tmp_path / "m")
    (d / "model.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(ModelError, match="does not match the sha256"):
        create_runner(ModelSpec.load(d), "onnxruntime").open()
    ModelSpec.load(d).with_variant("fp32", "model.onnx", sha256_file(d / "model.onnx")).save(d)
    with pytest.raises(ModelError, match="ONNX Runtime cannot load"):
        create_runner(ModelSpec.load(d), "onnxruntime").open()
