"""How far two fp32 evaluations of the same model may differ: the tolerances of the parity tests, stated once.

Two correct fp32 implementations of one graph (another kernel, a rewritten layer, another backend)
add the same products in another order, and floating-point addition is not associative. Rounding a
sum of ``k`` terms in any order lands within ``gamma_(k-1) * sum |terms|`` of the exact sum
(``gamma_n = n * u / (1 - n * u)``, ``u = 2**-24`` the unit roundoff; Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., eq. 4.4), so two orders differ by at most twice that.
That is :func:`reorder_bound`: a floor, for outputs that no layer amplifies.

It is not enough for SARNN. Its spatial softmax divides the feature map by a temperature of 1e-4,
so a rounding difference of 1e-7 in the features moves a point's softmax weights by about 1e-3,
and the point (and, through its heatmap, the predicted image) moves with it; with the state fed
back, differences compound over steps. No useful worst-case bound follows from that, so the tests
*measure* the model's own sensitivity to summation order on the inputs they use: the exported graph
stepped twice on ONNX Runtime, once with its default kernels (``ORT_ENABLE_ALL``: blocked NCHWc
convolutions) and once with plain im2col + GEMM kernels (``ORT_ENABLE_EXTENDED``), two valid fp32
orders of the same sums (:func:`reassociation_spread`). A candidate (a rewritten graph, another
backend) passes when it stays within :data:`SPREAD_FACTOR` times that spread of the exported graph,
or within the floor where the spread is smaller. On an AVX2 EPYC the two kernels' spread on the
bundled SARNN is ~1e-4 on joints and image and ~1e-3 on points; with AVX-512 kernels it is larger
(1.7e-4 / 1.2e-3), and the rewritten graph differs by exactly that much: these tolerances follow the
CPU instead of one machine's figure.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["EPS32", "UNIT_ROUNDOFF", "SPREAD_FACTOR", "reorder_bound", "reassociation_spread", "parity_tolerances",
           "assert_within"]

#: float32 machine epsilon (2**-23) and unit roundoff (2**-24).
EPS32 = float(np.finfo(np.float32).eps)
UNIT_ROUNDOFF = EPS32 / 2
#: A candidate may differ from the reference by this many times the reference's own reassociation spread
#: (the candidate's order is a third one; it may lie on the far side of the reference from the second).
SPREAD_FACTOR = 2.0
#: Longest reduction in the bundled models: a 3x3 convolution over 32 channels (288 products); the
#: LSTM's gate matmuls are shorter (input + hidden <= 150).
LONGEST_REDUCTION = 32 * 3 * 3


def reorder_bound(k: int = LONGEST_REDUCTION, magnitude: float = 1.0) -> float:
    """Largest difference of two summation orders of ``k`` terms with ``sum |terms| <= magnitude``: ``2 gamma_(k-1)``."""
    n = max(int(k) - 1, 1)
    return 2.0 * n * UNIT_ROUNDOFF / (1.0 - n * UNIT_ROUNDOFF) * float(magnitude)


def reassociation_spread(spec, precision: str, inputs: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:  # noqa: ANN001
    """Per output role (and ``state_h``/``state_c``), the largest difference between two valid fp32 kernel
    orders of the exported graph on ONNX Runtime, stepping ``inputs`` with the state fed back."""
    import onnxruntime as ort

    def run(level: "ort.GraphOptimizationLevel") -> list[dict[str, np.ndarray]]:
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(str(spec.variant_path(precision)), options, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        h = np.zeros((1, spec.rec_dim), np.float32)
        c = h.copy()
        steps = []
        for image, joint in inputs:
            out = dict(zip(names, session.run(None, {spec.inputs["image"]: image, spec.inputs["joint"]: joint,
                                                      spec.inputs["state_h"]: h, spec.inputs["state_c"]: c})))
            h, c = out[spec.outputs["state_h"]], out[spec.outputs["state_c"]]
            steps.append({role: out[name] for role, name in spec.outputs.items()})
        return steps

    blocked = run(ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    plain = run(ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
    return {role: max(float(np.max(np.abs(a[role] - b[role]))) for a, b in zip(blocked, plain)) for role in blocked[0]}


def parity_tolerances(spec, precision: str, inputs: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:  # noqa: ANN001
    """Per role: ``max(SPREAD_FACTOR * reassociation spread, reorder_bound())`` (see the module docstring)."""
    floor = reorder_bound()
    return {role: max(SPREAD_FACTOR * spread, floor) for role, spread in reassociation_spread(spec, precision, inputs).items()}


def assert_within(got: dict[str, np.ndarray], want: dict[str, np.ndarray], tolerances: dict[str, float],
                  roles: Sequence[str] | None = None, what: str = "") -> None:
    """``got[role]`` within ``tolerances[role]`` of ``want[role]`` for every role (all of ``want`` by default)."""
    for role in roles if roles is not None else list(want):
        np.testing.assert_allclose(got[role], want[role], rtol=0, atol=tolerances[role],
                                   err_msg=f"{what} {role}: tolerance {tolerances[role]:.3g} (test/numerics.py)")
