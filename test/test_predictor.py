"""The stateful Predictor on ONNX Runtime: preprocessing, state handling, bad input, parity with eager PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eipl_trt.bench import synthetic_inputs
from eipl_trt.errors import EipltrtError, InputError, NonFiniteOutputError
from eipl_trt.predictor import Predictor
from eipl_trt.runners import create_runner
from eipl_trt.runners.onnxrt import OrtRunner
from eipl_trt.spec import ModelSpec

models_testing = pytest.importorskip("eipl_trt.models.testing")


@pytest.fixture(scope="module")
def sarnn_spec(tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    return models_testing.make_test_model("sarnn", tmp_path_factory.mktemp("sarnn"), seed=3)


@pytest.fixture(scope="module")
def cnnrnn_spec(tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    return models_testing.make_test_model("cnnrnn", tmp_path_factory.mktemp("cnnrnn"), seed=4)


def _frames(spec: ModelSpec, n: int) -> list[np.ndarray]:
    """Smoothly changing RGB frames at model size (the benchmark's synthetic inputs)."""
    return [frame for frame, _ in synthetic_inputs(spec, n)]


def _joints(spec: ModelSpec, n: int) -> list[np.ndarray]:
    """Joint vectors inside the bounds that go with :func:`_frames`."""
    return [q for _, q in synthetic_inputs(spec, n)]


def _run(predictor: Predictor, frames: list[np.ndarray], joints: list[np.ndarray]) -> np.ndarray:
    return np.stack([predictor.step(f, q).joints for f, q in zip(frames, joints)])


def test_every_encoding_and_size_gives_the_same_model_input(sarnn_spec: ModelSpec) -> None:
    predictor = Predictor.from_model(sarnn_spec)
    rgb = _frames(sarnn_spec, 1)[0]
    expected = predictor.preprocess_image(rgb, "rgb8")
    bgr = rgb[:, :, ::-1].copy()
    alpha = np.full(rgb.shape[:2] + (1,), 200, np.uint8)
    variants = {
        "bgr8": bgr,
        "rgba8": np.concatenate([rgb, alpha], 2),
        "bgra8": np.concatenate([bgr, alpha], 2),
    }
    for encoding, image in variants.items():
        np.testing.assert_array_equal(predictor.preprocess_image(image, encoding), expected, err_msg=encoding)
    # Integer up-scaling by pixel repetition: bilinear sampling at half-pixel centres lands on the
    # original pixel values, so a 2x or 3x camera frame gives exactly the same model input.
    for factor in (2, 3):
        big = np.repeat(np.repeat(rgb, factor, 0), factor, 1)
        np.testing.assert_array_equal(predictor.preprocess_image(big, "rgb8"), expected, err_msg=f"x{factor}")
    gray = rgb[:, :, 1]
    mono = predictor.preprocess_image(gray, "mono8")
    for channel in range(3):
        np.testing.assert_allclose(mono[0, channel], gray / 255.0, rtol=1e-6)
    tensor = predictor.preprocess_image(rgb, "rgb8")
    assert tensor.shape == (1, 3, 64, 64) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[0, 0], rgb[:, :, 0] / 255.0, rtol=1e-6)


def test_bgr_model_receives_bgr(tmp_path: Path) -> None:
    spec = models_testing.make_test_model("sarnn", tmp_path, seed=0, channel_order="bgr")
    predictor = Predictor.from_model(spec)
    rgb = _frames(spec, 1)[0]
    tensor = predictor.preprocess_image(rgb, "rgb8")
    np.testing.assert_allclose(tensor[0, 0], rgb[:, :, 2] / 255.0, rtol=1e-6)


def test_reset_gives_the_same_outputs_as_a_fresh_predictor(sarnn_spec: ModelSpec) -> None:
    frames, joints = _frames(sarnn_spec, 8), _joints(sarnn_spec, 8)
    fresh = _run(Predictor.from_model(sarnn_spec), frames, joints)
    used = Predictor.from_model(sarnn_spec)
    _run(used, frames[::-1], joints[::-1])
    used.reset_state()
    np.testing.assert_array_equal(_run(used, frames, joints), fresh)
    # the recurrent state matters: without the reset the outputs differ
    assert not np.allclose(_run(used, frames, joints), fresh)


def test_state_round_trip_and_hand_over(sarnn_spec: ModelSpec) -> None:
    frames, joints = _frames(sarnn_spec, 10), _joints(sarnn_spec, 10)
    a = Predictor.from_model(sarnn_spec, input_mix=0.8)
    _run(a, frames[:5], joints[:5])
    saved = a.get_state()
    tail = _run(a, frames[5:], joints[5:])
    a.set_state(saved)
    np.testing.assert_array_equal(_run(a, frames[5:], joints[5:]), tail)
    b = Predictor.from_model(sarnn_spec, input_mix=0.8)
    b.set_state(saved)
    np.testing.assert_array_equal(_run(b, frames[5:], joints[5:]), tail)
    assert b.get_state().step == 10


def test_swap_runner_keeps_the_state(sarnn_spec: ModelSpec) -> None:
    frames, joints = _frames(sarnn_spec, 10), _joints(sarnn_spec, 10)
    reference = _run(Predictor.from_model(sarnn_spec, backend="onnxruntime"), frames, joints)
    predictor = Predictor.from_model(sarnn_spec, backend="onnxruntime")
    head = _run(predictor, frames[:5], joints[:5])
    old = predictor.swap_runner(create_runner(sarnn_spec, "onnxruntime", "fp32"))
    old.close()
    np.testing.assert_array_equal(np.concatenate([head, _run(predictor, frames[5:], joints[5:])]), reference)


def test_input_mix_blends_with_the_previous_prediction(sarnn_spec: ModelSpec) -> None:
    predictor = Predictor.from_model(sarnn_spec, input_mix=0.25)
    frame, q = _frames(sarnn_spec, 1)[0], _joints(sarnn_spec, 1)[0]
    measured = predictor.scaler.normalize(q)
    np.testing.assert_allclose(predictor.preprocess_joints(q)[0], measured)  # nothing to mix with yet
    previous = predictor.step(frame, q).joints_normalized
    np.testing.assert_allclose(predictor.preprocess_joints(q)[0], 0.25 * measured + 0.75 * previous, rtol=1e-6)
    with pytest.raises(InputError, match="input_mix"):
        Predictor.from_model(sarnn_spec, input_mix=1.5)


def test_outputs_are_denormalized_and_points_are_in_frame_pixels(sarnn_spec: ModelSpec) -> None:
    predictor = Predictor.from_model(sarnn_spec)
    frame, q = _frames(sarnn_spec, 1)[0], _joints(sarnn_spec, 1)[0]
    p = predictor.step(frame, q)
    np.testing.assert_allclose(p.joints, predictor.scaler.denormalize(p.joints_normalized))
    assert p.enc_points_px.shape == (5, 2) and p.dec_points_px.shape == (5, 2)
    np.testing.assert_allclose(p.enc_points_px, p.enc_points_model_px, atol=1e-5)  # frame at model size
    assert np.all((p.enc_points_model_px >= 3.0) & (p.enc_points_model_px <= 3.0 + 57.0))
    assert p.image.shape == (64, 64, 3) and p.image.dtype == np.uint8 and p.image_encoding == "rgb8"
    assert p.step == 0 and p.timings.total_s > 0 and "compute" in p.timings.inference_detail
    predictor.reset_state()
    big = predictor.step(np.repeat(np.repeat(frame, 2, 0), 2, 1), q, want_image=False)
    assert big.image is None
    np.testing.assert_allclose(big.enc_points_model_px, p.enc_points_model_px, atol=1e-6)
    np.testing.assert_allclose(big.enc_points_px, (p.enc_points_model_px + 0.5) * 2 - 0.5, atol=1e-4)


def test_cnn_models_have_no_points(cnnrnn_spec: ModelSpec) -> None:
    predictor = Predictor.from_model(cnnrnn_spec)
    p = predictor.step(_frames(cnnrnn_spec, 1)[0], _joints(cnnrnn_spec, 1)[0])
    assert p.enc_points_px is None and p.dec_points_px is None
    assert p.image.shape == (128, 128, 3)


@pytest.mark.parametrize(
    ("image", "encoding", "joints", "error", "match"),
    [
        ("frame", "rgb8", "short", InputError, "expected 8 joint positions"),
        ("frame", "rgb8", "nan", InputError, r"NaN or Inf for joint_2"),
        ("frame", "yuv422", "ok", InputError, "unsupported image encoding 'yuv422'"),
        ("float", "rgb8", "ok", InputError, "must be uint8"),
        ("empty", "rgb8", "ok", InputError, "empty"),
        ("gray", "rgb8", "ok", InputError, r"shape \(H, W, 3\)"),
    ],
)
def test_bad_input_raises_and_leaves_the_state_alone(
    sarnn_spec: ModelSpec, image: str, encoding: str, joints: str, error: type, match: str
) -> None:
    predictor = Predictor.from_model(sarnn_spec)
    frame, q = _frames(sarnn_spec, 1)[0], _joints(sarnn_spec, 1)[0]
    predictor.step(frame, q)
    before = predictor.get_state()
    images = {"frame": frame, "float": frame.astype(np.float32), "empty": frame[:0], "gray": frame[:, :, 0]}
    bad_q = {"ok": q, "short": q[:5], "nan": np.where(np.arange(q.size) == 2, np.nan, q)}
    with pytest.raises(error, match=match) as info:
        predictor.step(images[image], bad_q[joints], encoding)
    assert isinstance(info.value, EipltrtError)
    after = predictor.get_state()
    np.testing.assert_array_equal(after.recurrent.h, before.recurrent.h)
    assert after.step == before.step


def test_non_finite_output_resets_the_state(sarnn_spec: ModelSpec) -> None:
    class PoisonedOrtRunner(OrtRunner):
        """A real ONNX Runtime runner whose joint output is overwritten with NaN (fault injection)."""

        def _infer_impl(self, image, joint):  # type: ignore[no-untyped-def]
            out = dict(super()._infer_impl(image, joint))
            out["joint"] = np.full_like(out["joint"], np.nan)
            return out

    predictor = Predictor(PoisonedOrtRunner(sarnn_spec))
    with pytest.raises(NonFiniteOutputError, match="state was reset"):
        predictor.step(_frames(sarnn_spec, 1)[0], _joints(sarnn_spec, 1)[0])
    state = predictor.get_state()
    assert state.step == 0 and not state.recurrent.h.any()


@pytest.mark.parametrize("kind", ["sarnn", "cnnrnn", "cnnrnnln"])
def test_predictor_on_onnxruntime_matches_eager_pytorch(tmp_path: Path, kind: str) -> None:
    torch_eager = pytest.importorskip("eipl_trt.runners.torch_eager")
    spec = models_testing.make_test_model(kind, tmp_path, seed=7)
    model = models_testing.torch_reference(kind, seed=7)
    ort = Predictor.from_model(spec, backend="onnxruntime")
    eager = Predictor(torch_eager.TorchRunner(spec, model))
    frames, joints = _frames(spec, 20), _joints(spec, 20)
    for f, q in zip(frames, joints):
        a, b = ort.step(f, q), eager.step(f, q)
        np.testing.assert_allclose(a.joints_normalized, b.joints_normalized, atol=1e-4)
        np.testing.assert_array_equal(np.abs(a.image.astype(int) - b.image.astype(int)) <= 1, True)
        if spec.has_points:
            np.testing.assert_allclose(a.enc_points_model_px, b.enc_points_model_px, atol=1e-4 * 57)
