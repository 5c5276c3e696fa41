"""Put finished variants into a model directory so that an interrupted run changes nothing.

Nothing is written beside ``model.json`` until every requested variant is built and checked. Then,
in a few milliseconds:

1. each new file is written under a temporary name and fsynced;
2. each existing variant file is hard-linked to ``.<file>.prev`` (a second name for the old bytes);
3. each new file is renamed over its variant name;
4. ``model.json`` is replaced atomically (the commit point);
5. the ``.prev`` links are removed.

A run killed before step 3 leaves the old files and ``model.json`` (plus at most a stray temporary
file, removed by the next run). A run killed between 3 and 4, a window of a few renames, leaves
``model.json`` recording the old hashes and ``.prev`` holding the old bytes; :func:`recover` (run
at the start of every ``eipl-trt quantize``) puts them back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from eipl_trt.spec import VARIANT_FILES, ModelSpec, sha256_file

__all__ = ["NewVariant", "commit_variants", "recover"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewVariant:
    """A built variant waiting to be committed: serialized ONNX and its metadata."""

    precision: str
    data: bytes
    opset: int
    min_tensorrt: str
    recipe: Mapping[str, Any] = field(default_factory=dict)


def _prev(path: Path) -> Path:
    return path.with_name(f".{path.name}.prev")


def recover(directory: Path) -> list[str]:
    """Undo a commit that was cut short (see the module docstring); returns the files restored.

    Also removes temporary files a killed run left behind.
    """
    directory = Path(directory)
    restored = []
    spec = ModelSpec.load(directory)
    for precision, variant in spec.variants.items():
        path = directory / variant.file
        prev = _prev(path)
        if not prev.exists():
            continue
        if (not path.is_file() or sha256_file(path) != variant.sha256) and sha256_file(prev) == variant.sha256:
            os.replace(prev, path)
            restored.append(variant.file)
            log.warning("restored %s from an interrupted quantize run", path)
        else:
            prev.unlink()
    for name in VARIANT_FILES.values():
        for stray in directory.glob(f".{name}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                stray.unlink()
        prev = directory / f".{name}.prev"
        if prev.exists() and name not in {v.file for v in spec.variants.values()}:
            prev.unlink()
    return restored


def _write_temp(directory: Path, name: str, data: bytes) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def commit_variants(spec: ModelSpec, variants: list[NewVariant]) -> ModelSpec:
    """Write ``variants`` beside ``model.json`` and register them, as one step (module docstring).

    Returns:
        The spec as saved.
    """
    assert spec.directory is not None
    directory = spec.directory
    recover(directory)
    temps: list[tuple[NewVariant, Path, Path]] = []
    try:
        for v in variants:
            final = directory / VARIANT_FILES[v.precision]
            temps.append((v, _write_temp(directory, final.name, v.data), final))
    except BaseException:
        for _, tmp, _ in temps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    updated = ModelSpec.load(directory)
    for v, tmp, final in temps:
        updated = updated.with_variant(v.precision, final.name, sha256_file(tmp), opset=v.opset,
                                       min_tensorrt=v.min_tensorrt, recipe=v.recipe)
    for _, _, final in temps:
        if final.exists():
            prev = _prev(final)
            with contextlib.suppress(FileNotFoundError):
                prev.unlink()
            os.link(final, prev)
    for _, tmp, final in temps:
        os.replace(tmp, final)
    updated.save(directory)
    for _, _, final in temps:
        with contextlib.suppress(FileNotFoundError):
            _prev(final).unlink()
    return ModelSpec.load(directory)
