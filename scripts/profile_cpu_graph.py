#!/usr/bin/env python3
"""Per-layer ONNX Runtime CPU times of a model, the exported graph beside the rewritten one.

    OMP_NUM_THREADS=1 python scripts/profile_cpu_graph.py --model sarnn --runs 300

Prints the layers that take the most time in either graph (microseconds per step, from ONNX
Runtime's own profiler, which adds a few microseconds per node) and the rewrites applied
(:mod:`eipl_trt.runners.cpu_graph`). For wall-clock step times side by side, use
``eipl-trt bench --backend onnxruntime --plain-graph``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile

import numpy as np


def profile(model_bytes: bytes, feeds: dict[str, np.ndarray], runs: int, threads: int) -> dict[str, float]:
    """Microseconds per run by node (ONNX Runtime's node names after its own fusions)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.mkdtemp(prefix="eipl_trt_prof_"), "ort")
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        session.run(None, feeds)
    path = session.end_profiling()
    with open(path) as f:
        events = json.load(f)
    os.remove(path)
    totals: dict[str, float] = collections.defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event.get("args", {}).get("op_name", "?")
            totals[f"{op} {event['name'][:-len('_kernel_time')]}"] += event["dur"] / runs
    return dict(totals)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sarnn", help="bundled model name or model directory")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()

    import onnx

    from eipl_trt.paths import resolve_model
    from eipl_trt.runners.cpu_graph import rewrite_for_cpu

    spec = resolve_model(args.model)
    path = spec.verify_variant(args.precision)
    model = onnx.load(str(path))
    plain = model.SerializeToString()
    applied = rewrite_for_cpu(model)
    rng = np.random.default_rng(0)
    shapes = spec.input_shapes()
    feeds = {spec.inputs[r]: rng.uniform(spec.vmin, spec.vmax, shapes[r]).astype(np.float32) for r in ("image", "joint")}
    feeds |= {spec.inputs[r]: np.zeros(shapes[r], np.float32) for r in ("state_h", "state_c")}
    print(f"# {args.model} {args.precision}: {len(applied)} layer(s) rewritten")
    for line in applied:
        print(f"  - {line}")
    for label, graph in (("exported graph", plain), ("rewritten graph", model.SerializeToString())):
        times = profile(graph, feeds, args.runs, args.threads)
        print(f"\n## {label}: {sum(times.values()):.0f} us per step in nodes")
        for name, us in sorted(times.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"{us:9.1f} us  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
