"""ONNX export: eager-vs-ORT parity with state feedback, graph hygiene, sidecar, CLI and its refusals."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from eipl_trt import cli  # noqa: E402
from eipl_trt.errors import ModelError  # noqa: E402
from eipl_trt.models import architecture_of, build_model  # noqa: E402
from eipl_trt.models.export import OPSET, check_onnx_graph, export_checkpoint, export_onnx  # noqa: E402
from eipl_trt.models.testing import (  # noqa: E402
    default_test_bounds,
    make_test_model,
    smooth_inputs,
    torch_reference,
    torch_step,
)
from eipl_trt.spec import ModelSpec, sha256_file  # noqa: E402

#: (kind, make_test_model kwargs): all three models and both SARNN dialects.
CONFIGS = {
    "sarnn-head-64": ("sarnn", {"im_size": (64, 64), "leaky_slope": 0.3}),
    "sarnn-deploy-128": ("sarnn", {"im_size": (128, 128), "leaky_slope": 0.01}),
    "cnnrnn": ("cnnrnn", {}),
    "cnnrnnln": ("cnnrnnln", {}),
}
STEPS = 50


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _session(spec: ModelSpec) -> "ort.InferenceSession":
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(spec.verify_variant("fp32")), opts, providers=["CPUExecutionProvider"])


def _sharp_sarnn(out: Path) -> tuple[ModelSpec, torch.nn.Module]:
    """PyTorch's default init instead of the helper's softened attention: near one-hot, the hard case."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = build_model("sarnn", rec_dim=50, im_size=(128, 128), leaky_slope=0.01)
    spec = export_onnx(model, "sarnn", out, architecture=architecture_of(model), joint_bounds=default_test_bounds(8),
                       image_size=(128, 128))
    return spec, model


@pytest.mark.parametrize("config", [*CONFIGS, "sarnn-default-init-128"])
def test_onnx_matches_eager_torch_over_50_steps(tmp_path: Path, config: str) -> None:
    if config in CONFIGS:
        kind, kwargs = CONFIGS[config]
        spec = make_test_model(kind, tmp_path, seed=7, **kwargs)
        ref = torch_reference(kind, seed=7, **kwargs)
    else:
        spec, ref = _sharp_sarnn(tmp_path)
    sess = _session(spec)
    names = [o.name for o in sess.get_outputs()]
    images, joints = smooth_inputs((spec.image_height, spec.image_width), spec.joint_dim, STEPS, seed=3)
    zeros = np.zeros((1, spec.rec_dim), np.float32)
    t_h, t_c, o_h, o_c = zeros, zeros, zeros, zeros
    worst: dict[str, float] = collections.defaultdict(float)
    enc_track = []
    for t in range(STEPS):
        eager = torch_step(ref, images[t], joints[t], t_h, t_c)
        feed = {"i.image": images[t], "i.joint": joints[t], "i.state_h": o_h, "i.state_c": o_c}
        onnx_out = dict(zip(names, sess.run(None, feed)))
        t_h, t_c = eager["state_h"], eager["state_c"]  # each side carries its own state
        o_h, o_c = onnx_out["o.state_h"], onnx_out["o.state_c"]
        for role, value in eager.items():
            got = onnx_out[spec.outputs[role]]
            assert got.shape == value.shape and got.dtype == np.float32
            worst[role] = max(worst[role], float(np.abs(got - value).max()))
        if "enc_pts" in eager:
            enc_track.append(eager["enc_pts"])
    assert set(worst) == set(spec.outputs)
    assert max(worst.values()) <= 1e-4, dict(worst)
    assert float(np.abs(t_h).max()) > 1e-3  # the state really evolved
    if enc_track:  # the attention follows the moving input, it is not stuck
        assert float(np.ptp(np.concatenate(enc_track), axis=0).max()) > 1e-3


@pytest.mark.parametrize("config", list(CONFIGS))
def test_graph_names_shapes_opset_and_ops(tmp_path: Path, config: str) -> None:
    kind, kwargs = CONFIGS[config]
    spec = make_test_model(kind, tmp_path, joint_dim=6, rec_dim=40, **kwargs)
    proto = onnx.load(str(tmp_path / "model.onnx"))
    onnx.checker.check_model(proto, full_check=True)
    assert {o.domain: o.version for o in proto.opset_import}[""] == OPSET == 17
    side = spec.image_height

    def io(values: list) -> list[tuple[str, tuple[int, ...]]]:
        return [(v.name, tuple(d.dim_value for d in v.type.tensor_type.shape.dim)) for v in values]

    assert io(proto.graph.input) == [
        ("i.image", (1, 3, side, side)), ("i.joint", (1, 6)), ("i.state_h", (1, 40)), ("i.state_c", (1, 40)),
    ]
    points = [("o.enc_pts", (1, 10)), ("o.dec_pts", (1, 10))] if kind == "sarnn" else []
    assert io(proto.graph.output) == [
        ("o.image", (1, 3, side, side)), ("o.joint", (1, 6)), *points, ("o.state_h", (1, 40)), ("o.state_c", (1, 40)),
    ]
    ops = collections.Counter(n.op_type for n in proto.graph.node)
    assert ops["Shape"] == 0 and ops["Slice"] == 0 and ops["Gather"] == 0
    assert ops["LayerNormalization"] == (12 if kind == "cnnrnnln" else 0)
    assert ops["ReduceMean"] == 0 and ops["Sqrt"] == 0
    if kind == "sarnn":
        alphas = {a.f for n in proto.graph.node if n.op_type == "LeakyRelu" for a in n.attribute if a.name == "alpha"}
        assert sorted(alphas) == pytest.approx([kwargs["leaky_slope"]])
        assert ops["Softmax"] == 1 and ops["Conv"] == 6 and ops["ConvTranspose"] == 3
    else:
        assert ops["Conv"] == 5 and ops["ConvTranspose"] == 5
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["eipl_trt.model"] == kind
    assert json.loads(props["eipl_trt.architecture"])["rec_dim"] == 40
    check_onnx_graph(proto, spec)  # the exporter's own check agrees


def test_sidecar_contents(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "sarnn"
    bounds = default_test_bounds(8)
    spec = make_test_model("sarnn", out, im_size=(128, 128), leaky_slope=0.01, channel_order="bgr", rate_hz=4.0)
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.onnx"]  # no temp files left
    loaded = ModelSpec.load(out)
    assert loaded == spec and loaded.directory == out.resolve()
    assert loaded.model == "sarnn" and (loaded.image_height, loaded.image_width) == (128, 128)
    assert loaded.channel_order == "bgr" and loaded.rate_hz == 4.0
    assert loaded.joint_names == tuple(f"joint_{i}" for i in range(8))
    np.testing.assert_allclose([loaded.joint_min, loaded.joint_max], bounds)
    assert loaded.attention == {"feature_height": 122, "feature_width": 122, "offset_px": 3.0}
    assert loaded.architecture["leaky_slope"] == 0.01 and loaded.architecture["im_size"] == [128, 128]
    assert loaded.variants["fp32"].file == "model.onnx"
    assert loaded.variants["fp32"].sha256 == sha256_file(out / "model.onnx")
    assert loaded.verify_variant("fp32") == out.resolve() / "model.onnx"
    for key in ("eipl_trt", "torch", "onnx", "exported_utc"):
        assert loaded.producer[key]
    assert (loaded.vmin, loaded.vmax) == (0.0, 1.0)
    cnn = make_test_model("cnnrnn", tmp_path / "cnn", joint_names=list("abcdefgh"))
    assert cnn.attention is None and cnn.joint_names == tuple("abcdefgh") and not cnn.has_points


def test_make_test_model_is_deterministic(tmp_path: Path) -> None:
    a = make_test_model("sarnn", tmp_path / "a", seed=3)
    b = make_test_model("sarnn", tmp_path / "b", seed=3)
    c = make_test_model("sarnn", tmp_path / "c", seed=4)
    assert a.variants["fp32"].sha256 == b.variants["fp32"].sha256 != c.variants["fp32"].sha256


def test_re_export_replaces_files_atomically(tmp_path: Path) -> None:
    first = make_test_model("cnnrnn", tmp_path, seed=1)
    second = make_test_model("cnnrnn", tmp_path, seed=2)
    assert first.variants["fp32"].sha256 != second.variants["fp32"].sha256
    assert ModelSpec.load(tmp_path).verify_variant("fp32")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.onnx"]


def test_export_onnx_rejects_bad_arguments(tmp_path: Path) -> None:
    model = torch_reference("cnnrnn")
    arch = model.architecture()
    good = default_test_bounds(8)

    def export(**overrides: object) -> ModelSpec:
        kwargs = {"architecture": arch, "joint_bounds": good, "image_size": (128, 128), **overrides}
        return export_onnx(model, "cnnrnn", tmp_path / "x", **kwargs)

    flat = good.copy()
    flat[1, 3] = flat[0, 3]
    with pytest.raises(ModelError, match=r"zero width or max < min for joint_3 \(index 3\).*widened bounds"):
        export(joint_bounds=flat)
    with pytest.raises(ModelError, match="looks transposed"):
        export(joint_bounds=good.T)
    with pytest.raises(ModelError, match="cover 7 joints but the model has 8"):
        export(joint_bounds=good[:, :7])
    nan = good.copy()
    nan[0, 0] = np.nan
    with pytest.raises(ModelError, match="NaN or Inf"):
        export(joint_bounds=nan)
    with pytest.raises(ModelError, match="3 joint names given but the model has 8 joints"):
        export(joint_names=["a", "b", "c"])
    with pytest.raises(ModelError, match="repeated: \\['a'\\]"):
        export(joint_names=["a"] * 2 + list("bcdefg"))
    with pytest.raises(ModelError, match="does not match the model's 128x128"):
        export(image_size=(64, 64))
    with pytest.raises(ModelError, match="channel_order 'rgba'"):
        export(channel_order="rgba")
    with pytest.raises(ModelError, match="rate_hz"):
        export(rate_hz=0.0)
    with pytest.raises(ModelError, match="unknown model kind"):
        export_onnx(model, "lstm", tmp_path / "y", architecture=arch, joint_bounds=good, image_size=(128, 128))
    with pytest.raises(ModelError, match="kind 'sarnn' given for a CNNRNN model"):
        export_onnx(model, "sarnn", tmp_path / "y", architecture=arch, joint_bounds=good, image_size=(128, 128))
    assert not (tmp_path / "x").exists()  # validated before anything was written


@pytest.fixture()
def sarnn_checkpoint(tmp_path: Path) -> tuple[Path, Path, torch.nn.Module]:
    """An EIPL-style SARNN training output: model.pth + args.json + joint_bounds.npy."""
    ref = torch_reference("sarnn", seed=21, im_size=(64, 64), leaky_slope=0.3)
    run_dir = tmp_path / "log" / "SARNN"
    run_dir.mkdir(parents=True)
    torch.save({"epoch": 9999, "model_state_dict": ref.state_dict(), "train_loss": 0.1, "test_loss": 0.2},
               run_dir / "model.pth")
    (run_dir / "args.json").write_text(json.dumps(
        {"model": "sarnn", "rec_dim": 50, "k_dim": 5, "heatmap_size": 0.1, "temperature": 1e-4,
         "vmin": 0.0, "vmax": 1.0, "batch_size": 5, "lr": 1e-3, "compile": False}))
    np.save(tmp_path / "joint_bounds.npy", default_test_bounds(8))
    return run_dir / "model.pth", tmp_path / "joint_bounds.npy", ref


def test_export_checkpoint_end_to_end(tmp_path: Path, sarnn_checkpoint: tuple) -> None:
    ckpt, bounds, ref = sarnn_checkpoint
    spec = export_checkpoint("sarnn", ckpt, joint_bounds=bounds, leaky_slope=0.3, out_dir=tmp_path / "out")
    assert spec.producer["checkpoint_sha256"] == sha256_file(ckpt)
    assert spec.producer["args_json"] == "args.json"  # found beside the checkpoint
    assert spec.architecture == ref.architecture()
    sess = _session(spec)
    images, joints = smooth_inputs((64, 64), 8, 3, seed=5)
    h = c = np.zeros((1, 50), np.float32)
    for t in range(3):
        eager = torch_step(ref, images[t], joints[t], h, c)
        got = sess.run(None, {"i.image": images[t], "i.joint": joints[t], "i.state_h": h, "i.state_c": c})
        for value, role in zip(got, ("image", "joint", "enc_pts", "dec_pts", "state_h", "state_c")):
            np.testing.assert_allclose(value, eager[role], atol=1e-5)
        h, c = eager["state_h"], eager["state_c"]


def _cli(*argv: str) -> int:
    return cli.main(["export", *argv])


def test_cli_export(tmp_path: Path, sarnn_checkpoint: tuple, capsys: pytest.CaptureFixture) -> None:
    ckpt, bounds, _ = sarnn_checkpoint
    out = tmp_path / "cli_out"
    names = "s0,s1,e0,e1,w0,w1,w2,hand"
    code = _cli("--model", "sarnn", "--checkpoint", str(ckpt), "--args", str(ckpt.parent / "args.json"),
                "--joint-bounds", str(bounds), "--leaky-slope", "0.3", "--im-size", "64", "64",
                "--joint-names", names, "--rate-hz", "4", "--channel-order", "bgr", "--out", str(out))
    printed = capsys.readouterr().out
    assert code == 0
    spec = ModelSpec.load(out)
    assert spec.joint_names == tuple(names.split(",")) and spec.rate_hz == 4.0 and spec.channel_order == "bgr"
    assert spec.variants["fp32"].sha256 in printed
    for text in ("o.enc_pts (1, 10)", "i.image (1, 3, 64, 64)", "i.state_h (1, 50)", "model.json", "bgr"):
        assert text in printed


def test_cli_warns_about_the_default_slope(
    tmp_path: Path, sarnn_checkpoint: tuple, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    ckpt, bounds, _ = sarnn_checkpoint
    out = tmp_path / "o"
    code = _cli("--model", "sarnn", "--checkpoint", str(ckpt), "--joint-bounds", str(bounds), "--out", str(out))
    assert code == 0
    assert "--leaky-slope 0.01" in caplog.text
    assert ModelSpec.load(tmp_path / "o").architecture["leaky_slope"] == 0.3


@pytest.mark.parametrize(
    ("setup", "extra", "message"),
    [
        ("zero_width", [], "zero width or max < min for joint_2"),
        ("seven_joints", [], "cover 7 joints but the model has 8"),
        (None, ["--joint-names", "a,b,c"], "3 joint names given but the model has 8 joints"),
        (None, ["--im-size", "128", "128"], "trained at 64x64 px"),
        (None, ["--model", "cnnrnn"], "looks like a SARNN checkpoint, not CNNRNN"),
        ("missing_bounds", [], "does not exist"),
        ("pickled", [], "pickled Python objects"),
    ],
)
def test_cli_errors_exit_1_without_traceback(
    tmp_path: Path, sarnn_checkpoint: tuple, capsys: pytest.CaptureFixture,
    setup: str | None, extra: list[str], message: str,
) -> None:
    ckpt, bounds, ref = sarnn_checkpoint
    if setup == "zero_width":
        b = default_test_bounds(8)
        b[1, 2] = b[0, 2]
        np.save(bounds, b)
    elif setup == "seven_joints":
        np.save(bounds, default_test_bounds(7))
    elif setup == "missing_bounds":
        bounds.unlink()
    elif setup == "pickled":
        torch.save(ref, ckpt)
    out = tmp_path / "never"
    argv = ["--model", "sarnn", "--checkpoint", str(ckpt), "--joint-bounds", str(bounds), "--leaky-slope", "0.3",
            "--out", str(out), *extra]
    code = _cli(*argv)
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("eipl-trt export: error: ")
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()


def test_metadata_recorded_in_args_json_is_used(tmp_path: Path) -> None:
    """An args.json written by `eipl-trt train` records joint names, rate, channel order and slope."""
    import torch

    from eipl_trt.models.testing import torch_reference

    model = torch_reference("sarnn", seed=0, joint_dim=3, leaky_slope=0.01)
    torch.save({"model_state_dict": model.state_dict()}, tmp_path / "model.pth")
    (tmp_path / "args.json").write_text(json.dumps({
        "model": "sarnn", "rec_dim": 50, "k_dim": 5, "joint_names": ["a", "b", "c"], "rate_hz": 4.0,
        "channel_order": "bgr", "leaky_slope": 0.01,
    }))
    bounds = np.array([[-1.0] * 3, [1.0] * 3])
    spec = export_checkpoint("sarnn", tmp_path / "model.pth", joint_bounds=bounds, out_dir=tmp_path / "out")
    assert spec.joint_names == ("a", "b", "c") and spec.rate_hz == 4.0 and spec.channel_order == "bgr"
    assert spec.architecture["leaky_slope"] == 0.01
    explicit = export_checkpoint("sarnn", tmp_path / "model.pth", joint_bounds=bounds, out_dir=tmp_path / "out2",
                                 joint_names=["x", "y", "z"], rate_hz=10.0, channel_order="rgb")
    assert explicit.joint_names == ("x", "y", "z") and explicit.rate_hz == 10.0 and explicit.channel_order == "rgb"
