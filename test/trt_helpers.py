"""Shared pieces of the TensorRT stand-in tests (``test_trt_*.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eipl_trt.runners.base import Runner

ROOT = Path(__file__).resolve().parents[1]
#: every impersonated TensorRT version (name lists in test/data/trt_api)
VERSIONS = ("8.6.1", "10.3.0", "10.13.0.35", "11.4.0.106")


def episode(spec, steps: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:  # noqa: ANN001
    """Deterministic normalized inputs for ``steps`` steps."""
    rng = np.random.default_rng(seed)
    shapes = spec.input_shapes()
    return [(rng.random(shapes["image"], dtype=np.float32), rng.random(shapes["joint"], dtype=np.float32))
            for _ in range(steps)]


def rollout(runner: Runner, inputs: list[tuple[np.ndarray, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """Step ``runner`` over ``inputs`` (its own state fed back) and keep copies of every output."""
    return [{k: v.copy() for k, v in runner.infer(image, joint).items()} for image, joint in inputs]


def max_abs_diff(a: list[dict[str, np.ndarray]], b: list[dict[str, np.ndarray]]) -> float:
    """Largest absolute difference over all steps and outputs."""
    assert len(a) == len(b) and all(x.keys() == y.keys() for x, y in zip(a, b))
    return max(float(np.max(np.abs(x[k] - y[k]))) for x, y in zip(a, b) for k in x)


def fp16_io_variant(tmp_path):  # noqa: ANN001, ANN202
    """SARNN with float16 graph inputs/outputs (Cast at the edges, float32 inside): an engine with fp16 I/O."""
    import shutil

    import onnx
    from onnx import TensorProto, helper

    from eipl_trt.spec import ModelSpec, sha256_file

    from eipl_trt.paths import resolve_model

    src = resolve_model("sarnn")
    model = onnx.load(str(src.variant_path("fp32")))
    graph = model.graph
    for value in list(graph.input) + list(graph.output):
        old = value.name
        value.type.tensor_type.elem_type = TensorProto.FLOAT16
        if value in graph.input:
            value.name = old + ".h"
            graph.node.insert(0, helper.make_node("Cast", [value.name], [old], to=TensorProto.FLOAT))
        else:
            for node in graph.node:
                node.output[:] = [o + ".f" if o == old else o for o in node.output]
                node.input[:] = [i + ".f" if i == old else i for i in node.input]
            graph.node.append(helper.make_node("Cast", [old + ".f"], [old], to=TensorProto.FLOAT16))
    for value in graph.input:
        value.name = value.name[:-2]
    for node in graph.node[: len(graph.input)]:
        node.input[0] = node.input[0][:-2]
        node.output[0] = node.output[0] + ".f32"
    renames = {n.output[0][:-4]: n.output[0] for n in graph.node[: len(graph.input)]}
    for node in graph.node[len(graph.input):]:
        node.input[:] = [renames.get(i, i) for i in node.input]
    onnx.checker.check_model(model)
    out = tmp_path / "sarnn_fp16io"
    out.mkdir()
    for name in ("model.json", "model.onnx"):
        shutil.copy(src.directory / name, out / name)
    onnx.save(model, str(out / "model.fp16.onnx"))
    spec = ModelSpec.load(out).with_variant("fp16", "model.fp16.onnx", sha256_file(out / "model.fp16.onnx"))
    spec.save(out)
    return ModelSpec.load(out)
