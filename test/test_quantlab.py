"""Quantization lab: rounding modes, integer arithmetic by hand, the FP32 executor against ONNX Runtime,
sweeps on a small fixture model, the integer model (bit-exact, file format, runner) and the CLI."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest

from eipl_trt.errors import InputError, ModelError
from eipl_trt.runners.integer.fixed import make_lut, multiplier, requant
from eipl_trt.runners.integer.model import IntModel, memory_plan
from eipl_trt.runners.integer.rounding import choose_scale, quantize, round_values, saturate, shift_right

ort = pytest.importorskip("onnxruntime")
from model_cache import make_test_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------- rounding (no model)
def test_nearest_rounds_ties_up_and_floor_cuts_lsbs() -> None:
    x = np.array([-2.6, -2.5, -1.5, -0.5, 0.5, 1.5, 2.4, 2.5])
    assert round_values(x, "nearest").tolist() == [-3, -2, -1, 0, 1, 2, 2, 3]
    assert round_values(x, "floor").tolist() == [-3, -3, -2, -1, 0, 1, 2, 2]
    with pytest.raises(InputError, match="rounding mode"):
        round_values(x, "banker")


def test_stochastic_rounding_is_seeded_and_unbiased() -> None:
    x = np.full(20000, -1.3)
    a = round_values(x, "stochastic", np.random.default_rng(7))
    b = round_values(x, "stochastic", np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert set(np.unique(a).tolist()) == {-2.0, -1.0}
    assert abs(a.mean() + 1.3) < 0.02  # fixed seed: deterministic, not flaky
    with pytest.raises(InputError, match="seeded"):
        round_values(x, "stochastic")


def test_integer_shift_matches_float_rounding() -> None:
    acc = np.array([5, -5, 6, -6, 7, -7, 3, -3])
    assert shift_right(acc, 1, "nearest").tolist() == [3, -2, 3, -3, 4, -3, 2, -1]
    assert shift_right(acc, 1, "floor").tolist() == [2, -3, 3, -3, 3, -4, 1, -2]
    assert np.array_equal(shift_right(acc, 2, "nearest"), round_values(acc / 4, "nearest"))
    assert shift_right(np.array([3]), -2).tolist() == [12]  # negative shift = left shift


def test_quantize_saturates_and_pow2_scales() -> None:
    assert quantize(np.array([1.0, -1.0, 0.3]), 1 / 100, 8).tolist() == [100, -100, 30]
    assert quantize(np.array([2.0, -2.0]), 1 / 100, 8).tolist() == [127, -127]  # symmetric: -128 unused
    assert saturate(np.array([9, -9]), 4).tolist() == [7, -7]
    assert choose_scale(1.0, 8, "float") == pytest.approx(1 / 127)
    assert choose_scale(1.0, 8, "pow2") == 2.0 ** -6  # smallest power of two with 1.0 / s <= 127
    assert choose_scale(np.array([0.0, 2.0]), 8, "channel").tolist() == [1 / 127, 2 / 127]


# ---------------------------------------------------------------------- integer building blocks
def test_multiplier_and_requant_by_hand() -> None:
    assert multiplier(0.75) == (24576, 15)  # 0.75 * 2**15, |M| in [2**14, 2**15)
    assert multiplier(0.25, pow2=True) == (1, 2)  # a pure shift
    m, s = multiplier(1 / 3)
    assert abs(m * 2.0 ** -s - 1 / 3) < 2.0 ** -15 / 3
    assert requant(np.array([100, -100, 7, 300]), 24576, 15, 8).tolist() == [75, -75, 5, 127]
    assert requant(np.array([2, -2, 6, -6]), 1, 2, 8).tolist() == [1, 0, 2, -1]  # 0.5 -> 1, -0.5 -> 0, 1.5 -> 2, -1.5 -> -1


def test_lut_by_hand() -> None:
    table, err = make_lut(np.tanh, 0.5, 3, 1 / 127, 8)  # codes -3..3 -> tanh(-1.5..1.5) * 127
    assert table.tolist() == [-115, -97, -59, 0, 59, 97, 115]
    assert err["entries"] == 7 and err["max_error_codes"] <= 0.5
    table, err = make_lut(np.exp, 1.0, 3, 1 / 127, 8)  # exp(1..3) exceeds the output range
    assert err["clipped_codes"] == 3 and table[-1] == 127
    # a 6-bit input indexed by its top 4 bits: k = 2, idx = round_half_up(q / 4) in -8..8
    table, err = make_lut(np.tanh, 0.05, 6, 1 / 127, 8, index_bits=4)
    assert err["shift"] == 2 and err["offset"] == 8 and table.size == 17
    assert table[8 + 1] == round(np.tanh(4 * 0.05) * 127)  # idx 1 = codes 2..5
    assert err["max_error_codes"] > 0.5  # index truncation counted: codes 2 and 5 read the entry of code 4


def _one_conv_model(alpha: float) -> tuple[IntModel, np.ndarray, np.ndarray]:
    """x (1,1,3,3) int8 -> Conv 2x2 (2 output channels) + bias, fused LeakyReLU, requant by 0.5 and 0.25."""
    w = np.array([[[[1, -2], [3, 4]]], [[[-1, 0], [0, 1]]]], np.int8)
    b = np.array([5, -3], np.int32)
    mp = np.array([1, 1], np.int32)
    sp = np.array([1, 2], np.int32)  # ratios 0.5 and 0.25
    mn = np.array([int(alpha * 2 ** 8), int(alpha * 2 ** 8)], np.int32)
    sn = np.array([9, 10], np.int32)
    m = IntModel(inputs=["x"], outputs=["y"])
    m.tensors = {"x": {"bits": 8, "scale": 1.0, "shape": [1, 1, 3, 3]}, "y": {"bits": 8, "scale": 1.0, "shape": [1, 2, 2, 2]}}
    m.arrays = {"c:w": w, "c:b": b, "c:mp": mp, "c:sp": sp, "c:mn": mn, "c:sn": sn}
    m.ops = [{"op": "linear", "name": "c", "inputs": ["x"], "outputs": ["y"],
              "attrs": {"kind": "Conv", "params": "c", "acc_bits": 32, "fused": "LeakyRelu", "strides": [1, 1], "pads": [0, 0, 0, 0]}}]
    x = np.array([[[[1, 2, 3], [4, 5, 6], [7, 8, -9]]]], np.int64)
    return m, x, w


def test_integer_conv_with_fused_leaky_relu_by_hand() -> None:
    from eipl_trt.runners.integer.execute import IntExecutor

    m, x, w = _one_conv_model(0.25)
    y = IntExecutor(m).run_codes({"x": x})["y"]
    # channel 0 at (0,0): 1*1 - 2*2 + 3*4 + 4*5 + 5 = 34 -> 34 * 0.5 = 17
    # channel 1 at (1,1): -1*5 + 0 + 0 + 1*(-9) - 3 = -17 -> negative side: -17 * 0.25 * 0.25 = -1.0625 -> -1
    expected = np.zeros((1, 2, 2, 2), np.int64)
    for c in range(2):
        for i in range(2):
            for j in range(2):
                acc = int((x[0, 0, i:i + 2, j:j + 2] * w[c, 0]).sum()) + [5, -3][c]
                scale = [0.5, 0.25][c] if acc >= 0 else [0.5, 0.25][c] * 0.25
                expected[0, c, i, j] = int(np.floor(acc * scale + 0.5))
    assert y[0, 0, 0, 0] == 17 and y[0, 1, 1, 1] == -1
    assert np.array_equal(y, expected)


def test_memory_plan_by_hand() -> None:
    m = IntModel(inputs=["a"], outputs=["d"])
    for name, n in (("a", 100), ("b", 50), ("c", 100), ("d", 10)):
        m.tensors[name] = {"bits": 8, "scale": 1.0, "shape": [n]}
    m.ops = [{"op": "view", "name": "1", "inputs": ["a"], "outputs": ["b"], "attrs": {}},
             {"op": "view", "name": "2", "inputs": ["b"], "outputs": ["c"], "attrs": {}},
             {"op": "view", "name": "3", "inputs": ["c"], "outputs": ["d"], "attrs": {}}]
    plan = memory_plan(m)
    assert plan["naive_bytes"] == 260
    assert plan["peak_live_bytes"] == 150  # a+b, then b+c
    assert plan["arena_bytes"] == 150 and plan["offsets"]["a"] == plan["offsets"]["c"]  # c reuses a's buffer


# ---------------------------------------------------------------------- fixture models
@pytest.fixture(scope="module")
def sarnn_small(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from eipl_trt.spec import ModelSpec

    out = tmp_path_factory.mktemp("ql-sarnn")
    make_test_model("sarnn", out, seed=0, im_size=(24, 24), joint_dim=4, rec_dim=12)
    return ModelSpec.load(out)


def _episodes(spec, n: int, steps: int):  # type: ignore[no-untyped-def]
    from eipl_trt.imaging import JointScaler
    from eipl_trt.models.testing import smooth_inputs
    from eipl_trt.precision.calibration import EpisodeTensors

    scaler = JointScaler(spec.joint_min, spec.joint_max, spec.vmin, spec.vmax)
    out = []
    for seed in range(n):
        images, joints = smooth_inputs((spec.image_height, spec.image_width), spec.joint_dim, steps, seed=seed)
        out.append(EpisodeTensors(images, joints, scaler.denormalize(joints[:, 0].astype(np.float64))))
    return out




@pytest.mark.parametrize("kind,steps", [("sarnn", 50), ("cnnrnnln", 3)])
def test_fp32_executor_equals_onnxruntime_with_state_fed_back(kind: str, steps: int, sarnn_small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from eipl_trt.precision.lab.executor import Executor, Graph
    from eipl_trt.spec import ModelSpec

    if kind == "sarnn":
        spec = sarnn_small
    else:  # CNNRNNLN covers stride-2 Conv/ConvTranspose, Relu, Flatten and LayerNormalization
        make_test_model(kind, tmp_path, seed=1, joint_dim=4, rec_dim=12)
        spec = ModelSpec.load(tmp_path)
    path = spec.verify_variant("fp32")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ex = Executor(Graph(path))
    (episode,) = _episodes(spec, 1, steps)
    n, o = spec.inputs, spec.outputs
    h = np.zeros((1, spec.rec_dim), np.float32)
    hs = {"ort": (h, h), "np": (h, h)}
    worst = 0.0
    names = [x.name for x in sess.get_outputs()]
    for t in range(steps):
        ref = dict(zip(names, sess.run(None, {n["image"]: episode.images[t], n["joint"]: episode.joints[t],
                                              n["state_h"]: hs["ort"][0], n["state_c"]: hs["ort"][1]})))
        out = ex.run({n["image"]: episode.images[t], n["joint"]: episode.joints[t],
                      n["state_h"]: hs["np"][0], n["state_c"]: hs["np"][1]})
        # relative to the tensor's magnitude where it exceeds 1 (CNNRNNLN's LayerNorm-ed logits reach ~10)
        worst = max(worst, *(float(np.abs(out[k] - ref[k]).max() / max(1.0, float(np.abs(ref[k]).max()))) for k in names))
        hs = {"ort": (ref[o["state_h"]], ref[o["state_c"]]), "np": (out[o["state_h"]], out[o["state_c"]])}
    assert worst < 1e-5, f"{kind}: numpy executor differs from ONNX Runtime by {worst} over {steps} steps"


@pytest.fixture(scope="module")
def lab(sarnn_small):  # type: ignore[no-untyped-def]
    from eipl_trt.precision.lab.sweep import Lab

    cal, held = _episodes(sarnn_small, 2, 12)
    return Lab(sarnn_small, [cal], [held])


def test_sweep_16_bit_nearest_matches_fp32_and_error_grows_as_bits_fall(lab) -> None:  # type: ignore[no-untyped-def]
    from eipl_trt.precision.lab.executor import QuantConfig

    r16 = lab.score(QuantConfig(16, 16, "float", "nearest"))
    # tolerance: 16-bit codes put each tensor within 2**-15 of its range; over 12 steps the joints move < 1e-3 rad
    assert abs(r16.error_rate - 1.0) < 0.01 and r16.max_abs < 1e-3
    r12 = lab.score(QuantConfig(12, 12, "pow2", "nearest"))
    r4 = lab.score(QuantConfig(4, 4, "pow2", "nearest"))
    assert r4.deviation > 10 * r12.deviation and r4.h_drift > r12.h_drift
    r8f = lab.score(QuantConfig(8, 8, "float", "floor", acc_bits=12))
    assert r8f.deviation > 0 and r8f.label == "W8A8 float floor acc12"
    with pytest.raises(ModelError, match="unknown rounding"):
        QuantConfig(8, 8, "float", "up")


def test_sensitivity_ranks_every_layer(lab) -> None:  # type: ignore[no-untyped-def]
    rows = lab.sensitivity(4)
    assert {r.layer for r in rows} == set(lab.graph.compute_nodes())
    assert rows[0].deviation >= rows[-1].deviation
    assert lab.sensitivity(4, jobs=2) == rows  # the same rows, scored in two forked workers


def test_scoring_in_worker_processes_gives_the_serial_results_in_order(lab) -> None:  # type: ignore[no-untyped-def]
    from eipl_trt.precision.lab.executor import QuantConfig
    from eipl_trt.precision.lab.sweep import score_many

    items = [(QuantConfig(b, b, s, r), "", "") for b, s, r in
             [(8, "float", "stochastic"), (4, "pow2", "floor"), (6, "channel", "nearest")]]
    seen: list[int] = []
    parallel = score_many(lab, items, jobs=2, on_result=lambda n, _: seen.append(n))
    assert parallel == score_many(lab, items, jobs=1) and seen == [1, 2, 3]
    assert [r.label for r in parallel] == ["W8A8 float stochastic", "W4A4 pow2 floor", "W6A6 channel nearest"]


# ---------------------------------------------------------------------- integer model
@pytest.fixture(scope="module")
def int_model(sarnn_small):  # type: ignore[no-untyped-def]
    from eipl_trt.precision.lab.integer import build_integer

    cal, _ = _episodes(sarnn_small, 2, 12)
    return build_integer(sarnn_small, [cal])


def test_integer_sarnn_close_to_fp32_and_bit_exact(sarnn_small, int_model, lab) -> None:  # type: ignore[no-untyped-def]
    from eipl_trt.precision.lab.integer import IntExecutor

    assert not int_model.float_layers
    ops = {op["op"] for op in int_model.ops}
    assert {"linear", "lut", "softmax", "add", "mul"} <= ops and "float" not in ops
    assert all(a.dtype == np.int8 for k, a in int_model.arrays.items() if k.endswith(":w"))
    assert all(a.dtype == np.int32 for k, a in int_model.arrays.items() if k.endswith(":b"))
    ex = IntExecutor(int_model)
    score = lab.score_executor(ex, "int")
    # bound from the scales: two 8-bit steps of the joint output's calibrated range (normalized units), in rad
    # (the joints are 16-bit codes; the error comes from the 8-bit feature maps upstream)
    info = int_model.tensors[sarnn_small.outputs["joint"]]
    lsb = info["scale"] * (2 ** (info["bits"] - 1) - 1) / 127
    span = float(np.max(np.asarray(sarnn_small.joint_max) - np.asarray(sarnn_small.joint_min)))
    print("integer fixture:", score, "lsb", lsb, "span", span)
    assert score.max_abs < 2 * lsb * span, score
    a, b = lab.replay(IntExecutor(int_model)), lab.replay(IntExecutor(int_model))
    assert all(np.array_equal(x, y) for x, y in zip(a.joints, b.joints))


def test_integer_file_round_trips_and_rejects_bad_files(int_model, sarnn_small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from eipl_trt.precision.lab.integer import IntExecutor

    int_model.save(tmp_path)
    loaded = IntModel.load(tmp_path)
    assert sorted(loaded.arrays) == sorted(int_model.arrays)
    assert all(np.array_equal(loaded.arrays[k], int_model.arrays[k]) and loaded.arrays[k].dtype == int_model.arrays[k].dtype
               for k in int_model.arrays)
    (episode,) = _episodes(sarnn_small, 1, 2)
    n = sarnn_small.inputs
    feeds = {n["image"]: episode.images[0], n["joint"]: episode.joints[0],
             n["state_h"]: np.zeros((1, 12)), n["state_c"]: np.zeros((1, 12))}
    a, b = IntExecutor(int_model).run(feeds), IntExecutor(loaded).run(feeds)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    doc = json.loads((tmp_path / "intmodel.json").read_text())
    doc["format_version"] = 2
    (tmp_path / "intmodel.json").write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="format version 2"):
        IntModel.load(tmp_path)
    int_model.save(tmp_path)
    data = bytearray((tmp_path / "intmodel.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "intmodel.npz").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match intmodel.json"):
        IntModel.load(tmp_path)
    (tmp_path / "intmodel.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        IntModel.load(tmp_path)


def test_integer_runner_hands_state_over(int_model, sarnn_small) -> None:  # type: ignore[no-untyped-def]
    from eipl_trt.runners.integer.runner import IntegerRunner

    (episode,) = _episodes(sarnn_small, 1, 4)
    with IntegerRunner(sarnn_small, model=int_model) as a, IntegerRunner(sarnn_small, model=int_model) as b:
        assert a.name == "numpy-int/intonly"
        for t in range(3):
            a.infer(episode.images[t], episode.joints[t])
        b.set_state(a.get_state())
        ya, yb = a.infer(episode.images[3], episode.joints[3]), b.infer(episode.images[3], episode.joints[3])
        assert np.array_equal(ya["joint"], yb["joint"])
        assert np.array_equal(a.get_state().h, b.get_state().h)
        b.reset_state()
        assert not b.get_state().h.any()


# ---------------------------------------------------------------------- CLI on the bundled model and bag
def test_cli_sweep_and_integer_on_bundled_sarnn(tmp_path: Path) -> None:
    from eipl_trt.cli import main

    common = ["--model", str(ROOT / "engines/sarnn"), "--steps", "3", "--headroom", "1.25"]
    assert main(["quantlab", "sweep", *common, "--data", str(ROOT / "data/pusher_sample"), "--out", str(tmp_path / "s"),
                 "--bits", "8", "--scales", "float", "pow2", "--rounding", "nearest", "--no-plot", "--jobs", "2"]) == 0
    md = (tmp_path / "s/sweep.md").read_text()
    assert "| 8 |" in md and "fixed point" in md
    assert len((tmp_path / "s/sweep.csv").read_text().splitlines()) == 3
    assert main(["quantlab", "integer", *common, "--calibration", str(ROOT / "data/pusher_sample"),
                 "--out", str(tmp_path / "i")]) == 0
    report = json.loads((tmp_path / "i/report.json").read_text())
    assert report["memory"]["arena_bytes"] < report["memory"]["naive_bytes"]
    assert np.isfinite(report["score"]["error_rate"])
    assert main(["quantlab", "sweep", *common, "--data", str(ROOT / "data/pusher_sample"), "--out", str(tmp_path / "x"),
                 "--bits", "20"]) == 1
    assert main(["quantlab", "sweep", *common, "--data", str(ROOT / "data/pusher_sample"), "--out", str(tmp_path / "x"),
                 "--jobs", "0"]) == 1


def test_pow2_integer_model_requantizes_by_shifts_only(sarnn_small) -> None:  # type: ignore[no-untyped-def]
    from eipl_trt.precision.lab.integer import build_integer

    (cal,) = _episodes(sarnn_small, 1, 4)
    model = build_integer(sarnn_small, [cal], pow2=True)
    # every multiplier is a power of two (a shift; Add aligns its finer operand with a left shift), except
    # divisions by the model's own constants (softmax temperature, heatmap size)
    def is_shift(m: int) -> bool:
        return m != 0 and abs(m) & (abs(m) - 1) == 0

    bad = [a for a in model.alignments if a["op"] != "Div" and not is_shift(a["multiplier"])]
    assert not bad, bad[:3]
    assert all(float(np.log2(t["scale"])).is_integer() for t in model.tensors.values())


def test_evaluate_runs_the_integer_model_as_its_own_column(int_model, sarnn_small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`eipl-trt evaluate --integer-model DIR`: the column `intonly` is the IntegerRunner's replay, scored like fp32."""
    from eipl_trt.bagio import Episode
    from eipl_trt.evaluate import evaluate, write_report
    from eipl_trt.predictor import Predictor
    from eipl_trt.runners.integer.runner import IntegerRunner

    int_model.save(tmp_path / "int")
    rng = np.random.default_rng(3)
    spec = sarnn_small
    lo, hi = np.asarray(spec.joint_min), np.asarray(spec.joint_max)
    episodes = []
    for e in range(2):
        t = np.arange(6)
        joints = lo + (hi - lo) * (0.5 + 0.3 * np.sin(0.4 * t[:, None] + e + np.arange(spec.joint_dim)))
        images = rng.integers(0, 256, (6, spec.image_height, spec.image_width, 3), dtype=np.uint8)
        episodes.append(Episode(images, spec.channel_order, f"{spec.channel_order}8", joints, tuple(spec.joint_names),
                                t / spec.rate_hz, spec.rate_hz, f"synthetic {e}"))
    report = evaluate(spec, episodes, precisions=["fp32"], backend="onnxruntime", integer_model=tmp_path / "int")
    assert [r.precision for r in report.runs] == ["fp32", "intonly"]
    assert report.runs[1].backend == "numpy-int"
    with contextlib.closing(Predictor(IntegerRunner(spec, tmp_path / "int"))) as p:
        for episode, got in zip(episodes, report.runs[1].predictions):
            p.reset_state()
            want = np.stack([p.step(f, q, f"{spec.channel_order}8", want_image=False).joints
                             for f, q in zip(episode.images, episode.joints)])
            np.testing.assert_array_equal(got, want)
    write_report(report, tmp_path / "out", plot=False)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert "intonly" in metrics["runs"] and np.isfinite(metrics["runs"]["intonly"]["mse_mean"])
    assert "intonly" in (tmp_path / "out" / "report.md").read_text()



def test_integer_backend_in_create_runner_bench_and_the_node_core(int_model, sarnn_small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`backend: integer` runs `<model dir>/intonly` wherever a backend is chosen: runners, `bench`, the node."""
    import shutil

    from eipl_trt.cli import main
    from eipl_trt.errors import BackendUnavailableError
    from eipl_trt.ros.inputs import Frame
    from eipl_trt.ros.params import NodeConfig
    from eipl_trt.ros.runtime import NodeRuntime
    from eipl_trt.runners import INTEGER_MODEL_DIR, available_precisions, create_runner
    from eipl_trt.runners.integer.runner import IntegerRunner
    from eipl_trt.spec import ModelSpec

    shutil.copytree(sarnn_small.directory, tmp_path / "m")
    spec = ModelSpec.load(tmp_path / "m")
    assert available_precisions(spec, "integer") == []
    with pytest.raises(BackendUnavailableError, match="eipl-trt quantlab integer"):
        create_runner(spec, "integer", "int8")
    int_model.save(tmp_path / "m" / INTEGER_MODEL_DIR)
    assert available_precisions(spec, "integer") == ["int8"]
    with pytest.raises(BackendUnavailableError, match="runs only int8"):
        create_runner(spec, "integer", "fp32")
    (episode,) = _episodes(spec, 1, 3)
    with create_runner(spec, "integer", "int8") as got, IntegerRunner(spec, model=int_model) as want:
        assert got.name == "numpy-int/int8"
        for t in range(3):
            assert np.array_equal(got.infer(episode.images[t], episode.joints[t])["joint"],
                                  want.infer(episode.images[t], episode.joints[t])["joint"])
    assert main(["bench", "--model", str(tmp_path / "m"), "--backend", "integer", "--steps", "4", "--warm-up", "1",
                 "--no-baseline", "--power", "none", "--out", str(tmp_path / "b")]) == 0
    assert "| m | integer | int8 |" in (tmp_path / "b" / "bench.md").read_text()
    rt = NodeRuntime.open(NodeConfig.from_values({"model": str(tmp_path / "m"), "backend": "integer",
                                                  "precision": "int8", "max_input_age": 0.0}))
    try:
        rt.on_joints(list(spec.joint_names), list(spec.joint_min), 1.0)
        image = np.full((spec.image_height, spec.image_width, 3), 128, np.uint8)
        rt.on_image(Frame(image, f"{spec.channel_order}8", 1.0, 1.0))
        result = rt.step(1.0, want_image=False)
        assert result.status == "ok" and rt.predictor.runner.name == "numpy-int/int8"
        with IntegerRunner(spec, model=int_model) as ref:
            from eipl_trt.predictor import Predictor

            expected = Predictor(ref).step(image, np.asarray(spec.joint_min), f"{spec.channel_order}8", want_image=False)
        assert result.prediction is not None and np.array_equal(result.prediction.joints, expected.joints)
    finally:
        rt.close()
