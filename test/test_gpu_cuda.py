"""The CUDA part of the TensorRT runner on a real NVIDIA GPU (no TensorRT needed).

Runs where cuda-python and a GPU with a driver exist: ``pytest -m cuda`` (also selected by
``pytest -m gpu``). Skipped elsewhere. Checks the facade the runner uses: pinned buffers, async
copies on a non-default stream, events, and CUDA-graph capture/replay of copies and a memset.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from eipl_trt.runners.tensorrt.cuda import ALIGNMENT, CudaError, host_view, load_cuda

pytestmark = [pytest.mark.gpu, pytest.mark.cuda]


@pytest.fixture(scope="module")
def cuda():
    pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is not installed")
    try:
        return load_cuda("cuda-python")
    except CudaError as exc:
        pytest.skip(f"no usable NVIDIA GPU here: {exc}")


def test_device_and_alignment(cuda):
    name, cc = cuda.device()
    print(f"GPU {name}, compute capability {cc[0]}.{cc[1]}, facade {cuda.name}")
    ptr = cuda.malloc(1000)
    assert ptr % ALIGNMENT == 0
    cuda.free(ptr)


def test_async_round_trip_and_events(cuda):
    n = 1 << 20
    src, dst, dev = cuda.malloc_host(n), cuda.malloc_host(n), cuda.malloc(n)
    a, b = host_view(src, n), host_view(dst, n)
    a[:] = np.arange(n, dtype=np.uint32).view(np.uint8)[:n]
    b[:] = 0
    stream = cuda.stream_create()
    assert cuda.stream_handle(stream) != 0
    start, end = cuda.event_create(), cuda.event_create()
    t0 = time.perf_counter()
    cuda.event_record(start, stream)
    cuda.h2d(dev, src, n, stream)
    cuda.d2h(dst, dev, n, stream)
    cuda.event_record(end, stream)
    cuda.stream_sync(stream)
    wall_ms = (time.perf_counter() - t0) * 1e3
    assert np.array_equal(a, b)
    ms = cuda.event_elapsed_ms(start, end)
    print(f"1 MiB H2D + D2H on a pinned buffer: {ms:.3f} ms (wall clock {wall_ms:.3f} ms)")
    # the copies took GPU time, all of it between the host's enqueue and the sync's return (events: ~0.5 us)
    assert 0 < ms <= wall_ms + 1e-2
    for ev in (start, end):
        cuda.event_destroy(ev)
    cuda.stream_destroy(stream)
    cuda.free(dev)
    cuda.free_host(src)
    cuda.free_host(dst)


def test_graph_capture_and_replay_of_copies(cuda):
    n = 4096
    h_in, h_out, d = cuda.malloc_host(n), cuda.malloc_host(n), cuda.malloc(n)
    stream = cuda.stream_create()
    cuda.capture_begin(stream)
    cuda.h2d(d, h_in, n, stream)
    cuda.d2h(h_out, d, n, stream)
    graph = cuda.capture_end(stream)
    for value in (3, 9):
        host_view(h_in, n)[:] = value
        cuda.graph_launch(graph, stream)
        cuda.stream_sync(stream)
        assert (host_view(h_out, n) == value).all()
    cuda.graph_destroy(graph)


def test_graph_with_a_memset_kernel(cuda):
    rt = cuda.rt
    n = 1024
    h_out, d = cuda.malloc_host(n), cuda.malloc(n)
    stream = cuda.stream_create()
    cuda.capture_begin(stream)
    err = rt.cudaMemsetAsync(d, 0x2A, n, stream)[0]
    assert err == rt.cudaError_t.cudaSuccess
    cuda.d2h(h_out, d, n, stream)
    graph = cuda.capture_end(stream)
    host_view(h_out, n)[:] = 0
    cuda.graph_launch(graph, stream)
    cuda.stream_sync(stream)
    assert (host_view(h_out, n) == 0x2A).all()
