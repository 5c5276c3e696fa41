"""EIPL's offline accuracy metric, on plain arrays.

For an episode of measured joints ``q[0..T-1]`` and predictions ``p[t]`` made at step ``t`` (the
model's target for step ``t+1``), the per-step error is the mean squared error over joints between
the prediction and what the robot measured next::

    mse[t] = mean_j (p[t, j] - q[t+1, j])**2        for t = 0 .. T-2

reported as the mean, max and min over steps (eipl-deploy's ``result.txt``), plus the per-joint
mean. The *hold-last* baseline predicts ``q[t+1] = q[t]``: a model that does not beat it has
learned nothing about where the arm is going. Units: squared joint units (rad²).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from eipl_trt.errors import InputError

__all__ = ["StepErrors", "step_errors", "hold_last_predictions", "summarize", "Summary"]


@dataclass(frozen=True)
class StepErrors:
    """Squared errors of one episode: ``sq[t, j] = (pred[t, j] - measured[t + 1, j])**2``, shape (T-1, D)."""

    sq: np.ndarray

    @property
    def per_step(self) -> np.ndarray:
        """``(T-1,)`` MSE over joints for each step."""
        return self.sq.mean(axis=1)


def step_errors(predictions: np.ndarray, measured: np.ndarray) -> StepErrors:
    """Errors of predictions ``(T, D)`` (or ``(T-1, D)``) against measured joints ``(T, D)``.

    The prediction made at the last step has no measured next step and is ignored.

    Raises:
        InputError: shapes that do not line up, or fewer than 2 steps.
    """
    p = np.asarray(predictions, dtype=np.float64)
    q = np.asarray(measured, dtype=np.float64)
    if q.ndim != 2 or p.ndim != 2 or q.shape[0] < 2 or p.shape[1] != q.shape[1] or p.shape[0] not in (q.shape[0], q.shape[0] - 1):
        raise InputError(
            f"predictions {p.shape} and measured joints {q.shape} do not line up: need measured (T, D) "
            f"with T >= 2 and predictions (T, D) or (T-1, D)"
        )
    return StepErrors((p[: q.shape[0] - 1] - q[1:]) ** 2)


def hold_last_predictions(measured: np.ndarray) -> np.ndarray:
    """The hold-last baseline: predict the current measurement for the next step, ``(T-1, D)``."""
    return np.asarray(measured, dtype=np.float64)[:-1]


@dataclass(frozen=True)
class Summary:
    """Aggregate over all steps of all episodes."""

    steps: int
    mean: float
    max: float
    min: float
    per_joint: np.ndarray

    def as_dict(self, joint_names: Sequence[str]) -> dict[str, object]:
        """JSON-ready dictionary."""
        return {
            "steps": self.steps,
            "mse_mean": self.mean,
            "mse_max": self.max,
            "mse_min": self.min,
            "mse_per_joint": {n: float(v) for n, v in zip(joint_names, self.per_joint)},
        }


def summarize(errors: Sequence[StepErrors]) -> Summary:
    """Pool the steps of several episodes; mean/max/min of the per-step MSE and per-joint MSE."""
    if not errors:
        raise InputError("nothing to summarize: no episode had at least 2 steps")
    sq = np.concatenate([e.sq for e in errors], axis=0)
    per_step = sq.mean(axis=1)
    return Summary(int(per_step.size), float(per_step.mean()), float(per_step.max()), float(per_step.min()), sq.mean(axis=0))
