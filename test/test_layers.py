"""SpatialSoftmax / InverseSpatialSoftmax / StaticReshape: the properties of eipl-models.md §5 as asserts."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from eipl_trt.models.layers import (  # noqa: E402
    InverseSpatialSoftmax,
    SpatialSoftmax,
    StaticReshape,
    position_grids,
)


def _one_hot(height: int, width: int, row: int, col: int, channels: int = 1) -> torch.Tensor:
    x = torch.zeros(1, channels, height, width)
    x[0, :, row, col] = 1.0
    return x


def _reference_keys(logit: torch.Tensor, pos_x: torch.Tensor, pos_y: torch.Tensor, temperature: float) -> torch.Tensor:
    """EIPL's formula verbatim: softmax(logit / T) with no max subtraction, then expectations."""
    b, k = logit.shape[:2]
    att = torch.softmax(logit.reshape(b, k, -1) / temperature, dim=-1)
    ex = torch.sum(pos_x * att, dim=-1, keepdim=True)
    ey = torch.sum(pos_y * att, dim=-1, keepdim=True)
    return torch.cat([ex, ey], -1)


def test_position_grids_match_eipl_meshgrid() -> None:
    # EIPL: create_position_encoding(width=H', height=W') = meshgrid(linspace(W'), linspace(H'), "xy").
    height, width = 30, 50
    ex, ey = np.meshgrid(np.linspace(0.0, 1.0, width), np.linspace(0.0, 1.0, height), indexing="xy")
    pos_xy, pos_x, pos_y = position_grids(height, width)
    assert pos_xy.shape == (2, height, width) and pos_xy.dtype == torch.float32
    assert pos_x.shape == (height * width,) and pos_y.shape == (height * width,)
    assert torch.equal(pos_xy[0], torch.from_numpy(ex).float())
    assert torch.equal(pos_xy[1], torch.from_numpy(ey).float())
    assert torch.equal(pos_x, torch.from_numpy(ex.reshape(-1)).float())
    assert torch.equal(pos_y, torch.from_numpy(ey.reshape(-1)).float())
    # x runs along columns, y along rows, both from 0 to 1 inclusive.
    assert float(pos_xy[0, 7, 49]) == 1.0 and float(pos_xy[0, 7, 0]) == 0.0
    assert float(pos_xy[1, 29, 3]) == 1.0 and float(pos_xy[1, 0, 3]) == 0.0
    with pytest.raises(ValueError, match="at least 2x2"):
        position_grids(1, 5)


@pytest.mark.parametrize(
    ("height", "width", "row", "col"),
    [(58, 58, 10, 40), (30, 50, 5, 45), (122, 122, 0, 121), (50, 30, 49, 0)],
)
def test_one_hot_gives_column_row_key(height: int, width: int, row: int, col: int) -> None:
    ssm = SpatialSoftmax(height, width, temperature=1e-4)
    keys, att = ssm(_one_hot(height, width, row, col))
    assert keys.shape == (1, 1, 2) and att.shape == (1, 1, height, width)
    assert abs(float(keys[0, 0, 0]) - col / (width - 1)) < 1e-6
    assert abs(float(keys[0, 0, 1]) - row / (height - 1)) < 1e-6


def test_documented_one_hot_values() -> None:
    keys, _ = SpatialSoftmax(58, 58)(_one_hot(58, 58, 10, 40))
    assert keys[0, 0].tolist() == pytest.approx([0.70175, 0.17544], abs=1e-5)
    keys, _ = SpatialSoftmax(30, 50)(_one_hot(30, 50, 5, 45))
    assert keys[0, 0].tolist() == pytest.approx([45 / 49, 5 / 29], abs=1e-6)


@pytest.mark.parametrize("temperature", [1e-4, 1e-2, 1.0])
def test_keys_in_unit_square_and_attention_sums_to_one(temperature: float) -> None:
    gen = torch.Generator().manual_seed(3)
    logit = torch.randn(2, 4, 26, 40, generator=gen)
    keys, att = SpatialSoftmax(26, 40, temperature)(logit)
    assert keys.shape == (2, 4, 2)
    assert float(keys.min()) >= 0.0 and float(keys.max()) <= 1.0
    torch.testing.assert_close(att.sum(dim=(2, 3)), torch.ones(2, 4), atol=1e-5, rtol=0)
    assert float(att.min()) >= 0.0


def test_constant_shift_leaves_keys_unchanged() -> None:
    gen = torch.Generator().manual_seed(4)
    # Logits on a 2**-20 lattice, spread over a few temperatures: adding a shift of |s| < 8 is then
    # exact in float32, so any change in the keys would come from the layer, not from rounding.
    logit = torch.round(torch.randn(1, 5, 58, 58, generator=gen) * 3e-4 * 2**20) / 2**20
    ssm = SpatialSoftmax(58, 58, 1e-4)
    base, _ = ssm(logit)
    for shift in (-7.0, -0.25, 0.5, 4.0):
        shifted = logit + shift
        assert torch.equal(shifted - shift, logit)  # the shift itself was exact
        keys, _ = ssm(shifted)
        assert float((keys - base).abs().max()) < 1e-6


def test_parity_with_reference_formula() -> None:
    gen = torch.Generator().manual_seed(5)
    for scale in (1e-4, 1e-3, 1.0):  # soft attention ... near-argmax
        logit = torch.randn(3, 5, 58, 58, generator=gen) * scale
        ssm = SpatialSoftmax(58, 58, 1e-4)
        keys, _ = ssm(logit)
        ref = _reference_keys(logit, ssm.pos_x, ssm.pos_y, 1e-4).reshape(3, 5, 2)
        assert float((keys - ref).abs().max()) < 1e-4


def test_max_subtraction_survives_float16() -> None:
    # eipl-models.md pitfall 4: logit / T overflows fp16 above ~6.55 without the max subtraction.
    logit = _one_hot(20, 30, 4, 17) * 8.0 + 1.0
    ssm = SpatialSoftmax(20, 30, 1e-4).half()
    keys, att = ssm(logit.half())
    assert torch.isfinite(keys).all() and torch.isfinite(att).all()
    assert keys[0, 0].float().tolist() == pytest.approx([17 / 29, 4 / 19], abs=1e-3)
    naive = torch.softmax((logit.half().reshape(1, 1, -1) / 1e-4), dim=-1)
    assert not torch.isfinite(naive).all()  # the reference formula breaks; ours does not


def test_issm_peak_is_one_at_the_key_and_round_trips() -> None:
    for height, width, row, col in [(58, 58, 10, 40), (30, 50, 5, 45), (122, 122, 121, 3)]:
        keys, _ = SpatialSoftmax(height, width)(_one_hot(height, width, row, col, channels=2))
        heat = InverseSpatialSoftmax(height, width, 0.1)(keys)
        assert heat.shape == (1, 2, height, width)
        assert float(heat[0, 0, row, col]) == 1.0
        assert float(heat.max()) == 1.0
        flat = int(torch.argmax(heat[0, 1]))
        assert divmod(flat, width) == (row, col)


def test_issm_peak_at_nearest_pixel_for_off_grid_key() -> None:
    height, width = 21, 41  # pixel pitch 0.05 x 0.025
    key = torch.tensor([[[0.3126, 0.7380]]])  # nearest: col 12.504 -> 13, row 14.76 -> 15
    heat = InverseSpatialSoftmax(height, width, 0.1)(key)
    assert divmod(int(torch.argmax(heat[0, 0])), width) == (15, 13)
    assert float(heat.max()) < 1.0


def test_issm_values_follow_exp_minus_d2_over_size() -> None:
    height, width = 11, 11  # pixel pitch exactly 0.1
    heat = InverseSpatialSoftmax(height, width, heatmap_size=0.1)(torch.tensor([[[0.5, 0.5]]]))[0, 0]
    assert float(heat[5, 6]) == pytest.approx(0.904837, abs=1e-6)  # d = 0.1
    assert float(heat[5, 8]) == pytest.approx(math.exp(-0.09 / 0.1), abs=1e-6)  # d = 0.3 -> 0.407
    assert float(heat[5, 8]) == pytest.approx(0.40657, abs=1e-5)
    assert float(heat[8, 9]) == pytest.approx(math.exp(-(0.09 + 0.16) / 0.1), abs=1e-6)  # d = 0.5
    heat = InverseSpatialSoftmax(height, width, heatmap_size=0.05)(torch.tensor([[[0.0, 0.0]]]))[0, 0]
    assert float(heat[0, 2]) == pytest.approx(math.exp(-0.04 / 0.05), abs=1e-6)


def test_layer_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="temperature must be positive"):
        SpatialSoftmax(10, 10, 0.0)
    with pytest.raises(ValueError, match="heatmap_size must be positive"):
        InverseSpatialSoftmax(10, 10, -1.0)


def test_static_reshape() -> None:
    layer = StaticReshape((8, 4, 4))
    x = torch.arange(2 * 128, dtype=torch.float32).reshape(2, 128)
    y = layer(x)
    assert y.shape == (2, 8, 4, 4)
    assert torch.equal(y, torch.nn.Unflatten(1, (8, 4, 4))(x))
    assert "shape=(8, 4, 4)" in repr(layer)
