"""The backend registry and ``auto``'s CPU policy, under every CPU class, with the capability query faked.

What a CPU can do is asked in one place (:func:`eipl_trt.runners.openvino.capabilities.cpu_capabilities`);
what is faster is measured (:func:`eipl_trt.runners.auto.time_candidates`) and compared with the reference
(:func:`eipl_trt.runners.auto.parity_error`). Faking those three makes the policy testable on any host:
these tests never depend on the CPU they run on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import pytest

from eipl_trt.errors import BackendUnavailableError, EipltrtError
from eipl_trt.paths import resolve_model
from eipl_trt.runners import auto, choose, create_runner, registry
from eipl_trt.runners.openvino import capabilities

pytest.importorskip("openvino")

#: What OpenVINO's CPU plugin reports (``OPTIMIZATION_CAPABILITIES``) on each class of CPU.
CPU_CLASSES: dict[str, list[str]] = {
    "avx2": ["WINOGRAD", "FP32", "INT8", "BIN", "EXPORT_IMPORT"],
    "avx512_vnni": ["WINOGRAD", "FP32", "INT8", "BIN", "EXPORT_IMPORT"],
    "avx512_bf16": ["BF16", "WINOGRAD", "FP32", "INT8", "BIN", "EXPORT_IMPORT"],
    "amx": ["BF16", "FP32", "INT8", "BIN", "EXPORT_IMPORT"],
    "arm_fp16": ["FP32", "FP16", "INT8", "EXPORT_IMPORT"],
}
#: The CPU backends that may run each precision there (the bundled models ship fp32, fp16 and int8 files).
EXPECTED_CANDIDATES: dict[str, dict[str, set[str]]] = {
    "avx2": {"fp32": {"onnxruntime", "openvino"}, "fp16": {"onnxruntime"}, "int8": {"onnxruntime", "openvino"}},
    "avx512_vnni": {"fp32": {"onnxruntime", "openvino"}, "fp16": {"onnxruntime"}, "int8": {"onnxruntime", "openvino"}},
    "avx512_bf16": {"fp32": {"onnxruntime", "openvino"}, "fp16": {"onnxruntime"}, "bf16": {"openvino"},
                    "int8": {"onnxruntime", "openvino"}},
    "amx": {"fp32": {"onnxruntime", "openvino"}, "fp16": {"onnxruntime"}, "bf16": {"openvino"},
            "int8": {"onnxruntime", "openvino"}},
    "arm_fp16": {"fp32": {"onnxruntime", "openvino"}, "fp16": {"onnxruntime", "openvino"},
                 "int8": {"onnxruntime", "openvino"}},
}


class Fakes:
    """Records what the policy measured; ``step_ms`` and ``parity`` say what the fake machine answers."""

    def __init__(self, step_ms: dict[str, float], parity: float = 0.0) -> None:
        self.step_ms, self.parity = step_ms, parity
        self.timed: list[tuple[str, ...]] = []
        self.compared: list[str] = []

    def time_candidates(self, make: Any, names: Sequence[str], spec: Any, clock: Any = None) -> dict[str, float]:
        self.timed.append(tuple(names))
        return {n: self.step_ms[n] for n in names}

    def parity_error(self, make: Any, reference: str, candidate: str, spec: Any, **_: Any) -> float:
        self.compared.append(candidate)
        return self.parity


@pytest.fixture
def fake_cpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # noqa: ANN201
    """Returns ``install(cpu_class, step_ms, parity) -> Fakes``; lifts the test suite's backend pin."""
    monkeypatch.delenv("EIPL_TRT_CPU_BACKEND", raising=False)
    monkeypatch.setenv("EIPL_TRT_CACHE_DIR", str(tmp_path / "cache"))

    def install(cpu: str, step_ms: dict[str, float] | None = None, parity: float = 0.0) -> Fakes:
        fakes = Fakes(step_ms or {"onnxruntime": 1.0, "openvino": 0.5}, parity)
        monkeypatch.setattr(capabilities, "cpu_capabilities", lambda: list(CPU_CLASSES[cpu]))
        monkeypatch.setattr(auto, "cpu_identity", lambda: f"fake {cpu}")
        monkeypatch.setattr(auto, "time_candidates", fakes.time_candidates)
        monkeypatch.setattr(auto, "parity_error", fakes.parity_error)
        return fakes

    return install


@pytest.mark.parametrize("cpu", sorted(CPU_CLASSES))
def test_auto_offers_each_precision_only_where_its_arithmetic_exists(cpu: str, fake_cpu) -> None:  # noqa: ANN001
    spec = resolve_model("sarnn")
    for precision in ("fp32", "fp16", "bf16", "int8"):
        fakes = fake_cpu(cpu, {"onnxruntime": 1.0, "openvino": 0.5})
        expected = EXPECTED_CANDIDATES[cpu].get(precision, set())
        if not expected:
            with pytest.raises(BackendUnavailableError, match=f"no backend runs 'sarnn' at {precision} here"):
                choose(spec, "auto", precision)
            continue
        choice = choose(spec, "auto", precision)
        assert choice.precision == precision
        if expected == {"onnxruntime", "openvino"}:
            assert fakes.timed == [("onnxruntime", "openvino")] and fakes.compared == ["openvino"]
            assert choice.backend == "openvino" and "measured fastest here" in choice.reason
        else:  # one candidate: nothing to measure
            assert fakes.timed == [] and choice.backend == expected.pop()
            assert "the only CPU backend" in choice.reason


@pytest.mark.parametrize("cpu", sorted(CPU_CLASSES))
def test_the_faster_backend_wins_and_the_reference_wins_ties(cpu: str, fake_cpu) -> None:  # noqa: ANN001
    spec = resolve_model("cnnrnn")
    fake_cpu(cpu, {"onnxruntime": 0.8, "openvino": 1.2})
    assert choose(spec, "auto", "fp32").backend == "onnxruntime"
    fake_cpu(cpu, {"onnxruntime": 1.0, "openvino": 0.99})  # within TIE_MARGIN: the better-tested path
    choice = choose(resolve_model("cnnrnnln"), "auto", "fp32")
    assert choice.backend == "onnxruntime" and "reference wins ties" in choice.reason


def test_a_candidate_off_parity_is_skipped_with_the_reason(fake_cpu) -> None:  # noqa: ANN001
    fakes = fake_cpu("avx512_bf16", {"onnxruntime": 1.0, "openvino": 0.3}, parity=0.2)
    choice = choose(resolve_model("sarnn"), "auto", "int8")
    assert choice.backend == "onnxruntime"
    assert "differs from onnxruntime by 0.2 (> 0.05)" in choice.skipped["openvino"]
    assert fakes.timed == []  # one left: nothing to time
    assert "tensorrt" in choice.skipped  # no GPU backend here, and why


def test_the_verdict_is_cached_per_machine_model_precision_and_threads(fake_cpu, tmp_path: Path) -> None:  # noqa: ANN001
    spec = resolve_model("sarnn")
    fakes = fake_cpu("amx")
    first = choose(spec, "auto", "fp32")
    again = choose(spec, "auto", "fp32")
    assert len(fakes.timed) == 1 and not first.reason.endswith("(cached)") and again.reason.endswith("(cached)")
    assert again.backend == first.backend and again.step_ms == first.step_ms
    choose(spec, "auto", "fp32", num_threads=2)  # another thread count: measured again
    choose(resolve_model("sarnn8"), "auto", "fp32")  # another model file
    assert len(fakes.timed) == 3
    cache = json.loads((tmp_path / "cache" / auto.CACHE_FILE).read_text())
    assert len(cache) == 3 and all(v["cpu"] == "fake amx" for v in cache.values())
    fakes = fake_cpu("avx2")  # another CPU: its own verdict
    choose(spec, "auto", "fp32")
    assert len(fakes.timed) == 1


def test_a_corrupt_cache_is_measured_again_not_fatal(fake_cpu, tmp_path: Path) -> None:  # noqa: ANN001
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / auto.CACHE_FILE).write_text("{not json")
    fakes = fake_cpu("avx2")
    assert choose(resolve_model("sarnn"), "auto", "fp32").backend == "openvino"
    assert len(fakes.timed) == 1
    assert json.loads((tmp_path / "cache" / auto.CACHE_FILE).read_text())  # rewritten whole


def test_the_environment_pin_overrides_without_measuring(fake_cpu, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    spec = resolve_model("sarnn")
    fakes = fake_cpu("avx2", {"onnxruntime": 0.5, "openvino": 1.0})
    monkeypatch.setenv("EIPL_TRT_CPU_BACKEND", "openvino")
    choice = choose(spec, "auto", "fp32")
    assert choice.backend == "openvino" and "pinned by EIPL_TRT_CPU_BACKEND" in choice.reason and fakes.timed == []
    with caplog.at_level("WARNING"):
        assert choose(spec, "auto", "fp16").backend == "onnxruntime"  # OpenVINO has no fp16 on AVX2
    assert "EIPL_TRT_CPU_BACKEND=openvino cannot run sarnn fp16" in caplog.text


def test_named_backends_are_checked_and_say_what_runs(fake_cpu) -> None:  # noqa: ANN001
    spec = resolve_model("sarnn")
    fake_cpu("avx2")
    assert choose(spec, "onnxruntime", "fp16").reason == "onnxruntime: requested"
    with pytest.raises(BackendUnavailableError, match="bf16 is not available .* on openvino .*no BF16 arithmetic"):
        choose(spec, "openvino", "bf16")
    with pytest.raises(BackendUnavailableError, match="bf16 is not available .* on onnxruntime"):
        create_runner(spec, "onnxruntime", "bf16")
    with pytest.raises(BackendUnavailableError, match="unknown backend 'cuda'"):
        choose(spec, "cuda", "fp32")
    with pytest.raises(BackendUnavailableError, match="TensorRT backend unavailable"):
        choose(spec, "tensorrt", "fp32")
    with pytest.raises(BackendUnavailableError, match="unknown precision 'fp8'"):
        choose(spec, "auto", "fp8")


def test_decide_on_its_own() -> None:
    timing = {"onnxruntime": 2.0, "openvino": 1.0}
    verdict = auto.decide(["onnxruntime", "openvino"], lambda n: 0.0, lambda names: {n: timing[n] for n in names}, "fp32")
    assert verdict.backend == "openvino" and verdict.step_ms == timing

    def broken(name: str) -> float:
        raise EipltrtError("cannot compile")

    verdict = auto.decide(["onnxruntime", "openvino"], broken, lambda names: {}, "fp32")
    assert verdict.backend == "onnxruntime" and verdict.skipped == {"openvino": "could not run: cannot compile"}
    assert auto.decide(["openvino"], broken, lambda names: {}, "bf16").backend == "openvino"  # no reference to compare
    with pytest.raises(EipltrtError, match="no CPU backend can run int8"):
        auto.decide([], broken, lambda names: {}, "int8")


def test_the_registry_probes_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    module = registry.backend_module("tensorrt")
    monkeypatch.setattr(module, "unavailable_reason", lambda: calls.append(1) or "no GPU (fake)")
    registry.unavailable_reason.cache_clear()
    try:
        spec = resolve_model("sarnn")
        for precision in ("fp32", "int8", "fp16"):
            choose(spec, "auto", precision, measure=False)
        assert calls == [1]
    finally:
        registry.unavailable_reason.cache_clear()


def test_the_real_measurement_on_this_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Whatever this CPU is: auto measures both backends and keeps the faster (or the reference on a tie)."""
    monkeypatch.delenv("EIPL_TRT_CPU_BACKEND", raising=False)
    monkeypatch.setenv("EIPL_TRT_CACHE_DIR", str(tmp_path))
    choice = choose(resolve_model("sarnn"), "auto", "fp32")
    assert set(choice.step_ms) == {"onnxruntime", "openvino"}
    fastest = min(choice.step_ms, key=choice.step_ms.__getitem__)
    assert choice.backend in (fastest, "onnxruntime")
    with create_runner(resolve_model("sarnn"), "auto", "fp32") as runner:  # the cached verdict
        assert runner.backend == choice.backend


@pytest.mark.parametrize("version", ["8.6.1", "10.3.0", "11.4.0.106"])
def test_tensorrt_fp32_engines_run_fp32_not_tf32(version: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """TensorRT enables TF32 by default (10-bit mantissa on Ampere and later); eipl_trt's engines turn it off."""
    from standins.install import install

    trt, _ = install(monkeypatch, version)
    registry.unavailable_reason.cache_clear()
    try:
        spec = resolve_model("sarnn")
        with create_runner(spec, "tensorrt", "fp32", cache_dir=tmp_path):
            pass
        assert trt.FAKE_CONTEXT.built_flags == [[]]  # the stand-in starts every config with TF32 set, as TensorRT does
        assert "bf16" in registry.refused_precisions(spec, "tensorrt")
    finally:
        registry.unavailable_reason.cache_clear()


def test_the_environment_can_stand_in_for_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """EIPL_TRT_CPU_CAPABILITIES replaces OpenVINO's answer (how the suite runs as on every CPU class)."""
    monkeypatch.setenv("EIPL_TRT_CPU_CAPABILITIES", "FP32 FP16 INT8")
    assert capabilities.cpu_capabilities() == ["FP32", "FP16", "INT8"]
    assert registry.available_precisions(resolve_model("sarnn"), "openvino") == ["fp32", "fp16", "int8"]
    assert auto.cpu_identity().endswith("as 'FP32 FP16 INT8'")  # its verdicts are kept apart
