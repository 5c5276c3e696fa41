"""Calibration data: closed-loop FP32 rollouts that record every step's inputs, recurrent state included.

The model is run step by step over real episodes exactly as the node runs it (state fed back, the
measured joints as input), and each step's four inputs become one calibration sample. Quantizing
with samples whose ``i.state_h``/``i.state_c`` are zeros or random would calibrate the LSTM
input ranges on states the robot never produces.

:class:`StepModel` (one ONNX Runtime session stepped over an episode) lives here because both the
recording and :mod:`eipl_trt.precision.rollout`'s scoring use it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from eipl_trt.errors import InputError, ModelError
from eipl_trt.imaging import JointScaler, image_to_tensor, resize_bilinear, to_channel_order
from eipl_trt.spec import ModelSpec

__all__ = ["EpisodeTensors", "StepModel", "prepare_episodes", "record_calibration_feeds", "feeds_sha256", "stack_feeds"]


@dataclass(frozen=True)
class EpisodeTensors:
    """One episode, preprocessed once for repeated rollouts.

    Attributes:
        images: ``(T, 1, 3, H, W)`` float32 model images.
        joints: ``(T, 1, D)`` float32 normalized joint inputs.
        measured: ``(T, D)`` float64 raw joint positions (rad), for EIPL's metric.
    """

    images: np.ndarray
    joints: np.ndarray
    measured: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])


def prepare_episodes(
    spec: ModelSpec, episodes: Iterable[tuple[Sequence[np.ndarray], Sequence[np.ndarray], str]]
) -> list[EpisodeTensors]:
    """Preprocess ``(frames, joints, encoding)`` episodes as the Predictor does (resize, scale, normalize).

    Raises:
        InputError: non-finite joints or a joint count that does not match the model.
    """
    scaler = JointScaler(spec.joint_min, spec.joint_max, spec.vmin, spec.vmax)
    size = (spec.image_height, spec.image_width)
    out = []
    for frames, joints, encoding in episodes:
        if len(frames) == 0:
            continue
        q = np.asarray(joints, dtype=np.float64)
        if q.ndim != 2 or q.shape[1] != spec.joint_dim or not np.all(np.isfinite(q)):
            raise InputError(f"calibration joints must be finite, shape (T, {spec.joint_dim}); got {q.shape}")
        images = np.stack([
            image_to_tensor(resize_bilinear(to_channel_order(f, encoding, spec.channel_order), size), spec.vmin, spec.vmax)
            for f in frames
        ])
        normalized = np.stack([scaler.normalize(row).reshape(1, -1) for row in q]).astype(np.float32)
        out.append(EpisodeTensors(images.astype(np.float32), normalized, q))
    return out


def record_calibration_feeds(
    spec: ModelSpec,
    episodes: Iterable[tuple[Sequence[np.ndarray], Sequence[np.ndarray], str]] | Sequence[EpisodeTensors],
    max_feeds: int = 512,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, np.ndarray]]:
    """Run the FP32 model closed-loop over episodes and record every step's inputs, state included.

    Args:
        spec: the model (its fp32 variant is used).
        episodes: :class:`EpisodeTensors`, or ``(frames, joints, encoding)`` per episode with frames
            ``(H, W, C)`` uint8 and raw joints ``(D,)``.
        max_feeds: stop after this many steps in total.
        progress: called with 1 after each step (e.g. :meth:`Progress.update`).

    Returns:
        Feed dicts keyed by ONNX input name, as ONNX Runtime's calibrator wants them.

    Raises:
        InputError: the episodes hold no step.
    """
    tensors = [e for e in episodes] if episodes is not None else []
    if tensors and not isinstance(tensors[0], EpisodeTensors):
        tensors = prepare_episodes(spec, tensors)  # type: ignore[arg-type]
    model = StepModel(spec, spec.verify_variant("fp32").read_bytes())
    feeds: list[dict[str, np.ndarray]] = []
    for episode in tensors:
        def record(feed: Mapping[str, np.ndarray]) -> None:
            feeds.append({k: v.copy() for k, v in feed.items()})
            if progress:
                progress(1)

        model.run_episode(episode, on_feed=record, limit=max_feeds - len(feeds))  # type: ignore[arg-type]
        if len(feeds) >= max_feeds:
            break
    if not feeds:
        raise InputError("no calibration data: the episodes are empty")
    return feeds


class StepModel:
    """One ONNX Runtime session (CPU, 1 thread) over a model given as bytes or a path."""

    def __init__(self, spec: ModelSpec, model: bytes | str, threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own exception types
            raise ModelError(f"ONNX Runtime cannot load the candidate model: {exc}") from exc
        self.spec = spec
        self.names = dict(spec.inputs)
        self.outputs = [spec.outputs["joint"], spec.outputs["state_h"], spec.outputs["state_c"], spec.outputs["image"]]

    def run_episode(
        self,
        episode: EpisodeTensors,
        on_feed: Callable[[Mapping[str, np.ndarray]], None] | None = None,
        limit: int | None = None,
        images: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Normalized joint predictions ``(T, D)`` for one episode from a zero state.

        Args:
            on_feed: called with each step's input dict before the step runs.
            limit: run at most this many steps.
            images: also return the predicted images ``(T, 3, H, W)``.
        """
        n = self.names
        h = np.zeros((1, self.spec.rec_dim), np.float32)
        c = np.zeros_like(h)
        steps = len(episode) if limit is None else max(0, min(len(episode), limit))
        preds = np.empty((steps, self.spec.joint_dim), np.float32)
        pictures = np.empty((steps, *self.spec.output_shapes()["image"][1:]), np.float32) if images else None
        for t in range(steps):
            feed = {n["image"]: episode.images[t], n["joint"]: episode.joints[t], n["state_h"]: h, n["state_c"]: c}
            if on_feed is not None:
                on_feed(feed)
            joint, h, c, picture = self.session.run(self.outputs, feed)
            preds[t] = joint[0]
            if pictures is not None:
                pictures[t] = picture[0]
        return (preds, pictures) if pictures is not None else preds


def stack_feeds(feeds: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Feed dicts -> one array per input, samples along axis 0 (the npz layout ModelOpt reads)."""
    if not feeds:
        raise InputError("no calibration feeds to stack")
    return {name: np.concatenate([f[name] for f in feeds], axis=0) for name in feeds[0]}


def feeds_sha256(feeds: Sequence[Mapping[str, np.ndarray]]) -> str:
    """A SHA-256 over the calibration samples (input names, shapes, float32 bytes), for the recipe."""
    digest = hashlib.sha256()
    for feed in feeds:
        for name in sorted(feed):
            value = np.ascontiguousarray(feed[name], dtype=np.float32)
            digest.update(name.encode())
            digest.update(str(value.shape).encode())
            digest.update(value.tobytes())
    return digest.hexdigest()
