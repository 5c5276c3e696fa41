"""OpenVINO runner (real OpenVINO CPU plugin) vs ONNX Runtime, ONNX Runtime I/O binding, and ``auto``'s CPU choice."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from eipl_trt.errors import BackendUnavailableError, InputError, ModelError
from eipl_trt.paths import bundled_models, resolve_model
from eipl_trt.runners import RecurrentState, available_precisions, create_runner
from eipl_trt.runners.onnxrt import OrtRunner
from eipl_trt.spec import ModelSpec, sha256_file

ov = pytest.importorskip("openvino")
from eipl_trt.runners import openvino as ov_runner  # noqa: E402
from eipl_trt.runners.openvino.capabilities import CAPABILITIES_ENV  # noqa: E402

BUNDLED = sorted(bundled_models())


def _inputs(spec: ModelSpec, n: int, seed: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    shapes = spec.input_shapes()
    return [(rng.uniform(spec.vmin, spec.vmax, shapes["image"]).astype(np.float32),
             rng.uniform(spec.vmin, spec.vmax, shapes["joint"]).astype(np.float32)) for _ in range(n)]


def _run(runner, inputs):  # noqa: ANN001, ANN202
    return [{k: v.copy() for k, v in runner.infer(i, j).items()} for i, j in inputs]


#: SARNN's spatial softmax runs at temperature 1e-4: it multiplies the last bits in which two fp32
#: convolution libraries differ by 1e4, so attention points agree to ~3e-4 (sarnn8) of the feature map's
#: width (0.02 px), while joints, images and state stay within 2e-4. 1e-3 is 0.06 px.
POINT_ATOL = 1e-3


@pytest.mark.parametrize("model", BUNDLED)
def test_openvino_fp32_matches_onnxruntime_over_50_fed_back_steps(model: str) -> None:
    spec = resolve_model(model)
    inputs = _inputs(spec, 50)
    with create_runner(spec, "onnxruntime") as ref, create_runner(spec, "openvino") as cand:
        assert cand.name == "openvino/fp32" and cand.inference_precision == "f32"
        a, b = _run(ref, inputs), _run(cand, inputs)
        for step, (x, y) in enumerate(zip(a, b)):
            assert set(x) == set(y)
            for role in x:
                np.testing.assert_allclose(y[role], x[role], rtol=0, atol=POINT_ATOL if role.endswith("_pts") else 2e-4,
                                           err_msg=f"{model} step {step} {role}")
        np.testing.assert_allclose(cand.get_state().h, ref.get_state().h, atol=2e-4)
        np.testing.assert_allclose(cand.get_state().c, ref.get_state().c, atol=2e-4)


@pytest.mark.parametrize("model", BUNDLED)
def test_steps_without_the_image_keep_the_state_and_outputs_of_full_steps(model: str) -> None:
    """OpenVINO's image-free model (the node's step while nobody watches the image) carries the same state."""
    spec = resolve_model(model)
    inputs = _inputs(spec, 24, seed=8)
    with ov_runner.OvRunner(spec, skip_image=False) as full, ov_runner.OvRunner(spec) as mixed:
        assert mixed.skips_image and not full.skips_image
        assert mixed.diagnostics() == {"threads": "1", "inference_precision": "f32",
                                       "image_decoder": "run only while the predicted image is wanted"}
        assert full.diagnostics()["image_decoder"] == "every step"
        for t, (image, joint) in enumerate(inputs):
            want = {k: v.copy() for k, v in full.infer(image, joint).items()}
            wanted = t % 3 == 0
            got = dict(mixed.infer(image, joint, want_image=wanted))
            assert ("image" in got) == wanted
            for role in (r for r in want if r != "image" or wanted):
                np.testing.assert_allclose(got[role], want[role], rtol=0, atol=POINT_ATOL if role.endswith("_pts") else 2e-4,
                                           err_msg=f"{model} step {t} {role}")
        np.testing.assert_allclose(mixed.get_state().h, full.get_state().h, atol=2e-4)
        np.testing.assert_allclose(mixed.get_state().c, full.get_state().c, atol=2e-4)


def test_state_handover_reset_and_output_reuse() -> None:
    spec = resolve_model("sarnn")
    inputs = _inputs(spec, 12)
    with create_runner(spec, "openvino") as cand, create_runner(spec, "onnxruntime") as ref:
        _run(cand, inputs[:6])
        ref.set_state(cand.get_state())  # OpenVINO -> ONNX Runtime mid-episode
        np.testing.assert_allclose(_run(cand, inputs[6:])[-1]["joint"], _run(ref, inputs[6:])[-1]["joint"], atol=2e-4)
        cand.set_state(ref.get_state())  # and back
        np.testing.assert_allclose(cand.get_state().h, ref.get_state().h, atol=0)
        cand.reset_state()
        assert not cand.get_state().h.any()
        first = cand.infer(*inputs[0])
        again = cand.infer(*inputs[1])
        assert first is again  # preallocated outputs, reused (the Runner contract says: copy what you keep)
        with pytest.raises(InputError, match="NaN"):
            cand.set_state(RecurrentState(np.full((1, spec.rec_dim), np.nan, np.float32), np.zeros((1, spec.rec_dim), np.float32)))


def test_precisions_and_refusals_follow_this_cpu(tmp_path: Path) -> None:
    """On the host CPU (whatever it is): each precision is offered exactly where its arithmetic exists."""
    spec = resolve_model("sarnn")
    caps = ov_runner.cpu_capabilities()
    have = available_precisions(spec, "openvino")
    assert "fp32" in have
    assert ("bf16" in have) == ("BF16" in caps) and ("fp16" in have) == ("FP16" in caps)
    if "fp16" not in have:
        with pytest.raises(BackendUnavailableError, match="this CPU has no FP16 arithmetic"):
            create_runner(spec, "openvino", "fp16")
    d = tmp_path / "m"
    shutil.copytree(spec.directory, d)
    no_int8 = ModelSpec.load(d)
    for name in ("fp16", "int8"):
        if name in no_int8.variants:
            (d / no_int8.variants[name].file).unlink()
    assert "int8" not in available_precisions(ModelSpec.load(d), "openvino")
    with pytest.raises(BackendUnavailableError, match="no int8 variant beside model.json.*eipl-trt quantize"):
        create_runner(ModelSpec.load(d), "openvino", "int8")


@pytest.mark.parametrize("precision", ["fp32", "int8", "bf16"])
def test_each_precision_compiles_with_the_arithmetic_its_name_says(precision: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The CPU plugin's default on BF16 hardware is bf16: fp32 (and int8's float layers) must read back f32.

    What the plugin compiles is this CPU's as it really is: a faked CPU class is lifted here.
    """
    monkeypatch.delenv(CAPABILITIES_ENV, raising=False)
    spec = resolve_model("sarnn")
    if precision not in available_precisions(spec, "openvino"):
        pytest.skip(f"this CPU has no {precision} on OpenVINO")
    with create_runner(spec, "openvino", precision) as runner:
        hint = runner._request.get_compiled_model().get_property("INFERENCE_PRECISION_HINT")
        assert hint.get_type_name() == {"fp32": "f32", "int8": "f32", "bf16": "bf16"}[precision]
        assert runner.diagnostics()["inference_precision"] == hint.get_type_name()


def test_a_hint_the_plugin_does_not_honour_is_refused() -> None:
    """A plugin that compiles another arithmetic than asked (as the CPU plugin's bf16 default would) is refused."""

    class Compiled:  # what OpenVINO's CompiledModel answers, for a plugin that kept its own default
        def get_property(self, name: str) -> object:
            assert name == "INFERENCE_PRECISION_HINT"
            return ov.Type.bf16

    runner = ov_runner.OvRunner(resolve_model("sarnn"), "fp32")
    runner.inference_precision = "f32"
    with pytest.raises(BackendUnavailableError, match="compiled fp32 with inference precision bf16, not f32"):
        runner._check_precision(Compiled())


def test_int8_variant_runs_and_stays_close_to_fp32() -> None:
    spec = resolve_model("cnnrnn")
    if "int8" not in available_precisions(spec, "openvino"):
        pytest.skip("the bundled cnnrnn has no int8 variant")
    inputs = _inputs(spec, 20)
    with create_runner(spec, "openvino", "int8") as q, create_runner(spec, "onnxruntime", "fp32") as ref:
        a, b = _run(ref, inputs), _run(q, inputs)
    worst = max(float(np.abs(x["joint"] - y["joint"]).max()) for x, y in zip(a, b))
    assert 0 <= worst < 0.1


def test_broken_onnx_is_a_model_error(tmp_path: Path) -> None:
    spec = resolve_model("sarnn")
    d = tmp_path / "m"
    shutil.copytree(spec.directory, d)
    broken = ModelSpec.load(d)
    (d / broken.variants["fp32"].file).write_bytes(b"not an onnx file")
    with pytest.raises(ModelError, match="does not match the sha256 recorded in model.json"):
        create_runner(broken, "openvino").open()
    # with model.json agreeing (the file was exported broken), OpenVINO itself is reached and refuses it
    broken.with_variant("fp32", broken.variants["fp32"].file, sha256_file(d / broken.variants["fp32"].file)).save(d)
    with pytest.raises(ModelError, match=rf"(?s)OpenVINO cannot compile {d / broken.variants['fp32'].file}: "
                                         r".*Unable to read the model.*\. Re-export the model\."):
        create_runner(ModelSpec.load(d), "openvino").open()


@pytest.mark.parametrize("model", BUNDLED)
def test_onnxruntime_io_binding_equals_plain_run(model: str) -> None:
    spec = resolve_model(model)
    inputs = _inputs(spec, 20, seed=5)
    with OrtRunner(spec, io_binding=True) as bound, OrtRunner(spec, io_binding=False, allow_spinning=False) as plain:
        assert bound.io_binding and not plain.io_binding
        for x, y in zip(_run(bound, inputs), _run(plain, inputs)):
            for role in x:
                np.testing.assert_array_equal(x[role], y[role])
        np.testing.assert_array_equal(bound.get_state().c, plain.get_state().c)
        state = RecurrentState(np.full((1, spec.rec_dim), 0.25, np.float32), np.full((1, spec.rec_dim), -0.5, np.float32))
        bound.set_state(state)
        plain.set_state(state)
        np.testing.assert_array_equal(bound.infer(*inputs[0])["joint"], plain.infer(*inputs[0])["joint"])
