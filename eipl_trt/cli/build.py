"""Build (or reuse) the TensorRT engines of a model, one per precision, in the engine cache.

The engine cache is keyed by the ONNX file's sha256, the TensorRT version, the GPU and its compute
capability, the precision and the build options; a plan is reused while all of these match.
A first build can take minutes on a Jetson; the node and `bench` reuse what this builds.

    eipl-trt build --model sarnn --precision fp32 int8
    eipl-trt build --model models/sarnn_airec --cache-dir /data/engines --opt-level 5
"""

from __future__ import annotations

import argparse
import time

HELP = "build or reuse TensorRT engines for a model (shows the cache path and build time)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `eipl-trt build`."""
    parser.add_argument("--model", default="sarnn", help="bundled model name or model directory (default %(default)s)")
    parser.add_argument("--precision", nargs="+", default=None,
                        help="fp32 fp16 int8 (default: every variant model.json lists that this TensorRT can build)")
    parser.add_argument("--cache-dir", default=None,
                        help="engine cache directory (default $EIPL_TRT_ENGINE_CACHE or $XDG_CACHE_HOME/eipl_trt/engines)")
    parser.add_argument("--opt-level", type=int, default=3, help="builder_optimization_level 0-5 (default %(default)s)")
    parser.add_argument("--no-graphs", action="store_true", help="do not test CUDA graph capture after the build")


def run(args: argparse.Namespace) -> int:
    """Build each requested precision; print status, plan path and time."""
    from eipl_trt.errors import BackendUnavailableError
    from eipl_trt.paths import resolve_model
    from eipl_trt.runners.tensorrt import TrtRunner, refused_precisions
    from eipl_trt.runners.tensorrt.builder import BuildOptions

    spec = resolve_model(args.model)
    refused = refused_precisions(spec)
    precisions = args.precision or [p for p in ("fp32", "fp16", "int8") if p in spec.variants and p not in refused]
    failures = 0
    for precision in precisions:
        if precision not in spec.variants:
            print(f"{precision}: model.json lists no {precision} variant (have: {', '.join(spec.variants)})")
            failures += 1
            continue
        if precision in refused:
            print(f"{precision}: refused: {refused[precision]}")
            failures += 1
            continue
        print(f"{precision}: building or loading from the cache ...", flush=True)
        started = time.perf_counter()
        runner = TrtRunner(spec, precision, cuda_graphs=not args.no_graphs, cache_dir=args.cache_dir,
                           build_options=BuildOptions(optimization_level=args.opt_level))
        try:
            with runner:
                diag = runner.diagnostics()
        except BackendUnavailableError:
            raise
        except Exception as exc:  # noqa: BLE001 - report per precision, keep going
            print(f"{precision}: failed: {exc}")
            failures += 1
            continue
        print(f"{precision}: {diag['engine']}; CUDA graphs {diag['cuda_graphs']}; "
              f"TensorRT {diag['tensorrt']}; total {time.perf_counter() - started:.1f} s")
    return 1 if failures else 0
