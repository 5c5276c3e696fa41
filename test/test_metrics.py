"""EIPL's per-step joint MSE against a hand-computed case, and the hold-last baseline."""

from __future__ import annotations

import numpy as np
import pytest

from eipl_trt.errors import InputError
from eipl_trt.evaluate.metrics import hold_last_predictions, step_errors, summarize


def test_hand_computed_case() -> None:
    measured = np.array([[0.0, 0.0], [1.0, 2.0], [1.0, 4.0]])
    predictions = np.array([[1.0, 1.0], [2.0, 4.0], [9.0, 9.0]])  # the last one has no next step
    errors = step_errors(predictions, measured)
    # step 0: ((1-1)^2 + (1-2)^2)/2 = 0.5 ; step 1: ((2-1)^2 + (4-4)^2)/2 = 0.5
    np.testing.assert_allclose(errors.per_step, [0.5, 0.5])
    hold = step_errors(hold_last_predictions(measured), measured)
    # step 0: (1 + 4)/2 = 2.5 ; step 1: (0 + 4)/2 = 2.0
    np.testing.assert_allclose(hold.per_step, [2.5, 2.0])
    summary = summarize([errors, hold])
    assert summary.steps == 4
    assert summary.mean == pytest.approx((0.5 + 0.5 + 2.5 + 2.0) / 4)
    assert (summary.max, summary.min) == (2.5, 0.5)
    # joint 0 errors: 0, 1, 1, 0 ; joint 1 errors: 1, 0, 4, 4
    np.testing.assert_allclose(summary.per_joint, [0.5, 2.25])
    assert summary.as_dict(["a", "b"])["mse_per_joint"] == {"a": 0.5, "b": 2.25}


def test_misaligned_inputs_are_rejected() -> None:
    with pytest.raises(InputError, match="do not line up"):
        step_errors(np.zeros((5, 3)), np.zeros((3, 3)))
    with pytest.raises(InputError, match="do not line up"):
        step_errors(np.zeros((1, 2)), np.zeros((1, 2)))
    with pytest.raises(InputError, match="nothing to summarize"):
        summarize([])
