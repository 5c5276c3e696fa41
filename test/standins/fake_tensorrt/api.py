"""Which names each impersonated TensorRT version has (checked against the real bindings' strings).

Versions are keyed by major: 8 (8.6.1), 10 (10.3 / 10.13), 11 (11.4). Each entry lists the
majors a name exists in; ``test_trt_names.py`` checks every name here against
``test/data/trt_api/tensorrt-<version>.txt``, and that a name the lists lack in a version is
also absent from the stand-in of that version.
"""

from __future__ import annotations

ALL = frozenset({8, 10, 11})
V8 = frozenset({8})
V8_10 = frozenset({8, 10})
V10_11 = frozenset({10, 11})

#: class -> {attribute -> majors}
MEMBERS: dict[str, dict[str, frozenset[int]]] = {
    "Builder": {"create_network": ALL, "create_builder_config": ALL, "build_serialized_network": ALL,
                "platform_has_fast_fp16": V8_10, "platform_has_fast_int8": V8_10, "build_engine": V8},
    "INetworkDefinition": {"num_inputs": ALL, "num_outputs": ALL, "num_layers": ALL},
    "OnnxParser": {"parse": ALL, "num_errors": ALL, "get_error": ALL},
    "ParserError": {"desc": ALL, "code": ALL},
    "IBuilderConfig": {"set_flag": ALL, "clear_flag": ALL, "get_flag": ALL, "builder_optimization_level": ALL,
                       "max_aux_streams": ALL, "profiling_verbosity": ALL, "create_timing_cache": ALL,
                       "set_timing_cache": ALL, "get_timing_cache": ALL, "set_memory_pool_limit": ALL,
                       "int8_calibrator": V8_10, "max_workspace_size": V8},
    "ITimingCache": {"serialize": ALL},
    "Runtime": {"deserialize_cuda_engine": ALL},
    "ICudaEngine": {"num_io_tensors": ALL, "get_tensor_name": ALL, "get_tensor_mode": ALL, "get_tensor_dtype": ALL,
                    "get_tensor_shape": ALL, "create_execution_context": ALL, "create_engine_inspector": ALL,
                    "num_layers": ALL, "name": ALL, "device_memory_size": V8_10, "device_memory_size_v2": V10_11,
                    "num_bindings": V8, "create_execution_context_without_device_memory": V8_10},
    "IExecutionContext": {"set_tensor_address": ALL, "get_tensor_address": ALL, "execute_async_v3": ALL,
                          "set_input_shape": ALL,
                          "execute_async_v2": V8, "profiler": ALL, "enqueue_emits_profile": ALL,
                          "report_to_profiler": ALL},
    "EngineInspector": {"get_engine_information": ALL, "get_layer_information": ALL, "execution_context": ALL},
    "IHostMemory": {"nbytes": ALL},
}
#: enum -> {member -> majors}
ENUMS: dict[str, dict[str, frozenset[int]]] = {
    "DataType": {"FLOAT": ALL, "HALF": ALL, "INT8": ALL, "INT32": ALL, "BOOL": ALL, "UINT8": ALL, "INT64": V10_11},
    "TensorIOMode": {"NONE": ALL, "INPUT": ALL, "OUTPUT": ALL},
    "NetworkDefinitionCreationFlag": {"EXPLICIT_BATCH": V8_10, "STRONGLY_TYPED": V10_11},
    "BuilderFlag": {"FP16": V8_10, "INT8": V8_10, "OBEY_PRECISION_CONSTRAINTS": V8_10, "DEBUG": ALL,
                    "REFIT": ALL, "VERSION_COMPATIBLE": ALL, "TF32": ALL},
    "ProfilingVerbosity": {"LAYER_NAMES_ONLY": ALL, "NONE": ALL, "DETAILED": ALL},
    "LayerInformationFormat": {"ONELINE": ALL, "JSON": ALL},
    "MemoryPoolType": {"WORKSPACE": ALL},
    "ExecutionContextAllocationStrategy": {"STATIC": V10_11, "ON_PROFILE_CHANGE": V10_11, "USER_MANAGED": V10_11},
}
#: logger severities (members of ILogger / Logger)
SEVERITIES = ("INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE")
#: module-level names
MODULE: dict[str, frozenset[int]] = {
    "Builder": ALL, "OnnxParser": ALL, "Runtime": ALL, "ILogger": ALL, "Logger": ALL, "IProfiler": ALL,
    "nptype": ALL, "__version__": ALL, "ExecutionContextAllocationStrategy": V10_11,
    **{name: ALL for name in ENUMS if name != "ExecutionContextAllocationStrategy"},
}
#: methods a user subclass implements (callbacks TensorRT calls)
CALLBACKS = {"ILogger": ("log",), "IProfiler": ("report_layer_time",)}
