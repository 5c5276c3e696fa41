"""Shared pieces of the TensorRT stand-in tests (``test_trt_*.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eipl_trt.runners.base import Runner

ROOT = Path(__file__).resolve().parents[1]
#: every impersonated TensorRT version (name lists in test/data/trt_api)
VERSIONS = ("8.6.1", "10.3.0", "10.13.0.35", "11.4.0.106")


def episode(spec, steps: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:  # noqa: ANN001
    """Deterministic normalized inputs for ``steps`` steps."""
    rng = np.random.default_rng(seed)
    shapes = spec.input_shapes()
    return [(rng.random(shapes["image"], dtype=np.float32), rng.random(shapes["joint"], dtype=np.float32))
            for _ in range(steps)]


def rollout(runner: Runner, inputs: list[tuple[np.ndarray, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """Step ``runner`` over ``inputs`` (its own state fed back) and keep copies of every output."""
    return [{k: v.copy() for k, v in runner.infer(image, joint).items()} for image, joint in inputs]


def max_abs_diff(a: list[dict[str, np.ndarray]], b: list[dict[str, np.ndarray]]) -> float:
    """Largest absolute difference over all steps and outputs."""
    assert len(a) == len(b) and all(x.keys() == y.keys() for x, y in zip(a, b))
    return max(float(np.max(np.abs(x[k] - y[k]))) for x, y in zip(a, b) for k in x)
