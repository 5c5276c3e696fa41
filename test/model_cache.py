"""Random-weight test models for environments without torch (the Python x ROS matrix).

:func:`make_test_model` is :func:`eipl_trt.models.testing.make_test_model` (a real ONNX export by
real PyTorch) plus a cache: every model exported where torch is installed is also copied to
``EIPL_TRT_TEST_MODEL_CACHE`` (default ``.test-models/`` in the repository), keyed by its
arguments and by the export code's own bytes. Where torch is missing (the Python 3.10 and 3.12
environments of ``make test-matrix``: torch 2.13 CPU exists here for 3.11 only), the same model is
copied from the cache, so the node tests run there on the very models the 3.11 run exported; with
no cached copy the test is skipped with the reason.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

import eipl_trt
from eipl_trt.spec import ModelSpec

try:
    from eipl_trt.models.testing import make_test_model as _export
except ImportError:  # no torch
    _export = None

__all__ = ["make_test_model", "cache_dir"]

ROOT = Path(__file__).resolve().parents[1]
_SOURCES = ("spec", "models")


def cache_dir() -> Path:
    """Where cached models live (``EIPL_TRT_TEST_MODEL_CACHE`` or ``.test-models/``)."""
    return Path(os.environ.get("EIPL_TRT_TEST_MODEL_CACHE") or ROOT / ".test-models")


def _key(kind: str, kwargs: dict[str, Any]) -> str:
    h = hashlib.sha256(repr((kind, sorted((k, repr(v)) for k, v in kwargs.items()))).encode())
    package = Path(eipl_trt.__file__).parent
    for name in _SOURCES:
        for path in sorted((package / name).rglob("*.py")) if (package / name).is_dir() else [package / name]:
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return f"{kind}-{h.hexdigest()[:16]}"


def make_test_model(kind: str, out_dir: str | os.PathLike[str], **kwargs: Any) -> ModelSpec:
    """Export (torch) or copy from the cache (no torch) a test model into ``out_dir``; see the module docstring."""
    out = Path(out_dir)
    cached = cache_dir() / _key(kind, kwargs)
    if _export is None:
        if not (cached / "model.json").is_file():
            pytest.skip(f"needs torch to export the test model, or a copy in {cache_dir()} "
                        f"(run the suite once where torch is installed, e.g. `make test`)")
        shutil.copytree(cached, out, dirs_exist_ok=True)
        return ModelSpec.load(out)
    spec = _export(kind, out, **kwargs)
    if not (cached / "model.json").is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{cached.name}.", dir=cached.parent))
        try:
            for name in ("model.json", "model.onnx"):
                shutil.copy2(out / name, tmp / name)
            os.replace(tmp, cached)
        except OSError:  # another run cached it first, or the cache is read-only: fine either way
            shutil.rmtree(tmp, ignore_errors=True)
    return spec
