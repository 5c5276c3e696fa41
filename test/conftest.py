"""Fixtures shared by several test modules."""

from __future__ import annotations

from typing import Iterator

import pytest


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Eager torch with 2 threads crawls when the 2 CI cores are shared; 1 thread is stable."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
