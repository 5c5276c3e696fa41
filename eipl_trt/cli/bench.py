"""Latency (and energy) per frame of the Predictor step, for each model and precision, side by side.

For every model, each precision available on the backend runs the full step (preprocess,
inference, postprocess) on the same inputs, interleaved in blocks so machine noise hits all columns
alike; eager PyTorch of the same weights (model.pth beside model.json) is the baseline column.
Energy per frame is measured where a power source exists (Jetson INA3221/jtop, NVIDIA NVML).
Writes bench.md, bench.csv and environment.json into --out.

    eipl-trt bench --steps 500 --out results/bench
    eipl-trt bench --backend onnxruntime openvino --threads 1 2      # CPU backends side by side
    eipl-trt bench --model sarnn cnnrnn cnnrnnln --concurrent 3     # 1, 2, 3 models stepping together
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "latency and energy per frame of the bundled or given models"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `eipl-trt bench`."""
    parser.add_argument("--model", nargs="+", default=None,
                        help="bundled model names or model directories (default: every bundled model)")
    parser.add_argument("--backend", nargs="+", default=["auto"],
                        help="one or more of auto | onnxruntime | openvino | tensorrt | integer (the integer-only model in <model>/intonly), as columns (default %(default)s)")
    parser.add_argument("--precision", nargs="+", default=None,
                        help="precisions to run (default: every one available on the backend)")
    parser.add_argument("--steps", type=int, default=500, help="timed steps per column (default %(default)s)")
    parser.add_argument("--warm-up", type=int, default=50, help="untimed steps first (default %(default)s)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1],
                        help="inference threads; several values give one column each (default %(default)s)")
    parser.add_argument("--concurrent", type=int, default=0, metavar="N",
                        help="instead: 1..N models (cycling --model) stepping together; per-model "
                             "latency and total throughput")
    parser.add_argument("--layout", choices=("threads", "processes"), default="threads",
                        help="--concurrent: models as threads of one process, or one process each "
                             "(as robot.launch.py models:= starts them) (default %(default)s)")
    parser.add_argument("--frame-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="camera frame size fed to the predictor (default: the model's input size)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the eager PyTorch column")
    parser.add_argument("--no-image", action="store_true",
                        help="steps without the predicted image, as the node runs while nobody subscribes to "
                             "~/predicted_image (ONNX Runtime and eager PyTorch then skip the image decoder)")
    parser.add_argument("--plain-graph", action="store_true",
                        help="add a column: ONNX Runtime on the exported graph as it is (no CPU rewrites, "
                             "image decoder always run)")
    parser.add_argument("--power", default="auto", help="power source: auto | none | ina3221 | jtop | nvml (default %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="write bench.md, bench.csv, environment.json here")


def _cases(spec, args, choices: list[str]):  # noqa: ANN001, ANN202 - small helper
    """The benchmark columns for ``spec``; appends ``auto``'s choices (with their reasons) to ``choices``."""
    from eipl_trt.bench import BenchCase
    from eipl_trt.predictor import Predictor
    from eipl_trt.runners import available_precisions, choose

    name = spec.directory.name if spec.directory else spec.model
    cases = []
    threads = args.threads if isinstance(args.threads, list) else [args.threads]
    for requested in (args.backend if isinstance(args.backend, list) else [args.backend]):
        for p in args.precision or available_precisions(spec, requested):
            for t in threads:
                choice = choose(spec, requested, p, num_threads=t)
                backend = choice.backend
                if requested == "auto":
                    choices.append(f"{name} {p} x{t}: auto -> {choice.reason}")
                label = backend if len(threads) == 1 else f"{backend} x{t}"
                cases.append(BenchCase(name, label, p, lambda c=choice, t=t: Predictor(c.create(spec, t))))
                if backend == "onnxruntime" and getattr(args, "plain_graph", False):
                    from eipl_trt.runners.onnxrt import OrtRunner

                    cases.append(BenchCase(name, label.replace("onnxruntime", "onnxruntime-plain"), p,
                                           lambda p=p, t=t: Predictor(OrtRunner(spec, p, t, graph_rewrites=False,
                                                                                skip_image=False))))
    if not args.no_baseline:
        reason = _baseline_unavailable(spec)
        if reason:
            log.warning("no eager PyTorch baseline for %s: %s", name, reason)
        else:
            from eipl_trt.runners.torch_eager import TorchRunner

            for t in threads:
                label = "torch" if len(threads) == 1 else f"torch x{t}"
                cases.append(BenchCase(name, label, "fp32",
                                       lambda t=t: Predictor(TorchRunner(spec, num_threads=t))))
    return cases


def _want_image(args: argparse.Namespace) -> bool:
    """Whether the steps produce the predicted image (not ``--no-image``)."""
    return not getattr(args, "no_image", False)


def _outputs_note(args: argparse.Namespace) -> str:
    """The environment line that says which outputs each step produced."""
    return "all, predicted image included" if _want_image(args) else "joints and points, no predicted image (--no-image)"


def _baseline_unavailable(spec) -> str:  # noqa: ANN001
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (pip install .[models])"
    if spec.directory is None or not (spec.directory / "model.pth").is_file():
        return "no model.pth beside model.json"
    return ""


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print the table."""
    from eipl_trt.bench import environment, markdown_table, run_benchmark, synthetic_inputs, write_reports
    from eipl_trt.errors import EipltrtError
    from eipl_trt.paths import bundled_models, resolve_model

    names = args.model or list(bundled_models())
    if not names:
        raise EipltrtError("no bundled models found; pass --model DIR")
    if args.concurrent:
        return _run_concurrent(args, names)
    from eipl_trt.power import measure_idle_power_w, probe_power_monitor

    monitor, power_note = probe_power_monitor(args.power)
    idle_w = measure_idle_power_w(monitor, 5.0) if monitor is not None else 0.0
    results = []
    choices: list[str] = []
    try:
        for name in names:
            spec = resolve_model(name)
            inputs = synthetic_inputs(spec, 64, frame_hw=tuple(args.frame_size) if args.frame_size else None)
            seen = len(choices)
            cases = _cases(spec, args, choices)
            print(f"# {name}: {', '.join(f'{c.backend}/{c.precision}' for c in cases)}; {args.steps} steps each", flush=True)
            for line in choices[seen:]:
                print(f"# {line}", flush=True)
            results += run_benchmark(cases, inputs, steps=args.steps, warm_up=args.warm_up,
                                     want_image=_want_image(args),
                                     power=monitor, idle_power_w=idle_w)
    finally:
        if monitor is not None:
            monitor.stop()
    env = environment(",".join(map(str, args.threads)) if isinstance(args.threads, list) else args.threads)  # type: ignore[arg-type]
    env["power"] = power_note if monitor is None else f"{power_note} (idle {idle_w:.2f} W subtracted)"
    env["frame_size"] = "model input size" if not args.frame_size else f"{args.frame_size[0]}x{args.frame_size[1]}"
    env["outputs"] = _outputs_note(args)
    if choices:
        env["backend_auto"] = "; ".join(choices)
    print(markdown_table(results))
    print("".join(f"- {k}: {v}\n" for k, v in env.items()))
    if args.out:
        for path in write_reports(results, env, args.out):
            print(f"wrote {path}")
    return 0


def _run_concurrent(args: argparse.Namespace, names: list[str]) -> int:
    """``--concurrent N``: 1..N models stepping together on the first backend and precision."""
    from eipl_trt.bench import environment, synthetic_inputs
    from eipl_trt.bench.concurrent import concurrency_table, run_concurrent
    from eipl_trt.common.atomic import write_text_atomic
    from eipl_trt.paths import resolve_model
    from eipl_trt.predictor import Predictor
    from eipl_trt.runners import choose

    specs = {}
    for given in names:  # label = the model directory's name, as in the latency table
        spec = resolve_model(given)
        label = spec.directory.name if spec.directory else spec.model
        specs[label if label not in specs else f"{label}#{len(specs)}"] = spec
    names = list(specs)
    precision = (args.precision or ["fp32"])[0]
    threads = args.threads[0] if isinstance(args.threads, list) else args.threads
    chosen = {n: choose(s, args.backend[0], precision, num_threads=threads) for n, s in specs.items()}
    backends = {n: c.backend for n, c in chosen.items()}
    frame_hw = tuple(args.frame_size) if args.frame_size else None
    print(f"# concurrent: 1..{args.concurrent} of {', '.join(names)} on "
          f"{', '.join(f'{n}={b}' for n, b in backends.items())}/{precision}, {threads} thread(s) each; "
          f"{args.steps} ticks per row", flush=True)
    if getattr(args, "layout", "threads") == "processes":
        from eipl_trt.bench.concurrent import run_concurrent_processes

        dirs = [str(specs[n].directory) for n in names]
        backend = backends[names[0]]
        results = [run_concurrent_processes(dirs, k, backend=backend, precision=precision, threads=threads,
                                            frame_hw=frame_hw, steps=args.steps, warm_up=args.warm_up,
                                            want_image=_want_image(args))
                   for k in range(1, args.concurrent + 1)]
        for r in results:
            r.models = [next(n for n in names if str(specs[n].directory) == m) for m in r.models]
    else:
        results = run_concurrent(
            lambda n: Predictor(chosen[n].create(specs[n], threads)),
            names, lambda n: synthetic_inputs(specs[n], 64, frame_hw=frame_hw), args.concurrent,
            steps=args.steps, warm_up=args.warm_up, want_image=_want_image(args))
    table = concurrency_table(results, getattr(args, "layout", "threads"))
    env = environment(threads)
    env["outputs"] = _outputs_note(args)
    print(table)
    print("".join(f"- {k}: {v}\n" for k, v in env.items()))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / "concurrent.md"
        write_text_atomic(path, "# eipl_trt concurrency benchmark\n\n" + table + "\n## Environment\n\n"
                          + "".join(f"- {k}: {v}\n" for k, v in env.items()))
        print(f"wrote {path}")
    return 0
