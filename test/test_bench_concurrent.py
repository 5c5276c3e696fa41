"""eipl-trt bench: several backends/thread counts as columns, and --concurrent N (models stepping together)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from eipl_trt.bench import synthetic_inputs
from eipl_trt.bench.concurrent import concurrency_table, run_concurrent
from eipl_trt.cli import main as cli_main
from eipl_trt.predictor import Predictor
from eipl_trt.runners import create_runner
from eipl_trt.spec import ModelSpec

models_testing = pytest.importorskip("eipl_trt.models.testing")


class Recording(Predictor):
    """A real Predictor that keeps the joints of every step."""

    seen: list[np.ndarray]

    def step(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        out = super().step(*args, **kwargs)
        self.__dict__.setdefault("seen", []).append(out.joints.copy())
        return out


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    for name in ("sarnn", "cnnrnn"):
        models_testing.make_test_model(name, root / name, seed=2)
    return {name: root / name for name in ("sarnn", "cnnrnn")}


def test_concurrent_steps_every_model_each_tick_and_matches_serial(model_dirs: dict[str, Path]) -> None:
    specs = {n: ModelSpec.load(d) for n, d in model_dirs.items()}
    inputs = {n: synthetic_inputs(s, 8, seed=1) for n, s in specs.items()}
    made: list[Predictor] = []

    def make(name: str) -> Predictor:
        made.append(Predictor(create_runner(specs[name], "onnxruntime")))
        return made[-1]

    results = run_concurrent(make, list(specs), inputs.get, 3, steps=12, warm_up=2, block=5)
    assert [r.models for r in results] == [["sarnn"], ["sarnn", "cnnrnn"], ["sarnn", "cnnrnn", "sarnn"]]
    for r in results:
        assert sorted(r.step_s) == list(range(len(r.models)))
        assert all(len(v) == 12 for v in r.step_s.values()) and len(r.tick_s) == 12
        for i in r.step_s:  # a tick lasts as long as its slowest model
            assert all(t <= tick + 1e-3 for t, tick in zip(r.step_s[i], r.tick_s))
        assert r.throughput_hz > 0
    assert all(not p.runner.is_open for p in made)  # closed at the end
    # A threaded predictor computes what a lone one computes: same joints, step by step.
    lone = Predictor(create_runner(specs["cnnrnn"], "onnxruntime"))
    expected = [lone.step(*inputs["cnnrnn"][i % 8]).joints.copy() for i in range(12)]
    threaded = Recording(create_runner(specs["cnnrnn"], "onnxruntime"))
    run_concurrent(lambda n: threaded if n == "cnnrnn" else Predictor(create_runner(specs[n], "onnxruntime")),
                   ["sarnn", "cnnrnn"], inputs.get, 2, steps=12, warm_up=3, block=12)  # cnnrnn only in k=2
    np.testing.assert_array_equal(np.array(threaded.seen[-12:]), np.array(expected))
    table = concurrency_table(results)
    assert table.count("\n| 3 |") == 3 and "total throughput" in table
    with pytest.raises(ValueError, match="at least one model"):
        run_concurrent(make, [], inputs.get, 2)


def test_cli_backends_threads_columns_and_concurrent(model_dirs: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("openvino")
    d = str(model_dirs["sarnn"])
    assert cli_main(["bench", "--model", d, "--backend", "onnxruntime", "openvino", "--precision", "fp32", "--threads", "1", "2",
                     "--steps", "6", "--warm-up", "1", "--power", "none", "--no-baseline", "--out", str(tmp_path)]) == 0
    rows = {(r["backend"], r["precision"]) for r in csv.DictReader((tmp_path / "bench.csv").open())}
    assert rows == {("onnxruntime x1", "fp32"), ("onnxruntime x2", "fp32"), ("openvino x1", "fp32"), ("openvino x2", "fp32")}
    capsys.readouterr()
    assert cli_main(["bench", "--model", d, str(model_dirs["cnnrnn"]), "--backend", "onnxruntime", "--concurrent", "2",
                     "--steps", "6", "--warm-up", "1", "--power", "none", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| 1 | threads | sarnn |" in out and "| 2 | threads | sarnn |" in out and "| 2 | threads | cnnrnn |" in out
    assert (tmp_path / "concurrent.md").read_text().startswith("# eipl_trt concurrency benchmark")
    assert np.isfinite(float(out.split("| 2 | threads | cnnrnn |")[1].split("|")[0]))


def test_cli_concurrent_processes(model_dirs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = [str(model_dirs["sarnn"]), str(model_dirs["cnnrnn"])]
    assert cli_main(["bench", "--model", *d, "--backend", "onnxruntime", "--concurrent", "2", "--layout", "processes",
                     "--steps", "5", "--warm-up", "1", "--power", "none", "--no-image"]) == 0
    out = capsys.readouterr().out
    assert "| 1 | processes | sarnn |" in out and "| 2 | processes | cnnrnn |" in out
    assert "outputs: joints and points, no predicted image" in out
