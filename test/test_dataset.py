"""`eipl-trt dataset`: rosbags -> EIPL dataset, through the decoding and resampling evaluate and the node use.

The round trip is checked on the simulator, which writes the same demonstrations both ways: its
rosbag converted here must equal its own EIPL dataset. A robot-like bag (JPEG frames, 500 Hz
joint_states; `eipl-trt dataset recode`) and the bundled sample bag in JPEG cover the compressed path;
`eipl-trt dataset merge` joins train splits.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

# Skip without the extras, but do not import mujoco here: eipl_trt.sim picks its offscreen GL backend first.
for _module in ("mujoco", "gymnasium", "rosbags", "cv2"):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(f"{_module} is not installed (the [sim], [bags] and [camera] extras)", allow_module_level=True)

from eipl_trt.bagio import load_dataset_dir, load_episodes, read_bag  # noqa: E402
from eipl_trt.bagio.dataset import bags_to_dataset, joint_bounds  # noqa: E402
from eipl_trt.bagio.merge import merge_datasets  # noqa: E402
from eipl_trt.bagio.recode import recode_bag  # noqa: E402
from eipl_trt.cli import main as cli_main  # noqa: E402
from eipl_trt.errors import InputError  # noqa: E402
from eipl_trt.sim.record import generate_dataset  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
STEPS = 12


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 train + 1 test simulated episodes of 12 frames at 64 px, with the simulator's bag (50 Hz joints)."""
    out = tmp_path_factory.mktemp("dataset_sim") / "sim"
    generate_dataset(out, n_train=2, n_test=1, seed=4, steps=STEPS, image_size=64, progress=False)
    return out


def _arrays(root: Path) -> dict[str, np.ndarray]:
    return {f"{s}/{n}": np.load(root / s / f"{n}.npy") for s in ("train", "test") for n in ("images", "joints")}


def test_sim_bag_round_trips_to_the_sims_own_dataset(sim: Path, tmp_path: Path) -> None:
    from eipl_trt.sim.pusher import PusherScene

    with PusherScene(64) as scene:
        limits = scene.joint_range.copy()
    summary = bags_to_dataset([sim / "bag"], tmp_path / "ds", rate_hz=10.0, image_size=64, test_episodes=1,
                              joint_limits=limits)
    own, ours = _arrays(sim), _arrays(tmp_path / "ds")
    for key in own:
        assert ours[key].shape == own[key].shape and ours[key].dtype == own[key].dtype, key
    for split in ("train", "test"):
        assert np.array_equal(ours[f"{split}/images"], own[f"{split}/images"])  # the very frames
        # joints: the 50 Hz samples interpolated at the frame times, which are sample times (float64 epoch
        # seconds carry ~0.2 µs of rounding, hence not bit-equal)
        np.testing.assert_allclose(ours[f"{split}/joints"], own[f"{split}/joints"], rtol=0, atol=2e-6)
    meta_own = json.loads((sim / "dataset.json").read_text())
    meta = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    for key in ("joint_names", "rate_hz", "steps", "image_size", "channel_order", "episodes"):
        assert meta[key] == meta_own[key], key
    assert summary["image_topic"] == "/camera/image_raw" and summary["joint_topic"] == "/joint_states"
    # bounds: the simulator's rule (min/max widened by a margin that stops at the arm's joint limits)
    np.testing.assert_allclose(np.load(tmp_path / "ds" / "joint_bounds.npy"), np.load(sim / "joint_bounds.npy"),
                               rtol=0, atol=2e-6)
    # and what evaluate reads from the dataset is what it reads from the bag
    from_dir = load_dataset_dir(tmp_path / "ds", "test")
    from_bag = load_episodes(sim / "bag", rate_hz=10.0)[-1]
    assert np.array_equal(from_dir[0].images, from_bag.images)


def test_compressed_500hz_robot_bag_to_dataset_to_training_reader(sim: Path, tmp_path: Path) -> None:
    rc = cli_main(["dataset", "recode", "--bag", str(sim / "bag"), "--out", str(tmp_path / "robot"),
                   "--joint-rate-hz", "500"])
    assert rc == 0
    with pytest.raises(InputError, match="robot already exists"):
        recode_bag(sim / "bag", tmp_path / "robot")
    info = recode_bag(sim / "bag", tmp_path / "robot2", joint_rate_hz=500.0)
    assert info["format"] == "rgb8; jpeg compressed bgr8" and info["image_topic"] == "/camera/image_raw/compressed"
    streams = read_bag(tmp_path / "robot")
    assert 480 < 1.0 / np.median(np.diff(streams.joint_stamps)) < 520
    rc = cli_main(["dataset", "--bag", str(tmp_path / "robot"), "--out", str(tmp_path / "ds"), "--image-size", "64",
                   "--test-episodes", "1", "--channel-order", "rgb"])
    assert rc == 0
    own, ours = _arrays(sim), _arrays(tmp_path / "ds")
    for split in ("train", "test"):
        diff = np.abs(ours[f"{split}/images"].astype(int) - own[f"{split}/images"])
        assert diff.mean() < 3.0, "JPEG at quality 95 changes a pixel by a few levels at most on average"
        np.testing.assert_allclose(ours[f"{split}/joints"], own[f"{split}/joints"], rtol=0, atol=1e-4)
    from eipl_trt.train.data import load_dataset

    data = load_dataset(tmp_path / "ds", "sarnn", im_size=64)  # the training code's own reader and checks
    assert data.joint_names == tuple(json.loads((sim / "dataset.json").read_text())["joint_names"])
    assert data.rate_hz == 10.0 and data.channel_order == "rgb" and data.train.images.shape[:2] == (2, STEPS)


def test_rate_image_size_and_joint_selection(sim: Path, tmp_path: Path) -> None:
    rc = cli_main(["dataset", "--bag", str(sim / "bag"), "--out", str(tmp_path / "ds"), "--rate-hz", "4",
                   "--image-size", "128", "--test-episodes", "1", "--joints", "r_elbow_flex_joint,r_shoulder_pan_joint"])
    assert rc == 0
    meta = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert meta["joint_names"] == ["r_elbow_flex_joint", "r_shoulder_pan_joint"] and meta["image_size"] == [128, 128]
    assert meta["steps"] == 5 and meta["episode_lengths"] == {"train": [5, 5], "test": [5]}  # 1.1 s at 4 Hz


def test_padding_repeats_the_last_step(tmp_path: Path) -> None:
    from eipl_trt.bagio import Episode
    from eipl_trt.bagio.dataset import pad_episodes

    def ep(n: int) -> Episode:
        return Episode(images=np.full((n, 2, 2, 3), n, np.uint8), channel_order="rgb", encoding="rgb8",
                       joints=np.arange(n, dtype=float)[:, None], joint_names=("a",), stamps=np.arange(n) / 10.0,
                       rate_hz=10.0, source=f"ep{n}")

    images, joints, lengths = pad_episodes([ep(3), ep(5)])
    assert lengths == [3, 5] and images.shape == (2, 5, 2, 2, 3) and joints.dtype == np.float32
    assert joints[0, :, 0].tolist() == [0, 1, 2, 2, 2] and np.all(images[0, 3:] == 3)
    np.testing.assert_allclose(joint_bounds(np.array([[0.0, 1.0], [1.0, 1.0]])), [[-0.06, 0.99], [1.06, 1.01]], atol=1e-6)


def test_clear_errors_for_bags_it_cannot_use(sim: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="image size 100 px"):
        bags_to_dataset([sim / "bag"], tmp_path / "a", image_size=100)
    with pytest.raises(InputError, match="found 3 usable episode.*--test-episodes 3"):
        bags_to_dataset([sim / "bag"], tmp_path / "a", image_size=64, test_episodes=3)
    with pytest.raises(InputError, match="cannot use bag .*missing.*does not exist"):
        bags_to_dataset([sim / "bag", tmp_path / "missing"], tmp_path / "a", image_size=64)
    with pytest.raises(InputError, match="cannot use bag .*joint\\(s\\) wrist not found"):
        bags_to_dataset([sim / "bag"], tmp_path / "a", image_size=64, joint_names=["wrist"])
    with pytest.raises(InputError, match="marker topic /reset is not in the bag"):
        bags_to_dataset([sim / "bag"], tmp_path / "a", image_size=64, marker_topic="/reset")
    assert not (tmp_path / "a").exists()
    bags_to_dataset([sim / "bag"], tmp_path / "b", image_size=64)
    before = (tmp_path / "b" / "train" / "images.npy").read_bytes()
    with pytest.raises(InputError, match="already exists and is not empty; pass --overwrite"):
        bags_to_dataset([sim / "bag"], tmp_path / "b", image_size=64)
    bags_to_dataset([sim / "bag"], tmp_path / "b", image_size=64, rate_hz=5.0, overwrite=True)
    assert (tmp_path / "b" / "train" / "images.npy").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temporary or old directories left


def test_sample_bag_in_jpeg_reads_like_the_raw_one(tmp_path: Path) -> None:
    """The acceptance bag of the compressed path: data/pusher_sample re-recorded as JPEG (quality 95)."""
    recode_bag(REPO / "data" / "pusher_sample", tmp_path / "jpeg")
    raw, jpeg = load_episodes(REPO / "data" / "pusher_sample"), load_episodes(tmp_path / "jpeg", channel_order="rgb")
    assert [len(e) for e in raw] == [len(e) for e in jpeg]
    for a, b in zip(raw, jpeg):
        assert np.array_equal(a.joints, b.joints)
        assert np.abs(a.images.astype(int) - b.images).mean() < 3.0


def test_dataset_without_bag_or_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(["dataset", "--out", "x"])
    assert exc.value.code == 2
    assert "required: --bag (or a subcommand: recode, merge)" in capsys.readouterr().err


def test_recode_refuses_bags_it_cannot_use(sim: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read bag"):
        recode_bag(tmp_path / "missing", tmp_path / "out")
    recode_bag(sim / "bag", tmp_path / "jpeg")
    with pytest.raises(InputError, match="needs exactly one sensor_msgs/msg/Image"):
        recode_bag(tmp_path / "jpeg", tmp_path / "again")  # its frames are compressed now
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jpeg"]  # nothing half-written


def test_merge_joins_train_splits_and_keeps_the_firsts_test_split_and_bounds(sim: Path, tmp_path: Path) -> None:
    bags_to_dataset([sim / "bag"], tmp_path / "other", image_size=64, test_episodes=2)  # 1 train episode
    rc = cli_main(["dataset", "merge", "--out", str(tmp_path / "merged"), str(sim), str(tmp_path / "other")])
    assert rc == 0
    merged, first, other = _arrays(tmp_path / "merged"), _arrays(sim), _arrays(tmp_path / "other")
    for kind in ("images", "joints"):
        assert np.array_equal(merged[f"train/{kind}"], np.concatenate([first[f"train/{kind}"], other[f"train/{kind}"]]))
        assert np.array_equal(merged[f"test/{kind}"], first[f"test/{kind}"])
    assert np.array_equal(np.load(tmp_path / "merged" / "joint_bounds.npy"), np.load(sim / "joint_bounds.npy"))
    meta = json.loads((tmp_path / "merged" / "dataset.json").read_text())
    assert meta["episodes"] == {"train": 3, "test": 1}
    assert [m["train_episodes"] for m in meta["merged_from"]] == [2, 1]
    assert meta["joint_names"] == json.loads((sim / "dataset.json").read_text())["joint_names"]
    with pytest.raises(InputError, match="merged already exists"):
        merge_datasets([sim], tmp_path / "merged")
    with pytest.raises(InputError, match="not an EIPL dataset directory: train/images.npy"):
        merge_datasets([sim, tmp_path / "missing"], tmp_path / "m2")
    bags_to_dataset([sim / "bag"], tmp_path / "wide", image_size=128, test_episodes=1)
    with pytest.raises(InputError, match="train splits differ.*give --image-size"):
        merge_datasets([sim, tmp_path / "wide"], tmp_path / "m3")
    assert not (tmp_path / "m2").exists() and not (tmp_path / "m3").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging directories left

    # --image-size: the 128 px source is resized as training resizes it, and then equals the 64 px one
    assert cli_main(["dataset", "merge", "--out", str(tmp_path / "m4"), "--image-size", "64", str(sim),
                     str(tmp_path / "wide")]) == 0
    resized, wide = _arrays(tmp_path / "m4"), _arrays(tmp_path / "wide")
    assert resized["train/images"].shape[2:] == (64, 64, 3) and resized["test/images"].shape[2:] == (64, 64, 3)
    from eipl_trt.imaging import resize_bilinear

    n = len(first["train/images"])
    assert np.array_equal(resized["train/images"][:n], first["train/images"])  # already 64 px: unchanged
    assert np.array_equal(resized["train/images"][n, 0], resize_bilinear(wide["train/images"][0, 0], (64, 64)))
    assert json.loads((tmp_path / "m4" / "dataset.json").read_text())["image_size"] == [64, 64]


def test_merge_pads_shorter_sequences_by_repeating_their_last_step(sim: Path, tmp_path: Path) -> None:
    """A DAgger takeover round's episodes start where the expert took over: shorter than the base data's."""
    import shutil

    def shortened(source: Path, target: Path, split: str, by: int) -> Path:
        shutil.copytree(source, target)
        for kind in ("images", "joints"):
            array = np.load(target / split / f"{kind}.npy")
            np.save(target / split / f"{kind}.npy", array[:, :-by])
        return target

    first = _arrays(sim)
    steps = first["train/joints"].shape[1]
    short = shortened(sim, tmp_path / "short", "train", 3)
    merge_datasets([sim, short], tmp_path / "m")
    merged = _arrays(tmp_path / "m")
    assert merged["train/joints"].shape[1] == merged["train/images"].shape[1] == steps
    tail = merged["train/joints"][len(first["train/joints"]):]  # the short source's episodes
    assert np.array_equal(tail[:, : steps - 3], first["train/joints"][:, : steps - 3])
    assert np.array_equal(tail[:, steps - 3:], np.repeat(tail[:, steps - 4: steps - 3], 3, axis=1))
    assert np.array_equal(merged["test/joints"], first["test/joints"])  # already the longest

    # a first source with a shorter test split: the test split is padded too (training needs one T)
    short_test = shortened(sim, tmp_path / "short_test", "test", 2)
    merge_datasets([short_test, sim], tmp_path / "m2")
    padded = _arrays(tmp_path / "m2")
    assert padded["test/images"].shape[1] == padded["train/images"].shape[1] == steps
    assert np.array_equal(padded["test/images"][:, -2:], np.repeat(padded["test/images"][:, -3:-2], 2, axis=1))
    if importlib.util.find_spec("torch") is not None:  # what training reads: one T in train and test
        from eipl_trt.train.data import load_dataset

        assert load_dataset(tmp_path / "m2", "sarnn").train.images.shape[1] == steps


def test_labels_are_sampled_at_the_ticks_and_episodes_cut_at_their_start() -> None:
    """bagio.labels: a target topic interpolated at each episode's ticks; a start topic trims and filters."""
    from eipl_trt.bagio import Episode
    from eipl_trt.bagio.labels import StampedJoints, from_starts, with_targets

    ticks = 100.0 + np.arange(6) * 0.1
    joints = np.stack([np.arange(6.0), -np.arange(6.0)], axis=1)
    episode = Episode(images=np.zeros((6, 4, 4, 3), np.uint8), channel_order="rgb", encoding="rgb8", joints=joints,
                      joint_names=("a", "b"), stamps=ticks, rate_hz=10.0, source="bag episode 0")
    due = ticks[1:]  # the intent computed at frame k is due at tick k + 1
    intent = StampedJoints(due, ("a", "b"), np.stack([10 + np.arange(1, 6.0), np.zeros(5)], axis=1))
    [labelled] = with_targets([episode], intent)
    assert labelled.targets is not None
    np.testing.assert_array_equal(labelled.targets[1:, 0], 10 + np.arange(1, 6.0))
    np.testing.assert_array_equal(labelled.targets[0], joints[0])  # nothing due at the first tick: never a label
    [cut] = from_starts([labelled], np.array([100.2 - 1e-7, 100.4]))
    np.testing.assert_array_equal(cut.stamps, ticks[2:])
    np.testing.assert_array_equal(cut.targets, labelled.targets[2:])
    assert cut.source == "bag episode 0 from step 2"
    assert from_starts([labelled], np.array([50.0])) == []  # no start inside: the model's own part, dropped
    assert from_starts([labelled], np.array([100.45])) == []  # too short after its start
    with pytest.raises(InputError, match="target message"):
        with_targets([episode], StampedJoints(np.array([1.0]), ("a", "b"), np.zeros((1, 2))))


def test_merge_keeps_labels_and_fills_them_with_joints_where_a_source_has_none(tmp_path: Path) -> None:
    from eipl_trt.bagio.merge import merge_datasets

    def make(root: Path, n: int, labelled: bool) -> Path:
        for split in ("train", "test"):
            (root / split).mkdir(parents=True)
            np.save(root / split / "images.npy", np.zeros((n, 4, 8, 8, 3), np.uint8))
            np.save(root / split / "joints.npy", np.full((n, 4, 2), float(n), np.float32))
            if labelled:
                np.save(root / split / "targets.npy", np.full((n, 4, 2), -1.0, np.float32))
        np.save(root / "joint_bounds.npy", np.array([[0.0, 0.0], [5.0, 5.0]], np.float32))
        (root / "dataset.json").write_text(json.dumps({"episodes": {"train": n, "test": n}}))
        return root

    merge_datasets([make(tmp_path / "a", 2, True), make(tmp_path / "b", 3, False)], tmp_path / "m")
    targets = np.load(tmp_path / "m" / "train" / "targets.npy")
    assert targets.shape == (5, 4, 2)
    np.testing.assert_array_equal(targets[:2], -1.0)  # a's labels
    np.testing.assert_array_equal(targets[2:], 3.0)  # b has none: its joints are its labels
