"""The integer-only model behind the :class:`~eipl_trt.runners.base.Runner` interface.

The LSTM state stays as integer codes between steps (its input and output share one scale, so no
rounding happens in the hand-over); :meth:`get_state` dequantizes a copy and :meth:`set_state`
quantizes (round half up, saturate), so a switch from another runner mid-episode works as for
every other backend. ``backend`` is ``numpy-int``; ``precision`` is ``intonly`` (``int8`` when the
node, ``bench`` or ``evaluate`` create it as the ``integer`` backend, see
:func:`eipl_trt.runners.create_runner`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping

import numpy as np

from eipl_trt.errors import ModelError
from eipl_trt.runners.base import RecurrentState, Runner
from eipl_trt.runners.integer.execute import IntExecutor
from eipl_trt.runners.integer.model import IntModel
from eipl_trt.spec import ModelSpec

__all__ = ["IntegerRunner"]


class IntegerRunner(Runner):
    """Runs an :class:`IntModel` saved in ``directory`` (``intmodel.json`` + ``intmodel.npz``) for ``spec``.

    Raises (at :meth:`open`):
        ModelError: the files are missing, corrupt, another version, or made for another graph.
    """

    backend = "numpy-int"

    def __init__(self, spec: ModelSpec, directory: str | Path | None = None, model: IntModel | None = None,
                 precision: str = "intonly"):
        super().__init__(spec, precision)
        if directory is None and model is None:
            raise ModelError("IntegerRunner needs an integer model directory or an IntModel")
        self.directory = None if directory is None else Path(directory)
        self._model = model
        self._ex: IntExecutor | None = None
        self._h = self._c = np.zeros((1, spec.rec_dim), np.int64)

    def _open_impl(self) -> None:
        model = self._model if self._model is not None else IntModel.load(self.directory)  # type: ignore[arg-type]
        names = set(self.spec.inputs.values()) | set(self.spec.outputs.values())
        missing = sorted(n for n in names if n not in model.tensors)
        if missing:
            raise ModelError(f"the integer model does not fit {self.spec.model}: no tensor(s) {missing}; "
                             f"convert this model with `eipl-trt quantlab integer`")
        self._ex = IntExecutor(model)

    def _close_impl(self) -> None:
        self._ex = None

    def _infer_impl(self, image: np.ndarray, joint: np.ndarray) -> Mapping[str, np.ndarray]:
        assert self._ex is not None
        n, o = self.spec.inputs, self.spec.outputs
        started = time.perf_counter()
        codes = self._ex.run_codes({n["image"]: self._ex.quantize_input(n["image"], image),
                                    n["joint"]: self._ex.quantize_input(n["joint"], joint),
                                    n["state_h"]: self._h, n["state_c"]: self._c})
        self._h, self._c = codes[o["state_h"]], codes[o["state_c"]]
        self.last_timings["infer"] = time.perf_counter() - started
        return {role: self._ex.dequantize(name, codes[name]) for role, name in o.items() if not role.startswith("state_")}

    def _get_state_impl(self) -> RecurrentState:
        assert self._ex is not None
        o = self.spec.outputs
        return RecurrentState(self._ex.dequantize(o["state_h"], self._h), self._ex.dequantize(o["state_c"], self._c))

    def _set_state_impl(self, state: RecurrentState) -> None:
        if self._ex is None:  # reset before open completes
            return
        n = self.spec.inputs
        self._h = self._ex.quantize_input(n["state_h"], state.h)
        self._c = self._ex.quantize_input(n["state_c"], state.c)
