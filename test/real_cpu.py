"""The CPU as OpenVINO really reports it, beside the report ``EIPL_TRT_CPU_CAPABILITIES`` fakes (#20).

``scripts/test_cpu_classes.sh`` runs the suite once per CPU class with the capability report faked, so
the package's rules (which precision is offered where, what ``auto`` measures) run as on that class.
The arithmetic is still this machine's: OpenVINO asked for f16 on an x86 CPU without FP16 compiles
another precision, and the runner refuses that. A test that *runs* OpenVINO at a precision means this
CPU as it really is, and asks here.
"""

from __future__ import annotations

import functools

#: The precisions that need an arithmetic of their own, and the capability OpenVINO reports for it.
ARITHMETIC = {"fp16": "FP16", "bf16": "BF16"}


@functools.cache
def real_cpu_capabilities() -> tuple[str, ...]:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of this CPU, asked directly (no override); ``()`` without OpenVINO."""
    try:
        import openvino as ov

        return tuple(str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # noqa: BLE001 - absent or broken optional dependency: nothing real to compare
        return ()


def faked_precisions() -> set[str]:
    """Precisions whose arithmetic the report in force claims and this CPU lacks (empty unless it is faked)."""
    from eipl_trt.runners.openvino.capabilities import cpu_capabilities

    claimed, real = cpu_capabilities(), real_cpu_capabilities()
    return {p for p, cap in ARITHMETIC.items() if cap in claimed and cap not in real}
