"""The stand-ins are strict: they fail the bugs a GPU would punish (so the runner tests can fail)."""

from __future__ import annotations

import numpy as np
import pytest

from eipl_trt.paths import resolve_model
from eipl_trt.runners.tensorrt import TrtRunner
from eipl_trt.runners.tensorrt.cuda import CudaError, CudaPython, host_view
from standins.fake_cuda import FakeGpu, make_cudart
from standins.install import install
from trt_helpers import episode


@pytest.fixture()
def cuda():
    gpu = FakeGpu()
    return CudaPython(make_cudart(gpu)), gpu


def test_copies_run_only_at_sync(cuda):
    c, _ = cuda
    host, dev, back = c.malloc_host(1024), c.malloc(1024), c.malloc_host(1024)
    src, dst = host_view(host, 1024), host_view(back, 1024)
    src[:] = 7
    dst[:] = 0
    stream = c.stream_create()
    c.h2d(dev, host, 1024, stream)
    c.d2h(back, dev, 1024, stream)
    assert not dst.any()  # stale before the sync
    c.stream_sync(stream)
    assert (dst == 7).all()


def test_device_memory_starts_as_garbage_and_default_stream_is_refused(cuda):
    c, gpu = cuda
    dev, back = c.malloc(8), c.malloc_host(8)
    stream = c.stream_create()
    c.d2h(back, dev, 8, stream)
    c.stream_sync(stream)
    assert np.isnan(host_view(back, 8).view(np.float32)).all()
    with pytest.raises(CudaError, match="cudaErrorInvalidResourceHandle"):
        c.h2d(dev, back, 8, 0)


def test_pageable_memory_is_refused_for_async_copies(cuda):
    c, _ = cuda
    pageable = np.zeros(64, np.uint8)
    with pytest.raises(CudaError, match="cudaErrorInvalidValue"):
        c.h2d(c.malloc(64), pageable.ctypes.data, 64, c.stream_create())


def test_events_time_queued_work(cuda):
    c, _ = cuda
    stream = c.stream_create()
    a, b = c.event_create(), c.event_create()
    c.event_record(a, stream)
    c.event_record(b, stream)
    with pytest.raises(CudaError, match="cudaErrorNotReady"):
        c.event_elapsed_ms(a, b)
    c.stream_sync(stream)
    assert c.event_elapsed_ms(a, b) >= 0


def test_graph_replays_its_captured_addresses(cuda):
    c, _ = cuda
    stream = c.stream_create()
    h, d1, d2 = c.malloc_host(256), c.malloc(256), c.malloc(256)
    host_view(h, 256)[:] = 1
    c.capture_begin(stream)
    c.h2d(d1, h, 256, stream)
    graph = c.capture_end(stream)
    host_view(h, 256)[:] = 5
    c.graph_launch(graph, stream)
    c.d2h(h, d1, 256, stream)
    c.stream_sync(stream)
    assert (host_view(h, 256) == 5).all()  # graph copied the host buffer's current bytes into d1 (baked address)
    c.d2h(h, d2, 256, stream)
    c.stream_sync(stream)
    assert not (host_view(h, 256) == 5).any()  # d2 was never written


def test_sync_inside_capture_invalidates_it(cuda):
    c, _ = cuda
    stream = c.stream_create()
    c.capture_begin(stream)
    with pytest.raises(CudaError, match="cudaErrorStreamCaptureUnsupported"):
        c.stream_sync(stream)
    with pytest.raises(CudaError, match="cudaErrorStreamCaptureInvalidated"):
        c.capture_end(stream)


def test_tensorrt_refuses_unaligned_unset_and_default_stream(monkeypatch, tmp_path):
    install(monkeypatch, "10.3.0")
    spec = resolve_model("sarnn")
    with TrtRunner(spec, cache_dir=tmp_path, cuda_graphs=False) as runner:
        ctx, dev = runner.context, runner._dev
        name = spec.inputs["image"]
        assert not ctx.set_tensor_address(name, dev["image"].ptr + 16)
        assert not ctx.set_tensor_address(name, runner._host["image"].ptr)  # host memory is not device memory
        assert not ctx.execute_async_v3(0)
        h_in, h_out = spec.inputs["state_h"], spec.outputs["state_h"]
        runner._bind_state(0)
        assert ctx.execute_async_v3(runner._handle)  # all bound, no overlap
        assert ctx.set_tensor_address(h_out, ctx.get_tensor_address(h_in))  # aliasing is legal to bind ...
        assert not ctx.execute_async_v3(runner._handle)  # ... but refused at enqueue
        fresh = runner.engine.create_execution_context()
        assert not fresh.execute_async_v3(runner._handle)  # no addresses set


def test_reading_outputs_before_the_sync_is_stale(monkeypatch, tmp_path):
    """A runner that skipped the stream sync would return the previous step's outputs."""
    install(monkeypatch, "10.3.0")
    spec = resolve_model("sarnn")
    (im1, j1), (im2, j2) = episode(spec, 2)
    with TrtRunner(spec, cache_dir=tmp_path, cuda_graphs=False) as runner:
        first = {k: v.copy() for k, v in runner.infer(im1, j1).items()}
        cuda, stream = runner._cuda, runner._stream
        sync = cuda.stream_sync
        monkeypatch.setattr(cuda, "stream_sync", lambda s: None)
        monkeypatch.setattr(cuda, "event_elapsed_ms", lambda a, b: 0.0)
        stale = {k: v.copy() for k, v in runner.infer(im2, j2).items()}
        sync(stream)
        fresh = runner._outputs
        assert all(np.array_equal(stale[k], first[k]) for k in first)
        assert not np.array_equal(fresh["joint"], first["joint"])


@pytest.mark.parametrize("version,flag", [("8.6.1", "no EXPLICIT_BATCH"), ("10.3.0", "FP16 on strongly typed")])
def test_builder_refuses_what_tensorrt_refuses(version, flag, monkeypatch):
    trt, _ = install(monkeypatch, version)
    from eipl_trt.runners.tensorrt.api import make_logger

    logger = make_logger(trt)
    builder = trt.Builder(logger)
    if flag == "no EXPLICIT_BATCH":
        parser = trt.OnnxParser(builder.create_network(0), logger)
        assert not parser.parse(resolve_model("sarnn").variant_path("fp32").read_bytes())
        assert "explicit batch" in parser.get_error(0).desc()
    else:
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        assert trt.OnnxParser(network, logger).parse(resolve_model("sarnn").variant_path("fp32").read_bytes())
        config = builder.create_builder_config()
        config.set_flag(trt.BuilderFlag.FP16)
        assert builder.build_serialized_network(network, config) is None


def test_removed_api_is_absent(monkeypatch):
    trt11, _ = install(monkeypatch, "11.4.0.106")
    assert not hasattr(trt11.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
    assert not hasattr(trt11.BuilderFlag, "FP16")
    trt8, _ = install(monkeypatch, "8.6.1")
    assert not hasattr(trt8.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
    assert not hasattr(trt8, "ExecutionContextAllocationStrategy")


def test_cuda_python_11_graph_instantiate_signature(monkeypatch):
    """cuda-python 11.x's cudaGraphInstantiate(graph, pLogBuffer, bufferSize) is not called with flags:
    the facade falls back to cudaGraphInstantiateWithFlags (a capability check, not a version check)."""
    gpu = FakeGpu()
    rt = make_cudart(gpu)

    def instantiate_11(graph, pLogBuffer, bufferSize):  # noqa: N803 - cuda-python 11.x names
        raise AssertionError("not reached")

    monkeypatch.setattr(rt, "cudaGraphInstantiate", instantiate_11)
    c = CudaPython(rt)
    stream = c.stream_create()
    h, d = c.malloc_host(256), c.malloc(256)
    c.capture_begin(stream)
    c.h2d(d, h, 256, stream)
    graph = c.capture_end(stream)
    c.graph_launch(graph, stream)
    c.stream_sync(stream)
    assert gpu.calls["cudaGraphInstantiateWithFlags"] == 1
