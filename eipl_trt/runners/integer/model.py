"""The integer model in memory and on disk, and its memory plan.

File format ``eipl_trt.intmodel`` version 1: a directory with

* ``intmodel.json``: ``{"format": "eipl_trt.intmodel", "format_version": 1, "inputs", "outputs",
  "tensors": {name: {"bits", "scale", "shape"[, "const"]}}, "ops": [{"op", "name", "inputs",
  "outputs", "attrs"}], "alignments", "luts", "float_layers", "memory", "meta",
  "arrays_sha256"}``; a tensor's real value is ``code * scale``; op semantics are
  :mod:`eipl_trt.runners.integer.execute` (documented per op there);
* ``intmodel.npz``: the integer arrays (``<node>:w`` int8 weights, ``:b`` int32 biases, ``:mp/:sp``
  and ``:mn/:sn`` int32 multipliers and shifts for the positive and negative side, ``:lut``
  int16 tables indexed by ``code + qmax(in_bits)``, ``:exp`` int32 Q16 softmax tables,
  ``const:<name>`` int16 constants, ``float:<name>`` float constants of hybrid layers).

Both files are written atomically, the npz first; the JSON carries the npz's SHA-256, so a torn or
mismatched pair is detected at load.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eipl_trt.common.atomic import write_bytes_atomic
from eipl_trt.errors import ModelError

__all__ = ["IntModel", "FORMAT", "FORMAT_VERSION", "memory_plan"]

FORMAT = "eipl_trt.intmodel"
FORMAT_VERSION = 1


@dataclass
class IntModel:
    """Ops in execution order over integer tensors (see the module docstring)."""

    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    tensors: dict[str, dict[str, Any]] = field(default_factory=dict)
    ops: list[dict[str, Any]] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    alignments: list[dict[str, Any]] = field(default_factory=list)
    luts: dict[str, dict[str, Any]] = field(default_factory=dict)
    float_layers: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: str | Path) -> Path:
        """Write ``intmodel.npz`` and ``intmodel.json`` atomically into ``directory``; returns the JSON path."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, **self.arrays)
        data = buf.getvalue()
        doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "inputs": self.inputs, "outputs": self.outputs,
               "tensors": self.tensors, "ops": self.ops, "alignments": self.alignments, "luts": self.luts,
               "float_layers": self.float_layers, "memory": memory_plan(self), "meta": self.meta,
               "arrays_sha256": hashlib.sha256(data).hexdigest()}
        write_bytes_atomic(out / "intmodel.npz", data)
        write_bytes_atomic(out / "intmodel.json", (json.dumps(doc, indent=1, default=_jsonable) + "\n").encode())
        return out / "intmodel.json"

    @classmethod
    def load(cls, directory: str | Path) -> "IntModel":
        """Read a saved model.

        Raises:
            ModelError: missing or corrupt files, another format or version, arrays that do not match the JSON.
        """
        d = Path(directory)
        try:
            doc = json.loads((d / "intmodel.json").read_text(encoding="utf-8"))
            data = (d / "intmodel.npz").read_bytes()
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"cannot read the integer model in {d}: {exc}; re-create it with "
                             f"`eipl-trt quantlab integer`") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ModelError(f"{d / 'intmodel.json'} is not an {FORMAT} file")
        if doc.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"{d / 'intmodel.json'} has format version {doc.get('format_version')}; this eipl_trt "
                             f"reads version {FORMAT_VERSION}: re-create it with `eipl-trt quantlab integer`")
        if hashlib.sha256(data).hexdigest() != doc.get("arrays_sha256"):
            raise ModelError(f"{d / 'intmodel.npz'} does not match intmodel.json (corrupt or from another "
                             f"conversion); re-create it with `eipl-trt quantlab integer`")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as exc:  # zipfile/ValueError on a corrupt archive
            raise ModelError(f"{d / 'intmodel.npz'} is corrupt: {exc}") from exc
        try:
            return cls(list(doc["inputs"]), list(doc["outputs"]), dict(doc["tensors"]), list(doc["ops"]), arrays,
                       list(doc["alignments"]), dict(doc["luts"]), list(doc["float_layers"]), dict(doc["meta"]))
        except (KeyError, TypeError) as exc:
            raise ModelError(f"{d / 'intmodel.json'} lacks a field ({exc}); re-create it") from exc


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON-serializable: {type(v)}")


def _nbytes(info: dict[str, Any]) -> int:
    width = 1 if info["bits"] <= 8 else 2 if info["bits"] <= 16 else 4
    return int(np.prod(info["shape"], dtype=np.int64)) * width


def memory_plan(model: IntModel) -> dict[str, Any]:
    """Activation buffers by tensor lifetime.

    A tensor lives from the op that writes it (graph inputs: from the start) to the last op that
    reads it (graph outputs: to the end). Buffers are placed first-fit in one arena, largest first;
    views and splits alias nothing here (each output is its own buffer, the conservative choice).

    Returns:
        ``naive_bytes`` (every activation its own buffer), ``peak_live_bytes`` (the most bytes alive
        at once: the lower bound), ``arena_bytes`` (what the first-fit placement needs) and ``offsets``.
    """
    n_ops = len(model.ops)
    birth: dict[str, int] = {name: -1 for name in model.inputs}
    death: dict[str, int] = {}
    for i, op in enumerate(model.ops):
        for t in op["inputs"]:
            if t in model.tensors and not model.tensors[t].get("const"):
                death[t] = i
        for t in op["outputs"]:
            birth.setdefault(t, i)
    for t in model.outputs:
        death[t] = n_ops
    live = {t: (b, death.get(t, b)) for t, b in birth.items() if t in model.tensors}
    sizes = {t: _nbytes(model.tensors[t]) for t in live}
    peak = max((sum(sizes[t] for t, (b, e) in live.items() if b <= i <= e) for i in range(-1, n_ops + 1)), default=0)
    placed: list[tuple[int, int, int, int]] = []  # offset, size, birth, death
    offsets = {}
    for t in sorted(live, key=lambda k: -sizes[k]):
        b, e = live[t]
        clash = sorted((o, s) for o, s, b2, e2 in placed if not (e2 < b or e < b2))
        off = 0
        for o, s in clash:
            if off + sizes[t] <= o:
                break
            off = max(off, o + s)
        placed.append((off, sizes[t], b, e))
        offsets[t] = off
    arena = max((o + s for o, s, _, _ in placed), default=0)
    return {"naive_bytes": int(sum(sizes.values())), "peak_live_bytes": int(peak), "arena_bytes": int(arena),
            "offsets": offsets}
