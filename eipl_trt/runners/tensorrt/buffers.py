"""The runner's memory: one device block and one pinned host block, sub-allocated at 256-byte offsets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eipl_trt.runners.tensorrt.cuda import Cuda, align_up, host_view

__all__ = ["Arena", "Slot"]


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
