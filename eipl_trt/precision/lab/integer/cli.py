"""``eipl-trt quantlab integer``: convert, save, reload, score against FP32 and report."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from eipl_trt.common.atomic import write_bytes_atomic
from eipl_trt.errors import ModelError
from eipl_trt.precision.lab.integer import IntExecutor, IntModel, build_integer

__all__ = ["run_integer", "render_report"]


def run_integer(args: argparse.Namespace, episodes: Any) -> int:
    """Build the integer model from ``episodes = (spec, calibration, held_out, k)`` and write ``args.out``."""
    from eipl_trt.precision.lab.sweep import Lab

    spec, calibration, held, k = episodes
    steps = args.steps or None
    started = time.perf_counter()
    model = build_integer(spec, calibration or held[:1], steps=steps, headroom=args.headroom, state_bits=args.state_bits,
                          pow2=args.pow2, float_layers=args.float_layers,
                          wide_elements=args.wide_elements, lut_bits=args.lut_bits)
    model.save(args.out)
    loaded = IntModel.load(args.out)
    if sorted(loaded.arrays) != sorted(model.arrays) or any(
            not np.array_equal(loaded.arrays[a], model.arrays[a]) for a in model.arrays):
        raise ModelError(f"{args.out}: the saved integer model does not read back identically")
    lab = Lab(spec, calibration, held, steps=steps, headroom=args.headroom)
    ex = IntExecutor(loaded)
    score = lab.score_executor(ex, label="integer-only")
    doc = json.loads((args.out / "intmodel.json").read_text())
    result = {"model": spec.model, "data": f"{args.data} ({args.split})", "calibration_episodes": k,
              "held_out_episodes": len(held), "steps_per_episode": args.steps or "all",
              "fp32_mse_rad2": lab.reference_mse, "score": score.as_row(), "saturations": ex.saturations,
              "memory": {kk: v for kk, v in doc["memory"].items() if kk != "offsets"}, "meta": doc["meta"],
              "float_layers": doc["float_layers"], "alignments": len(doc["alignments"]),
              "wall_s": round(time.perf_counter() - started, 1)}
    write_bytes_atomic(args.out / "report.json", (json.dumps(result, indent=1) + "\n").encode())
    write_bytes_atomic(args.out / "report.md", render_report(result, doc).encode())
    print(f"{spec.model} integer-only: error rate vs FP32 {score.error_rate:.4f} (h drift {score.h_drift_final:.3g}); "
          f"float layers: {', '.join(doc['float_layers']) or 'none'}; activation memory "
          f"{doc['memory']['arena_bytes']} B with the lifetime plan (peak live {doc['memory']['peak_live_bytes']} B) "
          f"vs {doc['memory']['naive_bytes']} B naive; {len(doc['alignments'])} scale alignments")
    print(f"wrote {args.out / 'intmodel.json'}, intmodel.npz, report.md, report.json")
    return 0


def render_report(result: dict[str, Any], doc: dict[str, Any]) -> str:
    """Markdown: score, widths, memory plan, every alignment, every LUT with its error."""
    s, mem = result["score"], result["memory"]
    lines = [f"# Integer-only {result['model']}", "",
             f"- data: {result['data']}; calibration episodes {result['calibration_episodes']}, held-out "
             f"{result['held_out_episodes']}, steps per episode {result['steps_per_episode']}",
             f"- joint error rate vs FP32: **{s['error_rate']:.4f}** (FP32 mse {result['fp32_mse_rad2']:.4g} rad²); "
             f"deviation {s['deviation']:.3g} rad², max |diff| {s['max_abs']:.3g} rad; "
             f"h drift {s['h_drift']:.3g} (final {s['h_drift_final']:.3g}), c drift {s['c_drift']:.3g}",
             f"- widths: {json.dumps({k: v for k, v in result['meta'].items() if k.endswith('bits') or k == 'scales'})}",
             f"- float layers: {', '.join(result['float_layers']) or 'none (everything in integers)'}",
             f"- saturated values during scoring: {json.dumps(result['saturations']) if result['saturations'] else 'none'}",
             f"- activation memory: naive {mem['naive_bytes']} B, peak live {mem['peak_live_bytes']} B, "
             f"first-fit arena {mem['arena_bytes']} B", "",
             "## Scale alignments (static, at conversion)", "",
             "| op | from | to | ratio | multiplier | shift | rel. error |", "|---|---|---|---:|---:|---:|---:|"]
    for a in doc["alignments"]:
        lines.append(f"| {a['op']} | `{a['from']}` | `{a['to']}` | {a['ratio']:.6g} | {a['multiplier']} | {a['shift']} | "
                     f"{a['relative_error']:.2g} |")
    lines += ["", "## Lookup tables", "", "| node | function | entries | bytes | max abs error | max error (codes) | input codes clipped |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for name, t in doc["luts"].items():
        lines.append(f"| `{name}` | {t['fn']} | {t['entries']} | {t['bytes']} | {t['max_abs_error']:.3g} | "
                     f"{t.get('max_error_codes', float('nan')):.3g} | {t.get('clipped_codes', 0)} |")
    return "\n".join(lines) + "\n"


