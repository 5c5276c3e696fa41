"""Build a serialized TensorRT engine from one ONNX variant of a model.

TensorRT with strongly typed networks (>= 9; always on in 11): the network is strongly typed and
the precision comes from the ONNX variant itself (an fp16 file, or an int8 file with Q/DQ
nodes); no precision flags are set. TensorRT 8.6: an explicit-batch network with the ``FP16``
flag for the fp16 variant and ``INT8`` + ``FP16`` for the Q/DQ int8 variant.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eipl_trt.errors import BackendUnavailableError, ModelError
from eipl_trt.runners.tensorrt.api import make_logger, strongly_typed_available

__all__ = ["BuildOptions", "build_plan", "network_mode"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildOptions:
    """Builder settings that change the engine (all part of the cache key).

    Attributes:
        optimization_level: ``builder_optimization_level`` (0-5; TensorRT's default is 3).
        max_aux_streams: auxiliary streams TensorRT may use; 0 for a small sequential net.
        workspace_mib: workspace memory-pool limit (MiB); 0 = TensorRT's default.
    """

    optimization_level: int = 3
    max_aux_streams: int = 0
    workspace_mib: int = 0
    extra: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the cache key."""
        return {"optimization_level": self.optimization_level, "max_aux_streams": self.max_aux_streams,
                "workspace_mib": self.workspace_mib, **dict(self.extra)}


def network_mode(trt: Any, precision: str) -> dict[str, Any]:
    """How the network is built for ``precision`` here: ``strongly_typed`` and the builder ``flags``."""
    if strongly_typed_available(trt):
        return {"strongly_typed": True, "flags": []}
    flags = {"fp32": [], "fp16": ["FP16"], "int8": ["INT8", "FP16"]}[precision]
    return {"strongly_typed": False, "flags": flags}


def _parse(trt: Any, builder: Any, logger: Any, onnx_path: Path, strongly: bool) -> tuple[Any, Any]:
    if strongly:
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    else:
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    ok = parser.parse(onnx_path.read_bytes())
    if not ok:
        errors = [str(parser.get_error(i).desc()) for i in range(parser.num_errors)]
        raise ModelError(
            f"TensorRT's ONNX parser rejects {onnx_path}: {'; '.join(errors) or 'no reason given'}. "
            f"Re-create this variant for TensorRT (int8 must be symmetric Q/DQ with zero points 0), or "
            f"use another precision."
        )
    return network, parser


def build_plan(trt: Any, onnx_path: Path, precision: str, options: BuildOptions,
               timing_cache: bytes = b"") -> tuple[bytes, bytes, float]:
    """Build an engine; return ``(plan bytes, timing cache bytes, build seconds)``.

    Raises:
        ModelError: the ONNX file is rejected by the parser or the builder.
        BackendUnavailableError: this TensorRT cannot build the requested precision.
    """
    started = time.perf_counter()
    logger = make_logger(trt)
    logger.errors.clear()
    builder = trt.Builder(logger)
    mode = network_mode(trt, precision)
    network, _parser = _parse(trt, builder, logger, onnx_path, mode["strongly_typed"])
    config = builder.create_builder_config()
    if hasattr(config, "builder_optimization_level"):
        config.builder_optimization_level = int(options.optimization_level)
    if hasattr(config, "max_aux_streams"):
        config.max_aux_streams = int(options.max_aux_streams)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if options.workspace_mib > 0:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    if hasattr(trt.BuilderFlag, "TF32"):
        # TF32 is on by default and rounds fp32 matmul/conv inputs to 10 mantissa bits on Ampere and later:
        # fp32 must mean IEEE single precision, and the layers fp16/int8 engines keep in float stay fp32 too
        config.clear_flag(trt.BuilderFlag.TF32)
    for flag in mode["flags"]:
        if not hasattr(trt.BuilderFlag, flag):
            raise BackendUnavailableError(f"this TensorRT has no BuilderFlag.{flag}; it cannot build {precision}")
        config.set_flag(getattr(trt.BuilderFlag, flag))
    cache = config.create_timing_cache(timing_cache or b"")
    config.set_timing_cache(cache, False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ModelError(
            f"TensorRT could not build an engine from {onnx_path} ({precision}): "
            f"{'; '.join(logger.errors) or 'see the TensorRT log above'}"
        )
    new_cache = bytes(config.get_timing_cache().serialize())
    seconds = time.perf_counter() - started
    log.info("built %s engine from %s in %.1f s", precision, onnx_path.name, seconds)
    return bytes(plan), new_cache, seconds
