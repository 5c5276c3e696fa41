"""The stand-in TensorRT's shared pieces and its classes (wrapped per version by
:func:`standins.fake_tensorrt.make_tensorrt`; build side in :mod:`.impl_build`, run side in :mod:`.impl_run`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from standins.fake_cuda import FakeGpu

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
    #: the BuilderConfig flags of every engine built (a test reads what an fp32 build asked for)
    built_flags: list[list[str]] = field(default_factory=list)

    def new(self, cls: str, *args: Any) -> Any:
        return self.classes[cls](*args)


def _log(logger: Any, ctx: Context, severity: str, msg: str) -> None:
    if logger is not None:
        logger.log(ctx.sev[severity], msg)


class IHostMemory(bytes):
    @property
    def nbytes(self) -> int:
        return len(self)


# the classes live in two modules; make_tensorrt looks them up here
from standins.fake_tensorrt.impl_build import (  # noqa: E402
    Builder, IBuilderConfig, INetworkDefinition, ITimingCache, OnnxParser, ParserError)
from standins.fake_tensorrt.impl_run import EngineInspector, ICudaEngine, IExecutionContext, Runtime  # noqa: E402

__all__ = ["Context", "IHostMemory", "NP_TYPES", "Builder", "IBuilderConfig", "INetworkDefinition", "ITimingCache",
           "OnnxParser", "ParserError", "EngineInspector", "ICudaEngine", "IExecutionContext", "Runtime"]

