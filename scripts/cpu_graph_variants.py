#!/usr/bin/env python3
"""Graph variants tried for the ONNX Runtime CPU path and not kept, timed beside the one that is.

    python scripts/cpu_graph_variants.py --model sarnn --blocks 12

Each variant is opened as its own ONNX Runtime session (1 thread) with and without the image
decoder, checked against the rewritten graph on 30 fed-back steps, and timed in interleaved blocks
of ``--steps-per-block`` bare ``session.run`` calls (no pre/post-processing), so the columns share
the machine's state. Variants:

* ``exported``: the ONNX file as exported (what TensorRT builds from);
* ``rewritten``: what :class:`~eipl_trt.runners.onnxrt.OrtRunner` opens
  (:func:`~eipl_trt.runners.cpu_graph.rewrite_for_cpu`);
* ``+lstm-op``: ``rewritten`` with the exported LSTMCell (two Gemms, Add, Split, three Sigmoids,
  two Tanhs, three Muls, Add: 13 nodes) replaced by one ONNX ``LSTM`` node (gates reordered
  i,f,g,o -> i,o,f,c) between Unsqueeze/Squeeze;
* ``ort-int8``: ``rewritten`` quantized by ONNX Runtime's own static quantizer for its CPU
  kernels (QDQ around every Conv, activations uint8 with ``reduce_range`` for AVX2 without VNNI,
  weights int8 per channel), calibrated on 16 random inputs. This is the int8 form ONNX Runtime's
  CPU execution provider fuses to ``QLinearConv``; the shipped ``model.int8.onnx`` is TensorRT's
  form (Q/DQ on Conv inputs only), which ONNX Runtime runs as ``DequantizeLinear`` + fp32 Conv.
  Its error is printed, not judged: random calibration is only good enough for timing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any, Callable

import numpy as np


def lstm_as_one_node(model: Any) -> None:
    """Replace the exported LSTMCell's nodes (names under ``/model/rec/``) by one ONNX ``LSTM``."""
    from onnx import helper, numpy_helper

    from eipl_trt.runners import cpu_graph

    graph = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:  # the exporter shares equal biases through Identity
        if node.op_type == "Identity" and node.input[0] in inits:
            inits[node.output[0]] = inits[node.input[0]]
    rec = {n.name: n for n in graph.node if n.name.startswith("/model/rec/")}
    gemm_h, gemm_x, mul_c = rec["/model/rec/Gemm"], rec["/model/rec/Gemm_1"], rec["/model/rec/Mul"]
    hidden = inits[gemm_h.input[1]].shape[1]

    def iofc(a: np.ndarray) -> np.ndarray:  # PyTorch's gate order i, f, g, o -> ONNX's i, o, f, c
        i, f, g, o = (a[k * hidden:(k + 1) * hidden] for k in range(4))
        return np.concatenate([i, o, f, g])

    weights = {
        "lstm.W": iofc(inits[gemm_x.input[1]])[None],
        "lstm.R": iofc(inits[gemm_h.input[1]])[None],
        "lstm.B": np.concatenate([iofc(inits[gemm_x.input[2]]), iofc(inits[gemm_h.input[2]])])[None],
    }
    for name, value in weights.items():
        graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), name))
    graph.initializer.append(numpy_helper.from_array(np.array([0], np.int64), "lstm.axis0"))
    x, h0, c0 = gemm_x.input[0], gemm_h.input[0], mul_c.input[1]
    h_out, c_out = rec["/model/rec/Mul_2"].output[0], rec["/model/rec/Add_1"].output[0]
    new = [
        helper.make_node("Unsqueeze", [x, "lstm.axis0"], ["lstm.x"]),
        helper.make_node("Unsqueeze", [h0, "lstm.axis0"], ["lstm.h0"]),
        helper.make_node("Unsqueeze", [c0, "lstm.axis0"], ["lstm.c0"]),
        helper.make_node("LSTM", ["lstm.x", "lstm.W", "lstm.R", "lstm.B", "", "lstm.h0", "lstm.c0"],
                         ["", "lstm.h", "lstm.c"], hidden_size=hidden),
        helper.make_node("Squeeze", ["lstm.h", "lstm.axis0"], [h_out]),
        helper.make_node("Squeeze", ["lstm.c", "lstm.axis0"], [c_out]),
    ]
    keep = [n for n in graph.node if n.name not in rec]
    after = next(k for k, n in enumerate(keep) if x in n.output) + 1
    del graph.node[:]
    graph.node.extend(keep[:after] + new + keep[after:])
    cpu_graph._drop_unused_initializers(graph)


def ort_int8(model: Any, feeds: Callable[[], dict[str, np.ndarray]]) -> Any:
    """ONNX Runtime's static QDQ quantization of ``model`` for its CPU kernels (U8S8, per channel)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([feeds() for _ in range(16)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "int8.onnx")
        onnx.save(model, src)
        quantize_static(src, dst, Reader(), quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"])
        return onnx.load(dst)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sarnn", help="bundled model name or model directory")
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--steps-per-block", type=int, default=50)
    args = parser.parse_args()

    import onnx
    import onnxruntime as ort

    from eipl_trt.paths import resolve_model
    from eipl_trt.runners.cpu_graph import rewrite_for_cpu, without_outputs

    spec = resolve_model(args.model)
    rng = np.random.default_rng(0)
    shapes = spec.input_shapes()

    def feeds() -> dict[str, np.ndarray]:
        out = {spec.inputs[r]: rng.uniform(spec.vmin, spec.vmax, shapes[r]).astype(np.float32) for r in ("image", "joint")}
        return out | {spec.inputs[r]: rng.normal(0, 0.3, shapes[r]).astype(np.float32) for r in ("state_h", "state_c")}

    exported = onnx.load(str(spec.verify_variant("fp32")))
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(exported)
    rewrite_for_cpu(rewritten)
    with_lstm = onnx.ModelProto()
    with_lstm.CopyFrom(rewritten)
    lstm_as_one_node(with_lstm)
    graphs = {"exported": exported, "rewritten": rewritten, "+lstm-op": with_lstm, "ort-int8": ort_int8(rewritten, feeds)}

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    sessions = {}
    for label, graph in graphs.items():
        for full in (True, False):
            g = graph if full else without_outputs(graph, [spec.outputs["image"]])[0]
            sessions[(label, full)] = ort.InferenceSession(g.SerializeToString(), options, providers=["CPUExecutionProvider"])

    h_in, c_in, h_out, c_out = (spec.inputs["state_h"], spec.inputs["state_c"], spec.outputs["state_h"], spec.outputs["state_c"])
    names = [o.name for o in sessions[("rewritten", True)].get_outputs()]
    steps = [feeds() for _ in range(30)]
    print(f"# {args.model}: max |difference| from `rewritten` over 30 fed-back steps (all outputs)")

    def fed_back(label: str) -> list[dict[str, np.ndarray]]:
        session, state, outs = sessions[(label, True)], None, []
        for feed in steps:
            feed = dict(feed) if state is None else {**feed, h_in: state[0], c_in: state[1]}
            out = dict(zip(names, session.run(names, feed)))
            state = (out[h_out], out[c_out])
            outs.append(out)
        return outs

    reference = fed_back("rewritten")
    for label in (k for k in graphs if k != "rewritten"):
        worst = max(float(np.abs(a[n] - b[n]).max()) for a, b in zip(reference, fed_back(label)) for n in names)
        print(f"  {label:10s} {worst:.2e}")

    times: dict[tuple[str, bool], list[float]] = {k: [] for k in sessions}
    feed = steps[0]
    for _ in range(args.blocks):
        for key, session in sessions.items():
            for _ in range(args.steps_per_block):
                started = time.perf_counter()
                session.run(None, feed)
                times[key].append(time.perf_counter() - started)
    print(f"\n# {args.model}: bare session.run, 1 thread, ms ({args.blocks} interleaved blocks of {args.steps_per_block})")
    print("| variant | outputs | p50 | p99 | max | vs rewritten (same outputs) |\n|---|---|---|---|---|---|")
    for (label, full), values in times.items():
        ms = np.array(values) * 1e3
        base = np.median(times[("rewritten", full)]) * 1e3
        print(f"| {label} | {'all' if full else 'no image'} | {np.median(ms):.3f} | {np.percentile(ms, 99):.3f} | "
              f"{ms.max():.2f} | {np.median(ms) / base:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
