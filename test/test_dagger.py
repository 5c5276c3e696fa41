"""eipl-trt sim dagger's bookkeeping (rounds, selection, stopping, resuming) and the ROS-free closed loop it selects with.

The steps that take minutes to hours (recording in real time, training) are replaced by recorders of what they
were asked; test_sim_record.py and test_train.py test them for real.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eipl_trt.errors import InputError
from eipl_trt.sim import dagger


class Steps:
    """Stand-ins for the round's steps; ``vals`` are the validation results of each round's candidates."""

    def __init__(self, vals: list[list[tuple[int, float]]], start: tuple[int, float] = (10, 0.06)) -> None:
        self.vals, self.start = vals, start
        self.calls: list[tuple[Any, ...]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(dagger, "_validate", lambda model, cfg: self.start)
        monkeypatch.setattr(dagger, "_record", lambda rec, cfg, model, seed, drive, say: self.calls.append(
            ("record", model, seed, drive)) or str(rec / "bag"))
        monkeypatch.setattr(dagger, "_dataset", lambda here, model, drive, labels: here / "data")
        monkeypatch.setattr(dagger, "_train", lambda here, cfg, model, datasets, say: self.calls.append(
            ("train", model, tuple(datasets))) or str(here / "train"))

        def select(here: Path, cfg: Any, say: Any) -> list[dict[str, Any]]:
            r = int(here.name.removeprefix("round"))
            return [{"epoch": e, "dir": f"{here}/e{e}", "val": list(v)} for e, v in enumerate(self.vals[r])]

        monkeypatch.setattr(dagger, "_select", select)


def test_rounds_choose_by_closed_loop_success_and_stop_when_it_no_longer_rises(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    steps = Steps([[(9, 0.05), (12, 0.07), (12, 0.05)], [(11, 0.04)], [(15, 0.03)]])
    steps.install(monkeypatch)
    cfg = dagger.DaggerConfig(model="sarnn8", out=str(tmp_path), rounds=3, seed=100, first_round="drive",
                              base_data=("base",))
    state = dagger.run_dagger(cfg, say=lambda line: None)
    first = state["rounds"][0]
    assert first["best"] == {"epoch": 2, "dir": f"{tmp_path}/round0/e2", "val": [12, 0.05]}  # then the shorter distance
    assert state["current"] == f"{tmp_path}/round0/e2" and state["current_val"] == [12, 0.05]
    assert "round 1's best (11) did not beat the current model (12)" in state["stopped"]
    assert len(state["rounds"]) == 2  # round 2 never ran
    assert steps.calls[0][2:] == (100, True) and steps.calls[2][2:] == (101, False)  # drive, then takeovers
    assert steps.calls[2][1] == f"{tmp_path}/round0/e2"  # round 1 drives with round 0's winner
    assert steps.calls[3][2] == ("base", str(tmp_path / "round0" / "data"), str(tmp_path / "round1" / "data"))
    assert json.loads((tmp_path / "dagger.json").read_text())["stopped"] == state["stopped"]


def test_an_interrupted_run_continues_where_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = Steps([[(11, 0.05)], [(13, 0.04)]])
    steps.install(monkeypatch)
    cfg = dagger.DaggerConfig(model="sarnn8", out=str(tmp_path), rounds=1, seed=100)
    dagger.run_dagger(cfg, say=lambda line: None)
    more = dagger.DaggerConfig(model="sarnn8", out=str(tmp_path), rounds=2, seed=100)
    state = dagger.run_dagger(more, say=lambda line: None)
    assert [c[0] for c in steps.calls] == ["record", "train", "record", "train"]  # round 0 was not redone
    assert state["current_val"] == [13, 0.04] and len(state["rounds"]) == 2
    with pytest.raises(InputError, match="belongs to a run from sarnn8 with --seed 100"):
        dagger.run_dagger(dagger.DaggerConfig(model="sarnn8", out=str(tmp_path), seed=7), say=lambda line: None)


def test_the_ros_free_loop_is_deterministic_and_refuses_a_delay_beyond_a_frame() -> None:
    from eipl_trt.sim.rollout import RolloutConfig, closed_loop

    cfg = RolloutConfig(seed=1, episodes=1, frames=12, delay_periods=1)
    a, b = closed_loop("sarnn8", cfg), closed_loop("sarnn8", cfg)
    assert a[0].final_distance_m == b[0].final_distance_m and a[0].commands == 11
    assert a[0].limit_violations == 0
    with pytest.raises(InputError, match="delay_periods must be 0..4"):
        RolloutConfig(delay_periods=5)


def _run_dir(tmp_path: Path) -> Path:
    """A training output's skeleton: args.json and an empty epochs/."""
    run = tmp_path / "train"
    (run / "epochs").mkdir(parents=True)
    (run / "args.json").write_text(json.dumps({"model": "sarnn", "leaky_slope": 0.3, "im_size": 64, "joint_names": [],
                                               "rate_hz": 10.0, "channel_order": "rgb"}))
    return run


def test_selection_drives_every_nth_epoch_and_the_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import eipl_trt.models.export as export

    run = _run_dir(tmp_path)
    for e in range(8):
        (run / "epochs" / f"epoch_{e:03d}.pth").write_bytes(b"w")
    driven: list[str] = []
    monkeypatch.setattr(export, "export_checkpoint", lambda *a, out_dir, **k: Path(out_dir).mkdir(parents=True, exist_ok=True))
    monkeypatch.setattr(dagger, "_validate", lambda model, cfg: driven.append(Path(model).name) or (len(driven), 0.05))
    cfg = dagger.DaggerConfig(model="sarnn8", out=str(tmp_path), select_every=3)
    found = dagger._select(tmp_path, cfg, say=lambda line: None)
    assert driven == ["epoch_000", "epoch_003", "epoch_006", "epoch_007"]
    assert [c["epoch"] for c in found] == [0, 3, 6, 7]
    assert dagger._select(tmp_path, cfg, say=lambda line: None) == found and len(driven) == 4  # cached
    with pytest.raises(InputError, match=r"--every \(sim dagger: --select-every\) must be >= 1"):
        dagger.DaggerConfig(model="sarnn8", out="x", select_every=0)
    from eipl_trt.cli import main

    assert main(["sim", "select", "--run", str(tmp_path), "--out", str(tmp_path / "o"), "--every", "0"]) == 1
    assert "--every (sim dagger: --select-every) must be >= 1 (1 = every epoch), got 0" in capsys.readouterr().err


@pytest.mark.parametrize("freeze", [False, True])
def test_training_freezes_the_image_path_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, freeze: bool) -> None:
    import eipl_trt.bagio.merge as merge
    import eipl_trt.train as train

    seen: list[Any] = []
    monkeypatch.setattr(merge, "merge_datasets", lambda datasets, out: (Path(out).mkdir(), (Path(out) / "dataset.json").write_text("{}")))

    def fake_train(config: Any, data: Path, out: Path, progress: bool, resume: bool) -> Any:
        seen.append(config)
        out.mkdir(parents=True)
        (out / "log.csv").write_text("epoch,frames_per_s\n0,100\n")

        class Result:
            epochs_run, wall_time_s = 1, 1.0
        return Result()

    monkeypatch.setattr(train, "train", fake_train)
    cfg = dagger.DaggerConfig(model="sarnn8", out=str(tmp_path), freeze_image=freeze, select_every=5, autocast="bf16")
    dagger._train(tmp_path, cfg, "sarnn8", ["a", "b"], say=lambda line: None)
    (config,) = seen
    assert config.freeze_image is freeze and config.keep_epochs and config.eval_every == 5
    assert config.autocast == ("none" if freeze else "bf16")  # frozen: the LSTM alone, in fp32
    assert config.init_from.endswith("sarnn8/model.pth") and config.k_dim == 8


def test_the_average_of_the_last_epochs_is_one_more_candidate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    import eipl_trt.models.export as export

    run = _run_dir(tmp_path)
    for e in range(5):
        torch.save({"epoch": e, "model_state_dict": {"w": torch.full((2,), float(e)), "n": torch.tensor(7)}},
                   run / "epochs" / f"epoch_{e:03d}.pth")
    exported: dict[str, Any] = {}
    monkeypatch.setattr(export, "export_checkpoint", lambda kind, ckpt, *, out_dir, **k: exported.update(
        {Path(out_dir).name: torch.load(ckpt, weights_only=True)}))
    monkeypatch.setattr(dagger, "_validate", lambda model, cfg: (3 if "avg" in model else 1, 0.05))
    cfg = dagger.DaggerConfig(model="sarnn8", out=str(tmp_path), select_every=2, average_last=3, epochs=5)
    found = dagger._select(tmp_path, cfg, say=lambda line: None)
    assert [c["epoch"] for c in found] == [0, 2, 4, "avg 2-4"]
    avg = exported["avg_002_004"]
    assert torch.equal(avg["model_state_dict"]["w"], torch.full((2,), 3.0)) and avg["averaged_epochs"] == [2, 3, 4]
    assert int(avg["model_state_dict"]["n"]) == 7  # integer buffers are copied, not averaged
    assert (tmp_path / "candidates" / "avg_002_004" / "model.pth").is_file()
    assert max(found, key=lambda c: c["val"][0])["epoch"] == "avg 2-4"
    with pytest.raises(InputError, match="--average-last must be 0..--epochs"):
        dagger.DaggerConfig(model="sarnn8", out="x", epochs=5, average_last=6)


def test_averaging_refuses_weights_of_different_models() -> None:
    import torch

    from eipl_trt.errors import EipltrtError
    from eipl_trt.train.average import average_state_dicts

    with pytest.raises(EipltrtError, match="average only epochs of one training run"):
        average_state_dicts([{"w": torch.zeros(2)}, {"w": torch.zeros(3)}])
    with pytest.raises(EipltrtError, match="nothing to average"):
        average_state_dicts([])


def test_sim_select_drives_real_exports_and_the_average(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """End to end on the bundled controller's weights: real export, real ONNX Runtime, the real ROS-free loop."""
    import shutil

    import numpy as np
    import torch

    from eipl_trt.cli import main
    from eipl_trt.paths import resolve_model

    spec = resolve_model("sarnn8")
    run = tmp_path / "run"
    (run / "epochs").mkdir(parents=True)
    shutil.copy2(Path(spec.directory) / "args.json", run / "args.json")
    np.save(run / "joint_bounds.npy", np.array([spec.joint_min, spec.joint_max], np.float32))
    weights = torch.load(Path(spec.directory) / "model.pth", weights_only=True)
    for e in (0, 1):  # the same weights twice: their average is exactly them
        torch.save({"epoch": e, "model_state_dict": weights["model_state_dict"]}, run / "epochs" / f"epoch_{e:03d}.pth")
    out = tmp_path / "sel"
    assert main(["sim", "select", "--run", str(run), "--out", str(out), "--val-seed", "1", "--val-episodes", "1",
                 "--every", "5", "--average-last", "2"]) == 0
    found = json.loads((out / "candidates.json").read_text())
    assert [c["epoch"] for c in found] == [0, 1, "avg 0-1"]
    assert found[0]["val"] == found[1]["val"] == found[2]["val"]  # same weights, same deterministic loop
    assert "best: epoch 0 (" in capsys.readouterr().out
    assert (out / "candidates" / "avg_000_001" / "model.onnx").is_file()
    with pytest.raises(InputError, match="holds 2 epochs; average fewer or train longer"):
        from eipl_trt.sim.select import SelectConfig, select_checkpoints

        select_checkpoints(run, tmp_path / "sel2", SelectConfig(average_last=3), say=lambda line: None)
