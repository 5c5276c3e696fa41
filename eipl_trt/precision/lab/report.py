"""Sweep outputs: ``sweep.csv``, ``sweep.md`` (PyParch-style tables), ``sweep.png`` and ``sensitivity.*``, written atomically."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from eipl_trt.common.atomic import write_bytes_atomic
from eipl_trt.precision.lab.sweep import Result

__all__ = ["render_csv", "render_markdown", "render_plot", "write_sweep"]

_SCALE_NAMES = {"float": "float scale", "channel": "float per-channel", "pow2": "fixed point (2^n)"}


def render_csv(rows: Sequence[Result]) -> str:
    """One line per configuration, every field of :class:`Result`."""
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0].as_row()))
        writer.writeheader()
        for r in rows:
            writer.writerow(r.as_row())
    return buf.getvalue()


def _bits(r: Result) -> int:
    return int(r.weight_bits or r.act_bits or 0)


def render_markdown(rows: Sequence[Result], sensitivity: Sequence[Result], meta: Mapping[str, Any]) -> str:
    """Tables of error rate (joint MSE / FP32's) and final h drift: bits x scale kind, one table per rounding x accumulator."""
    lines = [f"# Quantization sweep: {meta.get('model', '')}", ""]
    for k, v in meta.items():
        lines.append(f"- {k}: {v}")
    lines += ["", "Cells: joint error rate vs FP32 (1.00 = as accurate as FP32) / RMS drift of h at the episode's last step.", ""]
    groups = sorted({(r.rounding, r.acc_bits or 0) for r in rows})
    scales = [s for s in ("float", "channel", "pow2") if any(r.scale == s for r in rows)]
    for rounding, acc in groups:
        sub = [r for r in rows if r.rounding == rounding and (r.acc_bits or 0) == acc]
        lines.append(f"## rounding `{rounding}`, accumulator {acc or 32} bit")
        lines.append("")
        lines.append("| bits | " + " | ".join(_SCALE_NAMES[s] for s in scales) + " |")
        lines.append("|---:|" + "---:|" * len(scales))
        for b in sorted({_bits(r) for r in sub}, reverse=True):
            cells = []
            for s in scales:
                hit = [r for r in sub if _bits(r) == b and r.scale == s]
                cells.append(f"{hit[0].error_rate:.3f} / {hit[0].h_drift_final:.3g}" if hit else "")
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
        lines.append("")
    if sensitivity:
        lines += ["## Per-layer sensitivity (one layer quantized, the rest FP32; worst first)", "",
                  "| layer | bits | error rate | deviation (rad²) | max abs (rad) | h drift final |", "|---|---:|---:|---:|---:|---:|"]
        for r in sensitivity:
            lines.append(f"| `{r.layer}` | {_bits(r)} | {r.error_rate:.3f} | {r.deviation:.3g} | {r.max_abs:.3g} | {r.h_drift_final:.3g} |")
        lines.append("")
    return "\n".join(lines)


def render_plot(rows: Sequence[Result], title: str) -> bytes:
    """Error rate vs bits, one line per rounding mode x scale kind (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key in sorted({(r.rounding, r.scale, r.acc_bits or 0) for r in rows}):
        sub = sorted((r for r in rows if (r.rounding, r.scale, r.acc_bits or 0) == key), key=_bits)
        style = "-" if key[1] != "pow2" else "--"
        ax.plot([_bits(r) for r in sub], [r.error_rate for r in sub], style, marker="o",
                label=f"{key[0]}, {_SCALE_NAMES[key[1]]}" + (f", acc{key[2]}" if key[2] else ""))
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("bits (weights and activations)")
    ax.set_ylabel("joint error rate vs FP32")
    ax.set_title(title)
    ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def write_sweep(out_dir: Path, rows: Sequence[Result], sensitivity: Sequence[Result], meta: Mapping[str, Any],
                plot: bool = True) -> list[Path]:
    """Render everything in memory, then write each file atomically into ``out_dir``."""
    files = {
        "sweep.csv": render_csv(rows).encode(),
        "sweep.md": render_markdown(rows, sensitivity, meta).encode(),
        "sweep.json": (json.dumps({"meta": dict(meta), "rows": [r.as_row() for r in rows],
                                   "sensitivity": [r.as_row() for r in sensitivity]}, indent=1) + "\n").encode(),
    }
    if sensitivity:
        files["sensitivity.csv"] = render_csv(sensitivity).encode()
    if plot and rows:
        files["sweep.png"] = render_plot(rows, str(meta.get("model", "")))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files.items():
        write_bytes_atomic(out_dir / name, data)
        paths.append(out_dir / name)
    return paths
