"""The stateful predictor: a raw camera frame and raw joint positions in, the next joint targets out.

One :meth:`Predictor.step` per control tick does what EIPL's online loop does:

1. **preprocess**: convert the frame to the model's channel order, resize it to the model size
   (bilinear, as the dataset was made), scale to ``[vmin, vmax]``; min-max normalize the joints and,
   with ``input_mix < 1``, blend them with the previous prediction
   (``x = a * measured + (1 - a) * previous``, in normalized space);
2. **inference**: one step of the runner, which carries the LSTM state;
3. **postprocess**: denormalize the predicted joints, map the attention points to pixels, and
   (on request) turn the predicted image into uint8.

Each stage is timed; :class:`Prediction` carries the breakdown.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from eipl_trt.errors import InputError, NonFiniteOutputError
from eipl_trt.imaging import JointScaler, Resizer, image_to_tensor, tensor_to_image, to_channel_order
from eipl_trt.runners import RecurrentState, Runner, create_runner
from eipl_trt.spec import ModelSpec

__all__ = ["Prediction", "Predictor", "PredictorState", "StageTimings"]


@dataclass(frozen=True)
class StageTimings:
    """Wall-clock seconds spent in each stage of one step.

    ``inference_detail`` splits inference where the backend can (e.g. ``h2d``, ``compute``,
    ``d2h`` on a GPU; ``compute`` on ONNX Runtime).
    """

    preprocess_s: float
    inference_s: float
    postprocess_s: float
    inference_detail: Mapping[str, float] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        """Sum of the three stages."""
        return self.preprocess_s + self.inference_s + self.postprocess_s


@dataclass(frozen=True)
class Prediction:
    """The result of one step.

    Attributes:
        joints: ``(D,)`` float64 joint targets for the next control step, in raw units (rad),
            model joint order.
        joints_normalized: ``(D,)`` float32 model output before denormalization.
        enc_points_px, dec_points_px: ``(K, 2)`` float32 attention points as ``(x, y)`` pixel
            coordinates in the **input frame** (column, row; origin at the top-left pixel centre),
            or ``None`` for models without points. ``enc`` = where the model looked in this frame,
            ``dec`` = where it predicts the points in the next frame.
        enc_points_model_px, dec_points_model_px: the same in model-input pixels (e.g. 64x64).
        image: ``(H, W, 3)`` uint8 predicted next frame at model resolution, or ``None`` when not
            requested.
        image_encoding: ``rgb8`` or ``bgr8``: the channel order of :attr:`image`.
        step: steps since the last state reset (0 for the first step of an episode).
        timings: per-stage wall-clock seconds.
    """

    joints: np.ndarray
    joints_normalized: np.ndarray
    enc_points_px: np.ndarray | None
    dec_points_px: np.ndarray | None
    enc_points_model_px: np.ndarray | None
    dec_points_model_px: np.ndarray | None
    image: np.ndarray | None
    image_encoding: str
    step: int
    timings: StageTimings


@dataclass(frozen=True)
class PredictorState:
    """Everything that carries over between steps: LSTM state, last prediction (for mixing), step count."""

    recurrent: RecurrentState
    last_prediction: np.ndarray | None
    step: int


class Predictor:
    """Stateful one-step-per-tick inference on raw sensor data.

    Args:
        runner: an open or closed :class:`~eipl_trt.runners.Runner` (opened here if needed).
        input_mix: closed-loop mixing ``a`` in ``[0, 1]``: the model's joint input is
            ``a * measured + (1 - a) * previous prediction``. 1.0 (default) = pure sensor input.

    Raises:
        InputError: ``input_mix`` outside ``[0, 1]``.
    """

    def __init__(self, runner: Runner, *, input_mix: float = 1.0):
        if not 0.0 <= float(input_mix) <= 1.0:
            raise InputError(f"input_mix must be in [0, 1], got {input_mix}")
        self.runner = runner.open()
        self.spec: ModelSpec = runner.spec
        self.input_mix = float(input_mix)
        self.scaler = JointScaler(self.spec.joint_min, self.spec.joint_max, self.spec.vmin, self.spec.vmax)
        self._image_buf = np.empty(self.spec.input_shapes()["image"], np.float32)
        self._resizer = Resizer((self.spec.image_height, self.spec.image_width))  # buffers reused every step
        self._last_prediction: np.ndarray | None = None
        self._step = 0

    @classmethod
    def from_model(
        cls,
        model: str | os.PathLike[str] | ModelSpec,
        *,
        backend: str = "auto",
        precision: str = "fp32",
        num_threads: int | None = None,
        input_mix: float = 1.0,
    ) -> "Predictor":
        """Open a predictor for a bundled model name, a model directory or a loaded spec."""
        from eipl_trt.paths import resolve_model

        spec = model if isinstance(model, ModelSpec) else resolve_model(model)
        return cls(create_runner(spec, backend, precision, num_threads), input_mix=input_mix)

    # ------------------------------------------------------------------ stages
    def preprocess_image(self, image: np.ndarray, encoding: str = "rgb8") -> np.ndarray:
        """Frame ``(H, W, C)`` uint8 in ``encoding`` -> model input ``(1, 3, h, w)`` float32 (a new array)."""
        return self._preprocess_image(image, encoding).copy()

    def _preprocess_image(self, image: np.ndarray, encoding: str) -> np.ndarray:
        rgb = to_channel_order(image, encoding, self.spec.channel_order)
        small = self._resizer(rgb)
        return image_to_tensor(small, self.spec.vmin, self.spec.vmax, out=self._image_buf)

    def preprocess_joints(self, joints: Sequence[float] | np.ndarray) -> np.ndarray:
        """Raw joint positions ``(D,)`` -> model input ``(1, D)`` float32 (with input mixing applied).

        Raises:
            InputError: wrong count or non-finite values.
        """
        q = np.asarray(joints, dtype=np.float64)
        if q.ndim != 1 or q.size != self.spec.joint_dim:
            raise InputError(
                f"expected {self.spec.joint_dim} joint positions in model order "
                f"({', '.join(self.spec.joint_names)}), got shape {q.shape}"
            )
        if not np.all(np.isfinite(q)):
            bad = [self.spec.joint_names[i] for i in np.nonzero(~np.isfinite(q))[0]]
            raise InputError(f"joint positions contain NaN or Inf for {', '.join(bad)}; check the joint_states source")
        x = self.scaler.normalize(q)
        if self.input_mix < 1.0 and self._last_prediction is not None:
            x = (self.input_mix * x + (1.0 - self.input_mix) * self._last_prediction).astype(np.float32)
        return x.reshape(1, -1)

    def _points(self, flat: np.ndarray, frame_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Normalized keypoints ``(1, 2K)`` [x0, y0, x1, y1, ...] -> (model px, frame px), each ``(K, 2)``."""
        att = self.spec.attention or {}
        keys = flat.reshape(-1, 2).astype(np.float32)
        scale = np.array([att["feature_width"] - 1, att["feature_height"] - 1], np.float32)
        model_px = keys * scale + np.float32(att["offset_px"])
        ratio = np.array(
            [frame_hw[1] / self.spec.image_width, frame_hw[0] / self.spec.image_height], np.float32
        )
        frame_px = (model_px + 0.5) * ratio - 0.5
        return model_px, frame_px

    # ------------------------------------------------------------------ step
    def step(
        self,
        image: np.ndarray,
        joints: Sequence[float] | np.ndarray,
        encoding: str = "rgb8",
        *,
        want_image: bool = True,
    ) -> Prediction:
        """Run one control step.

        Args:
            image: ``(H, W, C)`` uint8 camera frame of any size in ``encoding``
                (rgb8, bgr8, rgba8, bgra8, mono8; mono8 may also be ``(H, W)``).
            joints: ``(D,)`` measured joint positions in model joint order, raw units (rad).
            encoding: ROS encoding of ``image``.
            want_image: also produce the predicted image. ``False`` skips its conversion to uint8, and
                on runners that :attr:`~eipl_trt.runners.base.Runner.skips_image`, the image decoder.

        Raises:
            InputError: bad frame, encoding or joint vector (the state is left unchanged).
            NonFiniteOutputError: the model produced NaN/Inf; the state has been reset.
        """
        t0 = time.perf_counter()
        joint_in = self.preprocess_joints(joints)
        image_in = self._preprocess_image(image, encoding)
        t1 = time.perf_counter()
        out = self.runner.infer(image_in, joint_in, want_image=want_image)
        t2 = time.perf_counter()
        y = out["joint"].reshape(-1)
        if not np.all(np.isfinite(y)):
            self.reset_state()
            raise NonFiniteOutputError(
                f"{self.runner.name} produced non-finite joint outputs at step {self._step}; the recurrent "
                f"state was reset. Check the model export and the input ranges."
            )
        y = y.astype(np.float32, copy=True)
        frame_hw = (int(image.shape[0]), int(image.shape[1]))
        enc_m = dec_m = enc_f = dec_f = None
        if self.spec.has_points:
            enc_m, enc_f = self._points(out["enc_pts"], frame_hw)
            dec_m, dec_f = self._points(out["dec_pts"], frame_hw)
        picture = tensor_to_image(out["image"], self.spec.vmin, self.spec.vmax) if want_image else None
        self._last_prediction = y
        step = self._step
        self._step += 1
        t3 = time.perf_counter()
        return Prediction(
            joints=self.scaler.denormalize(y),
            joints_normalized=y,
            enc_points_px=enc_f,
            dec_points_px=dec_f,
            enc_points_model_px=enc_m,
            dec_points_model_px=dec_m,
            image=picture,
            image_encoding=f"{self.spec.channel_order}8",
            step=step,
            timings=StageTimings(t1 - t0, t2 - t1, t3 - t2, dict(self.runner.last_timings)),
        )

    # ------------------------------------------------------------------ state
    def reset_state(self) -> None:
        """Start a new episode: zero the LSTM state and forget the last prediction."""
        self.runner.reset_state()
        self._last_prediction = None
        self._step = 0

    def get_state(self) -> PredictorState:
        """A copy of everything that carries over between steps."""
        last = None if self._last_prediction is None else self._last_prediction.copy()
        return PredictorState(self.runner.get_state(), last, self._step)

    def set_state(self, state: PredictorState) -> None:
        """Restore a state from :meth:`get_state` (possibly of another predictor of the same model)."""
        self.runner.set_state(state.recurrent)
        if state.last_prediction is not None and state.last_prediction.shape != (self.spec.joint_dim,):
            raise InputError(
                f"last_prediction has shape {state.last_prediction.shape}, expected ({self.spec.joint_dim},)"
            )
        self._last_prediction = None if state.last_prediction is None else state.last_prediction.copy()
        self._step = int(state.step)

    def swap_runner(self, runner: Runner) -> Runner:
        """Replace the runner at a step boundary, handing the LSTM state over; returns the old runner.

        The new runner must serve the same model (same sidecar tensors and sizes). It is opened
        if needed; the old one is returned open so the caller decides when to close it.
        """
        if runner.spec.input_shapes() != self.spec.input_shapes() or runner.spec.outputs != self.spec.outputs:
            raise InputError("the new runner serves a different model; it cannot take over the state")
        runner.open()
        runner.set_state(self.runner.get_state())
        old, self.runner = self.runner, runner
        return old

    def close(self) -> None:
        """Close the runner."""
        self.runner.close()
