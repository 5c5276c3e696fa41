"""TrtRunner over the pycuda facade (robot images with pycuda but no cuda-python), on the stand-ins."""

from __future__ import annotations

import threading

import pytest

from eipl_trt.paths import resolve_model
from eipl_trt.runners.onnxrt import OrtRunner
from eipl_trt.runners.tensorrt import TrtRunner
from standins.install import install_pycuda
from trt_helpers import episode, max_abs_diff, rollout


@pytest.mark.parametrize("version", ["8.6.1", "10.3.0"])
def test_pycuda_parity_and_executor_threads(version, monkeypatch, tmp_path):
    _, _, drv = install_pycuda(monkeypatch, version)
    spec = resolve_model("sarnn")
    inputs = episode(spec, 12, seed=4)
    with OrtRunner(spec, graph_rewrites=False) as ort:  # the exported graph, as the stand-in runs it
        expected = rollout(ort, inputs)
    with TrtRunner(spec, cache_dir=tmp_path) as runner:
        assert runner.diagnostics()["cuda"] == "pycuda"
        assert runner.graph_status == "off (pycuda cannot capture graphs)"
        got = rollout(runner, inputs[:6])
        result: dict = {}

        def executor_thread() -> None:  # as an rclpy executor thread would step the runner
            try:
                result["outs"] = rollout(runner, inputs[6:])
            except Exception as exc:  # noqa: BLE001 - reported below
                result["error"] = exc

        t = threading.Thread(target=executor_thread)
        t.start()
        t.join(30)
        assert "error" not in result, result.get("error")
        got += result["outs"]
    assert max_abs_diff(got, expected) <= 1e-5


def test_pycuda_standin_needs_a_context_per_thread(monkeypatch):
    _, _, drv = install_pycuda(monkeypatch, "10.3.0")
    errors = []
    t = threading.Thread(target=lambda: errors.append(pytest.raises(drv.LogicError, drv.mem_alloc, 16)))
    t.start()
    t.join()
    assert errors
