"""Fixtures shared by several test modules."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from typing import Any, Iterator

import pytest

# `backend: auto` measures the CPU backends once per machine (eipl_trt/runners/auto.py), so what it picks
# depends on the host CPU. No test may depend on that: every test that means a backend names it, the rest
# (the node's default `auto`, Predictor.from_model) run on the reference, ONNX Runtime, pinned here for this
# process and the node processes it starts; test_backend_choice.py tests auto's policy under every CPU class
# with the capability query and the timings faked (it lifts the pin). Verdicts go to a private cache, never
# to the user's ~/.cache.
os.environ["EIPL_TRT_CPU_BACKEND"] = "onnxruntime"
os.environ["EIPL_TRT_CACHE_DIR"] = tempfile.mkdtemp(prefix="eipl_trt_test_cache_")

#: torch 2.13 (CPU) is at hand here for Python 3.11 only; `make test-matrix` runs 3.10 and 3.12 without it.
TORCH_MISSING = importlib.util.find_spec("torch") is None


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[Any]:
    """Where torch is not installed, a test module that imports it is skipped with that reason, not an error.

    Only then: with torch installed, any import error still fails the run.
    """
    outcome = yield
    report = outcome.get_result()
    if TORCH_MISSING and report.failed and isinstance(collector, pytest.Module) \
            and "No module named 'torch'" in str(report.longrepr):
        report.outcome = "skipped"
        report.longrepr = (str(collector.path), 0, f"Skipped: {_NEEDS_TORCH}")


_NEEDS_TORCH = ("needs torch, which this environment lacks (torch 2.13 CPU is installed for Python 3.11 only; "
                "see scripts/test_matrix.sh)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """The same for a test (or its fixture) that imports torch when it runs."""
    outcome = yield
    report = outcome.get_result()
    excinfo = call.excinfo
    if TORCH_MISSING and report.failed and excinfo is not None \
            and excinfo.errisinstance(ModuleNotFoundError) and getattr(excinfo.value, "name", "") == "torch":
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {_NEEDS_TORCH}")


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Eager torch with 2 threads crawls when the 2 CI cores are shared; 1 thread is stable."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _fresh_backend_probes() -> Iterator[None]:
    """The registry probes each backend once per process; a test that installs a stand-in starts afresh."""
    from eipl_trt.runners import registry

    registry.unavailable_reason.cache_clear()
    yield
    registry.unavailable_reason.cache_clear()
