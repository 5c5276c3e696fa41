"""`eipl-trt build`, `inspect` and `bench --backend tensorrt` on the TensorRT/CUDA stand-ins."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from eipl_trt.cli import main
from standins.install import install


@pytest.fixture()
def trt(monkeypatch, tmp_path):
    monkeypatch.setenv("EIPL_TRT_ENGINE_CACHE", str(tmp_path / "engines"))
    module, _ = install(monkeypatch, "10.3.0")
    return module


def test_build_then_reuse(trt, tmp_path, capsys):
    assert main(["build", "--model", "sarnn", "--precision", "fp32"]) == 0
    first = capsys.readouterr().out
    assert "fp32: built in" in first and str(tmp_path / "engines") in first and "CUDA graphs on" in first
    assert main(["build", "--model", "sarnn", "--precision", "fp32", "--no-graphs"]) == 0
    assert "fp32: cache hit" in capsys.readouterr().out


def test_build_builds_every_bundled_variant(trt, capsys):
    assert main(["build", "--model", "cnnrnn"]) == 0
    out = capsys.readouterr().out
    assert all(f"{p}: built in" in out for p in ("fp32", "fp16", "int8")), out


def test_build_reports_a_refused_variant(trt, tmp_path, capsys):
    """An int8 file TensorRT's parser refuses (ONNX Runtime's asymmetric zero points): that precision fails with the
    parser's reason, the others build, and the exit code says something failed."""
    import shutil

    import onnx
    from onnx import numpy_helper

    from eipl_trt.paths import resolve_model
    from eipl_trt.spec import ModelSpec, sha256_file

    src = resolve_model("cnnrnn")
    model = tmp_path / "cnnrnn"
    shutil.copytree(src.directory, model)
    proto = onnx.load(str(src.variant_path("int8")))
    zero_points = {n.input[2] for n in proto.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2}
    zp = next(i for i in proto.graph.initializer if i.name in zero_points)
    zp.CopyFrom(numpy_helper.from_array(np.full(numpy_helper.to_array(zp).shape, 5, np.int8), zp.name))
    onnx.save(proto, str(model / src.variants["int8"].file))
    ModelSpec.load(model).with_variant("int8", src.variants["int8"].file,
                                       sha256_file(model / src.variants["int8"].file)).save(model)
    rc = main(["build", "--model", str(model)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "fp32: built in" in out and "fp16: built in" in out
    assert re.search(r"int8: failed: TensorRT's ONNX parser rejects .*model\.int8\.onnx: .*TensorRT only supports "
                     r"symmetric quantization; the zero point must be 0", out), out


def test_inspect_with_profile(trt, tmp_path, capsys):
    out_dir = tmp_path / "inspect"
    assert main(["inspect", "--model", "sarnn", "--precision", "fp32", "--profile", "3", "--out", str(out_dir)]) == 0
    text = (out_dir / "inspect-sarnn-fp32.md").read_text()
    assert "| name | type | in | out | tactic | reformat | ms |" in text and "LeakyRelu" in text
    data = json.loads((out_dir / "inspect-sarnn-fp32.json").read_text())
    assert data["layers"] and data["profile_ms"] and data["tensorrt"] == "10.3.0"


def test_bench_has_copy_compute_columns(trt, tmp_path, capsys):
    out_dir = tmp_path / "bench"
    assert main(["bench", "--model", "sarnn", "--backend", "tensorrt", "--precision", "fp32", "--steps", "20",
                 "--warm-up", "2", "--no-baseline", "--power", "none", "--out", str(out_dir)]) == 0
    table = (out_dir / "bench.md").read_text()
    assert "| H2D p50 | compute p50 | D2H p50 |" in table and "| sarnn | tensorrt | fp32 |" in table
    assert "h2d" in (out_dir / "bench.csv").read_text()


def test_evaluate_runs_on_tensorrt(trt, tmp_path):
    """`evaluate --backend tensorrt` (episodes from a real rosbag2 written with rosbags) equals ONNX Runtime."""
    pytest.importorskip("rosbags")
    import numpy as np

    from eipl_trt import evaluate as ev
    from eipl_trt.models.testing import make_test_model
    from eipl_trt.sim.bagwrite import BagEpisode, write_episodes_bag

    names = ("shoulder", "elbow", "wrist")
    spec = make_test_model("sarnn", tmp_path / "model", seed=5, joint_dim=3, joint_names=names,
                           joint_bounds=np.array([[-1.0, -2.0, 0.0], [1.0, 0.5, 3.0]]))
    rng = np.random.default_rng(0)
    t = np.arange(10) / 10.0
    episode = BagEpisode(t, rng.integers(0, 256, (10, 64, 64, 3), dtype=np.uint8), t,
                         np.stack([np.sin(t), np.cos(t) - 1, 1 + t], 1))
    write_episodes_bag(tmp_path / "bag", [episode], joint_names=list(names))
    episodes = ev.load_for_model(tmp_path / "bag", spec)
    on_trt = ev.evaluate(spec, episodes, precisions=["fp32"], backend="tensorrt")
    on_ort = ev.evaluate(spec, episodes, precisions=["fp32"], backend="onnxruntime")
    assert on_trt.runs[0].summary.steps == on_ort.runs[0].summary.steps > 0
    assert on_trt.runs[0].summary.mean == pytest.approx(on_ort.runs[0].summary.mean, rel=1e-6)
