"""``eipl-trt sim select``: choose a training run's weights by closed-loop success, not by loss.

A policy's test loss says little about how it drives: the LSTM of ``sarnn8`` retrained on frozen attention
points kept a flat loss from epoch 200 to 600 while its epochs solved anywhere from 15 to 49 of 50 validation
layouts. This drives candidates on validation layouts without ROS (:func:`eipl_trt.sim.rollout.closed_loop`,
the node's real-time timing; 50 layouts take about 25 s) and ranks them by successes, then by mean final
distance:

- every ``every``-th epoch's weights that ``eipl-trt train --keep-epochs`` kept, and the last epoch's;
- with ``average_last`` N, the mean of the last N epochs' weights (:mod:`eipl_trt.train.average`), which
  in that run solved 49/50 where single epochs scattered.

Each candidate is exported to ``OUT/candidates/<name>`` (``model.onnx``, ``model.json``, ``model.pth``,
``args.json``: a model directory ``eipl-trt control --model`` takes) and its score cached in
``OUT/candidates.json``, so a rerun drives only what is new. The validation seed must be one used for neither
training nor the layouts you report.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from eipl_trt.common.atomic import write_json_atomic
from eipl_trt.errors import InputError

__all__ = ["SelectConfig", "select_checkpoints", "best_candidate", "validate"]

CACHE = "candidates.json"


@dataclass(frozen=True)
class SelectConfig:
    """Validation layouts and which weights to drive (see the module docstring)."""

    val_seed: int = 21
    val_episodes: int = 20
    every: int = 1
    average_last: int = 0

    def __post_init__(self) -> None:
        if self.every < 1:
            raise InputError(f"--every (sim dagger: --select-every) must be >= 1 (1 = every epoch), got {self.every}")
        if self.average_last < 0:
            raise InputError(f"--average-last must be >= 0 (0 = no average), got {self.average_last}")
        if self.val_episodes < 1:
            raise InputError(f"--val-episodes must be >= 1, got {self.val_episodes}")


def validate(model: str, cfg: SelectConfig) -> tuple[int, float]:
    """(successes, mean final distance m) of ``model`` on the validation layouts (real-time timing, no ROS)."""
    from eipl_trt.sim.rollout import RolloutConfig, closed_loop, success_count

    return success_count(closed_loop(model, RolloutConfig(seed=cfg.val_seed, episodes=cfg.val_episodes)))


def best_candidate(candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """The most successes, then the shortest mean final distance."""
    return max(candidates, key=lambda c: (c["val"][0], -c["val"][1]))


def select_checkpoints(run: Path, out: Path, cfg: SelectConfig, say: Callable[[str], None],
                       validator: Callable[[str, SelectConfig], tuple[int, float]] = validate) -> list[dict[str, Any]]:
    """Drive the candidates of training run ``run`` (its ``epochs/``); returns them with their scores, cached.

    Raises:
        InputError: the run kept no epochs, or fewer than ``average_last``.
    """
    cache = out / CACHE
    done = {str(c["epoch"]): c for c in json.loads(cache.read_text())} if cache.exists() else {}
    checkpoints = sorted((run / "epochs").glob("epoch_*.pth"))
    if not checkpoints:
        raise InputError(f"no epoch checkpoints in {run / 'epochs'}: train with --keep-epochs (eipl-trt sim dagger "
                         "does), and let it finish an epoch")
    if cfg.average_last > len(checkpoints):
        raise InputError(f"--average-last {cfg.average_last}, but {run / 'epochs'} holds {len(checkpoints)} epochs; "
                         "average fewer or train longer")
    chosen: list[tuple[Any, Path, Path, list[Path] | None]] = []
    for checkpoint in checkpoints:
        epoch = int(checkpoint.stem.split("_")[1])
        if epoch % cfg.every == 0 or checkpoint == checkpoints[-1]:
            chosen.append((epoch, checkpoint, out / "candidates" / f"epoch_{epoch:03d}", None))
    if cfg.average_last > 1:
        last = checkpoints[-cfg.average_last:]
        first, final = (int(p.stem.split("_")[1]) for p in (last[0], last[-1]))
        target = out / "candidates" / f"avg_{first:03d}_{final:03d}"
        chosen.append((f"avg {first}-{final}", target / "model.pth", target, last))
    for epoch, checkpoint, target, averaged in chosen:
        if str(epoch) in done:
            continue
        val = validator(export_candidate(run, checkpoint, target, averaged), cfg)
        done[str(epoch)] = {"epoch": epoch, "dir": str(target), "val": [val[0], val[1]]}
        write_json_atomic(cache, _ordered(done))
        say(f"  epoch {epoch}: {val[0]}/{cfg.val_episodes} validation layouts, mean final distance {val[1] * 100:.1f} cm")
    return _ordered(done)


def _ordered(done: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Epochs in order, averages after them."""
    return sorted(done.values(), key=lambda c: (isinstance(c["epoch"], str), str(c["epoch"]).zfill(9)))


def export_candidate(run: Path, checkpoint: Path, target: Path, averaged: list[Path] | None = None) -> str:
    """``checkpoint`` (or the average of ``averaged``, written there) as a model directory ``target``."""
    from eipl_trt.models.export import export_checkpoint
    from eipl_trt.train.average import average_checkpoints

    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    if averaged is not None:
        average_checkpoints(averaged, checkpoint)
    args = json.loads((run / "args.json").read_text())
    export_checkpoint(args["model"], checkpoint, args_json=run / "args.json", joint_bounds=run / "joint_bounds.npy",
                      leaky_slope=float(args["leaky_slope"]), im_size=(int(args["im_size"]), int(args["im_size"])),
                      joint_names=args["joint_names"], rate_hz=float(args["rate_hz"]),
                      channel_order=args["channel_order"], out_dir=target)
    if averaged is None:
        shutil.copy2(checkpoint, target / "model.pth")
    shutil.copy2(run / "args.json", target / "args.json")
    return str(target)
