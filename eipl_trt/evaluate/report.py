"""Report files of ``eipl-trt evaluate``: ``report.md``, ``metrics.json``, ``steps.csv`` and ``plot.png``.

Every file is written atomically (:mod:`eipl_trt.common.atomic`). :func:`write_report` is
re-exported by :mod:`eipl_trt.evaluate`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from eipl_trt.common.atomic import write_bytes_atomic
from eipl_trt.evaluate.metrics import hold_last_predictions, step_errors

if TYPE_CHECKING:
    from eipl_trt.evaluate.results import EvalReport

__all__ = ["write_report"]


def _markdown(report: "EvalReport") -> str:
    data = report.as_dict()
    runs = data["runs"]
    assert isinstance(runs, dict)
    lines = [
        f"# eipl_trt evaluate: {report.spec.model}",
        "",
        f"- model: `{report.spec.directory}`",
        f"- data: `{report.source}` ({len(report.episodes)} episodes, {report.hold.steps} scored steps "
        f"at {report.spec.rate_hz:g} Hz)",
        "- metric: per-step MSE between the denormalized predicted joints at t and the measured joints at t+1 "
        "(mean over joints; rad²), mean / max / min over steps",
        "",
        "| predictor | backend | MSE mean | MSE max | MSE min | MSE / hold-last | error rate vs fp32 | step p50 (ms) |",
        "|---|---|---|---|---|---|---|---|",
        f"| hold last joint | - | {report.hold.mean:.6f} | {report.hold.max:.6f} | {report.hold.min:.6f} | 1.00 | - | - |",
    ]
    for precision, r in runs.items():
        rate = r.get("error_rate_vs_fp32")
        rate_text = "-" if precision == "fp32" or rate is None else f"{rate:+.2%}"
        lines.append(
            f"| {report.spec.model} {precision} | {r['backend']} | {r['mse_mean']:.6f} | {r['mse_max']:.6f} | "
            f"{r['mse_min']:.6f} | {r['vs_hold_last']:.3f} | {rate_text} | {r['step_ms_p50']:.2f} |"
        )
    if any(r.precision == "fp16" and r.backend == "onnxruntime" for r in report.runs):
        lines += ["", "FP16 on ONNX Runtime (CPU) previews the accuracy of the FP16 variant TensorRT runs; its step "
                      "time is not a speed figure (a CPU without FP16 arithmetic runs it through casts)."]
    if report.camera is not None:
        c = report.camera
        verdict = (f"the camera makes almost no difference ({c.ratio - 1.0:+.2%}): the model predicts from the joint "
                   "history alone" if abs(c.ratio - 1.0) < 0.01 else
                   f"the model uses the camera: the error is {c.ratio:.2f}x with frames that do not match the joints")
        lines += ["", "## Camera check", "",
                  f"Replaying {c.precision} with each episode's frames taken from the next episode (its own joints): "
                  f"MSE mean {c.swapped.mean:.6f} against {c.real.mean:.6f} with the real frames, over the same "
                  f"{c.real.steps} steps; {verdict}."]
    lines += ["", "## Per joint (MSE mean, rad²)", "",
              "| joint | hold last | " + " | ".join(runs) + " |", "|---|---|" + "---|" * len(runs)]
    for j, name in enumerate(report.spec.joint_names):
        cells = [f"{report.hold.per_joint[j]:.6f}"] + [f"{r.summary.per_joint[j]:.6f}" for r in report.runs]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Episodes", ""] + [f"- {e.source}: {e.joints.shape[0]} steps" for e in report.episodes]
    return "\n".join(lines) + "\n"


def _csv(report: "EvalReport") -> str:
    rows = ["predictor,episode,step,mse," + ",".join(f"sq_{n}" for n in report.spec.joint_names)]
    hold = [step_errors(hold_last_predictions(e.joints), e.joints) for e in report.episodes]
    for name, errors in [("hold_last", hold)] + [(f"{r.precision}", r.errors) for r in report.runs]:
        for e_idx, err in enumerate(errors):
            for t, row in enumerate(err.sq):
                rows.append(f"{name},{e_idx},{t},{row.mean():.9g}," + ",".join(f"{v:.9g}" for v in row))
    return "\n".join(rows) + "\n"


def _plot_png(report: "EvalReport") -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    episode = report.episodes[0]
    run = report.runs[0]
    pred = run.predictions[0]
    d = report.spec.joint_dim
    cols = 4
    rows = (d + cols - 1) // cols + 1
    fig = plt.figure(figsize=(4 * cols, 2.6 * rows))
    t = np.arange(episode.joints.shape[0])
    for j in range(d):
        ax = fig.add_subplot(rows, cols, j + 1)
        ax.plot(t, episode.joints[:, j], label="measured", color="k", lw=1.2)
        ax.plot(t[1:], pred[:-1, j], label=f"predicted ({run.precision})", color="tab:red", lw=1.0, ls="--")
        ax.set_title(report.spec.joint_names[j], fontsize=9)
        ax.tick_params(labelsize=7)
        if j == 0:
            ax.legend(fontsize=7)
    ax = fig.add_subplot(rows, cols, (rows - 1) * cols + 1)
    frame = episode.images[0]
    ax.imshow(frame[:, :, ::-1] if episode.channel_order == "bgr" else frame)
    points = run.enc_points[0]
    if points is not None:
        for k in range(points.shape[1]):
            ax.plot(points[:, k, 0], points[:, k, 1], lw=0.8)
            ax.scatter(points[0, k, 0], points[0, k, 1], s=12)
        ax.set_title("attention points over the episode", fontsize=9)
    else:
        ax.set_title("first frame (model has no attention points)", fontsize=9)
    ax.axis("off")
    fig.suptitle(f"{report.spec.model}: {episode.source}", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def write_report(report: "EvalReport", out_dir: Path, plot: bool = True) -> list[Path]:
    """Write ``report.md``, ``metrics.json``, ``steps.csv`` and ``plot.png`` into ``out_dir``.

    Every file is rendered in memory first and then written atomically, so an interrupted run
    leaves the previous report untouched rather than half-written.
    """
    rendered = {
        "report.md": _markdown(report).encode(),
        "metrics.json": (json.dumps(report.as_dict(), indent=2) + "\n").encode(),
        "steps.csv": _csv(report).encode(),
    }
    if plot:
        rendered["plot.png"] = _plot_png(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in rendered.items():
        path = out_dir / name
        write_bytes_atomic(path, data)
        paths.append(path)
    return paths
