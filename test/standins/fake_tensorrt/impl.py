"""The stand-in TensorRT's classes (wrapped per version by :func:`standins.fake_tensorrt.make_tensorrt`)."""

from __future__ import annotations

import hashlib
import json
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from standins.fake_cuda import FakeCudaError, FakeGpu

MAGIC = b"FAKETRT\x01"
NP_TYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "BOOL": np.bool_,
            "UINT8": np.uint8, "INT64": np.int64}
_ONNX_TYPES = {1: "FLOAT", 10: "HALF", 3: "INT8", 6: "INT32", 9: "BOOL", 2: "UINT8", 7: "INT64"}
#: highest ONNX opset each major's parser takes
MAX_OPSET = {8: 17, 10: 20, 11: 23}
LAYER_TYPES = {"Conv": "CaskConvolution", "ConvTranspose": "CaskDeconvolution", "Gemm": "CaskGemmConvolution",
               "MatMul": "CaskGemmMatrixMultiply", "Softmax": "CaskSoftMaxV2", "LeakyRelu": "PointWiseV2",
               "LayerNormalization": "Normalization", "QuantizeLinear": "Scale", "DequantizeLinear": "Scale"}


@dataclass
class Context:
    """State shared by one stand-in module's objects."""

    version: str
    major: int
    gpu: FakeGpu
    enums: dict[str, Any]
    sev: dict[str, Any]
    accessed: set[str]
    classes: dict[str, type] = field(default_factory=dict)
    engines_built: int = 0

    def new(self, cls: str, *args: Any) -> Any:
        return self.classes[cls](*args)


def _log(logger: Any, ctx: Context, severity: str, msg: str) -> None:
    if logger is not None:
        logger.log(ctx.sev[severity], msg)


class IHostMemory(bytes):
    @property
    def nbytes(self) -> int:
        return len(self)


class INetworkDefinition:
    _ctx: Context

    def __init__(self, flags: int):
        ctx = self._ctx
        explicit = ctx.enums["NetworkDefinitionCreationFlag"]
        members = explicit.__members__
        self._strongly_typed = ctx.major >= 11 or bool(
            "STRONGLY_TYPED" in members and flags & (1 << int(members["STRONGLY_TYPED"])))
        self._explicit_batch = ctx.major >= 10 or bool(flags & (1 << int(members["EXPLICIT_BATCH"])))
        self._model: onnx.ModelProto | None = None
        self._io: list[dict[str, Any]] = []
        self._has_qdq = False

    @property
    def num_inputs(self) -> int:
        return sum(1 for t in self._io if t["mode"] == "INPUT")

    @property
    def num_outputs(self) -> int:
        return sum(1 for t in self._io if t["mode"] == "OUTPUT")

    @property
    def num_layers(self) -> int:
        return len(self._model.graph.node) if self._model is not None else 0


class ParserError:
    def __init__(self, text: str):
        self._text = text

    def desc(self) -> str:
        return self._text

    def code(self) -> int:
        return 1


def _initializer(graph: onnx.GraphProto, name: str) -> np.ndarray | None:
    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return numpy_helper.to_array(node.attribute[0].t)
    return None


class OnnxParser:
    _ctx: Context

    def __init__(self, network: Any, logger: Any):
        self._network, self._logger, self._errors = network, logger, []

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> Any:
        return self._ctx.new("ParserError", self._errors[index])

    def _fail(self, text: str) -> bool:
        self._errors.append(text)
        _log(self._logger, self._ctx, "ERROR", f"ModelImporter: {text}")
        return False

    def parse(self, model: bytes, path: str | None = None) -> bool:
        ctx, net = self._ctx, self._network
        if not net._explicit_batch:
            return self._fail("This version of TensorRT only supports input networks with explicit batch "
                              "dimension. Create the network with NetworkDefinitionCreationFlag::kEXPLICIT_BATCH")
        try:
            proto = onnx.load_from_string(bytes(model))
        except Exception as exc:  # noqa: BLE001 - the parser reports any decoding failure
            return self._fail(f"failed to parse ONNX model: {exc}")
        opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
        if opset > MAX_OPSET[ctx.major]:
            return self._fail(f"opset {opset} is newer than this parser supports ({MAX_OPSET[ctx.major]})")
        graph = proto.graph
        for node in graph.node:
            if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
                net._has_qdq = True
                if len(node.input) > 2 and node.input[2]:
                    zp = _initializer(graph, node.input[2])
                    if zp is None or zp.dtype != np.int8:
                        return self._fail(f"{node.name}: TensorRT supports only INT8 quantization (zero point type "
                                          f"{None if zp is None else zp.dtype})")
                    if np.any(zp != 0):
                        return self._fail(f"{node.name}: TensorRT only supports symmetric quantization; the zero "
                                          f"point must be 0")
        inits = {i.name for i in graph.initializer}
        io = []
        for mode, values in (("INPUT", [v for v in graph.input if v.name not in inits]), ("OUTPUT", graph.output)):
            for v in values:
                dims = [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]
                io.append({"name": v.name, "mode": mode, "dtype": _ONNX_TYPES[v.type.tensor_type.elem_type],
                           "shape": dims})
        net._model, net._io = proto, io
        return True


class ITimingCache:
    _ctx: Context

    def __init__(self, entries: int):
        self._entries = entries

    def serialize(self) -> Any:
        return self._ctx.new("IHostMemory", b"FAKETC|" + self._ctx.version.encode() + b"|" + str(self._entries).encode())


class IBuilderConfig:
    _ctx: Context

    def __init__(self) -> None:
        self._flags: set[str] = set()
        self._level = 3
        self._aux = -1
        self._verbosity = self._ctx.enums["ProfilingVerbosity"].__members__["LAYER_NAMES_ONLY"]
        self._timing: Any = None
        self._pools: dict[Any, int] = {}

    def set_flag(self, flag: Any) -> None:
        self._flags.add(flag.name)

    def clear_flag(self, flag: Any) -> None:
        self._flags.discard(flag.name)

    def get_flag(self, flag: Any) -> bool:
        return flag.name in self._flags

    @property
    def builder_optimization_level(self) -> int:
        return self._level

    @builder_optimization_level.setter
    def builder_optimization_level(self, value: int) -> None:
        if not 0 <= int(value) <= 5:
            raise ValueError("builder_optimization_level must be in [0, 5]")
        self._level = int(value)

    @property
    def max_aux_streams(self) -> int:
        return self._aux

    @max_aux_streams.setter
    def max_aux_streams(self, value: int) -> None:
        self._aux = int(value)

    @property
    def profiling_verbosity(self) -> Any:
        return self._verbosity

    @profiling_verbosity.setter
    def profiling_verbosity(self, value: Any) -> None:
        self._verbosity = value

    @property
    def int8_calibrator(self) -> Any:
        return None

    @property
    def max_workspace_size(self) -> int:
        return 0

    def set_memory_pool_limit(self, pool: Any, size: int) -> None:
        self._pools[pool.name] = int(size)

    def create_timing_cache(self, serialized: bytes) -> Any:
        data = bytes(serialized)
        entries = 0
        if data:
            parts = data.split(b"|")
            if len(parts) != 3 or parts[0] != b"FAKETC" or parts[1] != self._ctx.version.encode():
                return None
            entries = int(parts[2])
        return self._ctx.new("ITimingCache", entries)

    def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
        if cache is None:
            raise TypeError("set_timing_cache(): incompatible function arguments (cache is None)")
        self._timing = cache
        return True

    def get_timing_cache(self) -> Any:
        return self._timing


class Builder:
    _ctx: Context

    def __init__(self, logger: Any):
        self._logger = logger

    def create_network(self, flags: int = 0) -> Any:
        return self._ctx.new("INetworkDefinition", int(flags))

    def create_builder_config(self) -> Any:
        return self._ctx.new("IBuilderConfig")

    @property
    def platform_has_fast_fp16(self) -> bool:
        return True

    @property
    def platform_has_fast_int8(self) -> bool:
        return True

    def build_engine(self, network: Any, config: Any) -> Any:
        raise NotImplementedError("the stand-in implements build_serialized_network only")

    def build_serialized_network(self, network: Any, config: Any) -> Any:
        ctx = self._ctx
        fail = lambda msg: _log(self._logger, ctx, "ERROR", msg)  # noqa: E731
        if network._model is None:
            fail("network has no layers (was the ONNX parsed?)")
            return None
        precision_flags = config._flags & {"FP16", "INT8"}
        if network._strongly_typed and precision_flags:
            fail(f"Error Code 2: Internal Error (strongly typed networks do not support builder precision flags "
                 f"{sorted(precision_flags)})")
            return None
        if network._has_qdq and not network._strongly_typed and "INT8" not in config._flags:
            fail("Error Code 4: Network has Q/DQ layers but BuilderFlag.INT8 is not set")
            return None
        if config._timing is not None:
            config._timing._entries += len(network._model.graph.node)
        header = json.dumps({"version": ctx.version, "io": network._io, "flags": sorted(config._flags),
                             "strongly_typed": network._strongly_typed,
                             "verbosity": config._verbosity.name}).encode()
        body = network._model.SerializeToString()
        payload = MAGIC + struct.pack("<II", len(header), len(body)) + header + body
        ctx.engines_built += 1
        return ctx.new("IHostMemory", payload + hashlib.sha256(payload).digest())


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
                    raw = gpu.device_view(bound[name], engine._nbytes(name))
                    feed[name] = raw.view(NP_TYPES[t["dtype"]]).reshape(t["shape"]).copy()
            values = engine._session.run(engine._outputs, feed)
            for name, value in zip(engine._outputs, values):
                t = engine._io[name]
                out = gpu.device_view(bound[name], engine._nbytes(name))
                out[:] = np.ascontiguousarray(value, NP_TYPES[t["dtype"]]).reshape(-1).view(np.uint8)
            if profiler is not None:
                rows = engine._layers()
                ms = (time.perf_counter() - started) * 1e3 / max(len(rows), 1)
                for row in rows:
                    profiler.report_layer_time(row["Name"], ms)

        gpu.enqueue(stream, run)
        return True
