"""A stand-in for the ``tensorrt`` Python module (8.6, 10.x, 11.x) that runs the ONNX with ONNX Runtime.

``make_tensorrt(version, gpu)`` returns a module with exactly the API of that TensorRT version
(:mod:`.api`, checked against the real bindings); any other public name raises
``AttributeError`` as the real module would, so ``hasattr`` capability checks see what they would
see on that version. Every public name the code under test touches is recorded in
``module.FAKE_ACCESSED`` for the names check.

Semantics it enforces (as the real TensorRT does, or as our design requires):

* 8.6 networks need ``EXPLICIT_BATCH``; Q/DQ networks need ``BuilderFlag.INT8``; strongly typed
  networks (10, 11) refuse precision flags; Q/DQ must be symmetric (int8 zero points all 0);
* plans carry the TensorRT version: another version's plan, a truncated or corrupt one
  deserializes to ``None`` with a logged error;
* ``set_tensor_address`` refuses addresses that are not 256-byte aligned device memory of the
  tensor's size; ``execute_async_v3`` refuses the default stream and unset addresses, and queues
  the inference on the stream with the addresses bound *at enqueue time* (so a captured graph
  replays with the addresses it baked in); the work runs when the fake CUDA stream is synchronized,
  and fails with ``cudaErrorIllegalAddress`` if the memory was freed meanwhile;
* ``set_input_shape`` returns False (as the real binding does) for a tensor that is not an input or a
  shape that does not match the engine's static dimensions; an engine input with a dynamic dimension
  must have its shape set before ``execute_async_v3``.
"""

from __future__ import annotations

import types
from typing import Any

from standins.fake_cuda import FakeGpu
from standins.fake_tensorrt import impl
from standins.fake_tensorrt.api import ENUMS, MEMBERS, MODULE, SEVERITIES

__all__ = ["make_tensorrt", "VERSIONS"]

#: Impersonated versions (the ones whose name lists are in test/data/trt_api).
VERSIONS = ("8.6.1", "10.3.0", "10.13.0.35", "11.4.0.106")


class _Member:
    """An enum member: compares by value, hashable, ``int()``-able, with ``name``."""

    def __init__(self, enum_name: str, name: str, value: int):
        self._enum, self.name, self.value = enum_name, name, value

    def __int__(self) -> int:
        return self.value

    def __index__(self) -> int:
        return self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Member) and other._enum == self._enum and other.value == self.value

    def __hash__(self) -> int:
        return hash((self._enum, self.value))

    def __repr__(self) -> str:
        return f"<{self._enum}.{self.name}: {self.value}>"


def make_tensorrt(version: str, gpu: FakeGpu) -> types.ModuleType:
    """The stand-in ``tensorrt`` module of ``version`` on the fake GPU ``gpu``."""
    major = int(version.split(".")[0])
    accessed: set[str] = set()
    mod = types.ModuleType("tensorrt", f"stand-in for TensorRT {version} (tests only)")

    class _Meta(type):
        def __getattribute__(cls, name: str) -> Any:
            allowed = type.__getattribute__(cls, "__dict__").get("_class_allowed")
            if allowed is not None and not name.startswith("_"):
                if name not in allowed:
                    raise AttributeError(f"type object '{cls.__name__}' has no attribute '{name}' "
                                         f"(stand-in TensorRT {version})")
                accessed.add(f"{cls.__name__}.{name}")
            return type.__getattribute__(cls, name)

    def guard(cls_name: str, base: type) -> type:
        allowed = frozenset(n for n, vs in MEMBERS.get(cls_name, {}).items() if major in vs)

        def __getattribute__(self: Any, name: str) -> Any:  # noqa: N807
            if not name.startswith("_"):
                fake_cls = object.__getattribute__(self, "_fake_cls")
                if name in fake_cls._allowed:
                    accessed.add(f"{cls_name}.{name}")
                elif not any(name in k.__dict__ for k in type(self).__mro__ if k not in fake_cls.__mro__) \
                        and name not in object.__getattribute__(self, "__dict__"):
                    raise AttributeError(f"'{cls_name}' object has no attribute '{name}' (stand-in TensorRT {version})")
            return object.__getattribute__(self, name)

        def __setattr__(self: Any, name: str, value: Any) -> None:  # noqa: N807
            if not name.startswith("_"):
                fake_cls = object.__getattribute__(self, "_fake_cls")
                if name in fake_cls._allowed:
                    accessed.add(f"{cls_name}.{name}")
                elif hasattr(base, name) or type(self) is fake_cls:
                    raise AttributeError(f"'{cls_name}' object has no attribute '{name}' (stand-in TensorRT {version})")
            object.__setattr__(self, name, value)

        cls = type(cls_name, (base,), {"_allowed": allowed, "__getattribute__": __getattribute__,
                                       "__setattr__": __setattr__, "__module__": "tensorrt"})
        cls._fake_cls = cls
        return cls

    def make_enum(name: str) -> type:
        members = {m: _Member(name, m, i) for i, (m, vs) in enumerate(ENUMS[name].items()) if major in vs}
        ns: dict[str, Any] = dict(members)
        ns["_class_allowed"] = frozenset(members) | {"__members__"}
        ns["__members__"] = members
        return _Meta(name, (), ns)

    enums = {name: make_enum(name) for name in ENUMS if any(major in vs for vs in ENUMS[name].values())}
    sev = {s: _Member("Severity", s, i) for i, s in enumerate(SEVERITIES)}
    ilogger = _Meta("ILogger", (), {**sev, "Severity": None, "_class_allowed": frozenset(sev),
                                    "__init__": lambda self, *a: None, "__module__": "tensorrt"})
    logger_cls = _Meta("Logger", (ilogger,), {"_class_allowed": frozenset(sev), "__module__": "tensorrt",
                                              "__init__": lambda self, min_severity=sev["WARNING"]: None,
                                              "log": lambda self, severity, msg: None})
    profiler = _Meta("IProfiler", (), {"_class_allowed": frozenset(), "__init__": lambda self: None,
                                       "__module__": "tensorrt"})
    ctx = impl.Context(version=version, major=major, gpu=gpu, enums=enums, sev=sev, accessed=accessed)
    classes = {name: guard(name, getattr(impl, name)) for name in MEMBERS}
    ctx.classes = classes
    for cls in classes.values():
        cls._ctx = ctx

    def nptype(trt_type: Any) -> type:
        accessed.add("nptype")
        return impl.NP_TYPES[trt_type.name]

    public: dict[str, Any] = {
        "Builder": classes["Builder"], "OnnxParser": classes["OnnxParser"], "Runtime": classes["Runtime"],
        "ILogger": ilogger, "Logger": logger_cls, "IProfiler": profiler, "nptype": nptype,
        "__version__": version, **enums,
    }
    for name, value in public.items():
        if major in MODULE.get(name, frozenset()):
            setattr(mod, name, value)
    mod.FAKE_ACCESSED = accessed
    mod.FAKE_GPU = gpu
    mod.FAKE_CONTEXT = ctx
    return mod
