"""What ``eipl-trt evaluate`` measured: the results of one run, the camera check and the whole report.

:mod:`~eipl_trt.evaluate.core` fills these in; :mod:`~eipl_trt.evaluate.report` writes them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eipl_trt.bagio import Episode
from eipl_trt.evaluate.metrics import StepErrors, Summary, summarize
from eipl_trt.spec import ModelSpec

__all__ = ["RunResult", "CameraCheck", "EvalReport"]


@dataclass
class RunResult:
    """Predictions of one model/precision over all episodes."""

    precision: str
    backend: str
    predictions: list[np.ndarray] = field(default_factory=list)  # per episode (T, D), raw units
    enc_points: list[np.ndarray | None] = field(default_factory=list)  # per episode (T, K, 2) frame px
    errors: list[StepErrors] = field(default_factory=list)
    step_ms: list[float] = field(default_factory=list)

    @property
    def summary(self) -> Summary:
        """Pooled metric over all episodes."""
        return summarize(self.errors)


@dataclass(frozen=True)
class CameraCheck:
    """How much the predictions depend on the camera (``evaluate(camera_check=True)``).

    The same precision is replayed with each episode's frames taken from the next episode and its
    own joints. ``real`` and ``swapped`` are pooled over the same steps; a ratio near 1 means the
    model predicts from the joint history alone.
    """

    precision: str
    real: Summary
    swapped: Summary

    @property
    def ratio(self) -> float:
        """``swapped.mean / real.mean``."""
        return self.swapped.mean / self.real.mean if self.real.mean > 0 else float("nan")

    def as_dict(self) -> dict[str, object]:
        """JSON-ready results."""
        return {"precision": self.precision, "steps": self.real.steps, "mse_mean_real": self.real.mean,
                "mse_mean_other_frames": self.swapped.mean, "ratio": self.ratio}


@dataclass
class EvalReport:
    """Everything the report files are made of."""

    spec: ModelSpec
    source: str
    episodes: list[Episode]
    runs: list[RunResult]
    hold: Summary
    camera: CameraCheck | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready results."""
        names = self.spec.joint_names
        fp32 = next((r for r in self.runs if r.precision == "fp32"), None)
        runs = {}
        for r in self.runs:
            s = r.summary
            entry = s.as_dict(names)
            entry["backend"] = r.backend
            entry["vs_hold_last"] = s.mean / self.hold.mean if self.hold.mean > 0 else float("nan")
            if fp32 is not None:
                entry["error_rate_vs_fp32"] = (s.mean - fp32.summary.mean) / fp32.summary.mean
                entry["max_abs_diff_vs_fp32"] = float(
                    max(np.abs(a - b).max() for a, b in zip(r.predictions, fp32.predictions))
                )
            entry["step_ms_p50"] = float(np.percentile(r.step_ms, 50))
            entry["step_ms_p99"] = float(np.percentile(r.step_ms, 99))
            runs[r.precision] = entry
        return {
            "model": self.spec.model,
            "model_dir": str(self.spec.directory),
            "source": self.source,
            "episodes": [{"label": e.source, "steps": int(e.joints.shape[0])} for e in self.episodes],
            "hold_last": self.hold.as_dict(names),
            "runs": runs,
            "camera_check": self.camera.as_dict() if self.camera is not None else None,
        }
