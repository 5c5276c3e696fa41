"""TensorRT module loading, version numbers for the cache key and ``min_tensorrt``, and the logger.

Features are chosen by capability checks (``hasattr``) on the imported module, never by
comparing version strings: the version is used only as data (the engine-cache key, and a
variant's ``min_tensorrt`` recorded by the tool that made it).
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Any

from eipl_trt.errors import BackendUnavailableError

__all__ = ["import_tensorrt", "version_tuple", "meets", "make_logger", "strongly_typed_available"]

log = logging.getLogger("eipl_trt.tensorrt")


def import_tensorrt() -> Any:
    """The ``tensorrt`` module.

    Raises:
        BackendUnavailableError: not installed, or installed without its native libraries.
    """
    try:
        return importlib.import_module("tensorrt")
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the tensorrt Python package cannot be imported ({exc}). On Jetson install it with apt "
            f"(python3-libnvinfer); on x86 `pip install tensorrt-cu12` (see the README)"
        ) from exc
    except OSError as exc:  # libnvinfer.so missing: the pip bindings without the libs
        raise BackendUnavailableError(f"tensorrt is installed but its libraries cannot be loaded: {exc}") from exc


def version_tuple(text: str) -> tuple[int, ...]:
    """``"10.3.0.26"`` -> ``(10, 3, 0, 26)``; non-numeric parts end the tuple."""
    out: list[int] = []
    for part in str(text).split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits or digits != part:
            if digits and part.startswith(digits):
                out.append(int(digits))
            break
        out.append(int(digits))
    return tuple(out)


def meets(running: str, minimum: str | None) -> bool:
    """Whether TensorRT ``running`` is at least ``minimum`` (``None``: any)."""
    if not minimum:
        return True
    want = version_tuple(minimum)
    have = version_tuple(running)[: len(want)]
    return have >= want


def strongly_typed_available(trt: Any) -> bool:
    """Whether this TensorRT has strongly typed networks (9.x and later; always on in 11)."""
    return hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")


_LOGGERS: dict[int, Any] = {}
_LOCK = threading.Lock()


def make_logger(trt: Any) -> Any:
    """One ``trt.ILogger`` per tensorrt module that forwards to Python logging and keeps recent errors.

    TensorRT wants a single logger per process; the returned object has ``errors`` (a list the
    builder and runtime helpers read and clear to explain a failure).
    """
    with _LOCK:
        existing = _LOGGERS.get(id(trt))
        if existing is not None:
            return existing

        class _Logger(trt.ILogger):  # type: ignore[name-defined, misc]
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self.errors: list[str] = []

            def log(self, severity: Any, msg: str) -> None:
                if severity in (trt.ILogger.INTERNAL_ERROR, trt.ILogger.ERROR):
                    self.errors.append(str(msg))
                    del self.errors[:-20]
                    log.error("TensorRT: %s", msg)
                elif severity == trt.ILogger.WARNING:
                    log.warning("TensorRT: %s", msg)
                else:
                    log.debug("TensorRT: %s", msg)

        logger = _Logger()
        _LOGGERS[id(trt)] = logger
        return logger
