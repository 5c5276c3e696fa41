"""Show how TensorRT built a model: per-layer type, precision, tactic and reformat layers (and times).

Builds or reuses the engine (as `eipl-trt build`), reads TensorRT's engine inspector and, with
``--profile N``, times every layer with an IProfiler over N steps. Prints the table and writes
``inspect-<model>-<precision>.md`` and ``.json`` into --out (atomically).

    eipl-trt inspect --model cnnrnnln --precision int8 --profile 200 --out results/inspect
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "per-layer table of a TensorRT engine (type, precision, tactic, reformats; --profile: times)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `eipl-trt inspect`."""
    parser.add_argument("--model", default="sarnn", help="bundled model name or model directory (default %(default)s)")
    parser.add_argument("--precision", default="fp32", help="fp32 | fp16 | int8 (default %(default)s)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="time each layer over N steps")
    parser.add_argument("--cache-dir", default=None, help="engine cache directory (as for `eipl-trt build`)")
    parser.add_argument("--out", type=Path, default=Path("results/inspect"), help="output directory (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Open the engine, print and save the table."""
    from eipl_trt.common.atomic import write_json_atomic, write_text_atomic
    from eipl_trt.paths import resolve_model
    from eipl_trt.runners.tensorrt import TrtRunner
    from eipl_trt.runners.tensorrt.inspect import layer_table, profile_layers, to_markdown

    spec = resolve_model(args.model)
    with TrtRunner(spec, args.precision, cuda_graphs=args.profile <= 0, cache_dir=args.cache_dir) as runner:
        rows = layer_table(runner)
        profile = profile_layers(runner, args.profile) if args.profile > 0 else None
        diag = runner.diagnostics()
    title = (f"# {spec.model} {args.precision} on TensorRT {diag['tensorrt']}\n\nEngine: {diag['engine']}\n"
             f"Layers: {len(rows)}, reformat layers: {sum(1 for r in rows if r['reformat'])}\n\n")
    text = title + to_markdown(rows, profile)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"inspect-{spec.directory.name if spec.directory else spec.model}-{args.precision}"
    write_text_atomic(args.out / f"{stem}.md", text)
    write_json_atomic(args.out / f"{stem}.json", {"model": spec.model, "precision": args.precision, **diag,
                                                  "layers": rows, "profile_ms": profile})
    print(f"wrote {args.out / (stem + '.md')} and .json")
    return 0
