"""Install the stand-ins in ``sys.modules`` for one test (``tensorrt`` and ``cuda.bindings.runtime``)."""

from __future__ import annotations

import sys
import types
from typing import Any

from standins.fake_cuda import FakeGpu, make_cudart
from standins.fake_tensorrt import make_tensorrt


def install(monkeypatch: Any, version: str | None, gpu: FakeGpu | None = None) -> tuple[Any, FakeGpu]:
    """Make ``import tensorrt`` give the stand-in of ``version`` (``None``: no tensorrt at all) and
    ``cuda.bindings.runtime`` the fake CUDA runtime on ``gpu``; return ``(trt module or None, gpu)``."""
    gpu = gpu or FakeGpu()
    cudart = make_cudart(gpu)
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = cudart  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    if version is None:
        monkeypatch.setitem(sys.modules, "tensorrt", None)  # import raises ImportError
        return None, gpu
    trt = make_tensorrt(version, gpu)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt, gpu


def install_pycuda(monkeypatch: Any, version: str, gpu: FakeGpu | None = None) -> tuple[Any, FakeGpu, Any]:
    """The TensorRT stand-in with the pycuda stand-in and no cuda-python (as on some robot images)."""
    from standins.fake_pycuda import make_pycuda_driver

    trt, gpu = install(monkeypatch, version, gpu)
    for name in ("cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)
    drv = make_pycuda_driver(gpu)
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = drv  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", drv)
    monkeypatch.delitem(sys.modules, "eipl_trt.runners.tensorrt.cuda_pycuda", raising=False)
    return trt, gpu, drv
