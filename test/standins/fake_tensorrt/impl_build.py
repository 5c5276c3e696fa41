"""The stand-in TensorRT's build side: network, ONNX parser, builder config, timing cache, builder."""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from standins.fake_tensorrt.impl import _ONNX_TYPES, MAGIC, MAX_OPSET, Context, _log

__all__ = ["INetworkDefinition", "ParserError", "OnnxParser", "ITimingCache", "IBuilderConfig", "Builder"]

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
        self._flags: set[str] = {"TF32"}  # TensorRT enables TF32 by default (BuilderFlag.TF32 docs)
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
        ctx.built_flags.append(sorted(config._flags))
        return ctx.new("IHostMemory", payload + hashlib.sha256(payload).digest())
