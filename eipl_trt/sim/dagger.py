"""``eipl-trt sim dagger``: rounds of record -> dataset -> train -> choose by closed-loop success, resumable.

Each round, one command (every step is skipped when its output exists, so an interrupted run continues where it
stopped; training resumes from its ``resume.pt``):

1. **record** (:func:`eipl_trt.sim.collect.record`, real time over ROS 2): in round 0 with ``--first-round
   drive`` the expert alone, with DART noise (demonstrations with recoveries); otherwise the current model
   drives and the expert takes over at a random frame and replans from where the model left the arm and the
   object (HG-DAgger: the expert labels the states the model visits);
2. **dataset**: the bag as a training set, the model's own part dropped, normalized with the current model's
   joint bounds, labelled (``--labels``) with the measured joints, as the bundled models were trained
   (``joints``), or with the expert's clean intent, the DART way (``intent``);
3. **train** from the current model's weights on every round's data so far (plus ``--base-data``), keeping
   every epoch's weights; with ``--freeze-image`` only the LSTM and the joint and point heads train, on the
   attention points the current model's image path gives each frame (computed once), so hundreds of epochs
   fit in minutes on a CPU (how the bundled ``sarnn8rt`` was made from ``sarnn8``);
4. **select**: every ``--select-every``-th epoch's model (the last one too) and the current model driven on
   the validation layouts without ROS, and with ``--average-last N`` the mean of the last N epochs' weights
   (:func:`eipl_trt.sim.rollout.closed_loop`, the node's real-time timing); the most successes win (then the
   lower mean final distance). The round's winner is the next round's model; a round whose best does not beat
   the current model keeps the current one and the run stops.

Validation layouts (``--val-seed``) must be used for neither training nor reporting; the recorded layouts are
``--seed`` + round.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from eipl_trt.common.atomic import write_json_atomic
from eipl_trt.errors import InputError

__all__ = ["DaggerConfig", "run_dagger"]

log = logging.getLogger(__name__)
STATE = "dagger.json"


@dataclass(frozen=True)
class DaggerConfig:
    """A DAgger run (see the module docstring); training options are ``eipl-trt train``'s."""

    model: str
    out: str
    rounds: int = 2
    episodes: int = 100
    seed: int = 200
    first_round: str = "takeover"
    labels: str = "joints"
    base_data: tuple[str, ...] = ()
    val_seed: int = 21
    val_episodes: int = 20
    epochs: int = 10
    batch_size: int = 16
    lr: float = 5e-4
    stdev: float = 0.02
    input_mix: float = 1.0
    autocast: str = "none"
    channels_last: bool = True
    threads: int = 2
    freeze_image: bool = False
    select_every: int = 1
    average_last: int = 0
    record: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.first_round not in ("drive", "takeover"):
            raise InputError(f"--first-round must be drive or takeover, got {self.first_round!r}")
        if self.labels not in ("joints", "intent"):
            raise InputError(f"--labels must be joints or intent, got {self.labels!r}")
        if self.rounds < 1 or self.episodes < 2:
            raise InputError(f"need --rounds >= 1 and --episodes >= 2, got {self.rounds} and {self.episodes}")
        if self.average_last > self.epochs:
            raise InputError(f"--average-last must be 0..--epochs ({self.epochs}), got {self.average_last}")
        _selection(self)  # refuses a bad --select-every / --average-last / --val-episodes


def run_dagger(cfg: DaggerConfig, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or continue) the rounds; returns the state (also ``OUT/dagger.json``)."""
    from eipl_trt.paths import resolve_model

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    state = _load_state(out, cfg)
    if "current" not in state:
        spec = resolve_model(cfg.model)
        state["current"] = str(spec.directory)
        state["current_val"] = _validate(state["current"], cfg)
        _save(out, state)
        say(f"start: {state['current']} solves {state['current_val'][0]}/{cfg.val_episodes} validation layouts")
    for r in range(len(state["rounds"]), cfg.rounds):
        if state.get("stopped"):
            break
        _round(r, cfg, out, state, say)
    return state


def _load_state(out: Path, cfg: DaggerConfig) -> dict[str, Any]:
    path = out / STATE
    if not path.exists():
        return {"config": asdict(cfg), "rounds": []}
    state = json.loads(path.read_text())
    if state["config"]["model"] != cfg.model or state["config"]["seed"] != cfg.seed:
        raise InputError(f"{path} belongs to a run from {state['config']['model']} with --seed "
                         f"{state['config']['seed']}; continue it with the same --model and --seed or use another --out")
    if state["rounds"] and not state["rounds"][-1].get("done"):
        state["rounds"].pop()  # redo the unfinished round's bookkeeping; its finished steps are on disk
    return state


def _save(out: Path, state: dict[str, Any]) -> None:
    write_json_atomic(out / STATE, state)


def _round(r: int, cfg: DaggerConfig, out: Path, state: dict[str, Any], say: Callable[[str], None]) -> None:
    from eipl_trt.sim.select import best_candidate

    here = out / f"round{r}"
    entry: dict[str, Any] = {"round": r, "from": state["current"]}
    state["rounds"].append(entry)
    drive = r == 0 and cfg.first_round == "drive"
    started = time.monotonic()
    entry["record"] = _record(here / "rec", cfg, state["current"], cfg.seed + r, drive, say)
    entry["dataset"] = str(_dataset(here, state["current"], drive, cfg.labels))
    datasets = [*cfg.base_data, *(str(Path(e["dataset"])) for e in state["rounds"])]
    entry["train"] = _train(here, cfg, state["current"], datasets, say)
    candidates = _select(here, cfg, say)
    best = best_candidate(candidates)
    entry.update({"candidates": candidates, "best": best, "minutes": round((time.monotonic() - started) / 60, 1)})
    if (best["val"][0], -best["val"][1]) > (state["current_val"][0], -state["current_val"][1]):
        state["current"], state["current_val"] = best["dir"], best["val"]
        say(f"round {r}: {best['dir']} solves {best['val'][0]}/{cfg.val_episodes} validation layouts: the new model")
    else:
        state["stopped"] = f"round {r}'s best ({best['val'][0]}) did not beat the current model ({state['current_val'][0]})"
        say(f"round {r}: {state['stopped']}; stopping")
    entry["done"] = True
    _save(out, state)


def _record(rec: Path, cfg: DaggerConfig, model: str, seed: int, drive: bool, say: Callable[[str], None]) -> str:
    from eipl_trt.sim.collect import RecordConfig, record

    if (rec / "record.json").exists():
        return str(rec / "bag")
    if rec.exists():
        shutil.rmtree(rec)  # an interrupted recording: its bag was never completed
    say(f"recording {cfg.episodes} episodes of seed {seed} in {rec} ({'the expert' if drive else model + ' with takeovers'})")
    options = dict(cfg.record)
    if not drive:
        options.setdefault("dart_sigma", (0.0, 0.0))
    summary = record(RecordConfig(out=str(rec), episodes=cfg.episodes, seed=seed, model="" if drive else model,
                                  **options))
    return summary["bag"]


def _dataset(here: Path, model: str, drive: bool, labels: str = "joints") -> Path:
    import numpy as np

    from eipl_trt.bagio.dataset import bags_to_dataset
    from eipl_trt.paths import resolve_model

    data = here / "data"
    if (data / "dataset.json").exists():
        return data
    spec = resolve_model(model)
    bounds = np.array([spec.joint_min, spec.joint_max], np.float32)
    bags_to_dataset([here / "rec" / "bag"], data, image_size=int(spec.image_height), image_topic="/camera/image_raw",
                    joint_topic="/joint_states", target_topic="/expert/intent" if labels == "intent" else None,
                    marker_topic="/sim/episode", start_topic=None if drive else "/expert/takeover", bounds=bounds,
                    overwrite=True)
    return data


def _train(here: Path, cfg: DaggerConfig, model: str, datasets: list[str], say: Callable[[str], None]) -> str:
    """Fine-tune the current model on ``datasets`` (merged); resumes an interrupted run."""
    from eipl_trt.bagio.merge import merge_datasets
    from eipl_trt.paths import resolve_model
    from eipl_trt.train import TrainConfig, train

    merged = here / "train_data"
    if not (merged / "dataset.json").exists():
        if merged.exists():
            shutil.rmtree(merged)
        merge_datasets(datasets, merged)
    spec = resolve_model(model)
    args = json.loads((Path(spec.directory) / "args.json").read_text())
    config = TrainConfig(
        model=spec.model, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, rec_dim=int(args["rec_dim"]),
        k_dim=int(args.get("k_dim", 5)), feat_dim=int(args.get("feat_dim", 10)), im_size=int(args.get("im_size", 64)),
        leaky_slope=float(args.get("leaky_slope", 0.3)), heatmap_size=float(args.get("heatmap_size", 0.1)),
        temperature=float(args.get("temperature", 1e-4)), stdev=cfg.stdev, decay_end=1, seed=len(datasets),
        threads=cfg.threads, init_from=str(Path(spec.directory) / "model.pth"), select_by="joint",
        input_mix=cfg.input_mix, keep_epochs=True, freeze_image=cfg.freeze_image, eval_every=cfg.select_every,
        # the frozen mode trains the LSTM alone on cached points: no convolutions for bf16 or NHWC to speed up
        autocast="none" if cfg.freeze_image else cfg.autocast, channels_last=cfg.channels_last and not cfg.freeze_image)
    run = here / "train"
    if (run / "metrics.json").exists():
        return str(run)
    resume = (run / "resume.pt").exists()
    say(f"training {spec.model} on {', '.join(datasets)} for {cfg.epochs} epochs in {run}" + (" (resumed)" if resume else ""))
    result = train(config, merged, run, progress=False, resume=resume)
    fps = [r.get("frames_per_s") for r in _log_rows(run)]
    say(f"trained {result.epochs_run} epochs in {result.wall_time_s / 60:.1f} min ({_median(fps):.0f} frames/s)")
    return str(run)


def _log_rows(run: Path) -> list[dict[str, Any]]:
    import csv

    with open(run / "log.csv", encoding="utf-8") as handle:
        return [{k: float(v) if v not in ("", None) else None for k, v in row.items()} for row in csv.DictReader(handle)]


def _median(values: list[Any]) -> float:
    import numpy as np

    found = [v for v in values if v is not None]
    return float(np.median(found)) if found else float("nan")


def _selection(cfg: DaggerConfig) -> Any:
    from eipl_trt.sim.select import SelectConfig

    return SelectConfig(val_seed=cfg.val_seed, val_episodes=cfg.val_episodes, every=cfg.select_every,
                        average_last=cfg.average_last)


def _validate(model: str, cfg: DaggerConfig) -> tuple[int, float]:
    """(successes, mean final distance m) of ``model`` on the validation layouts (real-time timing, no ROS)."""
    from eipl_trt.sim.select import validate

    return validate(model, _selection(cfg))


def _select(here: Path, cfg: DaggerConfig, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """The round's candidates driven on the validation layouts (:func:`eipl_trt.sim.select.select_checkpoints`)."""
    from eipl_trt.sim.select import select_checkpoints

    return select_checkpoints(here / "train", here, _selection(cfg), say, validator=lambda model, _: _validate(model, cfg))
