"""ModelOpt's default INT8 recipe and AutoCast FP16 beside eipl_trt's variants, on the same data.

Run with the project venv; ModelOpt itself runs in a separate venv (it is not a dependency of this
package: its working CPU set is 1.4 GB), given a *copy* of the ONNX file (ModelOpt's quantize
rewrites its input in place)::

    python3 -m venv /work/modelopt-venv && /work/modelopt-venv/bin/pip install torch==2.13.0 && \\
        /work/modelopt-venv/bin/pip install nvidia-modelopt onnx-graphsurgeon onnxslim onnxscript lief \\
        cppimport onnxconverter-common ml_dtypes polygraphy onnx onnxruntime
    .venv/bin/python scripts/compare_modelopt.py --modelopt-python /work/modelopt-venv/bin/python \\
        --data data_work/pusher --out results/modelopt

Calibration uses exactly what ``eipl-trt quantize`` uses by default: closed-loop FP32 rollouts over
the train split minus its last 3 episodes, 256 steps. Every file is scored on the test split with
``eipl_trt.evaluate`` (ONNX Runtime, CPU) beside the bundled variants.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def worker(mode: str, onnx_path: str, npz: str, out: str) -> None:
    """Runs inside the ModelOpt venv."""
    import numpy as np
    import onnx

    data = dict(np.load(npz))
    if mode == "int8":
        from modelopt.onnx.quantization import quantize

        quantize(onnx_path, quantize_mode="int8", calibration_data=data, calibration_eps=["cpu"], output_path=out)
    else:
        from modelopt.onnx.autocast import convert_to_mixed_precision

        model = convert_to_mixed_precision(onnx_path, low_precision_type="fp16", keep_io_types=True,
                                           calibration_data=npz)
        # this venv need not have eipl_trt: a plain temp-file-and-rename instead of eipl_trt.common.atomic
        tmp = f"{out}.tmp"
        onnx.save(model, tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, out)


def summarize_graph(path: Path) -> dict:
    import onnx

    model = onnx.load(str(path))
    ops = [n.op_type for n in model.graph.node]
    q = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    inits = {t.name: t for t in model.graph.initializer}
    quantized = sorted({n.name for n in model.graph.node for i in n.input
                        if any(d.output[0] == i for d in q) and n.op_type != "QuantizeLinear"})
    return {"opset": [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0],
            "casts": ops.count("Cast"), "dq": len(q), "quantized_nodes": quantized,
            "fp16_initializers": sum(t.data_type == onnx.TensorProto.FLOAT16 for t in inits.values())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", choices=("int8", "autocast"), help=argparse.SUPPRESS)
    parser.add_argument("--onnx", help=argparse.SUPPRESS)
    parser.add_argument("--npz", help=argparse.SUPPRESS)
    parser.add_argument("--to", help=argparse.SUPPRESS)
    parser.add_argument("--modelopt-python", default="/work/modelopt-venv/bin/python")
    parser.add_argument("--data", default="data_work/pusher")
    parser.add_argument("--models", nargs="+", default=["sarnn", "cnnrnn", "cnnrnnln"])
    parser.add_argument("--engines", type=Path, default=Path("engines"), help="bundled models root (this checkout's)")
    parser.add_argument("--out", type=Path, default=Path("results/modelopt"))
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.onnx, args.npz, args.to)
        return 0

    import numpy as np

    from eipl_trt.common.atomic import write_text_atomic
    from eipl_trt.evaluate import evaluate, load_for_model
    from eipl_trt.precision import Options, prepare_episodes, record_calibration_feeds
    from eipl_trt.precision.calibration import stack_feeds
    from eipl_trt.spec import ModelSpec, sha256_file

    args.out.mkdir(parents=True, exist_ok=True)
    rows, details = [], {}
    for kind in args.models:
        bundled = ModelSpec.load(args.engines / kind)
        train = load_for_model(args.data, bundled, split="train")
        tensors = prepare_episodes(bundled, [(e.images, e.joints, f"{e.channel_order}8") for e in train])
        feeds = record_calibration_feeds(bundled, tensors[: -Options().heldout], max_feeds=Options().max_feeds)
        test = load_for_model(args.data, bundled, split="test")
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            npz = work / "calib.npz"
            np.savez(npz, **stack_feeds(feeds))
            model_dir = work / kind
            model_dir.mkdir()
            for name in ("model.onnx", "model.json"):
                shutil.copy(bundled.directory / name, model_dir / name)
            spec = ModelSpec.load(model_dir)
            spec = spec.with_variant("fp32", "model.onnx", sha256_file(model_dir / "model.onnx"))
            made = {}
            for mode, precision in (("int8", "int8"), ("autocast", "fp16")):
                copy = work / f"copy_{mode}.onnx"  # ModelOpt rewrites its input: hand it a copy
                shutil.copy(bundled.directory / "model.onnx", copy)
                target = model_dir / f"model.{precision}.onnx"
                subprocess.run([args.modelopt_python, __file__, "--worker", mode, "--onnx", str(copy), "--npz", str(npz),
                                "--to", str(target)], check=True)
                spec = spec.with_variant(precision, target.name, sha256_file(target))
                made[precision] = summarize_graph(target)
            spec.save(model_dir)
            spec = ModelSpec.load(model_dir)
            theirs = evaluate(spec, test, precisions=["fp32", "fp16", "int8"], backend="onnxruntime").as_dict()["runs"]
            ours = evaluate(bundled, test, precisions=["fp32", "fp16", "int8"], backend="onnxruntime").as_dict()["runs"]
        for precision, label in (("fp16", "FP16"), ("int8", "INT8")):
            tool = "ModelOpt AutoCast (keep_io_types, real-frame calibration)" if precision == "fp16" else \
                "ModelOpt INT8 default (Conv/Gemm/MatMul..., rest FP16)"
            for who, runs, graph in (("ModelOpt", theirs, made[precision]),
                                     ("eipl_trt", ours, summarize_graph(bundled.variant_path(precision)))):
                rate = runs[precision]["mse_mean"] / runs["fp32"]["mse_mean"]
                rows.append(f"| {kind} | {label} | {tool if who == 'ModelOpt' else 'eipl_trt.precision (sensitivity pass)'} | "
                            f"{runs[precision]['mse_mean']:.6f} | {rate:.4f} | {graph['opset']} | "
                            f"{len(graph['quantized_nodes']) if precision == 'int8' else graph['casts']} |")
        details[kind] = {"modelopt": made, "fp32_mse": ours["fp32"]["mse_mean"]}
    table = "\n".join([
        "| model | precision | recipe | test MSE (rad²) | error rate vs fp32 | opset | int8 layers / casts |",
        "|---|---|---|---|---|---|---|", *rows])
    write_text_atomic(args.out / "compare.md", table + "\n")
    write_text_atomic(args.out / "details.json", json.dumps(details, indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
