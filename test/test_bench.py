"""eipl-trt bench: tables, CSV, environment, eager baseline loaded from the checkpoint beside the model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from real_cpu import faked_precisions

from eipl_trt.bench import BenchCase, run_benchmark, synthetic_inputs
from eipl_trt.cli import main as cli_main
from eipl_trt.predictor import Predictor
from eipl_trt.runners import available_precisions
from eipl_trt.spec import ModelSpec

torch = pytest.importorskip("torch")
models_testing = pytest.importorskip("eipl_trt.models.testing")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cnnrnn")
    models_testing.make_test_model("cnnrnn", out, seed=11)
    reference = models_testing.torch_reference("cnnrnn", seed=11)
    torch.save({"epoch": 0, "model_state_dict": reference.state_dict(), "train_loss": [], "test_loss": []}, out / "model.pth")
    return out


def test_eager_baseline_from_checkpoint_matches_onnxruntime(model_dir: Path) -> None:
    from eipl_trt.runners.torch_eager import TorchRunner

    spec = ModelSpec.load(model_dir)
    ort, eager = Predictor.from_model(spec), Predictor(TorchRunner(spec))
    for frame, q in synthetic_inputs(spec, 10):
        np.testing.assert_allclose(ort.step(frame, q).joints, eager.step(frame, q).joints, atol=1e-4)


def test_interleaved_blocks_time_every_step(model_dir: Path) -> None:
    spec = ModelSpec.load(model_dir)
    seen: list[str] = []
    cases = [BenchCase("m", "onnxruntime", "fp32", lambda: Predictor.from_model(spec)) for _ in range(2)]
    results = run_benchmark(cases, synthetic_inputs(spec, 8), steps=25, warm_up=3, block=10, progress=seen.append)
    assert seen == ["10/25 steps", "20/25 steps", "25/25 steps"]
    for r in results:
        assert all(len(v) == 25 for v in r.stages.values())
        assert r.stat("total", 50) >= r.stat("inference", 50) > 0


def test_cli_writes_tables(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["bench", "--model", str(model_dir), "--backend", "onnxruntime", "--steps", "20", "--warm-up", "2",
                     "--frame-size", "240", "320", "--power", "none", "--out", str(tmp_path)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| onnxruntime | fp32 |" in printed and "| torch | fp32 |" in printed
    md = (tmp_path / "bench.md").read_text()
    rows = list(csv.DictReader((tmp_path / "bench.csv").open()))
    p50 = {r["backend"]: float(r["p50_ms"]) for r in rows if r["stage"] == "total" and r["precision"] == "fp32"}
    speedups = {line.split("|")[2].strip(): line.split("|")[9].strip() for line in md.splitlines()
                if line.startswith("| ") and line.split("|")[2].strip() in p50}
    # the column is torch's step p50 over each row's, from the same measurements as the csv
    assert "speedup vs torch" in md
    # (printed to 2 decimals, from the unrounded medians the csv gives to 0.1 us: within half a unit of the last digit)
    assert abs(float(speedups["onnxruntime"].rstrip("x")) - p50["torch"] / p50["onnxruntime"]) <= 0.0051
    assert speedups["torch"] == "1.00x"
    backends = {(r["backend"], r["stage"]) for r in rows}
    assert ("onnxruntime", "compute") in backends and ("torch", "total") in backends
    assert all(int(r["steps"]) == 20 for r in rows)
    env = json.loads((tmp_path / "environment.json").read_text())
    assert env["power"].startswith("no power source") and env["frame_size"] == "240x320"
    assert "onnxruntime" in env and "cpu" in env
    assert env["outputs"] == "all, predicted image included"
    totals = [(r["backend"], r["stage"]) for r in rows if r["stage"] == "total"]
    assert len(totals) == len(set(totals)) == 2  # one total per column, not the runner's own again


def test_cli_plain_graph_column_and_steps_without_the_image(model_dir: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["bench", "--model", str(model_dir), "--backend", "onnxruntime", "--plain-graph", "--no-image",
                     "--steps", "10", "--warm-up", "2", "--power", "none", "--out", str(tmp_path)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| onnxruntime | fp32 |" in printed and "| onnxruntime-plain | fp32 |" in printed
    assert json.loads((tmp_path / "environment.json").read_text())["outputs"].startswith("joints and points, no predicted image")
    rows = {r["backend"]: r for r in csv.DictReader((tmp_path / "bench.csv").open()) if r["stage"] == "postprocess"}
    assert set(rows) == {"onnxruntime", "onnxruntime-plain", "torch"}


def test_cli_without_checkpoint_skips_the_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models_testing.make_test_model("sarnn", tmp_path / "m", seed=0)
    args = ["bench", "--model", str(tmp_path / "m"), "--steps", "5", "--warm-up", "1", "--power", "none"]
    faked = faked_precisions()  # every precision auto offers, but one this CPU only claims (a faked CPU class)
    if faked:
        args += ["--precision", *(p for p in available_precisions(ModelSpec.load(tmp_path / "m")) if p not in faked)]
    assert cli_main(args) == 0
    out = capsys.readouterr()
    assert "| torch |" not in out.out and "| n/a |" in out.out
