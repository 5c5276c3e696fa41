"""EIPL's loss-weight ramp (``LossScheduler``): a weight grows from 0 to its full value.

The SARNN point loss starts at weight 0 and ramps up over ``decay_end`` calls along an "s"
curve ``f(t) = t - sin(2 pi t) / (2 pi)`` with ``t = n / (decay_end - 1)`` for the n-th call
(0-based), so the first call gives 0, the middle about 0.5, call ``decay_end - 1`` and every later
call the full weight. The "linear" curve is ``f(t) = t``. No torch, no numpy.
"""

from __future__ import annotations

import math

__all__ = ["LossScheduler", "CURVES"]

CURVES = ("s", "linear")


class LossScheduler:
    """Scale a loss weight by a ramp that advances one step per call.

    Args:
        decay_end: number of calls until the full weight (EIPL: 1000).
        curve: ``"s"`` (EIPL's default) or ``"linear"``.

    Raises:
        ValueError: ``decay_end < 1`` or an unknown curve (programming errors, not user input).
    """

    def __init__(self, decay_end: int = 1000, curve: str = "s") -> None:
        if decay_end < 1:
            raise ValueError(f"decay_end must be >= 1, got {decay_end}")
        if curve not in CURVES:
            raise ValueError(f"curve must be one of {CURVES}, got {curve!r}")
        self.decay_end = int(decay_end)
        self.curve = curve
        self.calls = 0

    def factor(self, step: int) -> float:
        """The ramp value in [0, 1] at 0-based ``step``."""
        if step >= self.decay_end:
            return 1.0
        t = max(step, 0) / max(self.decay_end - 1, 1)
        if self.curve == "linear":
            return t
        return t - math.sin(2.0 * math.pi * t) / (2.0 * math.pi)

    def peek(self, loss_weight: float) -> float:
        """The weight the next call would return, without advancing."""
        return self.factor(self.calls) * loss_weight

    def __call__(self, loss_weight: float) -> float:
        """Return ``loss_weight`` scaled by the current ramp value, then advance one step."""
        value = self.peek(loss_weight)
        self.calls += 1
        return value
