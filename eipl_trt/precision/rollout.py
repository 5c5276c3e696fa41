"""Score a candidate ONNX model on held-out episodes the way the node runs it.

Each episode is replayed from a zero state with the measured joints as input and the state fed
back, as :mod:`eipl_trt.evaluate` does, but straight on ONNX Runtime with inputs preprocessed once
(the sensitivity pass replays the same episodes dozens of times).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from eipl_trt.errors import ModelError
from eipl_trt.evaluate.metrics import step_errors, summarize
from eipl_trt.imaging import JointScaler
from eipl_trt.precision.calibration import EpisodeTensors, StepModel
from eipl_trt.spec import ModelSpec

__all__ = ["StepModel", "Score", "Scorer"]  # StepModel is defined in (and re-exported from) calibration


@dataclass(frozen=True)
class Score:
    """How a candidate compares with FP32 on the held-out episodes.

    Attributes:
        mse: EIPL's metric (predicted joints at t vs measured at t+1), rad², pooled.
        error_rate: ``mse / fp32 mse`` (1.0 = as accurate as FP32).
        deviation: mean squared difference from FP32's predictions, rad² (how much the
            candidate moves the predictions at all; the sensitivity ranking uses it).
        max_abs: largest |difference| from FP32's predicted joints, rad.
        image_error_rate: predicted image's MSE against the next frame / FP32's (normalized pixels).
        image_deviation: mean squared difference from FP32's predicted images (normalized pixels).
    """

    mse: float
    error_rate: float
    deviation: float
    max_abs: float
    image_error_rate: float = 1.0
    image_deviation: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """JSON-ready."""
        return {"mse": self.mse, "error_rate": self.error_rate, "deviation": self.deviation, "max_abs_rad": self.max_abs,
                "image_error_rate": self.image_error_rate, "image_deviation": self.image_deviation}


class Scorer:
    """Replays held-out episodes through candidates and scores them against the FP32 model.

    Args:
        spec: the model.
        episodes: held-out episodes (not used for calibration).
        fp32: the FP32 model bytes (default: the spec's fp32 variant).
        progress: called with 1 after each replayed episode.
    """

    def __init__(self, spec: ModelSpec, episodes: Sequence[EpisodeTensors], fp32: bytes | None = None,
                 progress: Callable[[int], None] | None = None):
        if not episodes:
            raise ModelError("the sensitivity pass needs at least one held-out episode")
        self.spec = spec
        self.episodes = list(episodes)
        self.scaler = JointScaler(spec.joint_min, spec.joint_max, spec.vmin, spec.vmax)
        self.progress = progress
        reference = fp32 if fp32 is not None else spec.verify_variant("fp32").read_bytes()
        self.reference, self.reference_images = self._predict(reference)
        self.reference_mse = self._mse(self.reference)
        self.reference_image_mse = self._image_mse(self.reference_images)

    def _predict(self, model: bytes) -> tuple[list[np.ndarray], list[np.ndarray]]:
        runner = StepModel(self.spec, model)
        joints, images = [], []
        for episode in self.episodes:
            j, im = runner.run_episode(episode, images=True)
            joints.append(self.scaler.denormalize(j))
            images.append(im)
            if self.progress:
                self.progress(1)
        return joints, images

    def _mse(self, predictions: list[np.ndarray]) -> float:
        return summarize([step_errors(p, e.measured) for p, e in zip(predictions, self.episodes)]).mean

    def _image_mse(self, images: list[np.ndarray]) -> float:
        """Predicted image at t against the model input at t+1 (the training target), pooled."""
        sq = [float(np.sum((im[:-1] - e.images[1:, 0]) ** 2)) for im, e in zip(images, self.episodes)]
        n = sum(im[:-1].size for im in images)
        return sum(sq) / n if n else float("nan")

    def score(self, model: bytes) -> Score:
        """Replay every held-out episode through ``model`` (serialized ONNX) and compare with FP32."""
        preds, images = self._predict(model)
        mse = self._mse(preds)
        diff = np.concatenate([p - r for p, r in zip(preds, self.reference)])
        image_mse = self._image_mse(images)
        image_dev = float(np.mean(np.concatenate([(i - r).ravel() ** 2 for i, r in zip(images, self.reference_images)])))
        ratio = (lambda a, b: a / b if b > 0 else float("nan"))
        return Score(mse, ratio(mse, self.reference_mse), float(np.mean(diff ** 2)), float(np.max(np.abs(diff))),
                     ratio(image_mse, self.reference_image_mse), image_dev)
