"""Bit-width sweeps and per-layer sensitivity over whole episodes with the recurrent state fed back.

Every configuration replays the same held-out episodes from a zero state, the measured joints
as input and the model's own ``(h, c)`` fed back, exactly as the node runs it, and is compared
with the FP32 replay of the same executor (which equals ONNX Runtime to ~1e-6):

* ``error_rate``: EIPL's joint MSE (prediction at t vs measured at t+1, :mod:`eipl_trt.evaluate.metrics`)
  divided by FP32's; 1.0 = as accurate as FP32;
* ``deviation``: mean squared difference from FP32's predicted joints (rad²); ``max_abs`` (rad);
* ``h_drift``/``c_drift``: RMS difference of the recurrent state from FP32's, averaged over the
  steps (``*_final``: at the last step): how far quantization pushes the LSTM off its trajectory.

Activation ranges are calibrated on FP32 replays of the calibration episodes (kept apart from the
held-out ones when the data has more than one episode).
"""

from __future__ import annotations

import itertools
import multiprocessing
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from eipl_trt.errors import InputError
from eipl_trt.evaluate.metrics import step_errors, summarize
from eipl_trt.imaging import JointScaler
from eipl_trt.precision.calibration import EpisodeTensors
from eipl_trt.precision.lab.executor import Executor, Graph, QuantConfig, calibrate
from eipl_trt.spec import ModelSpec

__all__ = ["Rollout", "Result", "Lab", "sweep_configs"]


@dataclass
class Rollout:
    """Predicted joints (raw units, rad) and states of one replay, per episode."""

    joints: list[np.ndarray] = field(default_factory=list)  # (T, D)
    h: list[np.ndarray] = field(default_factory=list)  # (T, rec_dim)
    c: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class Result:
    """One configuration's figures (see the module docstring)."""

    label: str
    weight_bits: int | None
    act_bits: int | None
    scale: str
    rounding: str
    acc_bits: int | None
    layer: str
    mse: float
    error_rate: float
    deviation: float
    max_abs: float
    h_drift: float
    c_drift: float
    h_drift_final: float
    c_drift_final: float

    def as_row(self) -> dict[str, object]:
        """CSV/JSON-ready."""
        return {k: ("" if v is None else v) for k, v in asdict(self).items()}


def sweep_configs(bits: Sequence[int], scales: Sequence[str], roundings: Sequence[str], acc_bits: Sequence[int | None],
                  target: str = "both", seed: int = 0) -> list[QuantConfig]:
    """The grid: every bits x scale x rounding x accumulator, weights and/or activations at ``bits``."""
    if target not in ("both", "weights", "activations"):
        raise InputError(f"--quantize must be both, weights or activations, not {target!r}")
    out = []
    for b, s, r, a in itertools.product(bits, scales, roundings, acc_bits):
        out.append(QuantConfig(weight_bits=b if target != "activations" else None,
                               act_bits=b if target != "weights" else None, scale=s, rounding=r, acc_bits=a, seed=seed))
    return out


class Lab:
    """Held-out episodes, calibrated ranges and the FP32 reference of one model.

    Args:
        spec: the model (its fp32 ONNX file is read).
        calibration: episodes whose FP32 replay sets the activation ranges.
        held_out: episodes every configuration is scored on.
        steps: replay at most this many steps per episode (``None`` = all).
        graph: the parsed model (default: read the spec's fp32 file).
        headroom: ranges are ``headroom`` x the calibrated max |x| (held-out episodes go a little
            beyond what calibration saw; 1.25 costs a third of a bit and avoids clipping the LSTM).
    """

    def __init__(self, spec: ModelSpec, calibration: Sequence[EpisodeTensors], held_out: Sequence[EpisodeTensors],
                 steps: int | None = None, graph: Graph | None = None, headroom: float = 1.25):
        if not held_out:
            raise InputError("the sweep needs at least one held-out episode")
        if headroom < 1.0:
            raise InputError(f"headroom must be at least 1.0, got {headroom}")
        self.spec = spec
        self.graph = graph or Graph(spec.verify_variant("fp32"))
        self.steps = steps
        self.held_out = list(held_out)
        self.scaler = JointScaler(spec.joint_min, spec.joint_max, spec.vmin, spec.vmax)
        cal = [self._cut(e) for e in calibration] or [self._cut(held_out[0])]
        self.headroom = headroom
        self.ranges = {k: v * headroom for k, v in calibrate(self.graph, self._feeds_fp32(cal)).items()}
        self.reference = self.replay(Executor(self.graph))
        self.reference_mse = self._mse(self.reference)

    def _cut(self, e: EpisodeTensors) -> EpisodeTensors:
        n = len(e) if self.steps is None else min(len(e), self.steps)
        return EpisodeTensors(e.images[:n], e.joints[:n], e.measured[:n])

    def _feeds_fp32(self, episodes: Sequence[EpisodeTensors]):  # type: ignore[no-untyped-def]
        ex = Executor(self.graph)
        n = self.spec.inputs
        for e in episodes:
            h = np.zeros((1, self.spec.rec_dim), np.float32)
            c = np.zeros_like(h)
            for t in range(len(e)):
                feed = {n["image"]: e.images[t], n["joint"]: e.joints[t], n["state_h"]: h, n["state_c"]: c}
                yield feed
                out = ex.run(feed)
                h, c = out[self.spec.outputs["state_h"]].astype(np.float32), out[self.spec.outputs["state_c"]].astype(np.float32)

    def replay(self, executor: Any, progress: Callable[[int], None] | None = None) -> Rollout:
        """Replay the held-out episodes through ``executor`` with the state fed back."""
        n, o = self.spec.inputs, self.spec.outputs
        result = Rollout()
        for e in (self._cut(x) for x in self.held_out):
            h = np.zeros((1, self.spec.rec_dim), np.float64)
            c = np.zeros_like(h)
            joints, hs, cs = [], [], []
            for t in range(len(e)):
                out = executor.run({n["image"]: e.images[t], n["joint"]: e.joints[t], n["state_h"]: h, n["state_c"]: c})
                h, c = out[o["state_h"]], out[o["state_c"]]
                joints.append(np.asarray(out[o["joint"]], np.float64)[0])
                hs.append(np.asarray(h, np.float64)[0])
                cs.append(np.asarray(c, np.float64)[0])
                if progress:
                    progress(1)
            result.joints.append(self.scaler.denormalize(np.stack(joints)))
            result.h.append(np.stack(hs))
            result.c.append(np.stack(cs))
        return result

    def _mse(self, r: Rollout) -> float:
        return summarize([step_errors(p, self._cut(e).measured) for p, e in zip(r.joints, self.held_out)]).mean

    def score(self, config: QuantConfig, label: str = "", layer: str = "",
              progress: Callable[[int], None] | None = None) -> Result:
        """Replay with ``config`` and compare with the FP32 reference."""
        r = self.replay(Executor(self.graph, config, self.ranges), progress)
        return self._compare(r, config, label or describe(config), layer)

    def score_executor(self, executor: Any, label: str, progress: Callable[[int], None] | None = None) -> Result:
        """Replay with any object that has ``run(feeds) -> outputs`` (e.g. the integer executor)."""
        return self._compare(self.replay(executor, progress), QuantConfig(), label, "")

    def _compare(self, r: Rollout, config: QuantConfig, label: str, layer: str) -> Result:
        mse = self._mse(r)
        diff = np.concatenate([a - b for a, b in zip(r.joints, self.reference.joints)])
        dh = [np.sqrt(np.mean((a - b) ** 2, axis=1)) for a, b in zip(r.h, self.reference.h)]
        dc = [np.sqrt(np.mean((a - b) ** 2, axis=1)) for a, b in zip(r.c, self.reference.c)]
        return Result(label, config.weight_bits, config.act_bits, config.scale, config.rounding,
                      config.acc_bits, layer, mse, mse / self.reference_mse if self.reference_mse > 0 else float("nan"),
                      float(np.mean(diff ** 2)), float(np.max(np.abs(diff))),
                      float(np.mean(np.concatenate(dh))), float(np.mean(np.concatenate(dc))),
                      float(np.mean([d[-1] for d in dh])), float(np.mean([d[-1] for d in dc])))

    def sensitivity(self, bits: int, scale: str = "float", rounding: str = "nearest",
                    progress: Callable[[int], None] | None = None, jobs: int = 1) -> list[Result]:
        """One layer at a time at ``bits`` (input activation, weights, output), everything else FP32; worst first.

        ``jobs > 1`` scores the layers in that many processes (:func:`score_many`; ``progress`` is then not called).
        """
        items = [(QuantConfig(weight_bits=bits, act_bits=bits, scale=scale, rounding=rounding, nodes=frozenset([name])),
                  f"{name} @ {bits} bit", name) for name in self.graph.compute_nodes()]
        if jobs > 1:
            rows = score_many(self, items, jobs)
        else:
            rows = [self.score(cfg, label=label, layer=layer, progress=progress) for cfg, label, layer in items]
        return sorted(rows, key=lambda r: -r.deviation)


#: The lab a forked worker of :func:`score_many` scores with (inherited from the parent, never pickled).
_FORKED_LAB: Lab | None = None


def _score_in_worker(item: tuple[QuantConfig, str, str]) -> Result:
    assert _FORKED_LAB is not None, "score_many sets the lab before forking its workers"
    return _FORKED_LAB.score(*item)


def score_many(lab: Lab, items: Sequence[tuple[QuantConfig, str, str]], jobs: int = 1,
               on_result: Callable[[int, Result], None] | None = None) -> list[Result]:
    """Score ``(config, label, layer)`` items, results in the items' order.

    Every configuration replays the held-out episodes on its own (stochastic rounding is seeded by the
    config), so the results do not depend on ``jobs``. ``jobs > 1`` forks that many worker processes,
    which inherit the lab (its graph, ranges and FP32 reference are not copied or pickled); set
    ``OMP_NUM_THREADS=1`` so they do not also compete in numpy's thread pools. Where ``fork`` is not
    available (not Linux), it scores in this process.
    """
    global _FORKED_LAB
    if jobs <= 1 or len(items) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return _collect((lab.score(*item) for item in items), on_result)
    _FORKED_LAB = lab
    try:
        with multiprocessing.get_context("fork").Pool(min(jobs, len(items))) as pool:
            return _collect(pool.imap(_score_in_worker, items), on_result)
    finally:
        _FORKED_LAB = None


def _collect(results: Iterable[Result], on_result: Callable[[int, Result], None] | None) -> list[Result]:
    """The results as they come, each reported to ``on_result`` with its 1-based count."""
    out: list[Result] = []
    for result in results:
        out.append(result)
        if on_result:
            on_result(len(out), result)
    return out


def describe(c: QuantConfig) -> str:
    """``W8A8 float nearest acc32``-style label."""
    w = f"W{c.weight_bits}" if c.weight_bits else "Wf"
    a = f"A{c.act_bits}" if c.act_bits else "Af"
    acc = f" acc{c.acc_bits}" if c.acc_bits else ""
    return f"{w}{a} {c.scale} {c.rounding}{acc}"
