"""eipl-trt evaluate on a real MCAP bag written with rosbags: metric, precisions, report files, errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from eipl_trt import evaluate as ev
from eipl_trt.cli import main as cli_main
from eipl_trt.errors import InputError
from eipl_trt.evaluate import report as evaluate_report
from eipl_trt.evaluate.metrics import hold_last_predictions, step_errors, summarize
from eipl_trt.precision import quantize_int8, record_calibration_feeds
from eipl_trt.predictor import Predictor
from eipl_trt.spec import ModelSpec

pytest.importorskip("rosbags")
models_testing = pytest.importorskip("eipl_trt.models.testing")
from eipl_trt.sim.bagwrite import BagEpisode, write_episodes_bag  # noqa: E402

NAMES = ("shoulder", "elbow", "wrist")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    return models_testing.make_test_model(
        "sarnn", tmp_path_factory.mktemp("model"), seed=5, joint_dim=3, joint_names=NAMES,
        joint_bounds=np.array([[-1.0, -2.0, 0.0], [1.0, 0.5, 3.0]]),
    )


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 12-step episodes: 96x128 camera at 10 Hz, joints at 10 Hz with an extra joint, in another order."""
    rng = np.random.default_rng(0)
    episodes = []
    for e in range(2):
        t = np.arange(12) / 10.0
        images = rng.integers(0, 256, (12, 96, 128, 3), dtype=np.uint8)
        q = np.stack([0.5 * np.sin(t + e), -0.5 + 0.3 * np.cos(2 * t), 1.5 + t / 4, np.zeros_like(t)], 1)
        episodes.append(BagEpisode(t, images, t, q))
    path = tmp_path_factory.mktemp("bags") / "run"
    # bag joint order differs from the model's (shoulder, elbow, wrist) and has an extra joint
    reordered = [BagEpisode(e.image_times_s, e.images, e.joint_times_s, np.ascontiguousarray(e.joint_positions[:, [3, 2, 0, 1]]))
                 for e in episodes]
    write_episodes_bag(path, reordered, joint_names=["gripper", "wrist", "shoulder", "elbow"])
    return path


def test_load_for_model_matches_joints_by_name(model: ModelSpec, bag: Path) -> None:
    episodes = ev.load_for_model(bag, model)
    assert len(episodes) == 2
    for i, e in enumerate(episodes):
        assert e.joints.shape[1] == 3 and e.images.shape[1:] == (96, 128, 3)
        assert len(e) >= 11
        t = np.arange(len(e)) / 10.0
        np.testing.assert_allclose(e.joints[:, 0], 0.5 * np.sin(t + i), atol=1e-6)  # shoulder
        np.testing.assert_allclose(e.joints[:, 2], 1.5 + t / 4, atol=1e-6)  # wrist


def test_metric_equals_a_manual_replay(model: ModelSpec, bag: Path) -> None:
    episodes = ev.load_for_model(bag, model)
    report = ev.evaluate(model, episodes, precisions=["fp32"], backend="onnxruntime")
    predictor = Predictor.from_model(model, backend="onnxruntime")
    errors, holds = [], []
    for e in episodes:
        predictor.reset_state()
        preds = np.stack([predictor.step(f, q).joints for f, q in zip(e.images, e.joints)])
        errors.append(step_errors(preds, e.joints))
        holds.append(step_errors(hold_last_predictions(e.joints), e.joints))
    assert report.runs[0].summary.mean == pytest.approx(summarize(errors).mean, rel=1e-9)
    assert report.hold.mean == pytest.approx(summarize(holds).mean, rel=1e-12)
    assert report.hold.steps == sum(len(e) - 1 for e in episodes)


def test_camera_check_replays_each_episode_with_the_next_ones_frames(model: ModelSpec, bag: Path, tmp_path: Path) -> None:
    episodes = ev.load_for_model(bag, model)
    short = dataclasses.replace(episodes[1], images=episodes[1].images[:7], joints=episodes[1].joints[:7],
                                stamps=episodes[1].stamps[:7])
    swapped = ev.frames_from_next_episode([episodes[0], short])
    assert [len(e.images) for e in swapped] == [7, 7]  # cut to the shorter of the two
    np.testing.assert_array_equal(swapped[0].images, short.images)
    np.testing.assert_array_equal(swapped[0].joints, episodes[0].joints[:7])
    np.testing.assert_array_equal(swapped[1].images, episodes[0].images[:7])
    with pytest.raises(InputError, match="at least 2 episodes"):
        ev.frames_from_next_episode(episodes[:1])

    out = tmp_path / "report"
    assert cli_main(["evaluate", "--bag", str(bag), "--model", str(model.directory), "--precision", "fp32",
                     "--backend", "onnxruntime", "--camera-check", "--out", str(out), "--no-plot"]) == 0
    check = json.loads((out / "metrics.json").read_text())["camera_check"]
    predictor = Predictor.from_model(model, backend="onnxruntime")
    errors = []
    for i, e in enumerate(episodes):  # equal lengths here: the frames of episode i+1 with the joints of i
        predictor.reset_state()
        frames = episodes[(i + 1) % 2].images
        errors.append(step_errors(np.stack([predictor.step(f, q).joints for f, q in zip(frames, e.joints)]), e.joints))
    assert check["mse_mean_other_frames"] == pytest.approx(summarize(errors).mean, rel=1e-9)
    assert check["mse_mean_real"] == pytest.approx(json.loads((out / "metrics.json").read_text())["runs"]["fp32"]["mse_mean"])
    assert check["ratio"] == pytest.approx(check["mse_mean_other_frames"] / check["mse_mean_real"])
    assert "## Camera check" in (out / "report.md").read_text()


def test_camera_check_says_when_the_camera_makes_no_difference(model: ModelSpec, bag: Path) -> None:
    report = ev.evaluate(model, ev.load_for_model(bag, model), precisions=["fp32"], backend="onnxruntime")
    assert report.camera is None and report.as_dict()["camera_check"] is None
    same = report.runs[0].summary
    blind = dataclasses.replace(report, camera=ev.CameraCheck("fp32", same, same))
    assert "the camera makes almost no difference (+0.00%)" in evaluate_report._markdown(blind)
    seeing = dataclasses.replace(report, camera=ev.CameraCheck("fp32", same, dataclasses.replace(same, mean=3 * same.mean)))
    assert "the model uses the camera: the error is 3.00x" in evaluate_report._markdown(seeing)


def test_report_with_two_precisions(model: ModelSpec, bag: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(model.directory, tmp_path / "m")
    spec = ModelSpec.load(tmp_path / "m")
    episodes = ev.load_for_model(bag, spec)
    feeds = record_calibration_feeds(spec, [(e.images, e.joints, "rgb8") for e in episodes])
    spec = quantize_int8(spec, feeds)
    out = tmp_path / "report"
    code = cli_main(["evaluate", "--bag", str(bag), "--model", str(spec.directory), "--backend", "onnxruntime",
                     "--out", str(out), "--no-plot"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["runs"]) == {"fp32", "int8"}  # ONNX Runtime runs the variants beside model.json
    assert metrics["runs"]["fp32"]["error_rate_vs_fp32"] == 0.0
    assert metrics["runs"]["int8"]["max_abs_diff_vs_fp32"] > 0
    assert set(metrics["runs"]["fp32"]["mse_per_joint"]) == set(NAMES)
    text = (out / "report.md").read_text()
    assert "hold last joint" in text and "| sarnn int8 |" in text
    rows = (out / "steps.csv").read_text().splitlines()
    assert rows[0].startswith("predictor,episode,step,mse,sq_shoulder")
    assert len(rows) == 1 + 3 * metrics["hold_last"]["steps"]


def test_plot_and_atomic_report(model: ModelSpec, bag: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = ev.evaluate(model, ev.load_for_model(bag, model), backend="onnxruntime")
    paths = ev.write_report(report, tmp_path)
    png = (tmp_path / "plot.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert {p.name for p in paths} == {"report.md", "metrics.json", "steps.csv", "plot.png"}
    before = {p.name: p.read_bytes() for p in paths}

    def broken_plot(_report: object) -> bytes:
        raise KeyboardInterrupt  # an interruption while rendering

    monkeypatch.setattr(evaluate_report, "_plot_png", broken_plot)
    report.runs[0].errors[0] = step_errors(np.zeros((12, 3)), np.ones((12, 3)))
    with pytest.raises(KeyboardInterrupt):
        ev.write_report(report, tmp_path)
    assert {p.name: p.read_bytes() for p in paths} == before
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(before)


def test_errors_are_clear(model: ModelSpec, bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["evaluate", "--bag", str(tmp_path / "nope"), "--model", str(model.directory), "--out", str(tmp_path)])
    assert code == 1
    assert "error" in capsys.readouterr().err
    other = models_testing.make_test_model("sarnn", tmp_path / "other", seed=1, joint_dim=3, joint_names=("a", "b", "c"))
    with pytest.raises(InputError, match="a"):
        ev.load_for_model(bag, other)
    with pytest.raises(InputError, match="at least 2"):
        ev.evaluate(model, [], backend="onnxruntime")
