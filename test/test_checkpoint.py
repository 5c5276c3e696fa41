"""Loading EIPL checkpoints: file formats, prefixes, SARNN grids, size inference and every refusal."""

from __future__ import annotations

import collections
import json
import logging
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from eipl_trt.errors import ModelError  # noqa: E402
from eipl_trt.models.checkpoint import (  # noqa: E402
    guess_kind,
    load_state_dict_file,
    model_from_checkpoint,
    normalization_from_args,
    read_args_json,
)
from eipl_trt.models.testing import smooth_inputs, torch_reference, torch_step  # noqa: E402


class NotAWeight:
    """A custom class: pickling it into a checkpoint must make weights_only loading refuse the file."""

    def __init__(self) -> None:
        self.payload = "arbitrary object"


def _eipl_save(state: dict, path: Path) -> Path:
    torch.save({"epoch": 120, "model_state_dict": state, "train_loss": 0.01, "test_loss": 0.02}, path)
    return path


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module) -> None:
    side = a.im_size[0]
    images, joints = smooth_inputs((side, side), a.joint_dim, 2, seed=4)
    h = c = np.zeros((1, a.rec_dim), np.float32)
    for t in range(2):
        ra = torch_step(a, images[t], joints[t], h, c)
        rb = torch_step(b, images[t], joints[t], h, c)
        assert ra.keys() == rb.keys()
        for role in ra:
            np.testing.assert_array_equal(ra[role], rb[role])
        h, c = ra["state_h"], ra["state_c"]


@pytest.fixture(scope="module")
def sarnn64() -> torch.nn.Module:
    return torch_reference("sarnn", seed=11)


@pytest.fixture(scope="module")
def sarnn128() -> torch.nn.Module:
    return torch_reference("sarnn", seed=12, im_size=(128, 128), leaky_slope=0.01)


@pytest.mark.parametrize("kind", ["sarnn", "cnnrnn", "cnnrnnln"])
def test_eipl_checkpoint_dict_round_trip(tmp_path: Path, kind: str) -> None:
    ref = torch_reference(kind, seed=3, joint_dim=7)
    path = _eipl_save(ref.state_dict(), tmp_path / "model.pth")
    state = load_state_dict_file(path)
    assert guess_kind(state) == kind
    model, arch = model_from_checkpoint(kind, state, leaky_slope=0.3 if kind == "sarnn" else None)
    assert arch["joint_dim"] == 7 and arch["rec_dim"] == 50
    assert arch.get("k_dim", 5) == 5 and arch.get("feat_dim", 10) == 10
    assert not model.training
    _same_outputs(ref, model)


def test_bare_state_dict_and_compile_prefix(tmp_path: Path, sarnn64: torch.nn.Module) -> None:
    torch.save(sarnn64.state_dict(), tmp_path / "bare.pth")
    compiled = collections.OrderedDict((f"_orig_mod.{k}", v) for k, v in sarnn64.state_dict().items())
    _eipl_save(compiled, tmp_path / "compiled.pth")
    torch.save({"state_dict": sarnn64.state_dict()}, tmp_path / "lightning.pth")
    for name in ("bare.pth", "compiled.pth", "lightning.pth"):
        state = load_state_dict_file(tmp_path / name)
        assert not any(k.startswith("_orig_mod.") for k in state)
        model, _ = model_from_checkpoint("sarnn", state, leaky_slope=0.3)
        _same_outputs(sarnn64, model)


def test_sarnn_image_size_is_inferred_from_the_grids(
    tmp_path: Path, sarnn64: torch.nn.Module, sarnn128: torch.nn.Module
) -> None:
    for ref, side in ((sarnn64, 64), (sarnn128, 128)):
        state = load_state_dict_file(_eipl_save(ref.state_dict(), tmp_path / f"s{side}.pth"))
        model, arch = model_from_checkpoint("sarnn", state, leaky_slope=ref.leaky_slope)
        assert arch["im_size"] == [side, side] and model.im_size == (side, side)
        _same_outputs(ref, model)
        # Only pos_encoder.6.pos_x left: the size still comes out right.
        partial = {k: v for k, v in state.items() if k not in ("issm.pos_xy", "pos_encoder.6.pos_y")}
        _, arch = model_from_checkpoint("sarnn", partial, leaky_slope=ref.leaky_slope)
        assert arch["im_size"] == [side, side]


def test_non_square_sarnn_size_inference(tmp_path: Path) -> None:
    ref = torch_reference("sarnn", seed=1, im_size=(48, 80))
    state = dict(ref.state_dict())
    _, arch = model_from_checkpoint("sarnn", state, leaky_slope=0.3)
    assert arch["im_size"] == [48, 80]
    del state["issm.pos_xy"]
    _, arch = model_from_checkpoint("sarnn", state, leaky_slope=0.3)
    assert arch["im_size"] == [48, 80]


def test_sarnn_without_grid_buffers(
    sarnn128: torch.nn.Module, caplog: pytest.LogCaptureFixture
) -> None:
    buffers = ("issm.pos_xy", "pos_encoder.6.pos_x", "pos_encoder.6.pos_y")
    state = {k: v for k, v in sarnn128.state_dict().items() if k not in buffers}
    assert len(state) == len(sarnn128.state_dict()) - 3
    model, arch = model_from_checkpoint("sarnn", state, leaky_slope=0.01, im_size=(128, 128))
    assert arch["im_size"] == [128, 128]
    _same_outputs(sarnn128, model)
    with caplog.at_level(logging.WARNING):
        _, arch = model_from_checkpoint("sarnn", state, leaky_slope=0.01)
    assert arch["im_size"] == [64, 64]
    assert "cannot be inferred" in caplog.text and "--im-size 128 128" in caplog.text


def test_missing_slope_warns_and_defaults_to_eipl_head(
    sarnn64: torch.nn.Module, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        _, arch = model_from_checkpoint("sarnn", sarnn64.state_dict())
    assert arch["leaky_slope"] == 0.3
    assert "not stored in checkpoints" in caplog.text and "0.01" in caplog.text


def test_args_json_is_understood(tmp_path: Path, sarnn64: torch.nn.Module) -> None:
    args_path = tmp_path / "args.json"
    args_path.write_text(json.dumps({
        "model": "sarnn", "epoch": 10000, "batch_size": 5, "rec_dim": 50, "k_dim": 5, "heatmap_size": 0.05,
        "temperature": 0.001, "vmin": 0.1, "vmax": 0.9, "stdev": 0.1, "compile": False, "tag": None,
    }))
    args = read_args_json(args_path)
    _, arch = model_from_checkpoint("sarnn", sarnn64.state_dict(), args, leaky_slope=0.3)
    assert arch["heatmap_size"] == 0.05 and arch["temperature"] == 0.001
    assert normalization_from_args(args) == (0.1, 0.9)
    assert normalization_from_args(None) == (0.0, 1.0)
    with pytest.raises(ModelError, match="args.json says k_dim=4 but the checkpoint weights have k_dim=5"):
        model_from_checkpoint("sarnn", sarnn64.state_dict(), {**args, "k_dim": 4}, leaky_slope=0.3)
    with pytest.raises(ModelError, match="args.json says rec_dim=100"):
        model_from_checkpoint("sarnn", sarnn64.state_dict(), {"rec_dim": 100}, leaky_slope=0.3)
    with pytest.raises(ModelError, match="feat_dim=12"):
        model_from_checkpoint("cnnrnn", torch_reference("cnnrnn").state_dict(), {"feat_dim": 12})
    with pytest.raises(ModelError, match="vmax must be greater than vmin"):
        normalization_from_args({"vmin": 1.0, "vmax": 1.0})
    with pytest.raises(ModelError, match="heatmap_size"):
        model_from_checkpoint("sarnn", sarnn64.state_dict(), {"heatmap_size": -1}, leaky_slope=0.3)
    (tmp_path / "broken.json").write_text("{rec_dim: 50")
    with pytest.raises(ModelError, match="cannot read args file"):
        read_args_json(tmp_path / "broken.json")
    with pytest.raises(ModelError, match="does not exist"):
        read_args_json(tmp_path / "absent.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ModelError, match="not hold a JSON object"):
        read_args_json(tmp_path / "list.json")


@pytest.mark.parametrize(
    ("saved", "asked", "message"),
    [
        ("cnnrnn", "sarnn", "looks like a CNNRNN checkpoint, not SARNN.*--model cnnrnn"),
        ("sarnn", "cnnrnn", "looks like a SARNN checkpoint, not CNNRNN"),
        ("cnnrnnln", "cnnrnn", "looks like a CNNRNNLN checkpoint, not CNNRNN"),
        ("cnnrnn", "cnnrnnln", "looks like a CNNRNN checkpoint, not CNNRNNLN"),
        ("cnnrnn", "gru", "unknown model kind 'gru'"),
    ],
)
def test_wrong_kind_is_named(saved: str, asked: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        model_from_checkpoint(asked, torch_reference(saved).state_dict())


def test_image_size_conflicts(sarnn128: torch.nn.Module) -> None:
    with pytest.raises(ModelError, match="trained at 128x128 px .* --im-size 64 64 was given"):
        model_from_checkpoint("sarnn", sarnn128.state_dict(), leaky_slope=0.01, im_size=(64, 64))
    with pytest.raises(ModelError, match="CNNRNN only works on 128x128"):
        model_from_checkpoint("cnnrnn", torch_reference("cnnrnn").state_dict(), im_size=(64, 64))
    with pytest.raises(ModelError, match="--leaky-slope only applies to SARNN"):
        model_from_checkpoint("cnnrnnln", torch_reference("cnnrnnln").state_dict(), leaky_slope=0.01)


def test_corrupted_grid_buffers_are_refused(sarnn64: torch.nn.Module) -> None:
    state = dict(sarnn64.state_dict())
    bad = state["issm.pos_xy"].clone()
    bad[0, 3, 3] += 0.01
    with pytest.raises(ModelError, match=r"issm.pos_xy differs from the position grid EIPL generates"):
        model_from_checkpoint("sarnn", {**state, "issm.pos_xy": bad}, leaky_slope=0.3)
    swapped = {**state, "pos_encoder.6.pos_x": state["pos_encoder.6.pos_y"]}
    with pytest.raises(ModelError, match="pos_encoder.6.pos_x differs"):
        model_from_checkpoint("sarnn", swapped, leaky_slope=0.3)
    short = {**state, "pos_encoder.6.pos_y": state["pos_encoder.6.pos_y"][:100]}
    with pytest.raises(ModelError, match="pos_encoder.6.pos_y has shape"):
        model_from_checkpoint("sarnn", short, leaky_slope=0.3)


def test_shape_and_key_problems_are_listed(sarnn64: torch.nn.Module) -> None:
    state = dict(sarnn64.state_dict())
    wide = {**state, "decoder_joint.0.bias": torch.zeros(7)}
    with pytest.raises(ModelError, match=r"shape mismatches \[decoder_joint.0.bias: checkpoint \(7,\) vs model \(8,\)"):
        model_from_checkpoint("sarnn", wide, leaky_slope=0.3)
    missing = {k: v for k, v in state.items() if k != "rec.bias_hh"}
    with pytest.raises(ModelError, match=r"missing keys \[rec.bias_hh\]"):
        model_from_checkpoint("sarnn", missing, leaky_slope=0.3)
    extra = {**state, "decoder_extra.0.weight": torch.zeros(3)}
    with pytest.raises(ModelError, match=r"unexpected keys \[decoder_extra.0.weight\]"):
        model_from_checkpoint("sarnn", extra, leaky_slope=0.3)
    lstm = {k: v for k, v in state.items() if not k.startswith("rec.")}
    with pytest.raises(ModelError, match="lacks 'rec.weight_hh'"):
        model_from_checkpoint("sarnn", lstm, leaky_slope=0.3)
    with pytest.raises(ModelError, match="match none of SARNN, CNNRNN, CNNRNNLN"):
        model_from_checkpoint("sarnn", {"fc.weight": torch.zeros(2, 2)})


def test_pickled_objects_are_refused(tmp_path: Path, sarnn64: torch.nn.Module) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"model_state_dict": sarnn64.state_dict(), "extra": NotAWeight()}, path)
    with pytest.raises(ModelError, match="pickled Python objects.*weights_only=True"):
        load_state_dict_file(path)
    whole = tmp_path / "whole_model.pth"
    torch.save(sarnn64, whole)  # a whole nn.Module, as some training scripts do
    with pytest.raises(ModelError, match="pickled Python objects.*model_state_dict"):
        load_state_dict_file(whole)


def test_files_that_are_not_checkpoints(tmp_path: Path, sarnn64: torch.nn.Module) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_state_dict_file(tmp_path / "absent.pth")
    (tmp_path / "text.pth").write_text("this is not a checkpoint\n")
    with pytest.raises(ModelError, match="not a torch checkpoint"):
        load_state_dict_file(tmp_path / "text.pth")
    good = _eipl_save(sarnn64.state_dict(), tmp_path / "good.pth")
    (tmp_path / "truncated.pth").write_bytes(good.read_bytes()[:5000])
    with pytest.raises(ModelError, match="not a torch checkpoint or is truncated"):
        load_state_dict_file(tmp_path / "truncated.pth")
    torch.save({"epoch": 3, "test_loss": 0.1}, tmp_path / "no_weights.pth")
    with pytest.raises(ModelError, match="without model weights"):
        load_state_dict_file(tmp_path / "no_weights.pth")
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(ModelError, match="holds a Tensor, not a state_dict"):
        load_state_dict_file(tmp_path / "tensor.pth")
