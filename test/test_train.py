"""eipl_trt.train: EIPL's training procedure on tiny synthetic datasets made in tmp_path."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from eipl_trt.cli import main
from eipl_trt.errors import EipltrtError
from eipl_trt.imaging import resize_bilinear
from eipl_trt.models import build_model
from eipl_trt.train import (
    DatasetError,
    LossScheduler,
    TrainConfig,
    add_noise,
    color_jitter,
    joint_prediction_mse,
    load_dataset,
    sequence_losses,
    train,
)
from eipl_trt.train.data import Split, to_tensors
from eipl_trt.train.outputs import LOG_COLUMNS

JOINTS = ("pan", "lift", "grip")


def make_dataset(root: Path, n_train: int = 4, n_test: int = 2, T: int = 8, px: int = 128, seed: int = 0) -> Path:
    """A red square circles over a gray background; the joints are a function of its position."""
    rng = np.random.default_rng(seed)
    all_q = []
    for split, n in (("train", n_train), ("test", n_test)):
        images = np.full((n, T, px, px, 3), 40, np.uint8)
        joints = np.zeros((n, T, 3), np.float32)
        for i in range(n):
            phase = rng.uniform(0, 2 * np.pi)
            for t in range(T):
                x = 0.5 + 0.3 * np.cos(phase + 0.5 * t)
                y = 0.5 + 0.3 * np.sin(phase + 0.5 * t)
                r, c, s = int(y * (px - 1)), int(x * (px - 1)), max(2, px // 8)
                images[i, t, max(0, r - s) : r + s, max(0, c - s) : c + s] = (230, 60, 30)
                joints[i, t] = (2.0 * x - 1.0, 1.5 * y, x * y)
        (root / split).mkdir(parents=True, exist_ok=True)
        np.save(root / split / "images.npy", images)
        np.save(root / split / "joints.npy", joints)
        all_q.append(joints.reshape(-1, 3))
    q = np.concatenate(all_q)
    np.save(root / "joint_bounds.npy", np.stack([q.min(0), q.max(0)]).astype(np.float32))
    meta = {"joint_names": list(JOINTS), "rate_hz": 10.0, "channel_order": "rgb"}
    (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: stable timing on a busy 2-core CI machine (train() restores it too)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def data128(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data128"))


@pytest.fixture(scope="module")
def data32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data32"), px=32)


# ---------------------------------------------------------------------------------- the loop


def test_loss_decreases_over_20_steps_on_a_fixed_batch(data32: Path) -> None:
    torch.manual_seed(0)
    data = load_dataset(data32, "sarnn", im_size=32)
    model = build_model("sarnn", rec_dim=20, k_dim=3, joint_dim=3, im_size=(32, 32)).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, eps=1e-7)
    images, joints = to_tensors(data.train, slice(0, 2))
    history = []
    for _ in range(20):
        losses = sequence_losses(model, images, joints, images, joints)
        loss = 0.1 * losses["img"] + losses["joint"] + 0.1 * losses["pt"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    assert all(math.isfinite(v) for v in history)
    assert history[-1] < 0.6 * history[0], history


@pytest.mark.parametrize("kind", ["sarnn", "cnnrnn", "cnnrnnln"])
def test_train_writes_eipl_outputs(kind: str, data128: Path, tmp_path: Path) -> None:
    config = TrainConfig(model=kind, epochs=2, im_size=24, rec_dim=16, k_dim=3, feat_dim=6, threads=1)
    result = train(config, data128, tmp_path / "out", progress=False)

    assert result.stop_reason == "completed" and result.epochs_run == 2 and result.batches_run == 2
    ckpt = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    assert set(ckpt) == {"epoch", "model_state_dict", "train_loss", "test_loss"}
    assert ckpt["epoch"] == result.best_epoch and ckpt["test_loss"] == pytest.approx(result.best_test_loss)
    fresh = build_model(kind, **config.architecture(joint_dim=3))
    fresh.load_state_dict(ckpt["model_state_dict"], strict=True)

    args = json.loads(result.args_json.read_text(encoding="utf-8"))
    assert args["model"] == kind and args["joint_names"] == list(JOINTS) and args["data"] == str(data128.resolve())
    assert (args["img_loss"], args["joint_loss"]) == ((0.1, 1.0) if kind == "sarnn" else (1.0, 1.0))
    assert args["im_size"] == (24 if kind == "sarnn" else 128) and args["vmin"] == 0.0 and args["vmax"] == 1.0
    with open(result.log_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == LOG_COLUMNS and [r["epoch"] for r in rows] == ["0", "1"]
    assert all(float(r["test_loss"]) > 0 for r in rows)
    assert (rows[0]["train_pt"] != "") == (kind == "sarnn")
    np.testing.assert_array_equal(np.load(result.joint_bounds), np.load(data128 / "joint_bounds.npy"))
    metrics = json.loads(result.metrics_json.read_text(encoding="utf-8"))
    assert metrics["steps"] == 2 * 7 and metrics["hold_mse"] > 0 and len(metrics["model_mse_per_joint"]) == 3


def test_time_limit_stops_gracefully_with_a_checkpoint(data32: Path, tmp_path: Path) -> None:
    config = TrainConfig(model="sarnn", epochs=50, batch_size=1, im_size=32, rec_dim=8, max_minutes=1e-4, threads=1)
    (tmp_path / "model.pth").write_bytes(b"stale output of an earlier run")
    result = train(config, data32, tmp_path, progress=False)
    assert result.stop_reason == "time_limit"
    assert result.batches_run == 1 and result.epochs_run == 1 and result.best_epoch == 0
    assert torch.load(result.checkpoint, weights_only=True)["epoch"] == 0


def test_ctrl_c_saves_what_it_has(data32: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import eipl_trt.train.epochs as loop  # the optimizer steps live there

    calls = {"n": 0}
    real = loop.add_noise

    def interrupt_on_third_batch(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "add_noise", interrupt_on_third_batch)
    config = TrainConfig(model="sarnn", epochs=10, batch_size=2, im_size=32, rec_dim=8, threads=1)
    result = train(config, data32, tmp_path, progress=False)
    assert result.stop_reason == "interrupted" and result.batches_run == 2
    assert result.checkpoint.is_file() and result.metrics_json.is_file()
    assert math.isfinite(result.final_test_loss)


def test_select_by_joint_keeps_the_epoch_with_the_lowest_test_joint_loss(data32: Path, tmp_path: Path) -> None:
    import csv

    config = TrainConfig(model="sarnn", epochs=4, batch_size=2, im_size=32, rec_dim=8, threads=1, select_by="joint")
    result = train(config, data32, tmp_path, progress=False)
    rows = list(csv.DictReader((tmp_path / "log.csv").open(encoding="utf-8")))
    joint = [float(r["test_joint"]) for r in rows]
    assert int(rows[joint.index(min(joint))]["epoch"]) == result.best_epoch
    assert result.best_test_loss == pytest.approx(min(joint))
    assert torch.load(result.checkpoint, weights_only=True)["epoch"] == result.best_epoch


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.mark.parametrize("kind", ["sarnn", "cnnrnn"])
def test_resume_continues_bit_exactly(kind: str, data32: Path, data128: Path, tmp_path: Path) -> None:
    """Two epochs straight equal one epoch, a stop and a resume: model, optimizer, noise and shuffle all carried."""
    data = data32 if kind == "sarnn" else data128
    base = TrainConfig(model=kind, epochs=3, batch_size=2, im_size=32, rec_dim=8, threads=1, stdev=0.05, decay_end=3)
    straight = train(base, data, tmp_path / "straight", progress=False)
    first = train(TrainConfig(**{**base.__dict__, "epochs": 1}), data, tmp_path / "split", progress=False)
    assert first.epochs_run == 1 and (tmp_path / "split" / "resume.pt").is_file()
    resumed = train(base, data, tmp_path / "split", progress=False, resume=True)
    a, b = _weights(tmp_path / "straight" / "resume.pt"), _weights(tmp_path / "split" / "resume.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.best_epoch == straight.best_epoch and resumed.best_test_loss == straight.best_test_loss
    rows = list(csv.DictReader((tmp_path / "split" / "log.csv").open(encoding="utf-8")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"] and all(float(r["frames_per_s"]) > 0 for r in rows)
    with pytest.raises(EipltrtError, match=r"--resume: the saved run used other settings \(lr: 0.001 -> 0.01\)"):
        train(TrainConfig(**{**base.__dict__, "lr": 1e-2, "epochs": 4}), data, tmp_path / "split", progress=False,
              resume=True)
    with pytest.raises(EipltrtError, match="never finished an epoch"):
        train(base, data, tmp_path / "empty", progress=False, resume=True)


def test_targets_are_the_labels_when_the_dataset_has_them(data32: Path, tmp_path: Path) -> None:
    """targets.npy (a demonstrator's intent) replaces the next measured joints as the joint label, not the input."""
    import shutil

    from eipl_trt.train.bptt import evaluate
    from eipl_trt.train.data import load_dataset

    d = tmp_path / "d"
    shutil.copytree(data32, d)
    for split in ("train", "test"):
        joints = np.load(d / split / "joints.npy")
        np.save(d / split / "targets.npy", joints + 0.5)  # labels far from the joints
    labelled, plain = load_dataset(d, "sarnn", 32), load_dataset(data32, "sarnn", 32)
    np.testing.assert_array_equal(labelled.test.joints, plain.test.joints)  # inputs unchanged
    assert labelled.test.targets is not None and plain.test.targets is None
    torch.manual_seed(0)
    model = build_model("sarnn", joint_dim=3, rec_dim=8, k_dim=5, im_size=(32, 32))
    weights = (0.1, 1.0, 0.1)
    assert evaluate(model, labelled.test, weights)["joint"] > evaluate(model, plain.test, weights)["joint"] + 0.1
    np.save(d / "test" / "targets.npy", np.zeros((1, 2, 3), np.float32))
    with pytest.raises(EipltrtError, match="must match joints.npy"):
        load_dataset(d, "sarnn", 32)


def test_init_from_continues_from_a_checkpoint(data32: Path, tmp_path: Path) -> None:
    base = TrainConfig(model="sarnn", epochs=1, batch_size=2, im_size=32, rec_dim=8, threads=1)
    first = train(base, data32, tmp_path / "first", progress=False)
    frozen = TrainConfig(**{**base.__dict__, "lr": 1e-12, "init_from": str(first.checkpoint)})
    second = train(frozen, data32, tmp_path / "second", progress=False)
    assert second.best_test_loss == pytest.approx(first.best_test_loss, rel=1e-4)
    assert json.loads(second.args_json.read_text(encoding="utf-8"))["init_from"] == str(first.checkpoint.resolve())
    wider = TrainConfig(**{**base.__dict__, "rec_dim": 9, "init_from": str(first.checkpoint)})
    with pytest.raises(EipltrtError, match=r"does not fit a sarnn .* same model options"):
        train(wider, data32, tmp_path / "third", progress=False)
    with pytest.raises(EipltrtError, match=r"does not exist"):
        train(TrainConfig(**{**base.__dict__, "init_from": str(tmp_path / "nope.pth")}), data32, tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()


def _stepped_sarnn_losses(model, x_img, x_joint, y_img, y_joint, input_mix):  # type: ignore[no-untyped-def]
    """The reference: SARNN's forward called once per step, as the node runs it."""
    from eipl_trt.train.bptt import mixed_input

    state, images, joints, enc, dec = None, [], [], [], []
    for t in range(x_img.shape[1] - 1):
        out = model(x_img[:, t], mixed_input(x_joint[:, t], joints[-1] if joints else None, input_mix), state)
        state = out[-1]
        images.append(out[0])
        joints.append(out[1])
        enc.append(out[2])
        dec.append(out[3])
    mse = torch.nn.functional.mse_loss
    return {
        "img": mse(torch.stack(images, dim=1), y_img[:, 1:]),
        "joint": mse(torch.stack(joints, dim=1), y_joint[:, 1:]),
        "pt": mse(torch.stack(dec[:-1]), torch.stack(enc[1:])),
    }


@pytest.mark.parametrize("input_mix", [1.0, 0.6])
def test_sarnn_batched_image_path_equals_stepping_forward(input_mix: float, data32: Path) -> None:
    data = load_dataset(data32, "sarnn", im_size=32)
    torch.manual_seed(3)
    model = build_model("sarnn", rec_dim=8, k_dim=3, joint_dim=3, im_size=(32, 32))
    images, joints = to_tensors(data.train, slice(0, 3))
    x_img, x_joint = add_noise(images, joints, 0.02, torch.Generator().manual_seed(0))
    results = []
    for fn in (sequence_losses, _stepped_sarnn_losses):
        model.zero_grad()
        losses = fn(model, x_img, x_joint, images, joints, input_mix)
        (losses["img"] + losses["joint"] + losses["pt"]).backward()
        grads = [p.grad.clone() for p in model.parameters()]
        results.append(({k: float(v.detach()) for k, v in losses.items()}, grads))
    (batched, g_batched), (stepped, g_stepped) = results
    assert batched == pytest.approx(stepped, rel=1e-5)
    for a, b in zip(g_batched, g_stepped):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["cnnrnn", "cnnrnnln"])
def test_cached_features_give_the_full_models_joint_loss(kind: str, data128: Path) -> None:
    """--freeze-image's fast path scores exactly what a whole-model pass scores for the joints."""
    from eipl_trt.train.frozen import encode_split, recurrent_losses

    torch.manual_seed(0)
    model = build_model(kind, rec_dim=8, joint_dim=3, feat_dim=4)
    data = load_dataset(data128, kind)
    images, joints = to_tensors(data.train, slice(0, 3))
    x_joint = joints + 0.01 * torch.randn(joints.shape)
    with torch.no_grad():
        full = sequence_losses(model, images, x_joint, images, joints)["joint"]
        cached = recurrent_losses(model, encode_split(model, data.train)[:3], x_joint, joints)["joint"]
    assert float(cached) == pytest.approx(float(full), rel=1e-5)


def test_sarnn_cached_points_give_the_full_models_joint_and_point_losses(data32: Path) -> None:
    """SARNN's --freeze-image caches the attention points; its joint and point losses equal a whole pass."""
    from eipl_trt.train.frozen import encode_split, recurrent_losses

    torch.manual_seed(0)
    model = build_model("sarnn", rec_dim=8, k_dim=3, joint_dim=3, im_size=(32, 32)).eval()
    data = load_dataset(data32, "sarnn", im_size=32)
    images, joints = to_tensors(data.train, slice(0, 3))
    x_joint = joints + 0.01 * torch.randn(joints.shape)
    with torch.no_grad():
        full = sequence_losses(model, images, x_joint, images, joints)
        cached = recurrent_losses(model, encode_split(model, data.train)[:3], x_joint, joints)
    assert float(cached["joint"]) == pytest.approx(float(full["joint"]), rel=1e-5)
    assert float(cached["pt"]) == pytest.approx(float(full["pt"]), rel=1e-5)


def test_input_mix_feeds_the_previous_prediction_back(data32: Path) -> None:
    """--input-mix: 1.0 is teacher forcing; 0.0 ignores the measured joints after the first step;
    the cached-feature path blends the same way as the whole-model pass."""
    from eipl_trt.train.frozen import encode_split, recurrent_losses

    torch.manual_seed(0)
    model = build_model("sarnn", rec_dim=8, k_dim=3, joint_dim=3, im_size=(32, 32)).eval()
    data = load_dataset(data32, "sarnn", im_size=32)
    images, joints = to_tensors(data.train, slice(0, 2))
    other = joints.clone()
    other[:, 1:] += 0.3  # different measured joints after the first step
    with torch.no_grad():
        forced = sequence_losses(model, images, joints, images, joints)["joint"]
        assert float(sequence_losses(model, images, joints, images, joints, input_mix=1.0)["joint"]) == float(forced)
        free = sequence_losses(model, images, joints, images, joints, input_mix=0.0)["joint"]
        assert float(sequence_losses(model, images, other, images, joints, input_mix=0.0)["joint"]) == pytest.approx(float(free))
        assert float(free) != pytest.approx(float(forced))
        half = sequence_losses(model, images, joints, images, joints, input_mix=0.5)
        cached = recurrent_losses(model, encode_split(model, data.train)[:2], joints, joints, input_mix=0.5)
    assert float(cached["joint"]) == pytest.approx(float(half["joint"]), rel=1e-5)
    with pytest.raises(EipltrtError, match="--input-mix must be in"):
        TrainConfig(model="sarnn", input_mix=1.5).validate()


def test_sarnn_freeze_image_keeps_its_image_path(data32: Path, tmp_path: Path) -> None:
    base = TrainConfig(model="sarnn", epochs=1, batch_size=2, im_size=32, rec_dim=8, k_dim=3, threads=1)
    first = train(base, data32, tmp_path / "first", progress=False)
    config = TrainConfig(**{**base.__dict__, "epochs": 3, "lr": 1e-2, "init_from": str(first.checkpoint),
                            "freeze_image": True, "select_by": "joint", "decay_end": 1})
    result = train(config, data32, tmp_path / "frozen", progress=False)
    before = torch.load(first.checkpoint, weights_only=True)["model_state_dict"]
    after = torch.load(result.checkpoint, weights_only=True)["model_state_dict"]
    for key, value in before.items():
        if key.startswith(("im_encoder.", "pos_encoder.", "decoder_image.")):
            assert torch.equal(after[key], value), f"{key} changed under --freeze-image"
    for part in ("rec.", "decoder_joint.", "decoder_point."):  # the point decoder follows the LSTM
        assert any(k.startswith(part) and not torch.equal(after[k], before[k]) for k in before), f"{part} did not train"
    rows = list(csv.DictReader((tmp_path / "frozen" / "log.csv").open(encoding="utf-8")))
    assert all(float(r["train_pt"]) > 0 and float(r["test_img"]) > 0 for r in rows)


def test_freeze_image_trains_only_the_recurrent_part(data128: Path, tmp_path: Path) -> None:
    base = TrainConfig(model="cnnrnn", epochs=1, batch_size=2, rec_dim=8, feat_dim=4, threads=1)
    first = train(base, data128, tmp_path / "first", progress=False)
    config = TrainConfig(**{**base.__dict__, "epochs": 3, "lr": 1e-2, "init_from": str(first.checkpoint),
                            "freeze_image": True, "select_by": "joint"})
    result = train(config, data128, tmp_path / "frozen", progress=False)
    before = torch.load(first.checkpoint, weights_only=True)["model_state_dict"]
    after = torch.load(result.checkpoint, weights_only=True)["model_state_dict"]
    for key, value in before.items():
        if key.startswith(("encoder_image.", "decoder_image.")):
            assert torch.equal(after[key], value), f"{key} changed under --freeze-image"
    changed = [k for k in before if k.startswith(("rec.", "decoder_joint.")) and not torch.equal(after[k], before[k])]
    assert changed, "the LSTM and joint decoder did not train"
    rows = list(csv.DictReader((tmp_path / "frozen" / "log.csv").open(encoding="utf-8")))
    assert all(r["train_img"] == "" and float(r["train_joint"]) > 0 for r in rows)  # not computed: empty
    assert all(float(r["test_img"]) > 0 for r in rows)  # the test split is scored by the whole model
    assert json.loads(result.args_json.read_text(encoding="utf-8"))["freeze_image"] is True


def _save_checkpoint(module: str, path: Path, model: torch.nn.Module) -> None:
    """Write ``path`` with ``eipl_trt.train.resume.save_resume`` or ``outputs.save_checkpoint``."""
    from eipl_trt.train import outputs, resume

    if module == "resume":
        resume.save_resume(path, epoch=0, model=model, optimizer=torch.optim.Adam(model.parameters()), scheduler_step=0,
                           generator=torch.Generator(), rng=np.random.default_rng(0), rows=[], best=(1.0, 0, 1.0),
                           batches=1, config=TrainConfig(model="sarnn"))
    else:
        outputs.save_checkpoint(path, model, 0, 1.0, 1.0)


@pytest.mark.parametrize("module", ["resume", "outputs"])
def test_an_interrupt_during_a_checkpoint_write_waits_for_it(module: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (or the CLI's SIGTERM) inside ``torch.save`` would break its zip writer ("unexpected pos") and
    end the run as a crash; it is held until the file is written, then delivered to the handler there was."""
    import os
    import signal

    from eipl_trt.train import outputs, resume

    real_save = torch.save

    def save_with_a_signal(payload: object, handle: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # arrives at the next bytecode: inside the write
        real_save(payload, handle)

    monkeypatch.setattr((resume if module == "resume" else outputs).torch, "save", save_with_a_signal)
    model = torch.nn.Linear(2, 2)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as in a terminal
    try:
        with pytest.raises(KeyboardInterrupt):
            _save_checkpoint(module, tmp_path / "ckpt.pt", model)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is back
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job's SIGINT stays ignored: no interrupt
        _save_checkpoint(module, tmp_path / "again.pt", model)
    finally:
        signal.signal(signal.SIGINT, before)
    for name in ("ckpt.pt", "again.pt"):
        saved = torch.load(tmp_path / name, map_location="cpu", weights_only=True)  # written whole
        state = saved["model"] if module == "resume" else saved["model_state_dict"]
        assert torch.equal(state["weight"], model.weight.detach())


def test_sigterm_stops_the_cli_gracefully(data32: Path, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-c", "import sys; from eipl_trt.cli import main; sys.exit(main())", "train",
           "--model", "sarnn", "--data", str(data32), "--out", str(tmp_path), "--epochs", "100000",
           "--im-size", "16", "--rec-dim", "4", "--threads", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "model.pth").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert (tmp_path / "model.pth").exists(), proc.communicate()[0]
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    assert b"stopped: interrupted" in out
    assert json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))["hold_mse"] > 0


def test_cli_train_then_export(data128: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from eipl_trt.spec import ModelSpec

    code = main(["train", "--model", "sarnn", "--data", str(data128), "--out", str(tmp_path), "--epochs", "1",
                 "--im-size", "24", "--rec-dim", "8", "--threads", "1", "--no-progress", "--export"])
    assert code == 0
    assert "hold-last baseline" in capsys.readouterr().out
    spec = ModelSpec.load(tmp_path / "onnx")
    assert spec.model == "sarnn" and spec.joint_names == JOINTS and (spec.image_height, spec.image_width) == (24, 24)


def test_cli_reports_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--model", "cnnrnn", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert code == 1
    assert "does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- --device


@pytest.mark.skipif(torch.cuda.is_available(), reason="this PyTorch sees a CUDA device")
def test_a_cuda_device_that_torch_cannot_see_is_refused_with_the_fix(
    data32: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = TrainConfig(model="sarnn", epochs=1, batch_size=2, im_size=32, rec_dim=8, threads=1, device="cuda")
    with pytest.raises(EipltrtError, match=r"--device cuda: this PyTorch .* sees no CUDA device.*--device cpu"):
        train(config, data32, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    code = main(["train", "--model", "sarnn", "--data", str(data32), "--out", str(tmp_path / "cli"), "--device", "cuda:0"])
    assert code == 1 and "sees no CUDA device" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA build of torch and an NVIDIA GPU")
@pytest.mark.parametrize("freeze_image", [False, True])
def test_training_on_cuda_matches_the_cpu_and_saves_a_cpu_checkpoint(
    freeze_image: bool, data32: Path, tmp_path: Path
) -> None:
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    base = TrainConfig(model="sarnn", epochs=1, batch_size=2, im_size=32, rec_dim=8, threads=1, stdev=0.0)
    first = train(base, data32, tmp_path / "init", progress=False)
    runs = {}
    for device in ("cpu", "cuda"):
        config = TrainConfig(**{**base.__dict__, "epochs": 2, "init_from": str(first.checkpoint),
                                "freeze_image": freeze_image, "device": device})
        runs[device] = train(config, data32, tmp_path / device, progress=False)
    cpu, cuda = runs["cpu"], runs["cuda"]
    assert cuda.best_test_loss == pytest.approx(cpu.best_test_loss, rel=1e-3)
    assert cuda.metrics["model_mse"] == pytest.approx(cpu.metrics["model_mse"], rel=1e-3)
    saved = torch.load(cuda.checkpoint, map_location=None, weights_only=True)["model_state_dict"]
    assert {t.device.type for t in saved.values()} == {"cpu"}
    assert json.loads(cuda.args_json.read_text(encoding="utf-8"))["device"] == "cuda"


# ---------------------------------------------------------------------------------- pieces


def test_loss_scheduler_s_curve() -> None:
    sched = LossScheduler(decay_end=1000)
    t_mid = 500 / 999
    assert sched.factor(0) == 0.0
    assert sched.factor(500) == pytest.approx(t_mid - math.sin(2 * math.pi * t_mid) / (2 * math.pi))
    assert sched.factor(500) == pytest.approx(0.5, abs=2e-3)
    assert sched.factor(250) == pytest.approx(0.25 - 1 / (2 * math.pi), abs=2e-3)  # slow start of the "s"
    assert sched.factor(999) == pytest.approx(1.0) and sched.factor(1000) == 1.0 and sched.factor(10**6) == 1.0
    values = [sched.factor(i) for i in range(1001)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert [sched(0.1) for _ in range(3)] == pytest.approx([0.0, 0.1 * sched.factor(1), 0.1 * sched.factor(2)])
    assert sched.calls == 3 and sched.peek(2.0) == pytest.approx(2.0 * sched.factor(3))


def test_noise_keeps_images_in_range_and_is_seeded() -> None:
    images = torch.rand(3, 4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    joints = torch.rand(3, 4, 5, generator=torch.Generator().manual_seed(2))
    before = images.clone(), joints.clone()
    a = add_noise(images, joints, 0.02, torch.Generator().manual_seed(7))
    b = add_noise(images, joints, 0.02, torch.Generator().manual_seed(7))
    c = add_noise(images, joints, 0.02, torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[1], c[1])
    assert a[0].min() >= 0.0 and a[0].max() <= 1.0 and a[0].shape == images.shape
    assert torch.equal(images, before[0]) and torch.equal(joints, before[1])
    big = torch.full((50, 10, 8), 0.5)
    _, noisy = add_noise(torch.rand(50, 10, 3, 2, 2), big, 0.02, torch.Generator().manual_seed(0))
    assert (noisy - big).std().item() == pytest.approx(0.02, rel=0.1)


def test_brightness_jitter_scales_each_sequence_by_one_factor() -> None:
    images = 0.1 + 0.5 * torch.rand(4, 3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = color_jitter(images, torch.Generator().manual_seed(3), brightness=0.5, contrast=0.0, saturation=0.0)
    ratio = out / images
    for seq in ratio:
        assert 0.5 <= seq.min() <= 1.5 and torch.allclose(seq, seq.flatten()[0].expand_as(seq), atol=1e-5)
    assert ratio[:, 0, 0, 0, 0].unique().numel() == 4


def test_load_dataset_normalizes_and_resizes_like_the_runtime(data128: Path) -> None:
    data = load_dataset(data128, "sarnn", im_size=48)
    raw = np.load(data128 / "train" / "joints.npy")
    bounds = np.load(data128 / "joint_bounds.npy").astype(np.float64)
    np.testing.assert_allclose(data.train.joints, (raw - bounds[0]) / (bounds[1] - bounds[0]), atol=1e-6)
    frame = np.load(data128 / "test" / "images.npy")[1, 5]
    np.testing.assert_array_equal(data.test.images[1, 5], resize_bilinear(frame, (48, 48)))
    assert data.joint_names == JOINTS and data.image_size == (48, 48) and data.source_size == (128, 128)


def test_joint_metric_scores_step_t_against_t_plus_1() -> None:
    class Hold(torch.nn.Module):
        """Predicts that the joints stay where they are (the baseline itself)."""

        def forward(self, xi, xv, state=None):  # type: ignore[no-untyped-def]
            return xi, xv, (xv, xv)

    from eipl_trt.imaging import JointScaler

    raw = np.cumsum(np.random.default_rng(0).normal(size=(3, 6, 2)), axis=1)
    scaler = JointScaler(raw.min((0, 1)) - 1, raw.max((0, 1)) + 1)
    split = Split(np.zeros((3, 6, 4, 4, 3), np.uint8), scaler.normalize(raw), raw)
    m = joint_prediction_mse(Hold(), split, scaler, batch_size=2)
    expected = float(((raw[:, 1:] - raw[:, :-1]) ** 2).mean())
    assert m["hold_mse"] == pytest.approx(expected) and m["model_mse"] == pytest.approx(expected, rel=1e-5)
    assert m["steps"] == 15 and m["ratio"] == pytest.approx(1.0, rel=1e-5)


def test_config_and_cli_import_without_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, eipl_trt.cli.train, eipl_trt.train.schedule\n"
        "from eipl_trt.train import TrainConfig\n"
        "TrainConfig(model='sarnn').validate()\n"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


# ---------------------------------------------------------------------------------- errors


def _broken(root: Path, what: str) -> Path:
    make_dataset(root, n_train=2, n_test=1, T=4, px=32)
    if what == "missing_joints":
        (root / "test" / "joints.npy").unlink()
    elif what == "float_images":
        np.save(root / "train" / "images.npy", np.zeros((2, 4, 32, 32, 3), np.float32))
    elif what == "chw_images":
        np.save(root / "train" / "images.npy", np.zeros((2, 4, 3, 32, 32), np.uint8))
    elif what == "frame_count":
        np.save(root / "train" / "joints.npy", np.zeros((2, 3, 3), np.float32))
    elif what == "bounds_shape":
        np.save(root / "joint_bounds.npy", np.zeros((2, 4), np.float32))
    elif what == "flat_bounds":
        np.save(root / "joint_bounds.npy", np.zeros((2, 3), np.float32))
    elif what == "empty_split":
        np.save(root / "test" / "images.npy", np.zeros((0, 4, 32, 32, 3), np.uint8))
        np.save(root / "test" / "joints.npy", np.zeros((0, 4, 3), np.float32))
    elif what == "nan_joints":
        np.save(root / "train" / "joints.npy", np.full((2, 4, 3), np.nan, np.float32))
    elif what == "names":
        (root / "dataset.json").write_text(json.dumps({"joint_names": ["a", "b"]}), encoding="utf-8")
    elif what == "corrupt":
        (root / "train" / "images.npy").write_bytes(b"not a numpy file")
    return root


@pytest.mark.parametrize(
    ("what", "kind", "match"),
    [
        ("missing_joints", "sarnn", r"missing .*test/joints\.npy"),
        ("float_images", "sarnn", r"\(N, T, H, W, 3\) uint8"),
        ("chw_images", "sarnn", r"\(N, T, H, W, 3\) uint8"),
        ("frame_count", "sarnn", r"every frame\s+needs one joint vector"),
        ("bounds_shape", "sarnn", r"must have shape \(2, 3\)"),
        ("flat_bounds", "sarnn", r"max <= min.*Widen"),
        ("empty_split", "sarnn", r"test split .* is empty"),
        ("nan_joints", "sarnn", r"NaN or Inf"),
        ("names", "sarnn", r"2 joint_names .* 3 columns"),
        ("corrupt", "sarnn", r"cannot read .*images\.npy"),
        ("ok", "cnnrnn", r"needs 128x128 px frames .* 32x32"),
    ],
)
def test_bad_datasets_raise_clear_errors(what: str, kind: str, match: str, tmp_path: Path) -> None:
    root = _broken(tmp_path / "data", what)
    with pytest.raises(DatasetError, match=match):
        load_dataset(root, kind, im_size=32)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"model": "lstm"}, r"--model 'lstm'"),
        ({"epochs": 0}, r"--epochs must be a positive integer"),
        ({"lr": -1.0}, r"--lr must be a positive number"),
        ({"im_size": 4}, r"--im-size 4 is too small"),
        ({"stdev": float("nan")}, r"--stdev"),
        ({"img_loss": 0.0, "joint_loss": 0.0, "pt_loss": 0.0}, r"all loss weights are 0"),
        ({"max_minutes": 0.0}, r"--max-minutes"),
        ({"select_by": "img"}, r"--select-by must be 'loss' or 'joint'"),
        ({"model": "cnnrnn", "freeze_image": True, "joint_loss": 0.0}, r"--freeze-image trains on the joint loss only"),
        ({"device": "gpu"}, r"--device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
        ({"device": "cuda:first"}, r"--device must be 'cpu', 'cuda' or 'cuda:N'"),
    ],
)
def test_bad_settings_raise_before_any_work(changes: dict, match: str, tmp_path: Path) -> None:
    config = TrainConfig(**{"model": "sarnn", **changes})
    with pytest.raises(EipltrtError, match=match):
        train(config, tmp_path / "missing", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_truncated_bptt_keeps_the_forward_pass_and_cuts_the_gradient(data32: Path) -> None:
    """tbptt carries the state on (same losses) but no gradient flows past a window's end."""
    from eipl_trt.train.bptt import sequence_losses
    from eipl_trt.train.data import load_dataset

    data = load_dataset(data32, "sarnn", 32)
    images, joints = to_tensors(data.train, slice(0, 2))
    torch.manual_seed(0)
    model = build_model("sarnn", joint_dim=3, rec_dim=8, k_dim=5, im_size=(32, 32))
    full = sequence_losses(model, images, joints, images, joints)
    cut = sequence_losses(model, images, joints, images, joints, tbptt=2)
    assert full["joint"].item() == pytest.approx(cut["joint"].item(), rel=1e-6)
    grads = []
    for losses in (full, cut):
        model.zero_grad()
        losses["joint"].backward()
        grads.append(model.rec.weight_hh.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_keep_epochs_saves_every_epochs_weights(data32: Path, tmp_path: Path) -> None:
    config = TrainConfig(model="sarnn", epochs=2, batch_size=2, im_size=32, rec_dim=8, threads=1, keep_epochs=True)
    train(config, data32, tmp_path, progress=False)
    saved = sorted(p.name for p in (tmp_path / "epochs").iterdir())
    assert saved == ["epoch_000.pth", "epoch_001.pth"]
    last = torch.load(tmp_path / "epochs" / "epoch_001.pth", weights_only=True)
    assert last["epoch"] == 1 and set(last["model_state_dict"]) == set(_weights(tmp_path / "resume.pt"))


def test_the_gpu_training_script_asks_for_flags_train_takes(tmp_path: Path) -> None:
    """scripts/train_gpu.sh is for a machine with a GPU (none here): its command must at least parse."""
    import shlex
    import subprocess

    from eipl_trt.cli import build_parser

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(["bash", str(root / "scripts" / "train_gpu.sh")], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "DATA": str(tmp_path), "DRY_RUN": "1"}).stdout
    argv = shlex.split(out)
    assert argv[1:3] == ["-m", "eipl_trt.cli"]
    args = build_parser().parse_args(argv[3:])
    assert args.command == "train" and args.device == "cuda" and args.autocast == "bf16" and args.keep_epochs



def test_speed_times_each_variant_it_is_asked_for(data32: Path) -> None:
    """eipl_trt.train.speed: one positive throughput per round for each variant, the frozen mode included."""
    from eipl_trt.train import speed
    from eipl_trt.train.config import TrainConfig

    config = TrainConfig(model="sarnn", batch_size=2, rec_dim=8, k_dim=3, im_size=24, threads=1)
    result = speed.time_variants(data32, ("fp32", "frozen"), config, rounds=2, steps=1, warm_up=1)
    assert set(result) == {"fp32", "frozen"} and all(len(v) == 2 and min(v) > 0 for v in result.values())
