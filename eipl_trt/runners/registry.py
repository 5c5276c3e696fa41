"""The backend registry: which backends exist, what each can run here, and the one place a backend is chosen.

Every backend is a module under :mod:`eipl_trt.runners` with three functions:

* ``unavailable_reason() -> str``: why it cannot run on this machine (``""`` when it can);
* ``refused_precisions(spec) -> dict[str, str]``: precision -> why it cannot run it for ``spec`` here
  (a precision absent from the dict is runnable);
* ``create(spec, precision, *, num_threads=None, **options) -> Runner``: a closed runner.

Adding a backend is that module plus one line in :data:`BACKENDS`. :func:`choose` resolves a request
(a backend name or ``auto``) once into a :class:`Choice` that says what runs, which precisions the
backend offers, and what was skipped and why; the probes behind it are cached for the process (a
CPU-only configure asks TensorRT and CUDA once, not five times). ``auto``'s CPU policy lives in
:mod:`eipl_trt.runners.auto`.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from eipl_trt.errors import BackendUnavailableError
from eipl_trt.spec import PRECISIONS, ModelSpec

__all__ = ["BACKENDS", "AUTO", "Backend", "Choice", "available_precisions", "backend_module", "choose",
           "refused_precisions", "unavailable_reason"]

log = logging.getLogger(__name__)

AUTO = "auto"


@dataclass(frozen=True)
class Backend:
    """A registered backend: its name, its module, whether it runs on the CPU, whether ``auto`` may pick it."""

    name: str
    module: str
    cpu: bool
    in_auto: bool
    note: str
    label: str


#: Registered backends, in ``auto``'s order of consideration (a usable GPU backend before the CPU ones).
BACKENDS: tuple[Backend, ...] = (
    Backend("tensorrt", "eipl_trt.runners.tensorrt", cpu=False, in_auto=True,
            note="NVIDIA GPUs and Jetson: engines built from the ONNX variants", label="TensorRT"),
    Backend("onnxruntime", "eipl_trt.runners.onnxrt", cpu=True, in_auto=True,
            note="any CPU: the exported ONNX variants (the reference)", label="ONNX Runtime"),
    Backend("openvino", "eipl_trt.runners.openvino", cpu=True, in_auto=True,
            note="x86 and ARM CPUs: fp32, int8 where the CPU has INT8, bf16 where it has BF16, fp16 where it has FP16",
            label="OpenVINO"),
    Backend("integer", "eipl_trt.runners.integer", cpu=True, in_auto=False,
            note="the quantization lab's integer-only executor (numpy, slow; FPGA/MCU studies); never auto",
            label="integer"),
)
_BY_NAME = {b.name: b for b in BACKENDS}
#: Names accepted wherever a backend is asked for.
NAMES = (AUTO, *(b.name for b in BACKENDS))


def _get(name: str) -> Backend:
    if name not in _BY_NAME:
        raise BackendUnavailableError(f"unknown backend {name!r}; choose one of {', '.join(NAMES)}")
    return _BY_NAME[name]


def backend_module(name: str) -> ModuleType:
    """The module implementing backend ``name``."""
    return importlib.import_module(_get(name).module)


@functools.lru_cache(maxsize=None)
def unavailable_reason(name: str) -> str:
    """Why backend ``name`` cannot run on this machine (``""`` when it can); probed once per process."""
    return str(backend_module(name).unavailable_reason())


def refused_precisions(spec: ModelSpec, name: str) -> dict[str, str]:
    """Precision -> why backend ``name`` cannot run it for ``spec`` here (every precision when it is unavailable)."""
    why = unavailable_reason(name)
    if why:
        return {p: why for p in PRECISIONS}
    refused = dict(backend_module(name).refused_precisions(spec))
    return {p: refused.get(p, "") for p in PRECISIONS if p in refused}


def available_precisions(spec: ModelSpec, name: str) -> list[str]:
    """Precisions backend ``name`` (not ``auto``) runs for ``spec`` here, in :data:`PRECISIONS` order."""
    refused = refused_precisions(spec, name)
    return [p for p in PRECISIONS if p not in refused]


@dataclass(frozen=True)
class Choice:
    """What runs a model: the resolved backend and precision, and how the choice was made.

    Attributes:
        backend: the concrete backend.
        precision: the precision it runs.
        requested: what was asked for (a backend name or ``auto``).
        precisions: every precision this backend runs for the model here.
        reason: one line for logs and ``/diagnostics``.
        skipped: backend -> why ``auto`` did not take it.
        step_ms: ``auto``'s measured median step per CPU candidate (ms), when it measured.
    """

    backend: str
    precision: str
    requested: str
    precisions: tuple[str, ...]
    reason: str
    skipped: dict[str, str] = field(default_factory=dict)
    step_ms: dict[str, float] = field(default_factory=dict)

    def diagnostics(self) -> dict[str, str]:
        """Key/values for ``/diagnostics``."""
        out = {"backend_choice": self.reason}
        if self.skipped:
            out["backends_skipped"] = "; ".join(f"{b}: {why}" for b, why in self.skipped.items())
        return out

    def create(self, spec: ModelSpec, num_threads: int | None = None, **options: Any) -> Any:
        """A closed runner for this choice."""
        return backend_module(self.backend).create(spec, self.precision, num_threads=num_threads, **options)


def choose(spec: ModelSpec, requested: str = AUTO, precision: str = "fp32", *, num_threads: int | None = None,
           measure: bool = True) -> Choice:
    """Resolve ``requested`` for ``spec`` at ``precision`` into a :class:`Choice`.

    A named backend must be usable and run the precision. ``auto`` takes TensorRT where it is usable and
    builds the precision; otherwise the CPU backends that run it go to :mod:`eipl_trt.runners.auto`
    (``EIPL_TRT_CPU_BACKEND`` pins one; ``measure=False`` takes the reference without timing anything).

    Raises:
        BackendUnavailableError: unknown names, an unusable backend, or a precision nothing here runs;
            the message says what can.
    """
    if precision not in PRECISIONS:
        raise BackendUnavailableError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if requested != AUTO:
        return _named(spec, requested, precision)
    skipped: dict[str, str] = {}
    cpu: list[str] = []
    for backend in BACKENDS:
        if not backend.in_auto:
            continue
        why = refused_precisions(spec, backend.name).get(precision, None)
        if why is not None:
            skipped[backend.name] = why or f"does not run {precision}"
        elif not backend.cpu:
            return Choice(backend.name, precision, AUTO, tuple(available_precisions(spec, backend.name)),
                          f"{backend.name}: a usable GPU backend", skipped)
        else:
            cpu.append(backend.name)
    if not cpu:
        raise BackendUnavailableError(
            f"no backend runs {spec.model!r} at {precision} here: "
            + "; ".join(f"{b}: {w}" for b, w in skipped.items()) + ". Choose another precision")
    verdict = _cpu_verdict(spec, cpu, precision, num_threads, measure)
    return Choice(verdict.backend, precision, AUTO, tuple(available_precisions(spec, verdict.backend)),
                  verdict.reason + (" (cached)" if verdict.cached else ""), {**skipped, **verdict.skipped},
                  verdict.step_ms)


def _named(spec: ModelSpec, name: str, precision: str) -> Choice:
    why = unavailable_reason(name)
    if why:
        raise BackendUnavailableError(f"{_get(name).label} backend unavailable: {why}. Use backend 'onnxruntime' (CPU).")
    have = available_precisions(spec, name)
    if precision not in have:
        reason = refused_precisions(spec, name).get(precision) or "not offered"
        raise BackendUnavailableError(
            f"precision {precision} is not available for model {spec.model!r} on {name} "
            f"(available: {', '.join(have) or 'none'}): {reason}")
    return Choice(name, precision, name, tuple(have), f"{name}: requested")


def _cpu_verdict(spec: ModelSpec, candidates: list[str], precision: str, num_threads: int | None,
                 measure: bool) -> Any:
    from eipl_trt.runners import auto

    pinned = os.environ.get("EIPL_TRT_CPU_BACKEND", "").strip()
    if pinned:
        if pinned in candidates:
            return auto.Verdict(pinned, f"{pinned}: pinned by EIPL_TRT_CPU_BACKEND")
        log.warning("EIPL_TRT_CPU_BACKEND=%s cannot run %s %s here (candidates: %s); ignored", pinned, spec.model,
                    precision, ", ".join(candidates))
    ordered = sorted(candidates, key=lambda n: n != auto.REFERENCE)
    if len(ordered) == 1 or not measure:
        return auto.Verdict(ordered[0], f"{ordered[0]}: " + ("the only CPU backend that runs it here"
                                                             if len(ordered) == 1 else "not measured (measure=False)"))

    def make(name: str) -> Any:
        return backend_module(name).create(spec, precision, num_threads=num_threads)

    versions = {n: _version(n) for n in ordered}
    sha = spec.variants[precision].sha256 if precision in spec.variants else spec.variants["fp32"].sha256
    key = auto.machine_key(sha, precision, versions, num_threads or 1)
    note = {"model": spec.model, "precision": precision, "cpu": auto.cpu_identity(), "versions": versions}
    return auto.cached_decision(key, lambda: auto.decide(
        ordered, lambda n: auto.parity_error(make, auto.REFERENCE, n, spec),
        lambda names: auto.time_candidates(make, names, spec), precision), note)


def _version(name: str) -> str:
    version = getattr(backend_module(name), "backend_version", None)
    return str(version()) if callable(version) else "unknown"
