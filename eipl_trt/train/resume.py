"""Resumable training: everything a run needs to continue bit for bit, written after every epoch.

A whole-model run on two CPU cores takes hours to days, at low priority, and gets interrupted. After
every epoch :func:`save_resume` writes ``resume.pt`` (atomically, loadable with
``torch.load(weights_only=True)``): the model and optimizer state, the loss-ramp position, the torch
generator that draws the input noise, numpy's generator that shuffles, the log rows and the best
score so far. ``eipl-trt train --resume`` reads it back with :func:`load_resume` and continues from
the next epoch; a test checks that two epochs straight and one epoch, a stop and a resume give
identical weights. The run's settings must be the same apart from the budget (``--epochs``,
``--max-minutes``) and the thread count; :func:`check_compatible` refuses anything else.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eipl_trt.errors import EipltrtError
from eipl_trt.train.outputs import save_torch_atomic

__all__ = ["RESUME", "RESUMABLE_CHANGES", "save_resume", "load_resume", "check_compatible"]

#: File name of the resume state in the output directory.
RESUME = "resume.pt"
#: Settings that may differ between the run that wrote the state and the one resuming it.
RESUMABLE_CHANGES = ("epochs", "max_minutes", "threads", "eval_every", "init_from")


def save_resume(path: Path, *, epoch: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                scheduler_step: int, generator: torch.Generator, rng: np.random.Generator, rows: list[dict[str, Any]],
                best: tuple[float, int, float], batches: int, config: Any) -> None:
    """Write the state after ``epoch`` (completed) atomically."""
    payload = {
        "epoch": int(epoch),
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler_step": int(scheduler_step),
        "generator": generator.get_state(),
        "numpy_rng": _plain(rng.bit_generator.state),
        "rows": [{k: (float(v) if isinstance(v, float) else v) for k, v in row.items()} for row in rows],
        "best": [float(best[0]), int(best[1]), float(best[2])],
        "batches": int(batches),
        "config": _plain(asdict(config)),
    }
    save_torch_atomic(path, payload)


def _plain(value: Any) -> Any:
    """Containers of str/int/float/bool/None only (what ``weights_only`` loading accepts)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def load_resume(path: Path) -> dict[str, Any]:
    """Read ``resume.pt`` (weights-only: it cannot run code).

    Raises:
        EipltrtError: missing or unreadable file, with what to do.
    """
    if not path.is_file():
        raise EipltrtError(f"--resume: {path} does not exist; the run in {path.parent} never finished an epoch. "
                           f"Start it without --resume")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for damaged files
        raise EipltrtError(f"--resume: cannot read {path} ({exc}); delete it and start the run again") from exc


def check_compatible(saved: dict[str, Any], config: Any) -> None:
    """Refuse to resume with settings that change what is trained (see :data:`RESUMABLE_CHANGES`)."""
    now = _plain(asdict(config))
    diffs = [f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(saved) | set(now))
             if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k)]
    if diffs:
        raise EipltrtError("--resume: the saved run used other settings (" + "; ".join(diffs) + "); resume with the "
                           "same ones (only --epochs, --max-minutes, --threads and --eval-every may change) or start "
                           "a new run in another --out")


def restore_rng(rng: np.random.Generator, state: dict[str, Any]) -> None:
    """Put numpy generator ``rng`` back into a saved state."""
    rng.bit_generator.state = state
