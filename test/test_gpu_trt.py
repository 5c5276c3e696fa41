"""The TensorRT runner on real hardware: ``pytest -m gpu`` on a machine with an NVIDIA GPU and TensorRT.

Skipped without them. Builds every precision each bundled model lists (in a temporary engine
cache), checks parity with ONNX Runtime on the same ONNX variant, graphs == no graphs, state
hand-over, and prints a 1,000-step latency summary (no timed asserts). See the README for
running it on a Jetson.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from eipl_trt.errors import EipltrtError
from eipl_trt.paths import resolve_model
from eipl_trt.runners import tensorrt_unavailable_reason
from eipl_trt.runners.onnxrt import OrtRunner
from trt_helpers import episode, max_abs_diff, rollout

pytestmark = pytest.mark.gpu
#: TensorRT picks its own kernels; fp32 may use TF32 on Ampere+, so allow some rounding
TOLERANCE = {"fp32": 2e-2, "fp16": 5e-2, "int8": 1e-1}


@pytest.fixture(scope="module", autouse=True)
def _need_tensorrt():
    why = tensorrt_unavailable_reason()
    if why:
        pytest.skip(f"TensorRT is not usable here: {why}")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("engines")


@pytest.mark.parametrize("model", ["sarnn", "cnnrnn", "cnnrnnln"])
def test_every_precision_builds_and_matches_onnxruntime(model, cache_dir):
    from eipl_trt.runners.tensorrt import TrtRunner, available_precisions

    spec = resolve_model(model)
    inputs = episode(spec, 50)
    for precision in available_precisions(spec):
        try:
            runner = TrtRunner(spec, precision, cache_dir=cache_dir).open()
        except EipltrtError as exc:
            pytest.fail(f"{model} {precision}: {exc}")
        with runner, OrtRunner(spec, precision, graph_rewrites=False) as ort:  # the graph TensorRT builds from
            diff = max_abs_diff(rollout(runner, inputs), rollout(ort, inputs))
            print(f"{model} {precision}: {runner.diagnostics()}; max |trt - ort| over 50 steps = {diff:.3g}")
        assert diff <= TOLERANCE[precision]


@pytest.mark.parametrize("model", ["sarnn", "cnnrnnln"])
def test_graphs_equal_no_graphs_and_state_hand_over(model, cache_dir):
    from eipl_trt.runners.tensorrt import TrtRunner

    spec = resolve_model(model)
    inputs = episode(spec, 30, seed=5)
    with TrtRunner(spec, cache_dir=cache_dir) as g, TrtRunner(spec, cache_dir=cache_dir, cuda_graphs=False) as p:
        if not g.graph_status.startswith("on"):
            pytest.skip(f"graphs unavailable: {g.graph_status}")
        assert max_abs_diff(rollout(g, inputs[:15]), rollout(p, inputs[:15])) <= 1e-5
        p.set_state(g.get_state())  # hand-over between two runners mid-episode
        assert max_abs_diff(rollout(g, inputs[15:]), rollout(p, inputs[15:])) <= 1e-5


@pytest.mark.parametrize("graphs", [True, False])
def test_latency_1000_steps(graphs, cache_dir):
    """1,000 steps as the node runs them: prints the latency summary; asserts what must hold on any GPU (no
    timing targets: those are the benchmarks'). Every step's outputs are finite, the state moves, the run ends
    where ONNX Runtime's does, and each step's timings add up: the three CUDA-event stages are measured (compute
    took GPU time) and fit inside the runner's own total, which fits inside the wall-clock step."""
    from eipl_trt.runners.tensorrt import TrtRunner

    spec = resolve_model("sarnn")
    image, joint = episode(spec, 1)[0]
    with TrtRunner(spec, cache_dir=cache_dir, cuda_graphs=graphs) as runner:
        assert runner.graph_status.startswith("on" if graphs else "off (disabled)"), runner.graph_status
        runner.warm_up(50)
        total, stages = [], {"h2d": [], "compute": [], "d2h": []}
        first_joints = []
        for i in range(1000):
            t0 = time.perf_counter()
            out = runner.infer(image, joint)
            total.append(time.perf_counter() - t0)
            t = runner.last_timings
            for k in stages:
                stages[k].append(t[k])
            bad = [k for k, v in out.items() if not np.isfinite(v).all()]
            assert not bad, f"step {i}: non-finite {bad}"
            assert t["compute"] > 0, f"step {i}: the compute stage took no GPU time ({t})"
            # events have ~0.5 us resolution; the wall clock brackets the runner's own total
            assert t["h2d"] + t["compute"] + t["d2h"] <= t["total"] + 1e-5, f"step {i}: stages exceed the total {t}"
            assert t["total"] <= total[-1], f"step {i}: runner total {t['total']} > wall-clock step {total[-1]}"
            if i < 2:
                first_joints.append(out["joint"].copy())
        final = {k: v.copy() for k, v in out.items()}
        state = runner.get_state()
    assert np.abs(first_joints[0] - first_joints[1]).max() > 0, "the LSTM state did not carry over between steps"
    with OrtRunner(spec, graph_rewrites=False) as ort:  # the same 1,000 steps on the graph TensorRT builds from
        for _ in range(1000):
            expected = ort.infer(image, joint)
        assert max(float(np.abs(final[k] - expected[k]).max()) for k in final) <= TOLERANCE["fp32"]
        np.testing.assert_allclose(state.h, ort.get_state().h, atol=TOLERANCE["fp32"])
    row = {k: (np.median(v) * 1e3, np.percentile(v, 99) * 1e3, np.max(v) * 1e3)
           for k, v in {"step": total, **stages}.items()}
    print(f"sarnn fp32 graphs={graphs} (ms p50/p99/max): "
          + "; ".join(f"{k} {a:.3f}/{b:.3f}/{c:.3f}" for k, (a, b, c) in row.items()))
