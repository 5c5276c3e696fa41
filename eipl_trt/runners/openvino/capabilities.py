"""What OpenVINO can run on this CPU: the probes behind the backend's protocol functions.

:func:`cpu_capabilities` is the one place the CPU's abilities are asked; tests fake it to check the
rules under every CPU class.
"""

from __future__ import annotations

import os

from eipl_trt.spec import ModelSpec

__all__ = ["CAPABILITIES_ENV", "backend_version", "cpu_capabilities", "refused_precisions", "unavailable_reason"]


def unavailable_reason() -> str:
    """Why OpenVINO cannot run here (``""`` when it can)."""
    try:
        import openvino as ov
    except ImportError:
        return "the openvino package is not installed (pip install eipl_trt[openvino])"
    try:
        if "CPU" not in ov.Core().available_devices:
            return "OpenVINO sees no CPU device"
    except Exception as exc:  # noqa: BLE001 - a broken install reports its own error types
        return f"OpenVINO failed to start: {exc}"
    return ""


def backend_version() -> str:
    import openvino as ov

    return str(ov.__version__)


#: Environment variable that replaces what OpenVINO reports (space-separated, e.g. ``"FP32 INT8"``): to run
#: the test suite as on another CPU class, or to work around a CPU OpenVINO misreports.
CAPABILITIES_ENV = "EIPL_TRT_CPU_CAPABILITIES"


def cpu_capabilities() -> list[str]:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of the CPU (e.g. ``FP32 INT8 BF16``), ``[]`` without OpenVINO.

    The one place the CPU's abilities are asked: tests fake it to check every CPU class, and
    ``EIPL_TRT_CPU_CAPABILITIES`` overrides it for a whole process.
    """
    override = os.environ.get(CAPABILITIES_ENV)
    if override is not None:
        return override.split()
    try:
        import openvino as ov

        return [str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
    except Exception:  # noqa: BLE001 - absent or broken optional dependency
        return []


def refused_precisions(spec: ModelSpec) -> dict[str, str]:
    """Precision -> why OpenVINO cannot run it for ``spec`` on this CPU (absent when it can)."""
    caps = cpu_capabilities()
    have = " ".join(caps) or "nothing"
    refused: dict[str, str] = {}
    if "FP16" not in caps:
        refused["fp16"] = (f"this CPU has no FP16 arithmetic (OpenVINO reports {have}); OpenVINO would run another "
                           f"arithmetic under that name. fp16 here is ONNX Runtime's fp16 variant")
    if "BF16" not in caps:
        refused["bf16"] = f"this CPU has no BF16 arithmetic (AMX or AVX512-BF16; OpenVINO reports {have})"
    if "int8" not in spec.variants or spec.directory is None or not (spec.directory / spec.variants["int8"].file).is_file():
        refused["int8"] = "no int8 variant beside model.json; create it with `eipl-trt quantize --precision int8`"
    elif "INT8" not in caps:
        refused["int8"] = f"OpenVINO reports no INT8 support on this CPU ({have})"
    return refused
