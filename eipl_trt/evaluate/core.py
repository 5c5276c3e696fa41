"""Offline accuracy of a model on recorded episodes (a rosbag2 or an EIPL dataset directory).

Each episode is replayed through the :class:`~eipl_trt.predictor.Predictor` from a zero state, one
step per control period, exactly as the node would run it; the prediction at ``t`` is compared
with the joints measured at ``t + 1`` (:mod:`eipl_trt.evaluate.metrics`). Every requested precision
runs on the same samples, and its error is reported relative to FP32. The results are the
dataclasses of :mod:`eipl_trt.evaluate.results`.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from eipl_trt.bagio import Episode
from eipl_trt.common.progress import Progress
from eipl_trt.errors import InputError
from eipl_trt.evaluate.metrics import StepErrors, hold_last_predictions, step_errors, summarize
from eipl_trt.evaluate.results import CameraCheck, EvalReport, RunResult
from eipl_trt.predictor import Predictor
from eipl_trt.spec import ModelSpec

__all__ = ["run_episodes", "frames_from_next_episode", "evaluate", "load_for_model"]

log = logging.getLogger(__name__)


def run_episodes(
    predictor: Predictor,
    episodes: Sequence[Episode],
    precision: str,
    progress: Callable[[int], None] | None = None,
) -> RunResult:
    """Replay ``episodes`` through ``predictor`` (state reset at each episode start)."""
    result = RunResult(precision, predictor.runner.backend)
    for episode in episodes:
        predictor.reset_state()
        preds, points = [], []
        for frame, q in zip(episode.images, episode.joints):
            p = predictor.step(frame, q, f"{episode.channel_order}8", want_image=False)
            preds.append(p.joints)
            points.append(p.enc_points_px)
            result.step_ms.append(p.timings.total_s * 1e3)
            if progress:
                progress(1)
        pred = np.stack(preds)
        result.predictions.append(pred)
        result.enc_points.append(np.stack(points) if points[0] is not None else None)
        result.errors.append(step_errors(pred, episode.joints))
    return result


def frames_from_next_episode(episodes: Sequence[Episode]) -> list[Episode]:
    """Each episode with the next episode's frames (the last takes the first's), cut to the shorter one.

    Raises:
        InputError: fewer than two episodes.
    """
    if len(episodes) < 2:
        raise InputError(f"the camera check needs at least 2 episodes to swap frames between; the data has {len(episodes)}")
    swapped = []
    for i, e in enumerate(episodes):
        frames = episodes[(i + 1) % len(episodes)].images
        t = min(len(frames), len(e.images))
        swapped.append(dataclasses.replace(e, images=frames[:t], joints=e.joints[:t], stamps=e.stamps[:t]))
    return swapped


def evaluate(
    spec: ModelSpec,
    episodes: Sequence[Episode],
    *,
    precisions: Sequence[str] = ("fp32",),
    backend: str = "auto",
    num_threads: int | None = None,
    input_mix: float = 1.0,
    source: str = "",
    progress: bool = False,
    camera_check: bool = False,
    integer_model: str | Path | None = None,
) -> EvalReport:
    """Run every precision over the episodes and collect the metrics.

    Args:
        camera_check: also replay the first precision with every episode's frames taken from the
            next episode (:class:`CameraCheck`): does the model use the camera at all?
        integer_model: a directory written by ``eipl-trt quantlab integer`` for this model: its
            bit-exact integer executor runs as one more column, ``intonly`` (numpy, slow: about
            0.2 s per SARNN step on one core).

    Raises:
        InputError: no episode with at least two steps (or fewer than two for the camera check).
        BackendUnavailableError: a precision cannot run on ``backend`` here.
    """
    usable = [e for e in episodes if e.joints.shape[0] >= 2]
    if not usable:
        raise InputError("no episode has at least 2 samples at the model's rate; nothing to evaluate")
    swapped = frames_from_next_episode(usable) if camera_check else []
    hold = summarize([step_errors(hold_last_predictions(e.joints), e.joints) for e in usable])
    columns = len(precisions) + (integer_model is not None)
    total = sum(e.joints.shape[0] for e in usable) * columns + sum(e.joints.shape[0] for e in swapped)
    bar = Progress(total, "evaluate", "step", enabled=progress)
    runs = []
    camera = None
    try:
        for precision in precisions:
            predictor = Predictor.from_model(spec, backend=backend, precision=precision,
                                             num_threads=num_threads, input_mix=input_mix)
            try:
                runs.append(run_episodes(predictor, usable, precision, bar.update))
                if swapped and camera is None:
                    other = run_episodes(predictor, swapped, precision, bar.update)
                    # the real run scored on the same (possibly shortened) episodes
                    real = [StepErrors(err.sq[: len(e.joints) - 1]) for err, e in zip(runs[-1].errors, swapped)]
                    camera = CameraCheck(precision, summarize(real), other.summary)
            finally:
                predictor.close()
        if integer_model is not None:
            from eipl_trt.runners.integer.runner import IntegerRunner

            predictor = Predictor(IntegerRunner(spec, integer_model), input_mix=input_mix)
            try:
                runs.append(run_episodes(predictor, usable, "intonly", bar.update))
            finally:
                predictor.close()
    finally:
        bar.close()
    return EvalReport(spec, source, list(usable), runs, hold, camera)


def load_for_model(
    path: str | Path,
    spec: ModelSpec,
    *,
    split: str = "test",
    image_topic: str | None = None,
    joint_topic: str | None = None,
) -> list[Episode]:
    """Episodes from a bag or an EIPL dataset directory, sampled at the model's rate, joints in model order.

    Joints are matched by the model's joint names. An EIPL dataset without names in
    ``dataset.json`` is taken in model order when its joint count matches (with a warning).

    Raises:
        InputError: unreadable data, missing joints, a joint count that does not match the model.
    """
    from eipl_trt.bagio import load_dataset_dir, load_episodes

    root = Path(path)
    if (root / split / "images.npy").is_file():
        episodes = load_dataset_dir(root, split, joint_names=spec.joint_names)
        if episodes and abs(episodes[0].rate_hz - spec.rate_hz) > 1e-6:
            log.warning("dataset rate %.3g Hz differs from the model's training rate %.3g Hz",
                        episodes[0].rate_hz, spec.rate_hz)
        return episodes
    return load_episodes(root, rate_hz=spec.rate_hz, joint_names=spec.joint_names,
                         image_topic=image_topic, joint_topic=joint_topic)
