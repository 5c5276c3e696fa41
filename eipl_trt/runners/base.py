"""The runner interface: one stateful step of an exported EIPL model on some backend.

A runner owns the LSTM state ``(h, c)``. TensorRT keeps it in device memory and swaps buffers
between steps; ONNX Runtime keeps it in host arrays. Either way the caller never threads the
state through :meth:`Runner.infer`; it uses :meth:`Runner.reset_state`, :meth:`Runner.get_state`
and :meth:`Runner.set_state` to zero it or hand it over to another runner (e.g. when the
precision is switched while the robot is moving).

Subclasses implement the ``_*_impl`` hooks; the public methods do the shared checks.
"""

from __future__ import annotations

import abc
import logging
import time
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Mapping

import numpy as np

from eipl_trt.errors import EipltrtError, InputError
from eipl_trt.spec import ModelSpec

__all__ = ["RecurrentState", "Runner"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecurrentState:
    """LSTM state ``h`` and ``c``, each ``(1, rec_dim)`` float32, host copies owned by the holder."""

    h: np.ndarray
    c: np.ndarray

    @classmethod
    def zeros(cls, rec_dim: int) -> "RecurrentState":
        """The all-zero state EIPL starts every sequence with."""
        return cls(np.zeros((1, rec_dim), np.float32), np.zeros((1, rec_dim), np.float32))

    def copy(self) -> "RecurrentState":
        """A deep copy."""
        return RecurrentState(self.h.copy(), self.c.copy())

    def validate(self, rec_dim: int) -> "RecurrentState":
        """Return a float32 ``(1, rec_dim)`` copy, or raise :class:`InputError` on a bad shape or NaN."""
        out = []
        for name, arr in (("h", self.h), ("c", self.c)):
            a = np.asarray(arr, dtype=np.float32).reshape(-1) if np.size(arr) == rec_dim else None
            if a is None:
                raise InputError(f"recurrent state {name} has {np.size(arr)} values, the model needs {rec_dim}")
            if not np.all(np.isfinite(a)):
                raise InputError(f"recurrent state {name} contains NaN or Inf; reset the state instead")
            out.append(a.reshape(1, rec_dim).copy())
        return RecurrentState(out[0], out[1])


class Runner(abc.ABC):
    """One model on one backend at one precision, with its own recurrent state.

    Construction is cheap; :meth:`open` loads the model and allocates buffers; :meth:`close`
    frees them. Use as a context manager or pair the calls.

    Output contract: the arrays :meth:`infer` returns may be reused by the next call; copy
    what you keep.
    """

    backend: ClassVar[str] = ""

    def __init__(self, spec: ModelSpec, precision: str = "fp32"):
        self.spec = spec
        self.precision = precision
        self.last_timings: dict[str, float] = {}
        self._is_open = False

    # ------------------------------------------------------------------ lifecycle
    @property
    def is_open(self) -> bool:
        """True between :meth:`open` and :meth:`close`."""
        return self._is_open

    @property
    def name(self) -> str:
        """``backend/precision``, e.g. ``onnxruntime/fp32``."""
        return f"{self.backend}/{self.precision}"

    def open(self) -> "Runner":
        """Load the model and allocate everything a step needs; the state starts at zero."""
        if not self._is_open:
            started = time.perf_counter()
            self._open_impl()
            self._is_open = True
            self.reset_state()
            log.info("opened %s runner for %s in %.3f s", self.name, self.spec.model, time.perf_counter() - started)
        return self

    def close(self) -> None:
        """Free the model and buffers. Safe to call twice."""
        if self._is_open:
            self._close_impl()
            self._is_open = False

    def __enter__(self) -> "Runner":
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _require_open(self) -> None:
        if not self._is_open:
            raise EipltrtError(f"{self.name} runner is not open; call open() first")

    # ------------------------------------------------------------------ stepping
    @property
    def skips_image(self) -> bool:
        """Whether ``infer(..., want_image=False)`` skips the image decoder (a cheaper step).

        Runners that cannot skip it compute the image anyway and return it.
        """
        return False

    def image_decoder_status(self) -> str:
        """The ``image_decoder`` line of ``/diagnostics``: when this runner runs the image decoder."""
        return "run only while the predicted image is wanted" if self.skips_image else "every step"

    def infer(self, image: np.ndarray, joint: np.ndarray, *, want_image: bool = True) -> Mapping[str, np.ndarray]:
        """Run one step and advance the recurrent state.

        Args:
            image: ``(1, 3, H, W)`` float32, normalized as the model was trained.
            joint: ``(1, D)`` float32, normalized.
            want_image: ``False`` lets a runner that :attr:`skips_image` leave the predicted image
                out (the recurrent state and the other outputs are the same either way).

        Returns:
            Outputs by role: ``image`` (1,3,H,W) (absent when skipped), ``joint`` (1,D), and for
            SARNN ``enc_pts`` and ``dec_pts`` (1,2K). The state outputs are kept inside the runner.
        """
        self._require_open()
        shapes = self.spec.input_shapes()
        for role, arr in (("image", image), ("joint", joint)):
            if arr.shape != shapes[role] or arr.dtype != np.float32:
                raise InputError(
                    f"{role} tensor must be float32 {shapes[role]}, got {arr.dtype} {arr.shape}; "
                    f"use Predictor for raw frames and joint positions"
                )
        started = time.perf_counter()
        outputs = self._infer_impl(image, joint) if want_image or not self.skips_image else self._infer_control_impl(image, joint)
        self.last_timings["total"] = time.perf_counter() - started
        return outputs

    def warm_up(self, steps: int = 5) -> None:
        """Run ``steps`` zero-input steps (first-call allocations, kernel selection), then zero the state."""
        shapes = self.spec.input_shapes()
        image = np.zeros(shapes["image"], np.float32)
        joint = np.zeros(shapes["joint"], np.float32)
        for k in range(steps):
            self.infer(image, joint, want_image=k % 2 == 0)  # both graphs, where the image can be skipped
        self.reset_state()

    # ------------------------------------------------------------------ state
    def reset_state(self) -> None:
        """Zero ``h`` and ``c`` (start of an episode)."""
        self._require_open()
        self._set_state_impl(RecurrentState.zeros(self.spec.rec_dim))

    def get_state(self) -> RecurrentState:
        """A host copy of the current state."""
        self._require_open()
        return self._get_state_impl()

    def set_state(self, state: RecurrentState) -> None:
        """Replace the current state (validated: shape ``(1, rec_dim)``, finite)."""
        self._require_open()
        self._set_state_impl(state.validate(self.spec.rec_dim))

    # ------------------------------------------------------------------ hooks
    @abc.abstractmethod
    def _open_impl(self) -> None:
        """Load the model; raise :class:`~eipl_trt.errors.EipltrtError` subclasses on failure."""

    @abc.abstractmethod
    def _close_impl(self) -> None:
        """Release everything :meth:`_open_impl` acquired."""

    @abc.abstractmethod
    def _infer_impl(self, image: np.ndarray, joint: np.ndarray) -> Mapping[str, np.ndarray]:
        """One step; update the internal state; fill :attr:`last_timings` with stage seconds."""

    def _infer_control_impl(self, image: np.ndarray, joint: np.ndarray) -> Mapping[str, np.ndarray]:
        """One step without the predicted image; only called when :attr:`skips_image` is true."""
        raise NotImplementedError(f"{type(self).__name__} does not skip the image decoder")

    @abc.abstractmethod
    def _get_state_impl(self) -> RecurrentState:
        """Copy the current state to the host."""

    @abc.abstractmethod
    def _set_state_impl(self, state: RecurrentState) -> None:
        """Install a validated state."""
