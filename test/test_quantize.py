"""INT8 ONNX Runtime variants: written, registered in model.json, runnable, close to FP32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eipl_trt.bench import synthetic_inputs
from eipl_trt.errors import InputError
from eipl_trt.predictor import Predictor
from eipl_trt.quantize import quantize_int8, record_calibration_feeds
from eipl_trt.runners import available_precisions
from eipl_trt.spec import ModelSpec

onnx = pytest.importorskip("onnx")
models_testing = pytest.importorskip("eipl_trt.models.testing")


def _episodes(spec: ModelSpec, n: int = 2, steps: int = 12):
    for e in range(n):
        pairs = synthetic_inputs(spec, steps, seed=e)
        yield [p[0] for p in pairs], [p[1] for p in pairs], "rgb8"


def _run(predictor: Predictor, spec: ModelSpec) -> np.ndarray:
    predictor.reset_state()
    return np.stack([predictor.step(f, q, want_image=False).joints_normalized for f, q in synthetic_inputs(spec, 15, seed=9)])


@pytest.mark.parametrize("kind", ["sarnn", "cnnrnnln"])
def test_int8_variant_quantizes_only_convolutions(tmp_path: Path, kind: str) -> None:
    spec = models_testing.make_test_model(kind, tmp_path, seed=2)
    feeds = record_calibration_feeds(spec, _episodes(spec))
    assert len(feeds) == 24
    assert not feeds[0]["i.state_h"].any() and feeds[1]["i.state_h"].any()  # real recurrent states recorded
    updated = quantize_int8(spec, feeds, method="minmax")
    assert available_precisions(updated, "onnxruntime") == ["fp32", "int8"]
    updated.verify_variant("int8")
    graph = onnx.load(str(updated.variant_path("int8"))).graph
    producers = {o: n for n in graph.node for o in n.output}
    dequantized_into = set()
    for node in graph.node:
        for name in node.input:
            src = producers.get(name)
            if src is not None and src.op_type == "DequantizeLinear":
                dequantized_into.add(node.op_type)
    assert dequantized_into and dequantized_into <= {"Conv", "ConvTranspose"}
    for node in graph.node:  # SARNN's attention logits come from an FP32 convolution
        if "pos_encoder.4" in node.name:
            assert all(producers.get(i) is None or producers[i].op_type != "DequantizeLinear" for i in node.input)
    fp32 = _run(Predictor.from_model(updated, precision="fp32"), updated)
    int8 = _run(Predictor.from_model(updated, precision="int8"), updated)
    assert np.abs(int8 - fp32).max() < 0.05  # normalized joint units; random weights
    assert not np.array_equal(int8, fp32)


def test_quantization_needs_data(tmp_path: Path) -> None:
    spec = models_testing.make_test_model("cnnrnn", tmp_path, seed=2)
    with pytest.raises(InputError, match="needs calibration data"):
        quantize_int8(spec, [])
    with pytest.raises(InputError, match="unknown calibration method"):
        quantize_int8(spec, [{}], method="kl")
    with pytest.raises(InputError, match="episodes are empty"):
        record_calibration_feeds(spec, [([], [], "rgb8")])
    assert not (tmp_path / "model.int8.onnx").exists()


def test_cli_quantizes_from_a_dataset_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from eipl_trt.cli import main as cli_main

    spec = models_testing.make_test_model("cnnrnn", tmp_path / "m", seed=2, joint_dim=3)
    data = tmp_path / "data" / "train"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.save(data / "images.npy", rng.integers(0, 256, (2, 6, 128, 128, 3), dtype=np.uint8))
    np.save(data / "joints.npy", rng.uniform(-0.5, 0.5, (2, 6, 3)).astype(np.float32))
    np.save(tmp_path / "data" / "joint_bounds.npy", np.array([[-1.0] * 3, [1.0] * 3], np.float32))
    code = cli_main(["quantize", "--model", str(spec.directory), "--calibration", str(tmp_path / "data"),
                     "--method", "minmax"])
    assert code == 0
    assert "from 12 calibration steps" in capsys.readouterr().out
    assert available_precisions(ModelSpec.load(spec.directory), "onnxruntime") == ["fp32", "int8"]
