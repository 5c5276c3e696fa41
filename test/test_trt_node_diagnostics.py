"""The node's /diagnostics with the TensorRT runner (stand-ins, no DDS): version, engine cache, CUDA graphs."""

from __future__ import annotations

import pytest

pytest.importorskip("diagnostic_msgs.msg")

from builtin_interfaces.msg import Time as TimeMsg  # noqa: E402

from eipl_trt.ros.diagnostics import DiagnosticsReporter  # noqa: E402
from eipl_trt.ros.params import NodeConfig  # noqa: E402
from eipl_trt.ros.power_source import PowerReading  # noqa: E402
from eipl_trt.ros.runtime import NodeRuntime  # noqa: E402
from standins.install import install  # noqa: E402


def inference_values(cfg: NodeConfig) -> dict[str, str]:
    """Open the node runtime for ``cfg`` and return its inference diagnostics as key -> value."""
    rt = NodeRuntime.open(cfg)
    try:
        msg = DiagnosticsReporter("eipl_trt").build(TimeMsg(), 1.0, "active", rt.cfg, rt, "", None, "",
                                                    PowerReading(None, None, "none"))
    finally:
        rt.predictor.close()
    return {kv.key: kv.value for kv in msg.status[0].values}


def test_diagnostics_show_engine_and_graphs(monkeypatch, tmp_path):
    monkeypatch.setenv("EIPL_TRT_ENGINE_CACHE", str(tmp_path))
    install(monkeypatch, "10.13.0.35")
    values = {}
    for expected in ("built in", "cache hit"):
        values = inference_values(NodeConfig.from_values({"model": "sarnn", "backend": "auto"}))
        assert values["backend"] == "tensorrt" and values["engine"].startswith(expected)
    assert values["tensorrt"] == "10.13.0.35" and values["cuda_graphs"].startswith("on")


def test_node_parameters_reach_the_tensorrt_runner(monkeypatch, tmp_path):
    """engine_cache_dir and cuda_graphs are node parameters (the environment variables are only defaults)."""
    monkeypatch.setenv("EIPL_TRT_ENGINE_CACHE", str(tmp_path / "from_env"))
    install(monkeypatch, "10.13.0.35")
    cache = tmp_path / "from_param"
    cfg = NodeConfig.from_values({"model": "sarnn", "backend": "tensorrt", "engine_cache_dir": str(cache),
                                  "cuda_graphs": False})
    values = inference_values(cfg)
    assert values["cuda_graphs"].startswith("off")
    assert any(cache.rglob("*")) and not (tmp_path / "from_env").exists()
