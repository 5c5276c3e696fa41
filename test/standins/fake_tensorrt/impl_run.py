"""The stand-in TensorRT's run side: runtime (plan loading), engine, inspector, execution context."""

from __future__ import annotations

import hashlib
import json
import struct
import time
from typing import Any

import numpy as np
import onnx

from standins.fake_cuda import FakeCudaError
from standins.fake_tensorrt.impl import LAYER_TYPES, MAGIC, NP_TYPES, Context, _log

__all__ = ["Runtime", "ICudaEngine", "EngineInspector", "IExecutionContext"]


class Runtime:
    _ctx: Context

    def __init__(self, logger: Any):
        self._logger = logger

    def deserialize_cuda_engine(self, serialized_engine: bytes) -> Any:
        ctx, data = self._ctx, bytes(serialized_engine)
        fail = lambda msg: _log(self._logger, ctx, "ERROR", msg)  # noqa: E731
        if len(data) < 48 or data[:8] != MAGIC or hashlib.sha256(data[:-32]).digest() != data[-32:]:
            fail("1: [stdArchiveReader.cpp] Error Code 1: Serialization (Serialization assertion failed: "
                 "magic tag or checksum mismatch: corrupt or truncated plan)")
            return None
        hlen, blen = struct.unpack("<II", data[8:16])
        header = json.loads(data[16:16 + hlen])
        if header["version"] != ctx.version:
            fail(f"1: [stdArchiveReader.cpp] Error Code 1: Serialization (Serialization assertion "
                 f"stdVersionRead == kSERIALIZATION_VERSION failed. Version tag does not match: plan from "
                 f"TensorRT {header['version']}, this is {ctx.version})")
            return None
        return ctx.new("ICudaEngine", header, data[16 + hlen:16 + hlen + blen])


class ICudaEngine:
    _ctx: Context

    def __init__(self, header: dict[str, Any], onnx_bytes: bytes):
        import onnxruntime as ort

        self._header, self._io = header, {t["name"]: t for t in header["io"]}
        self._names = [t["name"] for t in header["io"]]
        self._model = onnx.load_from_string(onnx_bytes)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        self._outputs = [t["name"] for t in header["io"] if t["mode"] == "OUTPUT"]

    @property
    def num_io_tensors(self) -> int:
        return len(self._names)

    @property
    def num_bindings(self) -> int:
        return len(self._names)

    @property
    def num_layers(self) -> int:
        return len(self._model.graph.node)

    @property
    def name(self) -> str:
        return self._model.graph.name

    @property
    def device_memory_size(self) -> int:
        return 1 << 20

    @property
    def device_memory_size_v2(self) -> int:
        return 1 << 20

    def get_tensor_name(self, index: int) -> str:
        return self._names[index]

    def get_tensor_mode(self, name: str) -> Any:
        t = self._io.get(name)
        return self._ctx.enums["TensorIOMode"].__members__[t["mode"] if t else "NONE"]

    def get_tensor_dtype(self, name: str) -> Any:
        return self._ctx.enums["DataType"].__members__[self._io[name]["dtype"]]

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._io[name]["shape"])

    def _nbytes(self, name: str) -> int:
        t = self._io[name]
        return int(np.prod(t["shape"])) * np.dtype(NP_TYPES[t["dtype"]]).itemsize

    def create_execution_context(self, *args: Any) -> Any:
        if args and self._ctx.major < 10:
            raise TypeError("create_execution_context() takes no arguments in TensorRT 8.6")
        return self._ctx.new("IExecutionContext", self)

    def create_execution_context_without_device_memory(self) -> Any:
        return self._ctx.new("IExecutionContext", self)

    def create_engine_inspector(self) -> Any:
        return self._ctx.new("EngineInspector", self)

    def _layers(self) -> list[dict[str, Any]]:
        """Per-layer rows like TensorRT's DETAILED JSON (one per ONNX node; Q/DQ neighbours run in INT8)."""
        rows = []
        for i, node in enumerate(self._model.graph.node):
            if node.op_type in ("Constant", "Identity"):
                continue
            rows.append({"Name": node.name or f"layer{i}", "LayerType": LAYER_TYPES.get(node.op_type, "PointWiseV2"),
                         "Inputs": [{"Name": n, "Format/Datatype": "Row major linear FP32"} for n in node.input[:1]],
                         "Outputs": [{"Name": n, "Format/Datatype": "Row major linear FP32"} for n in node.output[:1]],
                         "TacticName": f"fake_{node.op_type.lower()}_kernel", "TacticValue": hex(i)})
        return rows


class EngineInspector:
    _ctx: Context

    def __init__(self, engine: Any):
        self._engine, self._exec = engine, None

    @property
    def execution_context(self) -> Any:
        return self._exec

    @execution_context.setter
    def execution_context(self, value: Any) -> None:
        self._exec = value

    def get_engine_information(self, format: Any) -> str:  # noqa: A002 - TensorRT's name
        layers = self._engine._layers()
        if format.name == "JSON":
            return json.dumps({"Layers": layers, "Bindings": list(self._engine._names)})
        return "\n".join(row["Name"] for row in layers)

    def get_layer_information(self, layer: int, format: Any) -> str:  # noqa: A002
        return json.dumps(self._engine._layers()[layer])


class IExecutionContext:
    _ctx: Context

    def __init__(self, engine: Any):
        self._engine = engine
        self._addresses: dict[str, int] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._profiler: Any = None
        self._enqueues = 0

    @property
    def profiler(self) -> Any:
        return self._profiler

    @profiler.setter
    def profiler(self, value: Any) -> None:
        self._profiler = value

    @property
    def enqueue_emits_profile(self) -> bool:
        return True

    def report_to_profiler(self) -> bool:
        return True

    def _error(self, msg: str) -> bool:
        print(f"[stand-in TensorRT {self._ctx.version}] ERROR: {msg}")
        return False

    def set_tensor_address(self, name: str, memory: int) -> bool:
        if name not in self._engine._io:
            return self._error(f"setTensorAddress: no tensor named {name!r}")
        if int(memory) % 256:
            return self._error(f"setTensorAddress: address {int(memory):#x} of {name!r} is not 256-byte aligned")
        try:
            self._ctx.gpu.device_view(int(memory), self._engine._nbytes(name))
        except FakeCudaError as exc:
            return self._error(f"setTensorAddress: {name!r}: {exc}")
        self._addresses[name] = int(memory)
        return True

    def get_tensor_address(self, name: str) -> int:
        return self._addresses.get(name, 0)

    def set_input_shape(self, name: str, shape: Any) -> bool:
        t = self._engine._io.get(name)
        if t is None or t["mode"] != "INPUT":
            return self._error(f"setInputShape: {name!r} is not an input tensor of this engine")
        dims, want = tuple(int(d) for d in shape), tuple(t["shape"])
        if len(dims) != len(want) or any(d < 0 for d in dims) or any(w >= 0 and w != d for w, d in zip(want, dims)):
            return self._error(f"setInputShape: {name!r}: shape {dims} does not match the engine's dimensions {want} "
                               f"(static dimension mismatch)")
        self._shapes[name] = dims
        return True

    def execute_async_v2(self, bindings: Any, stream_handle: int) -> bool:
        raise NotImplementedError("the stand-in implements execute_async_v3 only")

    def execute_async_v3(self, stream_handle: int) -> bool:
        gpu, engine = self._ctx.gpu, self._engine
        try:
            stream = gpu.stream(stream_handle)
        except FakeCudaError as exc:
            return self._error(f"enqueueV3: {exc}")
        missing = [n for n in engine._names if n not in self._addresses]
        if missing:
            return self._error(f"enqueueV3: tensor addresses not set for {missing}")
        unshaped = [n for n, t in engine._io.items()
                    if t["mode"] == "INPUT" and any(d < 0 for d in t["shape"]) and n not in self._shapes]
        if unshaped:
            return self._error(f"enqueueV3: input shapes not specified for {unshaped} (call set_input_shape)")
        spans = sorted((addr, addr + engine._nbytes(n), n) for n, addr in self._addresses.items())
        for (a0, a1, n0), (b0, _b1, n1) in zip(spans, spans[1:]):
            if b0 < a1:  # in/out aliasing within one enqueue is undefined in TensorRT; our design forbids it
                return self._error(f"enqueueV3: tensors {n0!r} and {n1!r} overlap in memory")
        bound = dict(self._addresses)  # baked in now: a captured graph replays these
        profiler = self._profiler
        self._enqueues += 1

        def run() -> None:
            if gpu.noop_compute:
                return
            started = time.perf_counter()
            feed = {}
            for name, t in engine._io.items():
                if t["mode"] == "INPUT":
                    raw = gpu.memory("device", bound[name], engine._nbytes(name))  # freed: cudaErrorIllegalAddress
                    feed[name] = raw.view(NP_TYPES[t["dtype"]]).reshape(t["shape"]).copy()
            values = engine._session.run(engine._outputs, feed)
            for name, value in zip(engine._outputs, values):
                t = engine._io[name]
                out = gpu.memory("device", bound[name], engine._nbytes(name))
                out[:] = np.ascontiguousarray(value, NP_TYPES[t["dtype"]]).reshape(-1).view(np.uint8)
            if profiler is not None:
                rows = engine._layers()
                ms = (time.perf_counter() - started) * 1e3 / max(len(rows), 1)
                for row in rows:
                    profiler.report_layer_time(row["Name"], ms)

        gpu.enqueue(stream, run)
        return True
