"""The runner's I/O: the engine's tensors checked against the sidecar, and its memory (one device
block and one pinned host block, sub-allocated at 256-byte offsets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from eipl_trt.errors import ModelError
from eipl_trt.runners.tensorrt.cuda_api import Cuda, align_up, host_view
from eipl_trt.spec import ModelSpec

__all__ = ["Arena", "Slot", "describe_io"]


@dataclass
class Slot:
    """One tensor's place in an :class:`Arena`: its address, size and (host) numpy view."""

    ptr: int
    nbytes: int
    view: np.ndarray | None = None


class Arena:
    """Named sub-allocations of one ``malloc``/``malloc_host`` block, each 256-byte aligned.

    Args:
        cuda: the facade that allocates.
        sizes: ``name -> (shape, dtype)`` in layout order.
        host: page-locked host memory (with numpy views) instead of device memory.
    """

    def __init__(self, cuda: Cuda, sizes: dict[str, tuple[tuple[int, ...], np.dtype]], host: bool):
        self._cuda, self._host = cuda, host
        offsets: dict[str, tuple[int, int]] = {}
        total = 0
        for name, (shape, dtype) in sizes.items():
            nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            offsets[name] = (total, nbytes)
            total += align_up(max(nbytes, 1))
        self.total = total
        self.base = cuda.malloc_host(total) if host else cuda.malloc(total)
        self.slots: dict[str, Slot] = {}
        for name, (offset, nbytes) in offsets.items():
            view = None
            if host:
                shape, dtype = sizes[name]
                view = host_view(self.base + offset, nbytes).view(dtype).reshape(shape)
                view[...] = 0
            self.slots[name] = Slot(self.base + offset, nbytes, view)

    def __getitem__(self, name: str) -> Slot:
        return self.slots[name]

    def free(self) -> None:
        """Release the block (the views become invalid)."""
        if self.base:
            for slot in self.slots.values():
                slot.view = None
            (self._cuda.free_host if self._host else self._cuda.free)(self.base)
            self.base = 0


def describe_io(
    trt: Any, engine: Any, spec: ModelSpec, precision: str
) -> dict[str, tuple[str, tuple[int, ...], np.dtype]]:
    """``role -> (tensor name, shape, numpy dtype)`` of an engine's I/O (outputs as ``o.<role>``).

    Raises:
        ModelError: the engine's tensors do not match the sidecar (names, directions, shapes).
    """
    names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
    roles = {**{r: (n, True) for r, n in spec.inputs.items()},
             **{"o." + r: (n, False) for r, n in spec.outputs.items()}}
    want = {**spec.input_shapes(), **{"o." + r: s for r, s in spec.output_shapes().items()}}
    io, problems = {}, []
    for role, (name, is_input) in roles.items():
        if name not in names:
            problems.append(f"tensor {name!r} missing")
            continue
        mode = engine.get_tensor_mode(name)
        if mode != (trt.TensorIOMode.INPUT if is_input else trt.TensorIOMode.OUTPUT):
            problems.append(f"tensor {name!r} is not an {'input' if is_input else 'output'}")
        shape = tuple(int(d) for d in engine.get_tensor_shape(name))
        if shape != want[role]:
            problems.append(f"tensor {name!r} has shape {shape}, model.json implies {want[role]}")
        io[role] = (name, shape, np.dtype(trt.nptype(engine.get_tensor_dtype(name))))
    if problems or len(names) != len(roles):
        extra = sorted(names - {n for n, _ in roles.values()})
        raise ModelError(f"the {precision} engine does not match model.json: "
                         f"{'; '.join(problems + ([f'unexpected tensors {extra}'] if extra else []))}. "
                         f"Re-export the model so the ONNX file and sidecar agree.")
    return io
