"""What makes training faster on this machine: variants of one training step timed side by side.

``python -m eipl_trt.train.speed --data DIR --model sarnn --k-dim 8 --batch-size 16`` builds the model once
per variant and times optimizer steps on the same batches, interleaved round by round (so a slower minute
of a shared machine hits every variant alike), after untimed warm-up steps. It prints sequence-frames per
second (B x (T - 1) per step) per variant, median and spread, and the ratio to the first variant, with
the CPU's instruction-set flags. Variants (``--variants``):

* ``fp32``: the training step as ``eipl-trt train`` runs it (full BPTT, float32);
* ``bf16``: the forward pass under ``torch.autocast(bfloat16)`` (``--autocast bf16``);
* ``channels_last``: NHWC memory order (``--channels-last``); ``bf16_channels_last``: both;
* ``tbptt10``: truncated BPTT, the gradient cut every 10 steps (``--tbptt 10``);
* ``threads1``: one torch thread instead of the default;
* ``compile``: ``torch.compile`` of the model (compilation excluded from the timing);
* ``frozen``: ``--freeze-image``: the LSTM and heads alone on the attention points of every frame, computed
  once (their one-time encoding excluded from the timing, as a run pays it once);
* ``uint8_frames``: frames converted from the stored uint8 every step (what training does), against
  ``cached_float``: the split converted to float once and kept (memory x4).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["VARIANTS", "time_variants", "main"]

VARIANTS = ("fp32", "bf16", "channels_last", "bf16_channels_last", "tbptt10", "threads1", "compile", "cached_float",
            "frozen")


def _step_fn(variant: str, config: Any, data: Any, seed: int) -> Callable[[np.ndarray], None]:
    """One optimizer step of ``variant`` on the sequences ``index``."""
    from eipl_trt.train.epochs import State, step
    from eipl_trt.train.loop import _build
    from eipl_trt.train.schedule import LossScheduler

    changes = {"bf16": {"autocast": "bf16"}, "channels_last": {"channels_last": True}, "tbptt10": {"tbptt": 10},
               "bf16_channels_last": {"autocast": "bf16", "channels_last": True}}
    cfg = dataclasses.replace(config, **changes.get(variant, {}))
    model = _build(cfg, data, None, torch.device("cpu"))
    if variant == "compile":
        model = torch.compile(model)  # type: ignore[assignment]
    params = list(model.parameters())
    if variant == "frozen":
        from eipl_trt.train.frozen import encode_split, freeze_image_path

        cfg = dataclasses.replace(cfg, freeze_image=True)
        params = freeze_image_path(model)
    state = State(model, torch.optim.Adam(params, lr=cfg.lr, eps=1e-7), LossScheduler(cfg.decay_end, "s"),
                  torch.Generator().manual_seed(seed), np.random.default_rng(seed))
    split = data
    if variant == "frozen":
        features = encode_split(model, data.train)
        return lambda index: step(cfg, state, split, index, features) and None
    if variant == "cached_float":
        from eipl_trt.train.data import to_tensors

        cached = to_tensors(data.train, slice(None))[0]

        def fast(index: np.ndarray) -> None:
            from eipl_trt.train import epochs

            real = epochs.to_tensors
            epochs.to_tensors = lambda s, i, d=None: (cached[i], real(s, i, d)[1])  # type: ignore[assignment]
            try:
                step(cfg, state, split, index, None)
            finally:
                epochs.to_tensors = real  # type: ignore[assignment]

        return fast
    return lambda index: step(cfg, state, split, index, None) and None


def time_variants(data_dir: str | Path, variants: tuple[str, ...], config: Any, rounds: int = 5, steps: int = 2,
                  warm_up: int = 2) -> dict[str, list[float]]:
    """Sequence-frames per second of each variant, one sample per round (``steps`` steps each)."""
    from eipl_trt.train.data import load_dataset

    data = load_dataset(data_dir, config.model, config.im_size)
    default_threads = torch.get_num_threads()
    rng = np.random.default_rng(0)
    batches = [rng.choice(data.train.num_sequences, config.batch_size, replace=False) for _ in range(steps)]
    frames = config.batch_size * (data.train.seq_len - 1) * steps
    fns = {}
    for v in variants:
        fns[v] = _step_fn(v, config, data, 0)
        with _threads(1 if v == "threads1" else default_threads):
            for i in range(warm_up):
                fns[v](batches[i % len(batches)])
    out: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(rounds):
        for v in variants:
            with _threads(1 if v == "threads1" else default_threads):
                t0 = time.perf_counter()
                for index in batches:
                    fns[v](index)
                out[v].append(frames / (time.perf_counter() - t0))
    return out


class _threads:
    def __init__(self, n: int) -> None:
        self.n, self.before = n, torch.get_num_threads()

    def __enter__(self) -> None:
        torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.before)


def main(argv: list[str] | None = None) -> int:
    """Print the side-by-side table (Markdown)."""
    from eipl_trt.train.config import TrainConfig

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--model", default="sarnn")
    p.add_argument("--k-dim", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=2, help="optimizer steps per round and variant")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = TrainConfig(model=args.model, k_dim=args.k_dim, batch_size=args.batch_size, threads=args.threads,
                         stdev=0.02, decay_end=1)
    result = time_variants(args.data, tuple(args.variants), config, args.rounds, args.steps)
    base = statistics.median(result[args.variants[0]])
    flags = sorted({f for f in Path("/proc/cpuinfo").read_text().split() if f.startswith(("avx2", "avx512", "amx"))}) \
        if Path("/proc/cpuinfo").exists() else []
    print(f"# training step, {args.model} k_dim {args.k_dim}, batch {args.batch_size}, {args.threads} threads, "
          f"torch {torch.__version__}; CPU flags: {' '.join(flags)}")
    print("| variant | frames/s median | min | max | vs " + args.variants[0] + " |\n|---|---|---|---|---|")
    for v in args.variants:
        med = statistics.median(result[v])
        print(f"| {v} | {med:.1f} | {min(result[v]):.1f} | {max(result[v]):.1f} | {med / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
