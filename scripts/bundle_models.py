#!/usr/bin/env python3
"""Turn trained checkpoints into the bundled models under engines/<kind>/, with model cards.

For each kind: export the training checkpoint (EIPL format: model.pth + args.json) to ONNX with its
sidecar, copy the checkpoint beside it (the eager PyTorch baseline of `eipl-trt bench` loads it),
add the FP16 and INT8 variants (``eipl_trt.precision``: calibrated on the training split, layers
chosen by the sensitivity pass), evaluate fp32, fp16 and int8 on the test split, and write
MODEL_CARD.md from the training log and the evaluation.

    .venv/bin/python scripts/bundle_models.py --runs data_work/train --data data_work/pusher --out engines \
        [--run sarnn=data_work/train5/sarnn ...]

``--variants-only`` remakes only the precision variants of the bundled models in place (the
training runs are not needed) and rewrites the test-metrics and precision sections of their cards::

    .venv/bin/python scripts/bundle_models.py --variants-only --data data_work/pusher --out engines
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from eipl_trt.common.atomic import write_text_atomic
from eipl_trt.evaluate import CameraCheck, evaluate, load_for_model, write_report
from eipl_trt.models.export import export_checkpoint
from eipl_trt.precision import make_variants, prepare_episodes
from eipl_trt.predictor import Predictor
from eipl_trt.spec import ModelSpec

KINDS = ("sarnn", "cnnrnn", "cnnrnnln")
DESCRIPTIONS = {
    "sarnn": "SARNN (spatial attention + LSTM), 64x64 px input, LeakyReLU slope 0.3 (eipl HEAD dialect)",
    "cnnrnn": "CNNRNN (CNN autoencoder + LSTM, Tanh), 128x128 px input",
    "cnnrnnln": "CNNRNNLN (CNN autoencoder with whole-tensor LayerNorm + LSTM, ReLU), 128x128 px input",
}


def _last_log_row(run: Path) -> dict[str, str]:
    rows = list(csv.DictReader((run / "log.csv").open(encoding="utf-8")))
    best = [r for r in rows if r.get("best") == "1"]
    return {"epochs": str(len(rows)), **(best[-1] if best else rows[-1])}


def _phases(run: Path) -> list[dict]:
    """args.json of every training phase, oldest first, following the init_from chain."""
    phases, seen = [], set()
    while run is not None and run.resolve() not in seen and (run / "args.json").is_file():
        seen.add(run.resolve())
        a = json.loads((run / "args.json").read_text(encoding="utf-8"))
        phases.append({**a, "_dir": run})
        run = Path(a["init_from"]).parent if a.get("init_from") else None
    return phases[::-1]


def _lineage(phases: list[dict]) -> list[str]:
    """Table rows for the training phases."""
    rows = []
    for a in phases:
        log_csv = a["_dir"] / "log.csv"
        log = list(csv.DictReader(log_csv.open(encoding="utf-8"))) if log_csv.is_file() else []
        minutes = float(log[-1]["seconds"]) / 60 if log and log[-1].get("seconds") else float("nan")
        trained = "LSTM + joint head (image path frozen)" if a.get("freeze_image") else "whole model"
        where = f"GPU ({a['device']})" if str(a.get("device", "cpu")).startswith("cuda") else f"CPU, {a.get('threads')} thread(s)"
        rows.append(f"| {len(log)} | {trained} | {a.get('batch_size')} | {a.get('lr')} | {a.get('stdev')} | "
                    f"{a.get('joint_loss')} | {a.get('input_mix', 1.0)} | {a.get('select_by', 'loss')} | {where} | {minutes:.0f} |")
    return rows


def _image_baselines(data: Path) -> tuple[float, float]:
    """Test-split image MSE (pixels in [0, 1], step t+1) of the training-set mean image and of repeating frame t."""
    train = np.load(data / "train" / "images.npy", mmap_mode="r")
    mean = np.zeros(train.shape[2:], np.float64)
    for episode in train:
        mean += episode.astype(np.float64).sum(0)
    mean /= train.shape[0] * train.shape[1] * 255.0
    test = np.load(data / "test" / "images.npy").astype(np.float32) / 255.0
    return float(((test[:, 1:] - mean) ** 2).mean()), float(((test[:, 1:] - test[:, :-1]) ** 2).mean())


def dark_pixel_fraction(spec, episodes) -> float:  # noqa: ANN001
    """Fraction of predicted-image values (pixel x channel) that are 0 on every step of ``episodes``:
    for a ReLU output (CNNRNNLN), the part of the frame where the output unit has gone dead."""
    predictor = Predictor.from_model(spec, backend="onnxruntime")
    lit = None
    try:
        for e in episodes:
            predictor.reset_state()
            for frame, q in zip(e.images, e.joints):
                image = predictor.step(frame, q, f"{e.channel_order}8", want_image=True).image
                lit = image > 0 if lit is None else lit | (image > 0)
    finally:
        predictor.close()
    return float(1.0 - lit.mean())


def _phases_note(phases: list[dict]) -> list[str]:
    """Say so when some phases trained only the recurrent part (``--freeze-image``)."""
    frozen = any(a.get("freeze_image") for a in phases)
    if not frozen:
        return []
    return ["- Phases marked *image path frozen* ran `eipl-trt train --freeze-image`: the encoder and decoder",
            "  stayed as the previous phase left them, and the LSTM and joint head trained on the joint loss",
            "  from cached encoder features (no image noise), which is what made enough optimizer steps fit",
            "  on a CPU. The test split was scored with the whole model throughout."]


def _data_lines(args: dict, data: Path) -> list[str]:
    """Where the last phase's training episodes came from (a merged dataset lists its sources)."""
    meta = _dataset_meta(Path(str(args.get("data", ""))))
    if not meta.get("merged_from"):
        return [f"- `eipl-trt sim --out {data} --train 32 --test 8 --seed 0`: {args.get('train_sequences')} training and "
                f"{args.get('test_sequences')} test episodes."]
    return [f"- `eipl-trt sim --out {data} --train 32 --test 8 --seed 0` gives the test split ({args.get('test_sequences')} "
            "held-out episodes) and the calibration episodes of the precision variants.",
            f"- The last training phase read {args.get('train_sequences')} episodes, merged by `eipl-trt dataset merge`:",
            *_source_lines(meta["merged_from"], "  ")]


def _dataset_meta(path: Path) -> dict:
    meta = path / "dataset.json"
    return json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else {}


def _source_lines(sources: list[dict], indent: str) -> list[str]:
    """One line per merged source, nested merges expanded."""
    lines = []
    for src in sources:
        meta = _dataset_meta(Path(src["path"]))
        head = f"{indent}- {src['train_episodes']} from `{src['path']}`"
        if "recovery" in meta:
            r = meta["recovery"]
            frames = r.get("handover_frames") or [0]
            lines.append(f"{head}: DAgger-style rescues (`eipl-trt sim recovery --seed {r.get('seed')}`): `{r.get('model')}` "
                         f"drove for {min(frames)}-{max(frames)} frames, then the expert replanned from there")
        elif meta.get("merged_from"):
            lines += [f"{head}, itself merged from:", *_source_lines(meta["merged_from"], indent + "  ")]
        elif meta.get("perturbed", {}).get("sigma_rad"):
            q = meta["perturbed"]
            lines.append(f"{head}: the expert under joint perturbations (`eipl-trt sim perturbed --sigma "
                         f"{q['sigma_rad']} --seed {q.get('seed')}" + (" --successful-only`" if q.get("successful_only") else "`")
                         + f"; {q.get('kept')} of {q.get('episodes')} kept)")
        else:
            seed = (meta.get("perturbed") or {}).get("seed", meta.get("seed"))
            lines.append(f"{head}: expert demonstrations (layout seed {seed})")
    return lines


def _v(log: dict, key: str) -> str:
    return log.get(key) or "not computed (image path frozen)"


def _card(name: str, kind: str, run: Path, data: Path, metrics: dict, args: dict, log: dict, files: dict[str, int],
          camera: CameraCheck, dark: float | None, spec: ModelSpec) -> str:
    phases = _phases(run)
    fp32 = metrics["runs"]["fp32"]
    lines = [
        f"# Model card: {name}",
        "",
        f"{DESCRIPTIONS[kind]}, trained with eipl_trt's implementation of EIPL's procedure (full BPTT, teacher",
        "forcing, input noise) on a **simulated** robot. For demos, tests and benchmarks only: it knows one",
        "simulated arm and camera, not your robot.",
        "",
        "## Data",
        "",
        "- MuJoCo (gymnasium Pusher-v5) 7-joint arm pushing an object to a goal; scripted expert, object and",
        "  goal positions varied per episode; 128x128 RGB camera and joint positions at 10 Hz, 70 steps (7 s).",
        *_data_lines(args, data),
        f"- Joints (model order): {', '.join(args['joint_names'])}.",
        "",
        "## Training",
        "",
        f"- Best checkpoint at epoch {log.get('epoch')} of {log['epochs']} logged epochs; "
        f"batch size {args.get('batch_size')}, Adam lr {args.get('lr')}, joint noise stdev {args.get('stdev')}, "
        f"loss weights img {args.get('img_loss')} / joint {args.get('joint_loss')}"
        + (f" / points {args.get('pt_loss')}" if kind == "sarnn" else "") + ".",
        f"- Final losses (MSE in normalized units; totals are weighted by the loss weights): train total {_v(log, 'train_loss')}, image "
        f"{_v(log, 'train_img')}, joint {_v(log, 'train_joint')}; test total {_v(log, 'test_loss')}, image "
        f"{_v(log, 'test_img')}, joint {_v(log, 'test_joint')}.",
        f"- Training log: `{run / 'log.csv'}` (not bundled). Arguments: `args.json`.",
        "- Phases (each continues from the previous one's checkpoint with `--init-from`):",
        "",
        "| epochs | trained | batch | lr | noise stdev | joint loss weight | input mix | checkpoint picked by | where | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *_lineage(phases),
        "",
        *_phases_note(phases),
        "",
        *_metrics_block(name, metrics),
    ]
    if kind != "sarnn" and log.get("test_img"):
        mean_img, repeat_img = _image_baselines(data)
        lines += ["", f"Predicted image: test MSE {float(log['test_img']):.5f} (pixels in [0, 1]). For scale, the "
                  f"training-set mean image scores {mean_img:.5f} and repeating the current frame {repeat_img:.5f}."]
        if float(log["test_img"]) > mean_img:
            lines.append("**The predicted image is worse than the mean image**: the image decoder is under-trained"
                         + (f"; {dark:.0%} of its output values are 0 on every test frame (their ReLU has gone dead)"
                            if dark is not None and dark > 0.01 else "")
                         + ". Treat `~/predicted_image` from this model as a placeholder picture.")
    real, swapped = camera.real.mean, camera.swapped.mean
    lines += ["", f"Camera dependence: with each test episode's frames replaced by the next episode's (same joints), "
              f"the fp32 joint MSE goes from {real:.6f} to {swapped:.6f} ({swapped / real:.2f}x)."]
    if abs(swapped - real) <= 1e-3 * real:
        lines += ["", "**This model's joint predictions do not depend on the camera**: its image encoder saturated "
                  "during training (the features it hands the LSTM are constant), so it predicts from the joint "
                  "history alone. It beats holding the last joint by extrapolating the arm's motion, but it cannot "
                  "see where the object and goal are."]
    ratio = fp32["vs_hold_last"]
    if ratio >= 1.0:
        lines += ["", f"**This model does not beat the hold-last baseline** (its error is {ratio:.1f}x the "
                  "baseline's): it is under-trained, with a few thousand optimizer steps on two shared CPU cores "
                  "where EIPL trains for ~70k. It exercises the export, runtime, node and benchmarks with a "
                  "real trained network of this architecture, but it is not a usable policy."]
    else:
        lines += ["", f"The model's error is {ratio:.2f}x the hold-last baseline's "
                  f"({1 / ratio:.2f}x lower) on held-out episodes."]
    lines += ["", "Reproduce: `eipl-trt evaluate --bag data_work/pusher --model engines/" + name + " --camera-check --out results/eval_" + name + "`.",
              "", *_precision_section(spec), "", *_files_section(files)]
    return "\n".join(lines) + "\n"


PRECISION_LABELS = {"fp32": "ONNX Runtime", "fp16": "FP16 compute, FP32 I/O", "int8": "symmetric INT8 Q/DQ"}


def _metrics_block(kind: str, metrics: dict) -> list[str]:
    """The test-metrics section: hold-last and every precision, with error rates vs fp32."""
    hold = metrics["hold_last"]
    runs = metrics["runs"]
    lines = [
        "## Test metrics (8 held-out episodes, 552 scored steps)",
        "",
        "EIPL's metric: per-step MSE between the predicted joints at t and the measured joints at t+1 (rad²).",
        "Error rate = the precision's MSE / fp32's MSE (1.000 = as accurate as fp32). All on ONNX Runtime (CPU);",
        "FP16 on a CPU is an accuracy preview (x86 has no FP16 arithmetic: it is not faster there).",
        "",
        "| predictor | MSE mean | MSE max | MSE / hold-last MSE | error rate vs fp32 | max abs Δ joint vs fp32 (rad) |",
        "|---|---|---|---|---|---|",
        f"| hold last joint | {hold['mse_mean']:.6f} | {hold['mse_max']:.6f} | 1.00 | - | - |",
    ]
    for precision in ("fp32", "fp16", "int8"):
        run = runs.get(precision)
        if run is None:
            continue
        rate = run["mse_mean"] / runs["fp32"]["mse_mean"]
        delta = "-" if precision == "fp32" else f"{run['max_abs_diff_vs_fp32']:.4f}"
        lines.append(f"| {kind} {precision} ({PRECISION_LABELS[precision]}) | {run['mse_mean']:.6f} | "
                     f"{run['mse_max']:.6f} | {run['vs_hold_last']:.3f} | {rate:.4f} | {delta} |")
    return lines


def _precision_section(spec: ModelSpec) -> list[str]:
    """What the precision variants are and what the sensitivity pass kept out of reduced precision."""
    from eipl_trt.precision.graph import short_name

    lines = ["## Precision variants", ""]
    fp16 = spec.variants.get("fp16")
    int8 = spec.variants.get("int8")
    if fp16 is None and int8 is None:
        return lines + ["None: this model ships FP32 only."]
    calib = (fp16 or int8).recipe.get("calibration", {})
    source, _, split = str(calib.get("source", "?")).rpartition(" (")
    lines += [f"Made by `eipl-trt quantize --precision fp16 int8 --calibration {source or '?'} --split {split.rstrip(')') or '?'}`: "
              f"{calib.get('steps')} calibration steps from closed-loop FP32 rollouts over {calib.get('episodes')} "
              f"training episodes (data sha256 {str(calib.get('sha256', ''))[:12]}...), and a per-layer sensitivity pass "
              f"replaying {calib.get('heldout_episodes')} other training episodes. Both files are opset "
              f"{(fp16 or int8).opset} (TensorRT >= {(fp16 or int8).min_tensorrt} reads them); the full recipe is in "
              "`model.json`.", ""]
    if fp16 is not None:
        r = fp16.recipe
        by_range = ", ".join(f"`{g}`" for g in r.get("kept_fp32_by_range", [])) or "none"
        by_sens = ", ".join(f"`{g}`" for g in r.get("kept_fp32_by_sensitivity", [])) or "none"
        lines += [f"- `model.fp16.onnx`: FP16 everywhere except: kept FP32 by the ranges seen on calibration frames: "
                  f"{by_range}; kept FP32 by the sensitivity pass: {by_sens}."]
    if int8 is not None:
        r = int8.recipe
        quantized = ", ".join(f"`{short_name(n)}`" for n in r.get("quantized_nodes", []))
        excluded = ", ".join(f"`{short_name(n)}`" for n in r.get("excluded_nodes", [])) or "none"
        no_kernel = r.get("kept_fp32_for_tensorrt") or {}
        if no_kernel:
            excluded += "; kept FP32 because TensorRT has no INT8 kernel for them: " + ", ".join(
                f"`{short_name(n)}` ({reason.split(':')[0]})" for n, reason in no_kernel.items())
        lines += [f"- `model.int8.onnx`: INT8 ({r.get('method', '').split(' ')[0]} ranges) for {quantized}; "
                  f"kept out by the sensitivity pass (FP32): {excluded}. Everything else (the LSTM's gate arithmetic, "
                  "activations, normalizations, softmax) runs in FP32."]
    return lines


def _files_section(files: dict[str, int]) -> list[str]:
    return ["## Files", "", *[f"- `{name}` ({size / 1e6:.2f} MB)" for name, size in sorted(files.items())]]


def _replace_section(text: str, heading: str, new: list[str], before: str) -> str:
    """Replace the section starting at ``heading`` (up to the next ``## `` heading) or insert it before ``before``."""
    lines = text.rstrip("\n").split("\n")
    if heading in lines:
        start = lines.index(heading)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = [*new, ""] if end < len(lines) else new
    else:
        at = lines.index(before)
        lines[at:at] = [*new, ""]
    return "\n".join(lines) + "\n"


def _update_metrics_table(text: str, kind: str, metrics: dict) -> str:
    """Swap the old test-metrics table (and its INT8 line) for :func:`_metrics_block`'s."""
    lines = text.rstrip("\n").split("\n")
    start = lines.index("## Test metrics (8 held-out episodes, 552 scored steps)")
    end = start + 1
    while end < len(lines) and not lines[end].startswith(("Predicted image:", "Camera dependence:")):
        end += 1
    lines[start:end] = [*_metrics_block(kind, metrics), ""]
    return "\n".join(lines) + "\n"


def remake_variants(kind: str, data: Path, out: Path, remake: bool = True) -> dict:
    """Remake the fp16/int8 variants of ``out/kind`` in place (unless ``remake`` is false) and refresh its
    card's metrics, precision and files sections."""
    spec = ModelSpec.load(out / kind)
    if remake:
        train = load_for_model(data, spec, split="train")
        tensors = prepare_episodes(spec, [(e.images, e.joints, f"{e.channel_order}8") for e in train])
        spec, built = make_variants(spec, tensors, ("fp16", "int8"), out=sys.stdout, calibration_source=f"{data} (train)")
        for table in built.tables.values():
            print(table + "\n")
    test = load_for_model(data, spec, split="test")
    report = evaluate(spec, test, precisions=["fp32", "fp16", "int8"], backend="onnxruntime", source=str(data))
    metrics = report.as_dict()
    write_report(report, Path("results") / f"eval_{kind}")
    card = (out / kind / "MODEL_CARD.md").read_text(encoding="utf-8")
    card = _update_metrics_table(card, kind, metrics)
    card = _replace_section(card, "## Precision variants", _precision_section(spec), "## Files")
    files = {p.name: p.stat().st_size for p in (out / kind).iterdir()
             if not p.name.startswith(".") and p.name != "MODEL_CARD.md"}
    card = _replace_section(card, "## Files", _files_section(files), "")
    write_text_atomic(out / kind / "MODEL_CARD.md", card)
    return metrics


def bundle(name: str, run: Path, data: Path, out: Path) -> dict:
    """Bundle the run as ``out/name`` (the kind comes from its args.json; ``name`` may differ, e.g. sarnn8)."""
    args = json.loads((run / "args.json").read_text(encoding="utf-8"))
    kind = args.get("model", name)
    target = out / name
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        stage = Path(tmp) / name
        spec = export_checkpoint(
            kind, run / "model.pth", args_json=run / "args.json", joint_bounds=run / "joint_bounds.npy",
            leaky_slope=args.get("leaky_slope") if kind == "sarnn" else None,
            im_size=(args["im_size"], args["im_size"]) if kind == "sarnn" else None,
            joint_names=args["joint_names"], rate_hz=args["rate_hz"], channel_order=args["channel_order"],
            out_dir=stage,
        )
        shutil.copy(run / "model.pth", stage / "model.pth")
        shutil.copy(run / "args.json", stage / "args.json")
        calibration = load_for_model(data, spec, split="train")
        tensors = prepare_episodes(spec, [(e.images, e.joints, f"{e.channel_order}8") for e in calibration])
        spec, _ = make_variants(spec, tensors, ("fp16", "int8"), out=sys.stdout, calibration_source=f"{data} (train)")
        test = load_for_model(data, spec, split="test")
        report = evaluate(spec, test, precisions=["fp32", "fp16", "int8"], backend="onnxruntime", source=str(data),
                          camera_check=True)
        metrics = report.as_dict()
        write_report(report, Path("results") / f"eval_{name}")
        files = {p.name: p.stat().st_size for p in stage.iterdir()}
        write_text_atomic(stage / "MODEL_CARD.md",
                          _card(name, kind, run, data, metrics, args, _last_log_row(run), files, report.camera,
                                dark_pixel_fraction(spec, test[:2]) if kind == "cnnrnnln" else None, spec))
        if target.exists():
            shutil.rmtree(target)
        stage.rename(target)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("data_work/train"), help="training output root (<kind>/model.pth)")
    parser.add_argument("--data", type=Path, default=Path("data_work/pusher"), help="the EIPL dataset directory")
    parser.add_argument("--out", type=Path, default=Path("engines"), help="bundled models root")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help="comma-separated names to bundle as OUT/<name>: a kind, or a new name given a --run "
                        "(e.g. --kinds sarnn8 --run sarnn8=DIR; the kind comes from its args.json) (default %(default)s)")
    parser.add_argument("--run", action="append", default=[], metavar="KIND=DIR",
                        help="training output of one kind, overriding RUNS/KIND (repeatable)")
    parser.add_argument("--variants-only", action="store_true",
                        help="remake only the fp16/int8 variants of the bundled models and their cards' metrics")
    parser.add_argument("--cards-only", action="store_true",
                        help="with --variants-only: keep the variants, re-evaluate and refresh the cards")
    args = parser.parse_args(argv)
    if args.variants_only:
        for kind in args.kinds.split(","):
            runs = remake_variants(kind, args.data, args.out, remake=not args.cards_only)["runs"]
            print(f"{kind}: test MSE fp32 {runs['fp32']['mse_mean']:.6f}, error rate fp16 "
                  f"{runs['fp16']['mse_mean'] / runs['fp32']['mse_mean']:.4f}, int8 "
                  f"{runs['int8']['mse_mean'] / runs['fp32']['mse_mean']:.4f}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    runs = {kind: args.runs / kind for kind in KINDS}
    runs.update({k: Path(v) for k, v in (item.split("=", 1) for item in args.run)})
    for kind in args.kinds.split(","):
        m = bundle(kind, runs[kind], args.data, args.out)
        fp32, hold = m["runs"]["fp32"], m["hold_last"]
        print(f"{kind}: test MSE fp32 {fp32['mse_mean']:.6f} (fp16 {m['runs']['fp16']['mse_mean']:.6f}, "
              f"int8 {m['runs']['int8']['mse_mean']:.6f}) "
              f"vs hold-last {hold['mse_mean']:.6f}; with another episode's frames {m['camera_check']['mse_mean_other_frames']:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
