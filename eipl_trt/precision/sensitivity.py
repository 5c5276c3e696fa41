"""Per-layer sensitivity pass: which layers can run in reduced precision without costing accuracy.

Each candidate group (one layer, or one module such as the LSTM cell) is switched to the reduced
precision *alone*, the model is replayed over held-out calibration episodes with its recurrent
state, and the joint predictions are compared with FP32's. Groups are then admitted from the least
to the most sensitive, and the largest admitted set whose *joint* replay stays within budget is
kept (bisection over the sensitivity order; the all-groups set is tried first).

A set passes when, on the held-out episodes,

* its error rate (EIPL joint MSE / FP32's) is at most ``max_error_rate``, and
* its deviation from FP32's predictions (mean squared difference, rad²) is at most
  ``(max_error_rate - 1) x`` FP32's MSE: independent noise of that energy would raise the MSE by
  that fraction, so the budget also holds on episodes the pass did not see, not just by luck on
  these;
* the same two tests hold for the predicted image (its MSE against the next frame, and its mean
  squared difference from FP32's image), so layers that feed only the image decoder (SARNN's
  image encoder) are judged by the output they do change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from eipl_trt.precision.graph import NodeGroup, short_name
from eipl_trt.precision.rollout import Score, Scorer

__all__ = ["SensitivityRow", "Selection", "measure", "select", "format_table"]

#: Builds a serialized candidate model in which exactly the given groups run in reduced precision.
Builder = Callable[[Sequence[NodeGroup]], bytes]


@dataclass(frozen=True)
class SensitivityRow:
    """One group's result: its score when it alone runs in reduced precision."""

    group: NodeGroup
    score: Score


@dataclass
class Selection:
    """What the pass chose and the joint score of the choice."""

    chosen: list[NodeGroup]
    excluded: list[NodeGroup]
    score: Score | None
    trials: list[tuple[int, Score, bool]] = field(default_factory=list)  # (groups admitted, score, passed)


def passes(score: Score, scorer: Scorer, max_error_rate: float) -> bool:
    """The budget test of the module docstring, on the joints and on the predicted image."""
    budget = max_error_rate - 1.0
    return (score.error_rate <= max_error_rate and score.deviation <= budget * scorer.reference_mse
            and score.image_error_rate <= max_error_rate and score.image_deviation <= budget * scorer.reference_image_mse)


def _sensitivity(row: SensitivityRow) -> tuple[float, float]:
    """Sort key: joint deviation first (the task), then image deviation (the display)."""
    return (row.score.deviation, row.score.image_deviation)


def measure(groups: Sequence[NodeGroup], build: Builder, scorer: Scorer,
            progress: Callable[[int], None] | None = None) -> list[SensitivityRow]:
    """Score every group alone; rows are returned most sensitive first (largest deviation)."""
    rows = []
    for group in groups:
        rows.append(SensitivityRow(group, scorer.score(build([group]))))
        if progress:
            progress(1)
    return sorted(rows, key=_sensitivity, reverse=True)


def select(rows: Sequence[SensitivityRow], build: Builder, scorer: Scorer, max_error_rate: float,
           progress: Callable[[int], None] | None = None) -> Selection:
    """Admit groups from the least sensitive on; keep the largest prefix whose joint replay passes.

    Groups that fail the budget on their own are never admitted.
    """
    order = [r for r in sorted(rows, key=_sensitivity) if passes(r.score, scorer, max_error_rate)]
    trials: list[tuple[int, Score, bool]] = []

    def trial(k: int) -> Score | None:
        if k == 0:
            return None
        score = scorer.score(build([r.group for r in order[:k]]))
        trials.append((k, score, passes(score, scorer, max_error_rate)))
        if progress:
            progress(1)
        return score

    best_k, best_score = 0, None
    if order:
        score = trial(len(order))
        if trials[-1][2]:
            best_k, best_score = len(order), score
        else:
            lo, hi = 0, len(order)  # lo passes (nothing admitted), hi fails
            if len(order) == 1:
                hi = 1
            while hi - lo > 1:
                mid = (lo + hi) // 2
                score = trial(mid)
                if trials[-1][2]:
                    lo, best_k, best_score = mid, mid, score
                else:
                    hi = mid
    chosen = [r.group for r in order[:best_k]]
    chosen_names = {g.name for g in chosen}
    excluded = [r.group for r in rows if r.group.name not in chosen_names]
    return Selection(chosen, excluded, best_score, trials)


def format_table(rows: Sequence[SensitivityRow], selection: Selection | None, scorer: Scorer, title: str,
                 reduced: str = "reduced") -> str:
    """A markdown table, most sensitive first: group, ops, scores alone, the verdict."""
    chosen = {g.name for g in selection.chosen} if selection else set()
    lines = [f"{title}; held-out FP32 joint MSE {scorer.reference_mse:.6g} rad², image MSE {scorer.reference_image_mse:.4g}", "",
             "| rank | group | ops | joint error rate | joint deviation (rad²) | max abs Δ joint (rad) | "
             "image error rate | image deviation | runs in |",
             "|---|---|---|---|---|---|---|---|---|"]
    for i, row in enumerate(rows, 1):
        ops = ",".join(sorted(set(row.group.op_types)))
        verdict = reduced if row.group.name in chosen else "fp32"
        s = row.score
        lines.append(f"| {i} | {short_name(row.group.name)} | {ops} | {s.error_rate:.4f} | {s.deviation:.3g} | "
                     f"{s.max_abs:.3g} | {s.image_error_rate:.4f} | {s.image_deviation:.3g} | {verdict} |")
    if selection and selection.score is not None:
        s = selection.score
        lines += ["", f"Chosen set ({len(selection.chosen)} groups) replayed together: joint error rate {s.error_rate:.4f}, "
                      f"deviation {s.deviation:.3g} rad², max abs {s.max_abs:.3g} rad; image error rate "
                      f"{s.image_error_rate:.4f}."]
    return "\n".join(lines)
