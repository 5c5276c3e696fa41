"""The stand-ins are strict: they fail the bugs a GPU would punish (so the runner tests can fail)."""

from __future__ import annotations

import time

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
    """Events time the work queued between them, when it runs (at the sync here): not ready before it."""
    c, _ = cuda
    stream = c.stream_create()
    n = 8 << 20
    h, d = c.malloc_host(n), c.malloc(n)
    a, b = c.event_create(), c.event_create()
    c.event_record(a, stream)
    c.h2d(d, h, n, stream)
    c.event_record(b, stream)
    with pytest.raises(CudaError, match="cudaErrorNotReady"):
        c.event_elapsed_ms(a, b)
    t0 = time.perf_counter()
    c.stream_sync(stream)
    wall_ms = (time.perf_counter() - t0) * 1e3
    assert 0 < c.event_elapsed_ms(a, b) <= wall_ms  # the 8 MiB copy, timed inside the sync that ran it


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


def test_pinned_host_memory_starts_poisoned(cuda):
    """Real pinned memory holds whatever was there: a runner that reads a host buffer before writing it sees NaN."""
    c, _ = cuda
    assert np.isnan(host_view(c.malloc_host(64), 64).view(np.float32)).all()


def test_pinned_host_memory_starts_poisoned_with_pycuda(monkeypatch):
    from standins.install import install_pycuda

    install_pycuda(monkeypatch, "10.3.0")
    from eipl_trt.runners.tensorrt.cuda_pycuda import PyCuda

    c = PyCuda()
    assert np.isnan(host_view(c.malloc_host(64), 64).view(np.float32)).all()


def test_launching_a_destroyed_graph_is_refused(cuda):
    c, _ = cuda
    stream = c.stream_create()
    h, d = c.malloc_host(256), c.malloc(256)
    c.capture_begin(stream)
    c.h2d(d, h, 256, stream)
    graph = c.capture_end(stream)
    c.graph_destroy(graph)
    with pytest.raises(CudaError, match="cudaGraphLaunch failed: cudaErrorInvalidResourceHandle"):
        c.graph_launch(graph, stream)
    with pytest.raises(CudaError, match="cudaGraphExecDestroy failed: cudaErrorInvalidResourceHandle"):
        c.graph_destroy(graph)  # nor destroyed twice


@pytest.mark.parametrize("freed", ["device", "host"])
def test_replaying_a_graph_into_freed_memory_is_an_illegal_address(cuda, freed):
    """The graph bakes in its addresses; freeing them and launching it faults when the work runs (at the sync)."""
    c, _ = cuda
    stream = c.stream_create()
    h, d = c.malloc_host(256), c.malloc(256)
    c.capture_begin(stream)
    c.h2d(d, h, 256, stream)
    graph = c.capture_end(stream)
    c.graph_launch(graph, stream)
    c.stream_sync(stream)  # fine while the memory lives
    c.free(d) if freed == "device" else c.free_host(h)
    c.graph_launch(graph, stream)
    with pytest.raises(CudaError, match="cudaStreamSynchronize failed: cudaErrorIllegalAddress"):
        c.stream_sync(stream)


def test_a_queued_copy_into_freed_memory_is_an_illegal_address(cuda):
    c, _ = cuda
    stream = c.stream_create()
    h, d = c.malloc_host(256), c.malloc(256)
    c.d2h(h, d, 256, stream)
    c.free(d)
    with pytest.raises(CudaError, match="cudaErrorIllegalAddress"):
        c.stream_sync(stream)


@pytest.mark.parametrize("call", ["malloc", "malloc_host", "free"])
def test_allocating_during_capture_is_refused_and_invalidates_it(cuda, call):
    """CUDA's "potentially unsafe API calls" during a thread-local capture: cudaErrorStreamCaptureUnsupported."""
    c, _ = cuda
    stream = c.stream_create()
    spare = c.malloc(256)
    c.capture_begin(stream)
    with pytest.raises(CudaError, match="cudaErrorStreamCaptureUnsupported"):
        c.free(spare) if call == "free" else getattr(c, call)(256)
    with pytest.raises(CudaError, match="cudaStreamEndCapture failed: cudaErrorStreamCaptureInvalidated"):
        c.capture_end(stream)
    assert c.malloc(256)  # allowed again once the capture ended


def test_thread_local_capture_lets_other_threads_allocate(cuda):
    """The runner captures in thread-local mode: another runner's thread may allocate meanwhile."""
    import threading

    c, _ = cuda
    stream = c.stream_create()
    h, d = c.malloc_host(256), c.malloc(256)
    c.capture_begin(stream)
    c.h2d(d, h, 256, stream)
    got: list[int] = []
    worker = threading.Thread(target=lambda: got.append(c.malloc(256)))
    worker.start()
    worker.join()
    assert got and c.capture_end(stream) is not None


def test_host_buffer_rewritten_before_the_copy_ran_is_caught(cuda):
    """An H2D copy runs at the sync here (on a GPU: some time before it): rewriting its source in between races."""
    from standins.fake_cuda import HostBufferRace

    c, _ = cuda
    stream = c.stream_create()
    h, d = c.malloc_host(64), c.malloc(64)
    host_view(h, 64)[:] = 1
    c.h2d(d, h, 64, stream)
    host_view(h, 64)[:] = 2  # the next frame written into the buffer the copy still reads
    with pytest.raises(HostBufferRace, match="rewritten after the host-to-device copy from it was queued"):
        c.stream_sync(stream)
    # the same for a graph replay: the snapshot is taken at the launch
    host_view(h, 64)[:] = 3
    c.capture_begin(stream)
    c.h2d(d, h, 64, stream)
    graph = c.capture_end(stream)
    c.graph_launch(graph, stream)
    c.stream_sync(stream)  # unchanged since the launch: fine
    c.graph_launch(graph, stream)
    host_view(h, 64)[:] = 4
    with pytest.raises(HostBufferRace):
        c.stream_sync(stream)


def test_a_runner_that_writes_the_next_input_before_the_sync_is_caught(monkeypatch, tmp_path):
    """The runner's own step with the sync moved after the next frame's np.copyto (what a pipelining bug does)."""
    from standins.fake_cuda import HostBufferRace

    install(monkeypatch, "10.3.0")
    spec = resolve_model("sarnn")
    (im1, j1), (im2, j2) = episode(spec, 2)
    with TrtRunner(spec, cache_dir=tmp_path, cuda_graphs=False) as runner:
        cuda, stream = runner._cuda, runner._stream
        sync = cuda.stream_sync
        monkeypatch.setattr(cuda, "stream_sync", lambda s: None)
        monkeypatch.setattr(cuda, "event_elapsed_ms", lambda a, b: 0.0)
        runner.infer(im1, j1)
        np.copyto(runner._in_views[0], im2)  # the next frame lands in the pinned input before the copy ran
        with pytest.raises(HostBufferRace):
            sync(stream)


@pytest.mark.parametrize("version", ["8.6.1", "10.3.0", "10.13.0.35", "11.4.0.106"])
def test_set_input_shape_takes_the_engine_shape_and_refuses_others(version, monkeypatch, tmp_path):
    install(monkeypatch, version)
    spec = resolve_model("sarnn")
    shapes = spec.input_shapes()
    with TrtRunner(spec, cache_dir=tmp_path, cuda_graphs=False) as runner:
        ctx = runner.context
        assert ctx.set_input_shape(spec.inputs["joint"], shapes["joint"])
        assert not ctx.set_input_shape(spec.inputs["joint"], (1, shapes["joint"][1] + 1))  # static dimension mismatch
        assert not ctx.set_input_shape(spec.inputs["joint"], (shapes["joint"][1],))  # wrong rank
        assert not ctx.set_input_shape(spec.outputs["joint"], shapes["joint"])  # not an input
        assert not ctx.set_input_shape("no.such.tensor", shapes["joint"])
