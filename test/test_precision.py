"""Precision variants: FP16 (FP32 I/O) and symmetric INT8 Q/DQ files, the sensitivity pass, interrupt safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eipl_trt.bench import synthetic_inputs
from eipl_trt.errors import InputError
from eipl_trt.predictor import Predictor
from eipl_trt.runners import available_precisions
from eipl_trt.spec import ModelSpec, sha256_file

onnx = pytest.importorskip("onnx")
models_testing = pytest.importorskip("eipl_trt.models.testing")

from eipl_trt.precision import Options, make_variants, prepare_episodes, recover  # noqa: E402
from eipl_trt.precision.calibration import record_calibration_feeds  # noqa: E402
from eipl_trt.precision.fp16 import convert_fp16  # noqa: E402
from eipl_trt.precision.graph import group_nodes  # noqa: E402
from eipl_trt.precision.int8 import CANDIDATE_OPS, Int8Quantizer, int8_problems, tensorrt_unsupported_convs  # noqa: E402
from eipl_trt.precision.rollout import Scorer  # noqa: E402
from eipl_trt.precision.sensitivity import measure  # noqa: E402


def _episodes(spec: ModelSpec, n: int, steps: int, seed: int = 0):
    out = []
    for e in range(n):
        pairs = synthetic_inputs(spec, steps, seed=seed + e)
        out.append(([p[0] for p in pairs], np.stack([p[1] for p in pairs]), "rgb8"))
    return out


def _write_dataset(root: Path, spec: ModelSpec, episodes: int, steps: int) -> Path:
    (root / "train").mkdir(parents=True)
    data = _episodes(spec, episodes, steps)
    np.save(root / "train" / "images.npy", np.stack([np.stack(f) for f, _, _ in data]))
    np.save(root / "train" / "joints.npy", np.stack([q for _, q, _ in data]).astype(np.float32))
    np.save(root / "joint_bounds.npy", np.array([spec.joint_min, spec.joint_max], np.float32))
    return root


@pytest.fixture(scope="module")
def sarnn_variants(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelSpec, object]:
    spec = models_testing.make_test_model("sarnn", tmp_path_factory.mktemp("sarnn"), seed=2, joint_dim=4)
    tensors = prepare_episodes(spec, _episodes(spec, 3, 10))
    options = Options(max_feeds=20, heldout=1)
    return make_variants(spec, tensors, ("fp16", "int8"), options, out=None, calibration_source="synthetic")


def test_int8_file_is_symmetric_per_channel_qdq(sarnn_variants: tuple[ModelSpec, object]) -> None:
    spec, built = sarnn_variants
    path = spec.verify_variant("int8")
    model = onnx.load(str(path))
    assert int8_problems(model) == []
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq
    for node in qdq:  # int8, zero point 0, everywhere
        zp = inits[node.input[2]]
        assert zp.data_type == onnx.TensorProto.INT8
        assert not onnx.numpy_helper.to_array(zp).any()
    weights = [n for n in qdq if n.op_type == "DequantizeLinear" and n.input[0] in inits]
    assert weights and all(onnx.numpy_helper.to_array(inits[n.input[1]]).size > 1 for n in weights)
    assert all(inits[n.input[0]].data_type == onnx.TensorProto.INT8 for n in weights)
    recipe = spec.variants["int8"].recipe
    fed_by_dq = {n.name for n in graph.node for i in n.input
                 if any(d.output[0] == i for d in qdq if d.op_type == "DequantizeLinear")}
    assert fed_by_dq == set(recipe["quantized_nodes"])  # exactly the layers the pass admitted
    candidates = [n.name for n in onnx.load(str(spec.variant_path("fp32"))).graph.node if n.op_type in CANDIDATE_OPS]
    assert sorted(recipe["quantized_nodes"] + recipe["excluded_nodes"] + list(recipe["kept_fp32_for_tensorrt"])) == \
        sorted(candidates)
    assert recipe["calibration"]["steps"] == 20 and len(recipe["calibration"]["sha256"]) == 64


def test_fp16_file_has_fp32_io_and_fp16_compute(sarnn_variants: tuple[ModelSpec, object]) -> None:
    spec, _ = sarnn_variants
    model = onnx.load(str(spec.verify_variant("fp16")))
    float32, float16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    assert all(v.type.tensor_type.elem_type == float32 for v in list(model.graph.input) + list(model.graph.output))
    assert [v.name for v in model.graph.input] == list(spec.inputs.values())
    assert any(t.data_type == float16 for t in model.graph.initializer)
    assert any(n.op_type == "Cast" for n in model.graph.node)
    fp32_nodes = set(spec.variants["fp16"].recipe["fp32_nodes"])
    types = {t.name: t.data_type for t in model.graph.initializer}
    types.update({v.name: v.type.tensor_type.elem_type for v in model.graph.input})
    for node in model.graph.node:  # every node computes in the precision the recipe says
        if node.op_type == "Cast":
            for out in node.output:
                types[out] = next(a.i for a in node.attribute if a.name == "to")
            continue
        seen = {types[i] for i in node.input if i in types and types[i] in (float32, float16)}
        if seen:
            assert seen == {float32 if node.name in fp32_nodes else float16}, node.name
            types.update({out: next(iter(seen)) for out in node.output})


def test_variants_are_registered_with_hash_and_opset(sarnn_variants: tuple[ModelSpec, object]) -> None:
    spec, _ = sarnn_variants
    reloaded = ModelSpec.load(spec.directory)
    assert available_precisions(reloaded, "onnxruntime") == ["fp32", "fp16", "int8"]
    for precision in ("fp16", "int8"):
        variant = reloaded.variants[precision]
        path = reloaded.variant_path(precision)
        assert variant.sha256 == sha256_file(path)
        model = onnx.load(str(path))
        assert variant.opset == [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0] == 17
        assert variant.min_tensorrt == "8.6"
        assert variant.recipe["onnxruntime"] and variant.recipe["heldout"]["error_rate"] > 0
    frames = synthetic_inputs(reloaded, 6, seed=9)
    outputs = {}
    for precision in ("fp32", "fp16", "int8"):
        predictor = Predictor.from_model(reloaded, backend="onnxruntime", precision=precision)
        outputs[precision] = np.stack([predictor.step(f, q, want_image=False).joints_normalized for f, q in frames])
        predictor.close()
    for precision in ("fp16", "int8"):
        assert np.abs(outputs[precision] - outputs["fp32"]).max() < 0.05
        assert not np.array_equal(outputs[precision], outputs["fp32"])


@pytest.mark.parametrize("kind", ["sarnn", "cnnrnn", "cnnrnnln"])
def test_bundled_variants(kind: str) -> None:
    """The shipped files: checked structure, hashes, and what the sensitivity pass kept out, recorded."""
    from eipl_trt.paths import resolve_model

    spec = resolve_model(kind)
    int8 = onnx.load(str(spec.verify_variant("int8")))
    assert int8_problems(int8) == []
    fp16 = onnx.load(str(spec.verify_variant("fp16")))
    assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in list(fp16.graph.input) + list(fp16.graph.output))
    for precision in ("fp16", "int8"):
        variant = spec.variants[precision]
        assert variant.opset == 17 and variant.min_tensorrt == "8.6"
        assert variant.recipe["calibration"]["source"].endswith("(train)")
    assert spec.variants["int8"].recipe["excluded_nodes"]
    if kind == "sarnn":  # logits / T=1e-4 exceed FP16's range on real frames; the span stays FP32
        assert "pos_encoder.6" in spec.variants["fp16"].recipe["kept_fp32_by_range"]
        assert "/model/pos_encoder/pos_encoder.6/MatMul" in spec.variants["int8"].recipe["excluded_nodes"]


def test_fp16_converter_keeps_chosen_nodes_fp32(tmp_path: Path) -> None:
    spec = models_testing.make_test_model("cnnrnnln", tmp_path, seed=1, joint_dim=3)
    model = onnx.load(str(spec.variant_path("fp32")))
    norms = [n.name for n in model.graph.node if n.op_type == "LayerNormalization"]
    converted = convert_fp16(model, keep_fp32=norms)
    inits = {t.name: t for t in converted.graph.initializer}
    for node in converted.graph.node:
        if node.op_type == "LayerNormalization":
            assert all(inits[i].data_type == onnx.TensorProto.FLOAT for i in node.input[1:] if i in inits)
        if node.op_type == "Conv":
            assert inits[node.input[1]].data_type == onnx.TensorProto.FLOAT16
    assert [o.version for o in converted.opset_import] == [o.version for o in model.opset_import]


def test_sensitivity_ranks_a_fragile_layer_first(tmp_path: Path) -> None:
    """A Gemm whose weight rows each carry one huge entry loses every other weight to per-channel int8 rounding."""
    spec = models_testing.make_test_model("cnnrnn", tmp_path / "m", seed=3, joint_dim=3)
    path = spec.variant_path("fp32")
    model = onnx.load(str(path))
    producer = {o: n for n in model.graph.node for o in n.output}
    fragile = producer[producer[spec.outputs["joint"]].input[0]]  # the joint head's Gemm
    assert fragile.op_type == "Gemm"
    inits = {t.name: t for t in model.graph.initializer}
    weight = onnx.numpy_helper.to_array(inits[fragile.input[1]]).copy()
    weight[:, 0] = 6 * np.abs(weight).max()  # the scale of every row: the others keep ~4 bits
    inits[fragile.input[1]].CopyFrom(onnx.numpy_helper.from_array(weight, fragile.input[1]))
    onnx.save(model, str(path))
    spec = ModelSpec.load(spec.directory).with_variant("fp32", "model.onnx", sha256_file(path))
    spec.save(spec.directory)
    spec = ModelSpec.load(spec.directory)

    tensors = prepare_episodes(spec, _episodes(spec, 2, 8))
    feeds = record_calibration_feeds(spec, tensors[:1])
    scorer = Scorer(spec, tensors[1:])
    quantizer = Int8Quantizer(path, feeds, tmp_path, "minmax")
    groups = [g for g in group_nodes(quantizer.model, by="node", op_types=CANDIDATE_OPS) if g.nodes[0] in quantizer.candidates]
    assert len(groups) > 10
    rows = measure(groups, lambda gs: quantizer.quantize([n for g in gs for n in g.nodes]).SerializeToString(), scorer)
    assert rows[0].group.nodes == (fragile.name,)
    assert rows[0].score.deviation > 3 * rows[1].score.deviation, [(r.group.name, r.score.deviation) for r in rows[:3]]


def test_calibration_records_the_real_recurrent_state_and_quantize_int8_takes_conv_layers(tmp_path: Path) -> None:
    from eipl_trt.precision import quantize_int8

    spec = models_testing.make_test_model("cnnrnnln", tmp_path, seed=2, joint_dim=3)
    feeds = record_calibration_feeds(spec, _episodes(spec, 2, 6))
    assert len(feeds) == 12
    assert not feeds[0]["i.state_h"].any() and feeds[1]["i.state_h"].any()  # closed loop: the state fed back
    assert not feeds[6]["i.state_h"].any()  # each episode starts from a zero state
    updated = quantize_int8(spec, feeds, method="minmax")
    graph = onnx.load(str(updated.verify_variant("int8"))).graph
    dq = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    assert {n.op_type for n in graph.node if set(n.input) & dq} == {"Conv", "ConvTranspose"}
    assert not any(n.op_type == "LayerNormalization" and set(n.input) & dq for n in graph.node)


def test_convs_without_tensorrt_int8_kernels_are_never_candidates(tmp_path: Path) -> None:
    """CNNRNN's last encoder conv (12 -> 8 channels) has no TensorRT INT8 kernel (ModelOpt's rule)."""
    spec = models_testing.make_test_model("cnnrnn", tmp_path, seed=2, joint_dim=3)
    model = onnx.load(str(spec.variant_path("fp32")))
    unsupported = tensorrt_unsupported_convs(model)
    convs = {n.name: n for n in model.graph.node if n.op_type == "Conv"}
    inits = {t.name: t for t in model.graph.initializer}
    small = {name for name, n in convs.items() if list(inits[n.input[1]].dims[:2]) == [8, 12]}
    assert small and set(unsupported) == small and "12->8 channels" in next(iter(unsupported.values()))
    assert not set(unsupported) & set(Int8Quantizer(spec.variant_path("fp32"), record_calibration_feeds(
        spec, _episodes(spec, 1, 3)), tmp_path).candidates)


def test_make_variants_refuses_too_little_data(tmp_path: Path) -> None:
    spec = models_testing.make_test_model("cnnrnn", tmp_path, seed=2, joint_dim=3)
    with pytest.raises(InputError, match="at least 2 episodes"):
        make_variants(spec, prepare_episodes(spec, _episodes(spec, 1, 5)), ("int8",), out=None)
    with pytest.raises(InputError, match="precisions must be among"):
        make_variants(spec, prepare_episodes(spec, _episodes(spec, 2, 5)), ("int4",), out=None)
    with pytest.raises(InputError, match="unknown calibration method"):
        Int8Quantizer(spec.variant_path("fp32"), [{}], tmp_path, "kl")
    with pytest.raises(InputError, match="needs calibration data"):
        Int8Quantizer(spec.variant_path("fp32"), [], tmp_path)
    with pytest.raises(InputError, match="episodes are empty"):
        record_calibration_feeds(spec, [([], [], "rgb8")])
    assert not (tmp_path / "model.int8.onnx").exists() and set(ModelSpec.load(tmp_path).variants) == {"fp32"}


def test_cli_prints_the_sensitivity_table(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from eipl_trt.cli import main as cli_main

    monkeypatch.setenv("EIPL_TRT_PROGRESS", "lines")
    spec = models_testing.make_test_model("cnnrnn", tmp_path / "m", seed=2, joint_dim=3)
    data = _write_dataset(tmp_path / "data", spec, episodes=2, steps=6)
    code = cli_main(["quantize", "--model", str(spec.directory), "--calibration", str(data), "--precision", "int8",
                     "--heldout", "1", "--sensitivity"])
    assert code == 0
    out = capsys.readouterr().out
    assert "calibration rollouts (fp32, closed loop): done, 6 step in" in out
    assert "INT8 sensitivity (each layer alone in INT8)" in out and "| 1 | " in out
    assert "from 6 calibration steps (minmax)" in out
    assert available_precisions(ModelSpec.load(spec.directory), "onnxruntime") == ["fp32", "int8"]


def test_killed_quantize_leaves_the_model_directory_as_it_was(tmp_path: Path) -> None:
    spec = models_testing.make_test_model("cnnrnn", tmp_path / "m", seed=2, joint_dim=3)
    (tmp_path / "m" / "model.int8.onnx").write_bytes((tmp_path / "m" / "model.onnx").read_bytes())
    spec = spec.with_variant("int8", "model.int8.onnx", sha256_file(tmp_path / "m" / "model.int8.onnx"))
    spec.save(spec.directory)
    before = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    data = _write_dataset(tmp_path / "data", spec, episodes=3, steps=40)
    env = dict(os.environ, PYTHONUNBUFFERED="1", EIPL_TRT_PROGRESS="lines")
    proc = subprocess.Popen(
        [sys.executable, "-m", "eipl_trt.cli", "quantize", "--model", str(spec.directory), "--calibration", str(data),
         "--heldout", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # calibration, the held-out reference and the fp16 pass are done; int8's runs
            seen.append(line)
            if line.startswith("fp16 sensitivity"):
                break
        assert proc.poll() is None, "".join(seen)
        proc.send_signal(signal.SIGKILL)  # mid-run: nothing is committed before the int8 pass ends
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    after = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir() if not p.name.endswith(".tmp")}
    assert after == before
    assert set(ModelSpec.load(spec.directory).variants) == {"fp32", "int8"}


def test_recover_undoes_a_commit_cut_between_renames(tmp_path: Path) -> None:
    """The few-renames window of a commit: new file in place, model.json not yet written."""
    spec = models_testing.make_test_model("cnnrnn", tmp_path, seed=2, joint_dim=3)
    old = (tmp_path / "model.onnx").read_bytes()
    (tmp_path / "model.int8.onnx").write_bytes(old)
    spec.with_variant("int8", "model.int8.onnx", sha256_file(tmp_path / "model.int8.onnx")).save(tmp_path)
    os.link(tmp_path / "model.int8.onnx", tmp_path / ".model.int8.onnx.prev")
    (tmp_path / ".model.int8.onnx.new.tmp").write_bytes(b"new")
    os.replace(tmp_path / ".model.int8.onnx.new.tmp", tmp_path / "model.int8.onnx")
    (tmp_path / ".model.fp16.onnx.x.tmp").write_bytes(b"half-written")
    assert recover(tmp_path) == ["model.int8.onnx"]
    assert (tmp_path / "model.int8.onnx").read_bytes() == old
    assert not list(tmp_path.glob(".*"))
    ModelSpec.load(tmp_path).verify_variant("int8")
