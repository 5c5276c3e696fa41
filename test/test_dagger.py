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
