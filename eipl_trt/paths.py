"""Where eipl_trt's installed files live, and how a model name or path becomes a model directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from eipl_trt.errors import ModelError
from eipl_trt.spec import SIDECAR_NAME, ModelSpec

__all__ = ["share_dir", "bundled_models", "resolve_model", "DEFAULT_MODEL", "DEFAULT_CONTROLLER"]

PACKAGE = "eipl_trt"
#: The model the node, ``make demo`` and ``eipl-trt evaluate`` use when none is given.
DEFAULT_MODEL = "sarnn"
#: The bundled model that does the simulated task in closed loop: what ``eipl-trt control``, ``make live`` and
#: ``sim.launch.py`` drive the arm with unless told otherwise (its model card says how it was made).
DEFAULT_CONTROLLER = "sarnn8rt"


def share_dir() -> Path:
    """The package's share directory (launch/, config/, engines/, data/).

    Looks in order: the ament index (a colcon or ROS install, or ``pip install .`` with
    ``AMENT_PREFIX_PATH`` set), ``<sys.prefix>/share/eipl_trt`` (a plain ``pip install .``), and the
    source checkout this module was imported from.
    """
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            return Path(get_package_share_directory(PACKAGE))
        except (PackageNotFoundError, OSError, ValueError):
            pass
    except ImportError:
        pass
    for candidate in (Path(sys.prefix) / "share" / PACKAGE, Path(__file__).resolve().parent.parent):
        if (candidate / "package.xml").is_file():
            return candidate
    raise ModelError(
        f"cannot find the {PACKAGE} share directory; install the package (`pip install .` or "
        f"`colcon build`) or run from a source checkout"
    )


def bundled_models() -> dict[str, Path]:
    """Bundled model name -> model directory (``share/eipl_trt/engines/<name>/model.json``)."""
    try:
        engines = share_dir() / "engines"
    except ModelError:
        return {}
    if not engines.is_dir():
        return {}
    return {d.name: d for d in sorted(engines.iterdir()) if (d / SIDECAR_NAME).is_file()}


def resolve_model(model: str | os.PathLike[str]) -> ModelSpec:
    """Load the sidecar of a bundled model name, a model directory, a ``model.json`` or a ``model.onnx``.

    Raises:
        ModelError: neither an existing path nor a bundled name; the message lists the bundled names.
    """
    path = Path(model).expanduser()
    if path.exists():
        return ModelSpec.load(path)
    bundled = bundled_models()
    if str(model) in bundled:
        return ModelSpec.load(bundled[str(model)])
    names = ", ".join(bundled) or "none installed"
    raise ModelError(
        f"model {str(model)!r} is neither an existing path nor a bundled model (bundled: {names}). "
        f"Pass a directory written by `eipl-trt export`."
    )
