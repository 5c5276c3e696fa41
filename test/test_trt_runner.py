"""TrtRunner against the strict TensorRT/CUDA stand-ins (no GPU here): parity with ONNX Runtime,
state hand-over, CUDA graphs and their fallback, and the errors a user sees without a GPU or TensorRT.

The stand-ins run the same ONNX with ONNX Runtime, so a correct runner matches OrtRunner to
float rounding; a runner that reads outputs before the sync, swaps state addresses under a
captured graph, or misaligns buffers does not (see test_trt_standins.py for those checks).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys

import numpy as np
import pytest

from eipl_trt.errors import BackendUnavailableError, EipltrtError, ModelError
from eipl_trt.paths import resolve_model
from eipl_trt.predictor import Predictor
from eipl_trt.runners import available_precisions, create_runner, resolve_backend, tensorrt_unavailable_reason
from eipl_trt.runners.base import RecurrentState
from eipl_trt.runners.onnxrt import OrtRunner
from eipl_trt.runners.tensorrt import TrtRunner
from eipl_trt.spec import ModelSpec, sha256_file
from standins.fake_cuda import FakeGpu
from standins.install import install
from trt_helpers import VERSIONS, episode, fp16_io_variant, max_abs_diff, rollout

#: steps per parity run (state fed back; 25 swaps of each state parity and of both captured graphs)
STEPS = {"sarnn": 50, "cnnrnn": 50, "cnnrnnln": 50}
_REFERENCE: dict[tuple[str, str], tuple[list, list, RecurrentState]] = {}


def PlainOrt(spec, precision: str = "fp32") -> OrtRunner:  # noqa: ANN001, N802 - reads like the class
    """ONNX Runtime on the exported graph as it is: the stand-ins run that graph, as TensorRT builds it."""
    return OrtRunner(spec, precision, graph_rewrites=False)


def _reference(model: str, precision: str = "fp32"):  # noqa: ANN202
    key = (model, precision)
    if key not in _REFERENCE:
        spec = resolve_model(model)
        inputs = episode(spec, STEPS[model], seed=1)
        with PlainOrt(spec, precision) as ort:
            outs = rollout(ort, inputs)
            _REFERENCE[key] = (inputs, outs, ort.get_state())
    return _REFERENCE[key]


@pytest.mark.parametrize("graphs", [True, False], ids=["graphs", "no-graphs"])
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("model", ["sarnn", "cnnrnn", "cnnrnnln"])
def test_parity_with_onnxruntime(model, version, graphs, monkeypatch, tmp_path):
    trt, gpu = install(monkeypatch, version)
    spec = resolve_model(model)
    inputs, expected, state = _reference(model)
    with TrtRunner(spec, "fp32", cuda_graphs=graphs, cache_dir=tmp_path) as runner:
        assert runner.graph_status.startswith("on" if graphs else "off (disabled)")
        got = rollout(runner, inputs)
        final = runner.get_state()
        assert set(runner.last_timings) >= {"h2d", "compute", "d2h", "total"}
    diff = max_abs_diff(got, expected)
    print(f"parity {model} TensorRT {version} graphs={graphs}: {len(inputs)} steps, max |trt - ort| = {diff:.3g}")
    assert diff <= 1e-5
    np.testing.assert_allclose(final.h, state.h, atol=1e-5)
    np.testing.assert_allclose(final.c, state.c, atol=1e-5)


def test_one_graph_for_both_parities_is_caught(monkeypatch, tmp_path):
    """The stand-in replays baked-in addresses: launching parity 0's graph every step is wrong."""
    install(monkeypatch, "10.3.0")
    spec = resolve_model("sarnn")
    inputs, expected, _ = _reference("sarnn")
    with TrtRunner(spec, cache_dir=tmp_path) as runner:
        graphs = runner._graphs
        runner._graphs = [graphs[0], graphs[0]]
        got = rollout(runner, inputs[:6])
        runner._graphs = graphs  # close() destroys each graph once (the stand-in refuses a second destroy)
    assert max_abs_diff(got, expected[:6]) > 1e-3


@pytest.mark.parametrize("version", ["8.6.1", "11.4.0.106"])
def test_state_round_trip_and_reset(version, monkeypatch, tmp_path):
    install(monkeypatch, version)
    spec = resolve_model("sarnn")
    inputs, expected, _ = _reference("sarnn")
    with TrtRunner(spec, cache_dir=tmp_path) as runner:
        rollout(runner, inputs[:7])
        mid = runner.get_state()
        assert mid.h.dtype == np.float32 and mid.h.shape == (1, spec.rec_dim) and np.any(mid.h != 0)
        runner.reset_state()
        assert not np.any(runner.get_state().h)
        runner.set_state(mid)
        np.testing.assert_array_equal(runner.get_state().h, mid.h)
        rest = rollout(runner, inputs[7:15])
    assert max_abs_diff(rest, expected[7:15]) <= 1e-5
    with pytest.raises(EipltrtError, match=r"tensorrt/fp32 runner is not open; call open\(\) first"):
        runner.get_state()


def test_precision_switch_mid_episode_keeps_state(monkeypatch, tmp_path):
    """TensorRT fp32 -> ONNX Runtime int8 -> TensorRT fp32, against the same switches on ONNX Runtime only."""
    install(monkeypatch, "10.13.0.35")
    spec = resolve_model("sarnn")
    inputs = episode(spec, 24, seed=3)
    frames = [(np.ascontiguousarray((img[0].transpose(1, 2, 0) * 255).astype(np.uint8)), j[0]) for img, j in inputs]

    def run(first, second, third):  # noqa: ANN001, ANN202
        predictor = Predictor(first)
        out = []
        for i, (frame, joint) in enumerate(frames):
            if i == 8:
                predictor.swap_runner(second).close()
            if i == 16:
                predictor.swap_runner(third).close()
            out.append(predictor.step(frame, spec.joint_min + (np.array(spec.joint_max) - spec.joint_min) * joint,
                                      encoding="rgb8").joints.copy())
        predictor.close()
        return np.array(out)

    got = run(TrtRunner(spec, cache_dir=tmp_path), PlainOrt(spec, "int8"), TrtRunner(spec, cache_dir=tmp_path))
    want = run(PlainOrt(spec), PlainOrt(spec, "int8"), PlainOrt(spec))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_capture_refused_falls_back_to_plain_enqueue(monkeypatch, tmp_path, caplog):
    install(monkeypatch, "10.3.0", FakeGpu(refuse_capture=True))
    spec = resolve_model("cnnrnn")
    inputs, expected, _ = _reference("cnnrnn")
    with caplog.at_level(logging.WARNING), TrtRunner(spec, cache_dir=tmp_path) as runner:
        assert runner.graph_status.startswith("off (capture refused")
        assert "cudaErrorStreamCaptureInvalidated" in runner.graph_status
        got = rollout(runner, inputs[:10])
    assert max_abs_diff(got, expected[:10]) <= 1e-5
    assert sum("capture refused" in r.getMessage() for r in caplog.records) == 1


def _symmetric_qdq(path) -> bool:  # noqa: ANN001
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    zero_points = [inits.get(n.input[2]) for n in graph.node
                   if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2 and n.input[2]]
    return all(z is not None and z.dtype == np.int8 and not np.any(z) for z in zero_points)


@pytest.mark.parametrize("version", ["8.6.1", "11.4.0.106"])  # builder flags vs strongly typed
@pytest.mark.parametrize("precision", ["int8", "fp16"])
@pytest.mark.parametrize("model", ["sarnn", "cnnrnn", "cnnrnnln"])
def test_low_precision_variants(model, precision, version, monkeypatch, tmp_path):
    """The bundled symmetric Q/DQ int8 and fp16 variants build (INT8/FP16 flags on 8.6, strongly typed on 11) and
    match ONNX Runtime on the same file."""
    install(monkeypatch, version)
    spec = resolve_model(model)
    assert precision in spec.variants, f"the bundled {model} lost its {precision} variant"
    path = spec.variant_path(precision)
    if precision == "int8":  # what TensorRT's parser refuses is test_parser_refusal_names_the_reason's
        assert _symmetric_qdq(path), f"the bundled {path} has zero points TensorRT refuses; re-quantize it"
    inputs = episode(spec, 20, seed=2)
    with PlainOrt(spec, precision) as ort, TrtRunner(spec, precision, cache_dir=tmp_path) as trt:
        diff = max_abs_diff(rollout(trt, inputs), rollout(ort, inputs))
    print(f"parity {model} {precision} TensorRT {version}: max |trt - ort| = {diff:.3g}")
    assert diff <= 1e-3


def _variant_copy(tmp_path, model: str, precision: str, edit) -> ModelSpec:  # noqa: ANN001
    """A copy of a bundled model whose ``precision`` variant is the bundled one changed by ``edit(onnx model)``."""
    import shutil

    import onnx

    src = resolve_model(model)
    out = tmp_path / f"{model}_{precision}_edited"
    shutil.copytree(src.directory, out)
    proto = onnx.load(str(src.variant_path(precision)))
    edit(proto)
    name = src.variants[precision].file
    onnx.save(proto, str(out / name))
    spec = ModelSpec.load(out)
    spec.with_variant(precision, name, sha256_file(out / name)).save(out)
    return ModelSpec.load(out)


def _zero_point(value: np.ndarray):  # noqa: ANN202
    def edit(proto) -> None:  # noqa: ANN001
        from onnx import numpy_helper

        graph = proto.graph
        node = next(n for n in graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2])
        init = next(i for i in graph.initializer if i.name == node.input[2])
        init.CopyFrom(numpy_helper.from_array(value.reshape(numpy_helper.to_array(init).shape), init.name))
    return edit


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("zero_point,reason", [
    (np.array(3, np.int8), r"TensorRT only supports symmetric quantization; the zero point must be 0"),
    (np.array(128, np.uint8), r"TensorRT supports only INT8 quantization \(zero point type uint8\)"),
], ids=["asymmetric-int8", "uint8"])
def test_parser_refusal_names_the_reason(version, zero_point, reason, monkeypatch, tmp_path):
    """An int8 file with a non-zero or uint8 zero point (ONNX Runtime's own asymmetric quantization): TensorRT's
    parser refuses it, and the error names the file, the parser's reason and what to do."""
    install(monkeypatch, version)
    spec = _variant_copy(tmp_path, "sarnn", "int8", _zero_point(zero_point))
    with pytest.raises(ModelError, match=rf"TensorRT's ONNX parser rejects .*model\.int8\.onnx: .*{reason}.*"
                                         rf"Re-create this variant for TensorRT"):
        TrtRunner(spec, "int8", cache_dir=tmp_path / "engines").open()


def _rename_output(old: str, new: str):  # noqa: ANN202
    def edit(proto) -> None:  # noqa: ANN001
        graph = proto.graph
        for value in graph.output:
            if value.name == old:
                value.name = new
        for node in graph.node:
            node.output[:] = [new if o == old else o for o in node.output]
    return edit


@pytest.mark.parametrize("version", ["8.6.1", "11.4.0.106"])
def test_engine_io_that_disagrees_with_model_json_is_refused(version, monkeypatch, tmp_path):
    """The engine is built from the ONNX file; model.json names its tensors. When they disagree (a file
    exported with other names, or a sidecar edited for another robot), open() says which tensors differ."""
    install(monkeypatch, version)
    renamed = _variant_copy(tmp_path, "sarnn", "fp32", _rename_output("o.joint", "o.joint_pred"))
    with pytest.raises(ModelError, match=r"the fp32 engine does not match model.json: tensor 'o.joint' missing; "
                                         r"unexpected tensors \['o.joint_pred'\]\. Re-export the model"):
        TrtRunner(renamed, cache_dir=tmp_path / "engines").open()
    other = tmp_path / "six_joints"
    shutil.copytree(resolve_model("sarnn").directory, other)
    data = json.loads((other / "model.json").read_text())
    for key in ("names", "min", "max"):
        data["joints"][key] = data["joints"][key][:6]
    data["architecture"]["joint_dim"] = 6
    (other / "model.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"tensor 'i.joint' has shape \(1, 7\), model.json implies \(1, 6\)"):
        TrtRunner(ModelSpec.load(other), cache_dir=tmp_path / "engines").open()


def _refuse_state_addresses(trt, monkeypatch, spec) -> None:  # noqa: ANN001
    """The stand-in's set_tensor_address returns False (as TensorRT does on refusal) for the LSTM state inputs."""
    cls = trt.FAKE_CONTEXT.classes["IExecutionContext"]
    real = cls.set_tensor_address
    refused = {spec.inputs["state_h"], spec.inputs["state_c"]}
    monkeypatch.setattr(cls, "set_tensor_address", lambda self, name, memory: False if name in refused
                        else real(self, name, memory))


def test_refused_state_address_stops_the_step(monkeypatch, tmp_path):
    """TensorRT's set_tensor_address returns False on refusal; the runner must not enqueue on the old bindings."""
    trt, _ = install(monkeypatch, "10.3.0")
    spec = resolve_model("sarnn")
    (im1, j1), (im2, j2) = episode(spec, 2)
    with TrtRunner(spec, cache_dir=tmp_path, cuda_graphs=False) as runner:
        runner.infer(im1, j1)
        _refuse_state_addresses(trt, monkeypatch, spec)
        enqueues = runner.context._enqueues
        with pytest.raises(EipltrtError, match=r"TensorRT refused the address 0x[0-9a-f]+ of i.state_h for "
                                               r"tensorrt/fp32 .*Not stepping: the engine would read and write the "
                                               r"previous step's state buffers"):
            runner.infer(im2, j2)
        assert runner.context._enqueues == enqueues  # nothing ran on the previous step's buffers


def test_refused_state_address_during_capture_turns_graphs_off(monkeypatch, tmp_path, caplog):
    trt, _ = install(monkeypatch, "10.3.0")
    spec = resolve_model("sarnn")
    _refuse_state_addresses(trt, monkeypatch, spec)
    with caplog.at_level(logging.WARNING), TrtRunner(spec, cache_dir=tmp_path) as runner:
        assert runner.graph_status.startswith("off (capture refused: TensorRT refused the address")
        with pytest.raises(EipltrtError, match="TensorRT refused the address .* of i.state_h"):
            runner.infer(*episode(spec, 1)[0])


def test_min_tensorrt_is_enforced(monkeypatch, tmp_path):
    install(monkeypatch, "8.6.1")
    spec = resolve_model("sarnn")
    fp32 = spec.variants["fp32"]
    newer = spec.with_variant("fp32", fp32.file, fp32.sha256, min_tensorrt="10.0")
    assert available_precisions(newer, "tensorrt") == [p for p in available_precisions(spec, "tensorrt") if p != "fp32"]
    with pytest.raises(BackendUnavailableError, match=r"needs TensorRT >= 10.0, this is TensorRT 8.6.1"):
        TrtRunner(newer, cache_dir=tmp_path).open()
    with pytest.raises(BackendUnavailableError, match="needs TensorRT >= 10.0"):
        create_runner(newer, "tensorrt", "fp32")


def test_no_tensorrt(monkeypatch):
    install(monkeypatch, None)
    why = tensorrt_unavailable_reason()
    assert "tensorrt Python package cannot be imported" in why
    assert resolve_backend("auto") == "onnxruntime"
    with pytest.raises(BackendUnavailableError, match="TensorRT backend unavailable: the tensorrt Python package"):
        create_runner(resolve_model("sarnn"), "tensorrt")


def test_no_driver_names_the_cuda_error(monkeypatch, tmp_path):
    install(monkeypatch, "10.3.0", FakeGpu(driver_error="cudaErrorInsufficientDriver"))
    assert "cudaErrorInsufficientDriver" in tensorrt_unavailable_reason()
    assert resolve_backend("auto") == "onnxruntime"
    with pytest.raises(BackendUnavailableError, match="cudaErrorInsufficientDriver"):
        TrtRunner(resolve_model("sarnn"), cache_dir=tmp_path).open()


def test_real_cuda_python_without_gpu(monkeypatch, tmp_path):
    """This machine's real cuda-python, with the TensorRT stand-in: the error names what CUDA said."""
    real = pytest.importorskip("cuda.bindings.runtime")
    if real.cudaGetDeviceCount()[0] == real.cudaError_t.cudaSuccess:
        pytest.skip("a GPU is present; this checks the no-GPU error")
    install(monkeypatch, "10.3.0")
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", real)
    with pytest.raises(BackendUnavailableError, match=r"cudaGetDeviceCount failed: cudaError"):
        TrtRunner(resolve_model("sarnn"), cache_dir=tmp_path).open()


def test_auto_picks_tensorrt_when_usable(monkeypatch, tmp_path):
    install(monkeypatch, "11.4.0.106")
    assert tensorrt_unavailable_reason() == ""
    assert resolve_backend("auto") == "tensorrt"
    runner = create_runner(resolve_model("sarnn"), "auto", "fp32", cache_dir=tmp_path, cuda_graphs=False)
    assert isinstance(runner, TrtRunner)
    with runner:
        diag = runner.diagnostics()
    assert diag["tensorrt"] == "11.4.0.106" and diag["engine"].startswith("built") and diag["cuda_graphs"].startswith("off")
    assert diag["image_decoder"] == "every step"  # TensorRT engines always compute the image


def test_node_precision_switcher_builds_off_the_control_path(monkeypatch, tmp_path):
    """The node's PrecisionSwitcher builds TensorRT engines in its worker thread while the old runner steps;
    a refused precision reports its reason and leaves the old runner in place."""
    from eipl_trt.ros.switcher import PrecisionSwitcher

    install(monkeypatch, "10.3.0")
    spec = resolve_model("sarnn")
    inputs = episode(spec, 10, seed=6)
    predictor_runner = PlainOrt(spec).open()
    errors: list[tuple[str, BaseException]] = []
    installed: list[str] = []
    handed: list[RecurrentState] = []

    def install_runner(runner):  # noqa: ANN001, ANN202
        nonlocal predictor_runner
        state = predictor_runner.get_state()
        runner.set_state(state)
        handed.append(state)
        predictor_runner.close()
        predictor_runner = runner
        installed.append(runner.name)

    fp32 = spec.variants["fp32"]
    future = spec.with_variant("fp16", fp32.file, fp32.sha256, min_tensorrt="99.0")  # refused here, always
    switcher = PrecisionSwitcher(lambda p: create_runner(future, "tensorrt", p, cache_dir=tmp_path),
                                 install_runner, lambda p, e: errors.append((p, e)))
    rollout(predictor_runner, inputs[:5])
    switcher.request("fp16")
    assert switcher.wait_idle(60)
    assert installed == [] and len(errors) == 1 and "needs TensorRT >= 99.0" in str(errors[0][1])
    switcher.request("fp32")
    assert switcher.wait_idle(60)
    switcher.close()
    assert installed == ["tensorrt/fp32"]
    np.testing.assert_array_equal(predictor_runner.get_state().h, handed[0].h)
    rollout(predictor_runner, inputs[5:])
    predictor_runner.close()


@pytest.mark.parametrize("graphs", [True, False])
def test_fp16_io_engine(graphs, monkeypatch, tmp_path):
    """An engine whose I/O tensors are float16: pinned buffers, device state and outputs follow the engine's dtypes."""
    install(monkeypatch, "10.3.0")
    spec = fp16_io_variant(tmp_path)
    inputs, expected, state = _reference("sarnn")
    with TrtRunner(spec, "fp16", cache_dir=tmp_path / "cache", cuda_graphs=graphs) as runner:
        assert runner._host["image"].view.dtype == np.float16 and runner._host["state_h"].view.dtype == np.float16
        got = rollout(runner, inputs)
        final = runner.get_state()
    assert all(v.dtype == np.float32 for v in got[0].values()) and final.h.dtype == np.float32
    diff = max_abs_diff(got, expected)
    print(f"fp16-I/O SARNN vs ONNX Runtime fp32 over {len(inputs)} steps: max |diff| = {diff:.3g}")
    assert 0 < diff <= 0.1  # fp16 rounding of inputs and of the state fed back for 50 steps


def test_graphs_off_by_environment(monkeypatch, tmp_path):
    install(monkeypatch, "10.3.0")
    monkeypatch.setenv("EIPL_TRT_CUDA_GRAPHS", "0")
    with TrtRunner(resolve_model("sarnn"), cache_dir=tmp_path) as runner:
        assert runner.graph_status == "off (disabled)"
    monkeypatch.setenv("EIPL_TRT_CUDA_GRAPHS", "1")
    with TrtRunner(resolve_model("sarnn"), cache_dir=tmp_path) as runner:
        assert runner.graph_status.startswith("on")
