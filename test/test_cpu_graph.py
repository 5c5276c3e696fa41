"""CPU graph rewrites and the image-free step: exact against the exported graph, on real ONNX Runtime."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import onnxruntime as ort  # noqa: E402

from eipl_trt.paths import bundled_models, resolve_model  # noqa: E402
from eipl_trt.runners.cpu_graph import rewrite_for_cpu, without_outputs  # noqa: E402
from eipl_trt.runners.onnxrt import OrtRunner  # noqa: E402
from eipl_trt.spec import ModelSpec  # noqa: E402

from numerics import assert_within, parity_tolerances  # noqa: E402

BUNDLED = sorted(bundled_models())


def _inputs(spec: ModelSpec, n: int, seed: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    shapes = spec.input_shapes()
    return [(rng.uniform(spec.vmin, spec.vmax, shapes["image"]).astype(np.float32),
             rng.uniform(spec.vmin, spec.vmax, shapes["joint"]).astype(np.float32)) for _ in range(n)]


# ---------------------------------------------------------------------- the rewrites, layer by layer
def _single_layer(op: str, weight: np.ndarray, bias: np.ndarray | None, in_shape: tuple[int, ...], **attrs) -> onnx.ModelProto:  # noqa: ANN003
    inits = [numpy_helper.from_array(weight, "w")] + ([numpy_helper.from_array(bias, "b")] if bias is not None else [])
    node = helper.make_node(op, ["x", "w"] + (["b"] if bias is not None else []), ["y"], name="layer", **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run_model(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("pads", [[0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 2, 1]])
@pytest.mark.parametrize("with_bias", [True, False])
def test_a_stride_one_transposed_convolution_becomes_an_equal_convolution(pads: list[int], with_bias: bool) -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 4, 3, 3)).astype(np.float32)  # ConvTranspose: (in, out, kh, kw)
    b = rng.normal(size=4).astype(np.float32) if with_bias else None
    x = rng.normal(size=(1, 6, 9, 11)).astype(np.float32)
    model = _single_layer("ConvTranspose", w, b, x.shape, pads=pads)
    want = _run_model(model, x)
    applied = rewrite_for_cpu(model)
    assert applied == ["layer: ConvTranspose -> Conv"]
    assert [n.op_type for n in model.graph.node] == ["Conv"]
    assert {i.name for i in model.graph.initializer} == {"w__as_conv"} | ({"b"} if with_bias else set())
    np.testing.assert_allclose(_run_model(model, x), want, atol=1e-5)


@pytest.mark.parametrize("kernel,pads", [((3, 3), [0, 0, 0, 0]), ((3, 3), [2, 2, 2, 2]), ((5, 3), [1, 0, 2, 1]), ((2, 2), [0, 0, 0, 0])])
@pytest.mark.parametrize("with_bias", [True, False])
def test_a_narrow_convolution_becomes_row_convolution_and_shifted_sum(kernel: tuple[int, int], pads: list[int], with_bias: bool) -> None:
    rng = np.random.default_rng(1)
    w = rng.normal(size=(5, 32, *kernel)).astype(np.float32)
    b = rng.normal(size=5).astype(np.float32) if with_bias else None
    x = rng.normal(size=(1, 32, 13, 10)).astype(np.float32)
    model = _single_layer("Conv", w, b, x.shape, pads=pads)
    want = _run_model(model, x)
    applied = rewrite_for_cpu(model)
    assert applied == [f"layer: Conv 32->5 {kernel[0]}x{kernel[1]} -> 1x{kernel[1]} rows + shifted sum"]
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["Conv"] + ["Slice"] * kernel[0] + ["Sum"]
    got = _run_model(model, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("op,shape,attrs", [
    ("ConvTranspose", (6, 4, 3, 3), {"strides": [2, 2]}),           # upsampling: not the same as a Conv
    ("ConvTranspose", (6, 4, 3, 3), {"output_padding": [1, 1], "strides": [2, 2]}),
    ("ConvTranspose", (6, 4, 3, 3), {"pads": [3, 3, 3, 3]}),         # cropping more than the kernel
    ("Conv", (5, 32, 3, 3), {"strides": [2, 2]}),
    ("Conv", (5, 32, 3, 3), {"dilations": [2, 2]}),
    ("Conv", (4, 32, 3, 3), {"group": 2}),
    ("Conv", (16, 32, 3, 3), {}),                                   # wide: ONNX Runtime's own kernel is faster
    ("Conv", (5, 4, 3, 3), {}),                                     # few inputs: no im2col cost to save
    ("Conv", (5, 32, 1, 3), {}),                                    # already one row
])
def test_layers_outside_the_handled_forms_are_left_alone(op: str, shape: tuple[int, ...], attrs: dict) -> None:
    w = np.ones(shape, np.float32)
    cin = shape[0] if op == "ConvTranspose" else shape[1] * attrs.get("group", 1)
    model = _single_layer(op, w, None, (1, cin, 12, 12), **attrs)
    before = model.SerializeToString()
    assert rewrite_for_cpu(model) == []
    assert model.SerializeToString() == before


def test_weights_that_are_graph_inputs_or_not_float32_are_left_alone() -> None:
    w16 = np.ones((6, 4, 3, 3), np.float16)
    model = _single_layer("ConvTranspose", w16, None, (1, 6, 8, 8))
    assert rewrite_for_cpu(model) == []
    model = _single_layer("ConvTranspose", np.ones((6, 4, 3, 3), np.float32), None, (1, 6, 8, 8))
    model.graph.input.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [6, 4, 3, 3]))  # overridable
    assert rewrite_for_cpu(model) == []


# ---------------------------------------------------------------------- the bundled models
def test_sarnn_gets_its_decoder_and_point_heads_rewritten_and_int8_keeps_its_quantized_layers() -> None:
    spec = resolve_model("sarnn")
    fp32 = onnx.load(str(spec.variant_path("fp32")))
    applied = rewrite_for_cpu(fp32)
    layers = sorted(line.split(":")[0] for line in applied)
    assert layers == sorted([f"/model/decoder_image/decoder_image.{i}/ConvTranspose" for i in (0, 2, 4)]
                            + ["/model/decoder_image/decoder_image.4/ConvTranspose__as_conv",
                               "/model/im_encoder/im_encoder.4/Conv", "/model/pos_encoder/pos_encoder.4/Conv"])
    int8 = onnx.load(str(spec.variant_path("int8")))
    quantized = set(spec.variants["int8"].recipe["quantized_nodes"])
    applied = rewrite_for_cpu(int8)
    assert applied and not quantized & {line.split(":")[0] for line in applied}
    assert rewrite_for_cpu(onnx.load(str(spec.variant_path("fp16")))) == []


@pytest.mark.parametrize("name", BUNDLED)
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_rewritten_graph_steps_like_the_exported_one(name: str, precision: str) -> None:
    spec = resolve_model(name)
    if precision not in spec.variants:
        pytest.skip(f"{name} has no {precision} variant")
    inputs = _inputs(spec, 30)
    tol = parity_tolerances(spec, precision, inputs)  # the exported graph's own summation-order spread
    with OrtRunner(spec, precision, graph_rewrites=False, skip_image=False) as plain, \
            OrtRunner(spec, precision, graph_rewrites=True, skip_image=False) as fast:
        assert not plain.rewrites and not plain.skips_image
        for image, joint in inputs:
            want = {k: v.copy() for k, v in plain.infer(image, joint).items()}
            assert_within(dict(fast.infer(image, joint)), want, tol)
        assert_within({"state_h": fast.get_state().h, "state_c": fast.get_state().c},
                      {"state_h": plain.get_state().h, "state_c": plain.get_state().c}, tol)


@pytest.mark.parametrize("name", BUNDLED)
@pytest.mark.parametrize("io_binding", [True, False])
def test_steps_without_the_image_keep_the_state_and_outputs_of_full_steps(name: str, io_binding: bool) -> None:
    spec = resolve_model(name)
    inputs = _inputs(spec, 24, seed=8)
    tol = parity_tolerances(spec, "fp32", inputs)
    with OrtRunner(spec, graph_rewrites=False, skip_image=False) as full, \
            OrtRunner(spec, io_binding=io_binding) as mixed:
        assert mixed.skips_image
        assert mixed.diagnostics()["image_decoder"] == "run only while the predicted image is wanted"
        assert full.diagnostics() == {"threads": "1", "cpu_graph_rewrites": "off", "image_decoder": "every step"}
        for t, (image, joint) in enumerate(inputs):
            want = {k: v.copy() for k, v in full.infer(image, joint).items()}
            wanted = t % 3 == 0
            got = dict(mixed.infer(image, joint, want_image=wanted))
            assert ("image" in got) == wanted
            assert_within(got, want, tol, [r for r in want if r != "image" or wanted])
        assert_within({"state_h": mixed.get_state().h}, {"state_h": full.get_state().h}, tol)


def test_without_outputs_removes_what_only_the_image_needed() -> None:
    spec = resolve_model("sarnn")
    model = onnx.load(str(spec.variant_path("fp32")))
    pruned, removed = without_outputs(model, [spec.outputs["image"]])
    ops = {n.name for n in pruned.graph.node}
    assert removed > 20
    assert not any("decoder_image" in n or "im_encoder" in n or "issm" in n for n in ops)
    assert any("pos_encoder" in n for n in ops) and any("decoder_joint" in n for n in ops)
    assert [o.name for o in pruned.graph.output] == [o.name for o in model.graph.output if o.name != spec.outputs["image"]]
    assert [i.name for i in pruned.graph.input] == [i.name for i in model.graph.input]
    assert not any("decoder_image" in i.name or "im_encoder" in i.name for i in pruned.graph.initializer)
    assert without_outputs(model, ["no such output"]) is None
    onnx.checker.check_model(pruned)


def test_without_the_onnx_package_the_runner_opens_the_exported_graph(monkeypatch: pytest.MonkeyPatch,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    spec = resolve_model("sarnn")
    with caplog.at_level(logging.WARNING), OrtRunner(spec) as runner:
        assert runner.rewrites == [] and not runner.skips_image
        image, joint = _inputs(spec, 1)[0]
        assert "image" in runner.infer(image, joint, want_image=False)
    assert "pip install onnx" in caplog.text


def test_eager_pytorch_skips_the_decoder_too(one_torch_thread: None) -> None:
    pytest.importorskip("torch")
    from eipl_trt.runners.torch_eager import TorchRunner

    spec = resolve_model("sarnn")
    inputs = _inputs(spec, 10, seed=2)
    with TorchRunner(spec) as full, TorchRunner(spec) as mixed:
        assert mixed.skips_image
        for t, (image, joint) in enumerate(inputs):
            want = {k: v.copy() for k, v in full.infer(image, joint).items()}
            got = dict(mixed.infer(image, joint, want_image=t % 2 == 0))
            assert ("image" in got) == (t % 2 == 0)
            np.testing.assert_array_equal(got["joint"], want["joint"])

