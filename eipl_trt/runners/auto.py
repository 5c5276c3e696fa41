"""``backend: auto`` on a CPU: the fastest candidate this machine *measures*, among those computing the same thing.

A static order keyed on a capability string picks the slower backend on some CPUs (OpenVINO fp32 is
faster than ONNX Runtime on an Intel AMX Xeon and slower on an AVX512-BF16 EPYC), so the choice is
made the way TensorRT picks tactics: measured once per machine and cached.

1. **Candidates**: the CPU backends the registry hands over for this precision: installed, and able to
   run the precision with its own arithmetic (OpenVINO's ``fp32`` runs f32, its ``bf16`` only where the
   CPU has BF16; a backend never runs another arithmetic under a precision's name).
2. **Parity**: each candidate other than the reference (ONNX Runtime, which the exports are validated
   against) steps :data:`PARITY_STEPS` random inputs with the state fed back beside it; one that drifts
   more than :data:`PARITY_TOLERANCE` is dropped, with the reason kept.
3. **Timing**: the survivors step the node's usual step (no predicted image) side by side, interleaved
   in :data:`ROUNDS` rounds of :data:`STEPS` steps after :data:`WARM_UP` steps each, and the lowest
   median wins. Candidates within :data:`TIE_MARGIN` of the fastest count as ties, and a tie goes to
   the reference (the better-tested path).
4. **Cache**: the verdict, with its timings, is stored in ``auto_backend.json`` under the cache
   directory (``EIPL_TRT_CACHE_DIR``, else ``$XDG_CACHE_HOME/eipl_trt``, else ``~/.cache/eipl_trt``),
   keyed by the CPU (model name and instruction-set flags), the backends' versions, the model file's
   SHA-256, the precision and the thread count. A new CPU, a backend upgrade or a re-exported model
   measures again; ``eipl-trt bench --backend auto`` and the node's ``/diagnostics`` say what was
   chosen and why.

``EIPL_TRT_CPU_BACKEND=onnxruntime|openvino`` pins the choice (no measurement), as long as that backend
can run the precision here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from eipl_trt.errors import EipltrtError

__all__ = ["PARITY_STEPS", "PARITY_TOLERANCE", "REFERENCE", "Verdict", "cache_path", "cpu_identity", "decide",
           "machine_key", "parity_error", "time_candidates"]

log = logging.getLogger(__name__)

#: The backend the exports are validated against: parity is measured against it, and it wins ties.
REFERENCE = "onnxruntime"
#: Steps of the parity check (state fed back).
PARITY_STEPS = 10
#: Largest allowed |difference| of the normalized joint output vs the reference, per precision. fp32:
#: two correct fp32 implementations differ by summation order only (~1e-5 on the joints of the bundled
#: models after 10 fed-back steps; see test/numerics.py), so 1e-4 keeps a margin while rejecting a wrong
#: arithmetic; the reduced precisions are compared with the reference running the same variant.
PARITY_TOLERANCE = {"fp32": 1e-4, "fp16": 5e-2, "bf16": 5e-2, "int8": 5e-2}
#: Timing: warm-up steps per candidate, interleaved rounds, steps per round.
WARM_UP, ROUNDS, STEPS = 20, 5, 20
#: A candidate within this fraction of the fastest median is a tie (timing noise on a shared machine).
TIE_MARGIN = 0.03
#: Cache file name under the cache directory.
CACHE_FILE = "auto_backend.json"

_lock = threading.Lock()


@dataclass(frozen=True)
class Verdict:
    """What ``auto`` runs for one model file and precision on this machine, and why.

    Attributes:
        backend: the chosen CPU backend.
        reason: one line for logs and ``/diagnostics``.
        step_ms: median step per timed candidate (ms).
        skipped: candidate -> why it was not chosen (parity, failure to open).
        cached: the verdict came from the cache file (measured earlier on this machine).
    """

    backend: str
    reason: str
    step_ms: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "reason": self.reason, "step_ms": self.step_ms, "skipped": self.skipped}


def cache_path() -> Path:
    """Where verdicts are cached (see the module docstring)."""
    root = os.environ.get("EIPL_TRT_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "eipl_trt")
    return Path(root) / CACHE_FILE


def cpu_identity() -> str:
    """The CPU's model name and the instruction-set flags that change kernels (AVX2, AVX-512 family, AMX, NEON)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model") and value.strip():
                name = value.strip()
            elif key in ("flags", "Features"):
                flags |= {f for f in value.split() if f.startswith(("avx", "amx", "fma", "asimd", "fphp", "sve"))}
    except OSError:
        pass
    override = os.environ.get("EIPL_TRT_CPU_CAPABILITIES")
    return f"{name} [{' '.join(sorted(flags))}]" + (f" as {override!r}" if override is not None else "")


def machine_key(model_sha256: str, precision: str, versions: dict[str, str], threads: int) -> str:
    """The cache key: CPU, backend versions, model file, precision, threads."""
    blob = json.dumps([cpu_identity(), sorted(versions.items()), model_sha256, precision, int(threads)])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _store(path: Path, key: str, verdict: Verdict, note: dict[str, Any]) -> None:
    """Merge ``verdict`` into the cache file atomically; a read-only cache only costs a re-measurement."""
    from eipl_trt.common.atomic import write_json_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _load_cache(path)
        data[key] = {**verdict.to_json(), **note}
        write_json_atomic(path, data)
    except OSError as exc:
        log.warning("backend auto: could not cache the verdict in %s (%s); it will be measured again", path, exc)


def parity_error(make: Callable[[str], Any], reference: str, candidate: str, spec: Any,
                 steps: int = PARITY_STEPS, seed: int = 0) -> float:
    """Max |joint output difference| of ``candidate`` vs ``reference`` over ``steps`` fed-back random steps.

    ``make(backend)`` returns a closed runner of that backend at the precision under test.
    """
    rng = np.random.default_rng(seed)
    shapes = spec.input_shapes()
    lo, hi = float(spec.vmin), float(spec.vmax)
    worst = 0.0
    with make(reference) as ref, make(candidate) as cand:
        for _ in range(steps):
            image = rng.uniform(lo, hi, shapes["image"]).astype(np.float32)
            joint = rng.uniform(lo, hi, shapes["joint"]).astype(np.float32)
            a = ref.infer(image, joint)["joint"].copy()
            b = cand.infer(image, joint)["joint"]
            worst = max(worst, float(np.max(np.abs(a - b))))
    return worst


def time_candidates(make: Callable[[str], Any], names: Sequence[str], spec: Any,
                    clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Median step (ms) of each backend in ``names``, measured interleaved (see the module docstring)."""
    rng = np.random.default_rng(1)
    shapes = spec.input_shapes()
    image = rng.uniform(float(spec.vmin), float(spec.vmax), shapes["image"]).astype(np.float32)
    joint = rng.uniform(float(spec.vmin), float(spec.vmax), shapes["joint"]).astype(np.float32)
    runners = {n: make(n).open() for n in names}
    samples: dict[str, list[float]] = {n: [] for n in names}
    try:
        for runner in runners.values():
            for _ in range(WARM_UP):
                runner.infer(image, joint, want_image=False)
        for _ in range(ROUNDS):
            for n, runner in runners.items():
                for _ in range(STEPS):
                    t0 = clock()
                    runner.infer(image, joint, want_image=False)
                    samples[n].append((clock() - t0) * 1e3)
    finally:
        for runner in runners.values():
            runner.close()
    return {n: float(np.median(v)) for n, v in samples.items()}


def decide(candidates: Sequence[str], parity: Callable[[str], float], timing: Callable[[Sequence[str]], dict[str, float]],
           precision: str) -> Verdict:
    """The policy, on injected measurements (so it can be tested under any CPU): parity, then the fastest.

    Args:
        candidates: CPU backends that can run ``precision`` here, :data:`REFERENCE` first when present.
        parity: backend -> its parity error vs the reference (may raise :class:`EipltrtError`).
        timing: backends -> median step (ms).
        precision: the precision (picks the parity tolerance).
    """
    if not candidates:
        raise EipltrtError(f"no CPU backend can run {precision} here")
    skipped: dict[str, str] = {}
    passed = []
    tol = PARITY_TOLERANCE.get(precision, 1e-4)
    for name in candidates:
        if name == REFERENCE or REFERENCE not in candidates:
            passed.append(name)
            continue
        try:
            err = parity(name)
        except EipltrtError as exc:
            skipped[name] = f"could not run: {exc}"
            continue
        if err <= tol:
            passed.append(name)
        else:
            skipped[name] = f"differs from {REFERENCE} by {err:.3g} (> {tol:g}) on the joints"
    if len(passed) == 1:
        only = passed[0]
        why = "the only CPU backend that runs it here" if not skipped else "the only one at parity"
        return Verdict(only, f"{only}: {why}", {}, skipped)
    step_ms = timing(passed)
    fastest = min(step_ms.values())
    ties = [n for n in passed if step_ms[n] <= fastest * (1.0 + TIE_MARGIN)]
    chosen = REFERENCE if REFERENCE in ties else min(ties, key=lambda n: step_ms[n])
    table = ", ".join(f"{n} {step_ms[n]:.3f} ms" for n in passed)
    tie = f" (within {TIE_MARGIN:.0%} of the fastest: the reference wins ties)" if len(ties) > 1 else ""
    return Verdict(chosen, f"{chosen}: measured fastest here ({table}){tie}", step_ms, skipped)


def cached_decision(key: str, compute: Callable[[], Verdict], note: dict[str, Any]) -> Verdict:
    """The cached verdict for ``key``, or ``compute()`` stored under it (one measurement at a time per process)."""
    path = cache_path()
    with _lock:
        hit = _load_cache(path).get(key)
        if isinstance(hit, dict) and isinstance(hit.get("backend"), str):
            return Verdict(hit["backend"], str(hit.get("reason", "")), dict(hit.get("step_ms") or {}),
                           dict(hit.get("skipped") or {}), cached=True)
        verdict = compute()
        _store(path, key, verdict, {**note, "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        return verdict
