"""Offline accuracy of a model on recorded episodes (``eipl-trt evaluate``).

:mod:`core` replays episodes through the :class:`~eipl_trt.predictor.Predictor` at every requested
precision; :mod:`metrics` is EIPL's joint metric (prediction at t against the joints measured at
t+1); :mod:`results` holds what a run measured (:class:`RunResult`, :class:`CameraCheck`,
:class:`EvalReport`); :mod:`report` writes ``report.md``, ``metrics.json``, ``steps.csv`` and
``plot.png``. The public names are re-exported here (``import eipl_trt.evaluate as ev;
ev.evaluate(...)``).
"""

from __future__ import annotations

from eipl_trt.evaluate.core import evaluate, frames_from_next_episode, load_for_model, run_episodes
from eipl_trt.evaluate.metrics import StepErrors, Summary, hold_last_predictions, step_errors, summarize
from eipl_trt.evaluate.report import write_report
from eipl_trt.evaluate.results import CameraCheck, EvalReport, RunResult

__all__ = [
    "RunResult", "CameraCheck", "EvalReport", "run_episodes", "frames_from_next_episode", "evaluate",
    "write_report", "load_for_model",
    "StepErrors", "Summary", "step_errors", "hold_last_predictions", "summarize",
]
