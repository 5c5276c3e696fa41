"""The engine cache: serialized TensorRT plans keyed by everything that makes them valid.

Key: ONNX sha256 + TensorRT version + GPU name + compute capability + precision + build options
(+ the network mode). Directory: ``$EIPL_TRT_ENGINE_CACHE``, else ``$XDG_CACHE_HOME/eipl_trt/engines``
(``~/.cache/eipl_trt/engines``), or what the caller passes. Each plan is written atomically while
holding an exclusive ``fcntl`` lock on ``<plan>.lock``, so two processes building the same engine
build it once and never leave a half-written plan. A plan that TensorRT cannot deserialize (built
by another TensorRT, truncated, corrupt) is rebuilt with one warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from eipl_trt.common.atomic import write_bytes_atomic, write_json_atomic

__all__ = ["CacheResult", "EngineCache", "default_cache_dir", "cache_key"]

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$EIPL_TRT_ENGINE_CACHE``, else ``$XDG_CACHE_HOME/eipl_trt/engines`` (``~/.cache/...``)."""
    env = os.environ.get("EIPL_TRT_ENGINE_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "eipl_trt" / "engines"


def cache_key(fields: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``fields``."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class CacheResult:
    """What :meth:`EngineCache.get_or_build` did.

    Attributes:
        engine: the deserialized engine.
        path: the plan file.
        status: ``hit`` (loaded), ``built`` (no plan yet) or ``rebuilt`` (a plan was unusable).
        build_s: build time (s), 0 on a hit.
    """

    engine: Any
    path: Path
    status: str
    build_s: float


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40] or "x"


class EngineCache:
    """Plans in one directory; see the module docstring."""

    def __init__(self, directory: str | os.PathLike[str] | None = None):
        self.directory = Path(directory).expanduser() if directory else default_cache_dir()

    def plan_path(self, fields: dict[str, Any]) -> Path:
        """``<model>-<precision>-trt<version>-<gpu>-<key16>.plan`` for these key fields."""
        key = cache_key(fields)
        stem = "-".join(_slug(str(fields.get(k, ""))) for k in ("model", "precision", "tensorrt", "gpu"))
        return self.directory / f"{stem}-{key[:16]}.plan"

    def timing_cache_path(self, fields: dict[str, Any]) -> Path:
        """One timing cache per TensorRT version and GPU (its validity domain)."""
        sub = {k: fields.get(k) for k in ("tensorrt", "gpu", "compute_capability")}
        return self.directory / f"timing-{_slug(str(sub['tensorrt']))}-{cache_key(sub)[:16]}.cache"

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _try_load(self, path: Path, deserialize: Callable[[bytes], Any]) -> tuple[Any, str]:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None, ""
        except OSError as exc:
            return None, f"cannot read it ({exc})"
        try:
            engine = deserialize(data)
        except Exception as exc:  # TensorRT raises on some corrupt plans, returns None on others
            return None, f"TensorRT cannot deserialize it ({exc})"
        if engine is None:
            return None, "TensorRT cannot deserialize it (built by another TensorRT version, truncated or corrupt)"
        return engine, ""

    def get_or_build(
        self,
        fields: dict[str, Any],
        build: Callable[[bytes], tuple[bytes, bytes, float]],
        deserialize: Callable[[bytes], Any],
    ) -> CacheResult:
        """Load the plan for ``fields`` or build it (once, under the lock) and store it atomically.

        Args:
            fields: the key fields (see the module docstring).
            build: ``timing cache bytes -> (plan, new timing cache, seconds)``.
            deserialize: ``plan bytes -> engine or None``.
        """
        path = self.plan_path(fields)
        engine, _ = self._try_load(path, deserialize)
        if engine is not None:
            return CacheResult(engine, path, "hit", 0.0)
        with self._locked(path):
            engine, why = self._try_load(path, deserialize)  # another process may have built it meanwhile
            if engine is not None:
                return CacheResult(engine, path, "hit", 0.0)
            if why:
                log.warning("engine plan %s is unusable: %s; rebuilding it", path, why)
            timing_path = self.timing_cache_path(fields)
            timing = timing_path.read_bytes() if timing_path.is_file() else b""
            plan, new_timing, seconds = build(timing)
            engine = deserialize(plan)
            if engine is None:
                raise RuntimeError(f"TensorRT cannot deserialize the engine it just built for {path.name}")
            write_bytes_atomic(path, plan)
            write_json_atomic(path.with_suffix(".json"), fields)
            if new_timing:
                write_bytes_atomic(timing_path, new_timing)
        return CacheResult(engine, path, "rebuilt" if why else "built", seconds)
