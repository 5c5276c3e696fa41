"""Fixtures shared by several test modules."""

from __future__ import annotations

import importlib.util
from typing import Any, Iterator

import pytest

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
