"""SARNN / CNNRNN / CNNRNNLN: EIPL's keys, shapes, parameter counts and maths (eipl-models.md §1-2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from eipl_trt.errors import ModelError  # noqa: E402
from eipl_trt.models import (  # noqa: E402
    CNNRNN,
    CNNRNNLN,
    SARNN,
    architecture_of,
    build_model,
    default_im_size,
    image_size_of,
)
from eipl_trt.models.testing import smooth_inputs, torch_reference, torch_step  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("kind", "joint_dim", "expected"),
    [
        ("sarnn", 8, 34_515),
        ("sarnn", 5, 33_762),
        ("sarnn", 14, 36_021),
        ("cnnrnn", 8, 82_875),
        ("cnnrnn", 5, 82_122),
        ("cnnrnn", 14, 84_381),
        ("cnnrnnln", 8, 1_282_611),
        ("cnnrnnln", 5, 1_281_858),
        ("cnnrnnln", 14, 1_284_117),
    ],
)
def test_parameter_counts_match_the_paper(kind: str, joint_dim: int, expected: int) -> None:
    arch = {"rec_dim": 50, "joint_dim": joint_dim}
    arch.update({"k_dim": 5} if kind == "sarnn" else {"feat_dim": 10})
    assert _params(build_model(kind, **arch)) == expected


@pytest.mark.parametrize(("side", "buffers"), [(64, 13_456), (128, 59_536)])
def test_sarnn_buffers_are_not_parameters(side: int, buffers: int) -> None:
    model = SARNN(50, joint_dim=8, im_size=(side, side))
    assert _params(model) == 34_515
    assert sum(b.numel() for b in model.buffers()) == buffers


def test_sarnn_state_dict_keys_and_shapes() -> None:
    sd = SARNN(50, k_dim=5, joint_dim=8, im_size=(128, 128)).state_dict()
    expected = {
        "rec.weight_ih": (200, 18),
        "rec.weight_hh": (200, 50),
        "rec.bias_ih": (200,),
        "rec.bias_hh": (200,),
        "decoder_joint.0.weight": (8, 50),
        "decoder_joint.0.bias": (8,),
        "decoder_point.0.weight": (10, 50),
        "decoder_point.0.bias": (10,),
        "issm.pos_xy": (2, 122, 122),
        "pos_encoder.6.pos_x": (14884,),
        "pos_encoder.6.pos_y": (14884,),
        "decoder_image.0.weight": (5, 32, 3, 3),
        "decoder_image.0.bias": (32,),
        "decoder_image.2.weight": (32, 16, 3, 3),
        "decoder_image.2.bias": (16,),
        "decoder_image.4.weight": (16, 3, 3, 3),
        "decoder_image.4.bias": (3,),
    }
    for enc in ("pos_encoder", "im_encoder"):
        expected.update({
            f"{enc}.0.weight": (16, 3, 3, 3), f"{enc}.0.bias": (16,),
            f"{enc}.2.weight": (32, 16, 3, 3), f"{enc}.2.bias": (32,),
            f"{enc}.4.weight": (5, 32, 3, 3), f"{enc}.4.bias": (5,),
        })
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected


def test_cnnrnn_state_dict_keys() -> None:
    sd = CNNRNN().state_dict()
    conv = [f"encoder_image.{i}" for i in (0, 2, 4, 6, 8, 11, 13)]
    dec = [f"decoder_image.{i}" for i in (0, 3, 5, 7, 9, 11)]
    expected = {f"{m}.{p}" for m in conv + dec + ["decoder_joint.0"] for p in ("weight", "bias")}
    expected |= {"rec.weight_ih", "rec.weight_hh", "rec.bias_ih", "rec.bias_hh"}
    assert set(sd) == expected
    assert tuple(sd["encoder_image.11.weight"].shape) == (50, 128)
    assert tuple(sd["decoder_image.3.weight"].shape) == (8, 12, 3, 3)
    assert tuple(sd["rec.weight_ih"].shape) == (200, 18)


def test_cnnrnnln_layer_norms() -> None:
    sd = CNNRNNLN().state_dict()
    ln = {
        "encoder_image.1": (64, 64, 64), "encoder_image.4": (32, 32, 32), "encoder_image.7": (16, 16, 16),
        "encoder_image.10": (12, 8, 8), "encoder_image.13": (8, 4, 4), "encoder_image.17": (50,),
        "encoder_image.20": (10,), "decoder_image.1": (128,), "decoder_image.5": (12, 8, 8),
        "decoder_image.8": (16, 16, 16), "decoder_image.11": (32, 32, 32), "decoder_image.14": (64, 64, 64),
    }
    for prefix, shape in ln.items():
        assert tuple(sd[f"{prefix}.weight"].shape) == shape
        assert tuple(sd[f"{prefix}.bias"].shape) == shape
    for key in ("encoder_image.16.weight", "encoder_image.19.weight", "decoder_image.16.weight"):
        assert key in sd
    assert sum(sd[f"{p}.weight"].numel() * 2 for p in ln) == 1_199_736
    assert all(m.eps == 1e-5 for m in CNNRNNLN().modules() if isinstance(m, torch.nn.LayerNorm))


def _lstm_gates(sd: dict, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return x @ sd["rec.weight_ih"].T + sd["rec.bias_ih"] + h @ sd["rec.weight_hh"].T + sd["rec.bias_hh"]


def _sarnn_reference(sd: dict, x: torch.Tensor, v: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
                     slope: float, feat: tuple[int, int]) -> tuple[torch.Tensor, ...]:
    """SARNN from the formulas in eipl-models.md §1.1/§1.5, written independently of the model code."""
    def stack(prefix: str, z: torch.Tensor) -> torch.Tensor:
        for i in (0, 2, 4):
            z = F.leaky_relu(F.conv2d(z, sd[f"{prefix}.{i}.weight"], sd[f"{prefix}.{i}.bias"]), slope)
        return z

    im_hid = stack("im_encoder", x)
    logit = stack("pos_encoder", x).reshape(1, 5, -1)
    att = torch.softmax(logit / 1e-4, dim=-1)
    hh, ww = feat
    gx, gy = np.meshgrid(np.linspace(0, 1, ww), np.linspace(0, 1, hh), indexing="xy")
    px, py = torch.tensor(gx.reshape(-1), dtype=torch.float32), torch.tensor(gy.reshape(-1), dtype=torch.float32)
    enc = torch.stack([(att * px).sum(-1), (att * py).sum(-1)], dim=-1).reshape(1, 10)
    gates = _lstm_gates(sd, torch.cat([enc, v], -1), h)
    i, f, g, o = gates.chunk(4, dim=-1)  # PyTorch gate order i, f, g, o
    c2 = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h2 = torch.sigmoid(o) * torch.tanh(c2)
    joint = F.leaky_relu(h2 @ sd["decoder_joint.0.weight"].T + sd["decoder_joint.0.bias"], slope)
    dec = F.leaky_relu(h2 @ sd["decoder_point.0.weight"].T + sd["decoder_point.0.bias"], slope)
    kx, ky = dec.reshape(1, 5, 2)[..., 0], dec.reshape(1, 5, 2)[..., 1]
    heat = torch.exp(-((torch.tensor(gx).float() - kx[..., None, None]) ** 2
                       + (torch.tensor(gy).float() - ky[..., None, None]) ** 2) / 0.1)
    z = heat * im_hid
    for i in (0, 2, 4):
        z = F.leaky_relu(F.conv_transpose2d(z, sd[f"decoder_image.{i}.weight"], sd[f"decoder_image.{i}.bias"]), slope)
    return z, joint, enc, dec, h2, c2


@pytest.mark.parametrize(("side", "slope"), [(64, 0.3), (128, 0.01)])
def test_sarnn_matches_the_documented_maths(side: int, slope: float) -> None:
    model = torch_reference("sarnn", seed=2, im_size=(side, side), leaky_slope=slope)
    sd = model.state_dict()
    images, joints = smooth_inputs((side, side), 8, 3, seed=2)
    h = c = torch.zeros(1, 50)
    for t in range(3):
        x, v = torch.from_numpy(images[t]), torch.from_numpy(joints[t])
        ref = _sarnn_reference(sd, x, v, h, c, slope, (side - 6, side - 6))
        with torch.no_grad():
            y_image, y_joint, enc, dec, (h_new, c_new) = model(x, v, (h, c))
        for got, want in zip((y_image, y_joint, enc, dec, h_new, c_new), ref):
            torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)
        h, c = h_new, c_new


def _cnn_reference(sd: dict, ln: bool, x: torch.Tensor, v: torch.Tensor, h: torch.Tensor,
                   c: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """CNNRNN / CNNRNNLN from eipl-models.md §1.2-1.3, independent of the model code."""
    act = torch.relu if ln else torch.tanh
    step = 3 if ln else 2

    def norm(z: torch.Tensor, key: str) -> torch.Tensor:
        if not ln:
            return z
        w = sd[f"{key}.weight"]
        return F.layer_norm(z, tuple(w.shape), w, sd[f"{key}.bias"], 1e-5)

    z = x
    for n in range(5):
        i = n * step
        z = act(norm(F.conv2d(z, sd[f"encoder_image.{i}.weight"], sd[f"encoder_image.{i}.bias"], 2, 1),
                     f"encoder_image.{i + 1}"))
    z = z.reshape(1, 128)
    for lin in (16, 19) if ln else (11, 13):
        z = z @ sd[f"encoder_image.{lin}.weight"].T + sd[f"encoder_image.{lin}.bias"]
        z = act(norm(z, f"encoder_image.{lin + 1}"))
    gates = _lstm_gates(sd, torch.cat([z, v], -1), h)
    i_g, f_g, g_g, o_g = gates.chunk(4, dim=-1)
    c2 = torch.sigmoid(f_g) * c + torch.sigmoid(i_g) * torch.tanh(g_g)
    h2 = torch.sigmoid(o_g) * torch.tanh(c2)
    joint = act(h2 @ sd["decoder_joint.0.weight"].T + sd["decoder_joint.0.bias"])
    y = act(norm(h2 @ sd["decoder_image.0.weight"].T + sd["decoder_image.0.bias"], "decoder_image.1"))
    y = y.reshape(1, 8, 4, 4)
    convs = (4, 7, 10, 13, 16) if ln else (3, 5, 7, 9, 11)
    for n, i in enumerate(convs):
        y = F.conv_transpose2d(y, sd[f"decoder_image.{i}.weight"], sd[f"decoder_image.{i}.bias"], 2, 1, 1)
        y = act(norm(y, f"decoder_image.{i + 1}") if n < 4 else y)
    return y, joint, h2, c2


@pytest.mark.parametrize("kind", ["cnnrnn", "cnnrnnln"])
def test_cnn_models_match_the_documented_maths(kind: str) -> None:
    model = torch_reference(kind, seed=3)
    sd = model.state_dict()
    images, joints = smooth_inputs((128, 128), 8, 2, seed=3)
    h = c = torch.zeros(1, 50)
    for t in range(2):
        x, v = torch.from_numpy(images[t]), torch.from_numpy(joints[t])
        ref = _cnn_reference(sd, kind == "cnnrnnln", x, v, h, c)
        with torch.no_grad():
            y_image, y_joint, (h_new, c_new) = model(x, v, (h, c))
        for got, want in zip((y_image, y_joint, h_new, c_new), ref):
            torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)
        h, c = h_new, c_new
    if kind == "cnnrnnln":
        assert float(y_image.min()) >= 0.0 and float(y_joint.min()) >= 0.0  # ReLU outputs
    else:
        assert float(y_image.abs().max()) <= 1.0  # Tanh outputs


def test_sarnn_lstm_input_is_points_then_joints() -> None:
    model = torch_reference("sarnn", seed=1)
    with torch.no_grad():
        model.rec.weight_ih[:, 10:] = 0.0  # silence the joint columns (after 2K = 10 point columns)
    images, _ = smooth_inputs((64, 64), 8, 1)
    zeros = np.zeros((1, 50), np.float32)
    a = torch_step(model, images[0], np.zeros((1, 8), np.float32), zeros, zeros)
    b = torch_step(model, images[0], np.ones((1, 8), np.float32), zeros, zeros)
    np.testing.assert_array_equal(a["joint"], b["joint"])
    with torch.no_grad():
        model.rec.weight_ih[:, :10] = 0.0
        model.rec.weight_ih[:, 10:] = 1.0
    c = torch_step(model, images[0], np.ones((1, 8), np.float32), zeros, zeros)
    assert not np.array_equal(a["joint"], c["joint"])


def test_none_state_means_zeros_and_output_shapes() -> None:
    for kind in ("sarnn", "cnnrnn", "cnnrnnln"):
        model = torch_reference(kind, seed=0, joint_dim=6, rec_dim=20)
        side = default_im_size(kind)[0]
        x, v = torch.rand(2, 3, side, side), torch.rand(2, 6)
        with torch.no_grad():
            out_none = model(x, v)
            out_zero = model(x, v, (torch.zeros(2, 20), torch.zeros(2, 20)))
        assert out_none[0].shape == (2, 3, side, side) and out_none[1].shape == (2, 6)
        if kind == "sarnn":
            assert out_none[2].shape == (2, 10) and out_none[3].shape == (2, 10)
        assert out_none[-1][0].shape == (2, 20) and out_none[-1][1].shape == (2, 20)
        for a, b in zip(out_none[:-1], out_zero[:-1]):
            assert torch.equal(a, b)


def test_sarnn_dialects_differ_only_in_the_slope() -> None:
    a = torch_reference("sarnn", seed=5, leaky_slope=0.3)
    b = build_model("sarnn", **{**architecture_of(a), "leaky_slope": 0.01})
    b.load_state_dict(a.state_dict())
    slopes = {m.negative_slope for m in b.modules() if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.01}
    images, joints = smooth_inputs((64, 64), 8, 1)
    zeros = np.zeros((1, 50), np.float32)
    ya, yb = torch_step(a, images[0], joints[0], zeros, zeros), torch_step(b, images[0], joints[0], zeros, zeros)
    assert not np.allclose(ya["image"], yb["image"])


@pytest.mark.parametrize("kind", ["sarnn", "cnnrnn", "cnnrnnln"])
def test_architecture_round_trip(kind: str) -> None:
    model = torch_reference(kind, seed=0, joint_dim=5, rec_dim=30)
    arch = architecture_of(model)
    assert json.loads(json.dumps(arch)) == arch
    rebuilt = build_model(kind, **arch)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert image_size_of(rebuilt) == default_im_size(kind)
    assert not rebuilt.training


def test_build_model_errors() -> None:
    with pytest.raises(ModelError, match="unknown model kind 'lstm'"):
        build_model("lstm")
    with pytest.raises(ModelError, match="only works on 128x128"):
        build_model("cnnrnn", im_size=(64, 64))
    assert isinstance(build_model("cnnrnnln", im_size=[128, 128]), CNNRNNLN)
    with pytest.raises(ModelError, match="cannot build cnnrnn"):
        build_model("cnnrnn", k_dim=5)
    with pytest.raises(ModelError, match="SARNN needs rec_dim"):
        build_model("sarnn")
    with pytest.raises(ModelError, match="too small"):
        build_model("sarnn", rec_dim=50, im_size=(7, 64))
    with pytest.raises(ModelError, match="not an eipl_trt model"):
        architecture_of(torch.nn.Linear(2, 2))


def test_test_model_attention_is_soft_and_inside_the_image() -> None:
    model = torch_reference("sarnn", seed=0)
    images, _ = smooth_inputs((64, 64), 8, 4, seed=9)
    with torch.no_grad():
        for t in range(4):
            keys, att = model.pos_encoder(torch.from_numpy(images[t]))
            assert float(att.amax(dim=(2, 3)).max()) < 0.5  # not one-hot
            assert 0.05 < float(keys.min()) and float(keys.max()) < 0.95
    assert not torch.equal(torch_reference("sarnn", seed=1).rec.weight_ih, model.rec.weight_ih)
    assert torch.equal(torch_reference("sarnn", seed=0).rec.weight_ih, model.rec.weight_ih)
