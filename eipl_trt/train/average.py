"""Weight averaging of a run's kept epochs (stochastic weight averaging, done after the run).

A behaviour-cloned policy's closed loop changes a lot from one epoch's weights to the next even when the
loss hardly moves: ``sarnn8``'s LSTM retrained on frozen attention points solved 42, 39, 19 and 41 of 50
validation layouts at epochs 199, 200, 240 and 260. The mean of the weights of many late epochs (Izmailov et
al., 2018, "Averaging Weights Leads to Wider Optima and Better Generalization") sits in the middle of the
region those epochs wander through, and drives as well as the best single epoch without having to be picked
by luck among them. ``eipl-trt train --keep-epochs`` keeps every epoch's weights, so no training change is
needed; ``eipl-trt sim select --average-last N`` (and ``eipl-trt sim dagger --average-last N``) drives the
average of the last N as one more candidate.

The batch-norm statistics averaging needs elsewhere does not arise: EIPL's models have no batch norm (layer
norm only, whose parameters average like any other weight).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from eipl_trt.errors import EipltrtError
from eipl_trt.train.outputs import save_torch_atomic

__all__ = ["average_state_dicts", "average_checkpoints"]


def average_state_dicts(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of floating-point tensors (in float64, cast back); other tensors from the first.

    Raises:
        EipltrtError: no states, or states whose keys or shapes differ (weights of different models).
    """
    if not states:
        raise EipltrtError("nothing to average: no checkpoints given")
    first = states[0]
    for i, state in enumerate(states[1:], 1):
        if state.keys() != first.keys() or any(state[k].shape != first[k].shape for k in first):
            raise EipltrtError(f"checkpoint {i} has other weights than checkpoint 0 (keys or shapes differ); "
                               "average only epochs of one training run")
    out = {}
    for key, tensor in first.items():
        if tensor.is_floating_point():
            out[key] = (sum(s[key].double() for s in states) / len(states)).to(tensor.dtype)
        else:
            out[key] = tensor.clone()
    return out


def average_checkpoints(paths: Sequence[Path], out: Path) -> Path:
    """Average EIPL epoch checkpoints (``{"model_state_dict": ...}``) into ``out``, written atomically.

    The result is an EIPL checkpoint whose ``epoch`` is the last one averaged and whose
    ``averaged_epochs`` lists them all.
    """
    payloads = [torch.load(p, map_location="cpu", weights_only=True) for p in paths]
    missing = [str(p) for p, c in zip(paths, payloads) if "model_state_dict" not in c]
    if missing:
        raise EipltrtError(f"{', '.join(missing)}: not an EIPL checkpoint (no model_state_dict)")
    epochs = [int(c.get("epoch", -1)) for c in payloads]
    payload = {"epoch": max(epochs), "model_state_dict": average_state_dicts([c["model_state_dict"] for c in payloads]),
               "averaged_epochs": epochs}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_torch_atomic(out, payload)
    return out
