"""What ``make demo`` reports: the node's predictions scored against the bag, a plot, a printed summary.

:class:`DemoResult` is what came back from the node over DDS; :func:`summarize` scores it with
EIPL's metric (the prediction made on frame k against the joints recorded at frame k+1).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["DemoResult", "summarize", "plot_png", "print_summary"]


@dataclass
class DemoResult:
    """What came back from the node."""

    predictions: dict[int, np.ndarray] = field(default_factory=dict)  # image stamp (ns) -> joints (D,)
    timings: list[dict[str, float]] = field(default_factory=list)
    published_frames: int = 0


def summarize(result: DemoResult, streams: Any, episodes: Sequence[slice], joint_names: Sequence[str],
              rate_hz: float) -> dict[str, Any]:
    """Frames, latency and EIPL's joint MSE: the prediction made on frame k against the joints
    recorded at frame k+1 of the same episode (interpolated; hold-last predicts the joints at frame k)."""
    from eipl_trt.bagio import select_joints

    measured = select_joints(streams.joint_names, streams.joint_positions, joint_names)
    period = 1.0 / rate_hz
    pred_err, hold_err = [], []
    for span in episodes:
        frames = streams.image_stamps[span]
        near = (streams.joint_stamps >= frames[0] - period) & (streams.joint_stamps <= frames[-1] + period)
        t, q = streams.joint_stamps[near], measured[near]
        if t.size == 0:
            continue

        def at(s: float, t: np.ndarray = t, q: np.ndarray = q) -> np.ndarray:
            return np.array([np.interp(s, t, q[:, j]) for j in range(q.shape[1])])

        for now, nxt in zip(frames[:-1], frames[1:]):
            joints = result.predictions.get(int(round(now * 1e9)))
            if joints is None or nxt > t[-1] + 0.5 * period + 1e-6:
                continue  # no prediction for this frame, or no recorded joints for the next one
            target = at(nxt)
            pred_err.append(np.mean((joints - target) ** 2))
            hold_err.append(np.mean((at(now) - target) ** 2))
    steps = np.array([r.get("step_ms", np.nan) for r in result.timings], dtype=float)
    infer = np.array([r.get("inference_ms", np.nan) for r in result.timings], dtype=float)
    steps = steps[np.isfinite(steps)]
    infer = infer[np.isfinite(infer)]
    return {
        "frames_published": result.published_frames,
        "predictions_received": len(result.predictions),
        "scored_steps": len(pred_err),
        "step_ms_p50": float(np.percentile(steps, 50)) if steps.size else None,
        "step_ms_p99": float(np.percentile(steps, 99)) if steps.size else None,
        "inference_ms_p50": float(np.percentile(infer, 50)) if infer.size else None,
        "joint_mse": float(np.mean(pred_err)) if pred_err else None,
        "hold_last_mse": float(np.mean(hold_err)) if hold_err else None,
    }


def plot_png(result: DemoResult, streams: Any, joint_names: Sequence[str], period_s: float) -> bytes:
    """The demo figure: each joint as recorded, with the node's predictions one period ahead (PNG bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eipl_trt.bagio import select_joints

    measured = select_joints(streams.joint_names, streams.joint_positions, joint_names)
    t_joint = streams.joint_stamps.astype(float).copy()
    t_joint[1:][np.diff(t_joint) > 1.0] = np.nan  # break the line between episodes
    t0 = streams.image_stamps.min()
    stamps = np.array(sorted(result.predictions)) / 1e9
    preds = np.stack([result.predictions[k] for k in sorted(result.predictions)]) if stamps.size else None
    cols = 4
    rows = (len(joint_names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    for j, name in enumerate(joint_names):
        ax = axes[j // cols][j % cols]
        ax.plot(t_joint - t0, measured[:, j], color="k", lw=1.0, label="recorded")
        if preds is not None:
            ax.plot(stamps - t0 + period_s, preds[:, j], ".", color="tab:red", ms=2.5, label="node prediction (t+1)")
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        if j == 0:
            ax.legend(fontsize=7)
    for k in range(len(joint_names), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle("eipl_trt demo: node predictions over DDS vs the recorded joints (bag time, s)", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def print_summary(summary: dict[str, Any], out: Path) -> None:
    """Print the summary the way ``make demo`` ends."""
    def ms(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f} ms"

    mse, hold = summary["joint_mse"], summary["hold_last_mse"]
    print("\n== eipl_trt demo summary ==")
    print(f"model            {summary['model']} (onnxruntime, one step per camera frame)")
    print(f"bag              {summary['bag']} ({summary['episodes']} episodes)")
    print(f"frames           {summary['frames_published']} published, {summary['predictions_received']} predictions received")
    print(f"step latency     p50 {ms(summary['step_ms_p50'])}, p99 {ms(summary['step_ms_p99'])} "
          f"(inference p50 {ms(summary['inference_ms_p50'])})")
    if mse is not None and hold is not None:
        verdict = (f"{hold / mse:.1f}x lower than hold-last" if 0 < mse < hold
                   else "not better than hold-last")
        print(f"joint MSE        {mse:.6f} rad^2 vs the recorded next step; hold-last baseline {hold:.6f} ({verdict})")
    print(f"plot             {out / 'demo.png'}\n")
