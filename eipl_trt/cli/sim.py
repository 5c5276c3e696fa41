"""Generate simulated demonstrations: a scripted expert pushes an object to a goal with the 7-joint
MuJoCo Pusher arm (gymnasium Pusher-v5). The camera (RGB) and the joint positions are recorded at
10 Hz into an EIPL dataset directory (train/ and test/ images.npy + joints.npy, joint_bounds.npy,
dataset.json) and, unless --no-bag, into a rosbag2 (MCAP) with /camera/image_raw and
/joint_states (50 Hz), as a robot would record them.

Example:
    eipl-trt sim --out data_work/pusher --train 32 --test 8 --seed 0

Subcommands record the way a lab does, over ROS 2 in real time (eipl_trt.sim.collect):

    eipl-trt sim record --out data_work/rec100 --episodes 200 --seed 100     # the expert, DART noise, variations
    eipl-trt sim record --out data_work/dagger1 --model runs/r0 --seed 200   # a model drives, the expert takes over

then `eipl-trt dataset --bag OUT/bag ...` (record prints the full command) makes the training set.
In-process, on the scene's clock (eipl_trt.sim.demos): `eipl-trt sim perturbed` (the expert with a
joint-reference offset) and `eipl-trt sim recovery` (a model drives, the expert rescues).
"""

from __future__ import annotations

import argparse

HELP = "MuJoCo Pusher demonstrations: generate in-process, or record over ROS 2 in real time (record)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``sim`` flags."""
    parser.add_argument("--out", help="dataset directory to create (required without a subcommand)")
    parser.add_argument("--train", type=int, default=24, help="number of training episodes (default: %(default)s)")
    parser.add_argument("--test", type=int, default=6, help="number of test episodes (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed; episode i uses (seed, i) (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=70,
                        help="frames per episode at 10 Hz; the expert needs about 6.1 s (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=128,
                        help="camera image side in px; SARNN's 64 px is made by resizing (default: %(default)s)")
    bag = parser.add_mutually_exclusive_group()
    bag.add_argument("--bag", default=None,
                     help="where to write the rosbag2 directory (default: OUT/bag)")
    bag.add_argument("--no-bag", action="store_true", help="do not write a rosbag2")
    parser.add_argument("--bag-test-only", action="store_true",
                        help="put only the test episodes into the bag (default: train then test)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists and is not empty")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(_sim_parser=parser, _sim_run=None)
    sub = parser.add_subparsers(dest="sim_command", metavar="SUBCOMMAND")
    _add_record(sub.add_parser("record", help="record the expert (or a model with the expert taking over) over ROS 2 "
                               "into a rosbag2", description=_doc("eipl_trt.sim.collect"),
                               formatter_class=argparse.RawDescriptionHelpFormatter))
    _add_dagger(sub.add_parser("dagger", help="rounds of real-time recording, training and closed-loop checkpoint "
                               "selection (resumable)", description=_doc("eipl_trt.sim.dagger"),
                               formatter_class=argparse.RawDescriptionHelpFormatter))
    _add_select(sub.add_parser("select", help="choose a training run's weights by closed-loop success on validation "
                               "layouts (every N-th epoch, the mean of the last N)", description=_doc("eipl_trt.sim.select"),
                               formatter_class=argparse.RawDescriptionHelpFormatter))
    demos = _doc("eipl_trt.sim.demos")
    _add_perturbed(sub.add_parser("perturbed", help="the expert with an OU offset on its joint reference, in-process "
                                  "(demonstrations that leave the path and come back)", description=demos,
                                  formatter_class=argparse.RawDescriptionHelpFormatter))
    _add_recovery(sub.add_parser("recovery", help="a model drives, the expert takes over and is recorded, "
                                 "in-process (DAgger-style rescues)", description=demos,
                                 formatter_class=argparse.RawDescriptionHelpFormatter))


def _doc(module: str) -> str:
    """A module's docstring, read without importing it."""
    import ast
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return ""
    return ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8"))) or ""


def _add_record(p: argparse.ArgumentParser) -> None:
    from eipl_trt.sim.collect import RecordConfig

    d = RecordConfig(out="")
    p.add_argument("--out", required=True, help="directory to create: bag/, robot.json, record.json, logs/")
    p.add_argument("--episodes", type=int, default=d.episodes, help="episodes to record (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="layout seed: use one that no evaluation uses (default %(default)s)")
    p.add_argument("--first-episode", type=int, default=d.first_episode, help="index of the first layout")
    p.add_argument("--frames", type=int, default=d.frames, help="camera frames per episode (default %(default)s)")
    p.add_argument("--clock", choices=("realtime", "lockstep"), default=d.clock,
                   help="realtime: the arm runs on the wall clock, as a lab records (default %(default)s)")
    p.add_argument("--latency", type=float, nargs=2, default=list(d.latency_s), metavar=("MIN", "MAX"),
                   help="command latency drawn per episode (s) (default %(default)s)")
    p.add_argument("--camera-jitter", type=float, default=d.camera_jitter_s,
                   help="frames published up to this long after their stamp (s) (default %(default)s)")
    p.add_argument("--frame-drop", type=float, default=d.frame_drop,
                   help="probability a frame is lost (default %(default)s)")
    p.add_argument("--joint-divisors", type=int, nargs="+", default=list(d.joint_divisors),
                   help="joint_states every k-th 20 ms period, k drawn per episode (default %(default)s)")
    p.add_argument("--appearance", type=float, default=d.appearance,
                   help="light and colour variation strength (default %(default)s)")
    p.add_argument("--dart-sigma", type=float, nargs=2, default=list(d.dart_sigma), metavar=("MIN", "MAX"),
                   help="DART noise std on the executed targets, drawn per episode (rad) (default %(default)s)")
    p.add_argument("--dart-tau", type=float, default=d.dart_tau_s, help="DART noise correlation time (s)")
    p.add_argument("--model", default="", help="a model drives until the expert takes over (DAgger data)")
    p.add_argument("--takeover", type=int, nargs=2, default=list(d.takeover_frames), metavar=("FIRST", "LAST"),
                   help="hand-over frame drawn per episode, with --model (default %(default)s)")
    p.add_argument("--noise-seed", type=int, default=d.noise_seed, help="seeds the noise and hand-overs")
    p.add_argument("--node-param", action="append", default=[], metavar="NAME:=VALUE",
                   help="extra node parameter with --model (repeatable)")
    p.set_defaults(_sim_run=_run_record)


def _add_dagger(p: argparse.ArgumentParser) -> None:
    from eipl_trt.sim.dagger import DaggerConfig

    d = DaggerConfig(model="", out="")
    p.add_argument("--model", required=True, help="the model to start from (a directory with model.pth and args.json)")
    p.add_argument("--out", required=True, help="run directory (dagger.json, roundN/...); rerun to continue it")
    p.add_argument("--rounds", type=int, default=d.rounds, help="rounds (default %(default)s)")
    p.add_argument("--episodes", type=int, default=d.episodes, help="episodes recorded per round (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="layout seed of round 0; round r uses seed + r")
    p.add_argument("--first-round", choices=("takeover", "drive"), default=d.first_round,
                   help="drive: round 0 records the expert alone with DART noise (default %(default)s)")
    p.add_argument("--labels", choices=("joints", "intent"), default=d.labels,
                   help="what the model learns to output: the measured joints or the expert's clean intent "
                        "(default %(default)s)")
    p.add_argument("--base-data", nargs="*", default=[], help="datasets trained on in every round too")
    p.add_argument("--val-seed", type=int, default=d.val_seed,
                   help="validation layouts: used to choose checkpoints, never to report (default %(default)s)")
    p.add_argument("--val-episodes", type=int, default=d.val_episodes, help="validation layouts (default %(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="training epochs per round (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--stdev", type=float, default=d.stdev)
    p.add_argument("--input-mix", type=float, default=d.input_mix)
    p.add_argument("--autocast", choices=("none", "bf16"), default=d.autocast)
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--freeze-image", action="store_true",
                   help="train only the LSTM and the joint/point heads on cached attention points (eipl-trt train "
                        "--freeze-image): hundreds of epochs in minutes on a CPU")
    p.add_argument("--select-every", type=int, default=d.select_every,
                   help="drive every N-th epoch's weights (and the last's) on the validation layouts "
                        "(default %(default)s: every epoch)")
    p.add_argument("--average-last", type=int, default=d.average_last, metavar="N",
                   help="also drive the mean of the last N epochs' weights (stochastic weight averaging; "
                        "0 = off, default %(default)s)")
    p.add_argument("--dart-sigma", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                   help="DART noise of the recordings (default: eipl-trt sim record's; none under a model)")
    p.set_defaults(_sim_run=_run_dagger)


def _add_select(p: argparse.ArgumentParser) -> None:
    from eipl_trt.sim.select import SelectConfig

    d = SelectConfig()
    p.add_argument("--run", required=True, help="an eipl-trt train output trained with --keep-epochs (its epochs/)")
    p.add_argument("--out", required=True, help="where the candidates and candidates.json go; rerun to continue")
    p.add_argument("--val-seed", type=int, default=d.val_seed,
                   help="validation layouts: used for neither training nor reporting (default %(default)s)")
    p.add_argument("--val-episodes", type=int, default=d.val_episodes, help="validation layouts (default %(default)s)")
    p.add_argument("--every", type=int, default=d.every, help="drive every N-th epoch and the last (default %(default)s)")
    p.add_argument("--average-last", type=int, default=d.average_last, metavar="N",
                   help="also drive the mean of the last N epochs' weights (default %(default)s: off)")
    p.set_defaults(_sim_run=_run_select)


def _run_select(args: argparse.Namespace) -> int:
    from pathlib import Path

    from eipl_trt.sim.select import SelectConfig, best_candidate, select_checkpoints

    cfg = SelectConfig(val_seed=args.val_seed, val_episodes=args.val_episodes, every=args.every,
                       average_last=args.average_last)
    candidates = select_checkpoints(Path(args.run), Path(args.out), cfg, lambda line: print(line, flush=True))
    best = best_candidate(candidates)
    print(f"best: epoch {best['epoch']} ({best['val'][0]}/{cfg.val_episodes} validation layouts of seed {cfg.val_seed}, "
          f"mean final distance {best['val'][1] * 100:.1f} cm): {best['dir']}")
    return 0


def _add_perturbed(p: argparse.ArgumentParser) -> None:
    from eipl_trt.sim.demos import PerturbedConfig

    d = PerturbedConfig(base="", out="")
    p.add_argument("--base", required=True, help="the EIPL dataset the model was trained on (test split, bounds)")
    p.add_argument("--out", required=True, help="dataset directory to create")
    p.add_argument("--episodes", type=int, default=d.episodes, help="episodes to record (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="layout seed: one no evaluation uses (default %(default)s)")
    p.add_argument("--sigma", type=float, default=d.sigma, help="offset std (rad) (default %(default)s)")
    p.add_argument("--tau", type=float, default=d.tau, help="offset correlation time (s) (default %(default)s)")
    p.add_argument("--frames", type=int, default=d.frames, help="frames per episode at 10 Hz (default %(default)s)")
    p.add_argument("--no-base-train", action="store_true", help="train split = the perturbed episodes only")
    p.add_argument("--successful-only", action="store_true",
                   help="keep only the episodes the perturbed expert still solved (a failed push is no lesson)")
    p.set_defaults(_sim_run=_run_perturbed)


def _add_recovery(p: argparse.ArgumentParser) -> None:
    from eipl_trt.sim.demos import RecoveryConfig

    d = RecoveryConfig(model="", base="", out="")
    p.add_argument("--model", required=True, help="the model that drives first (directory or bundled name)")
    p.add_argument("--base", required=True, help="the model's EIPL dataset (test split, bounds)")
    p.add_argument("--out", required=True, help="dataset directory to create")
    p.add_argument("--episodes", type=int, default=d.episodes, help="episodes to record (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="layout seed: one no other dataset uses (default %(default)s)")
    p.add_argument("--handover", type=int, nargs=2, default=list(d.handover), metavar=("MIN", "MAX"),
                   help="model frames before the expert takes over, drawn uniformly (default %(default)s)")
    p.add_argument("--frames", type=int, default=d.frames, help="recorded frames after the hand-over (default %(default)s)")
    p.set_defaults(_sim_run=_run_recovery)


def _run_perturbed(args: argparse.Namespace) -> int:
    from eipl_trt.sim.demos import PerturbedConfig, perturbed_dataset

    cfg = PerturbedConfig(base=args.base, out=args.out, episodes=args.episodes, seed=args.seed, sigma=args.sigma,
                          tau=args.tau, frames=args.frames, base_train=not args.no_base_train,
                          successful_only=args.successful_only)
    s = perturbed_dataset(cfg, lambda line: print(line, flush=True))
    print(f"wrote {args.out}: {s['kept']} of {s['episodes']} perturbed episodes kept"
          f"{' beside the base train split' if s['base_train_included'] else ''}, "
          f"expert success {s['expert_success_rate'] * 100:.0f}%")
    return 0


def _run_recovery(args: argparse.Namespace) -> int:
    from eipl_trt.sim.demos import RecoveryConfig, recovery_dataset

    cfg = RecoveryConfig(model=args.model, base=args.base, out=args.out, episodes=args.episodes, seed=args.seed,
                         handover=(args.handover[0], args.handover[1]), frames=args.frames)
    s = recovery_dataset(cfg, lambda line: print(line, flush=True))
    print(f"wrote {args.out}: {s['kept']} recovery episodes of {s['episodes']} (the rest the expert did not rescue); "
          f"merge with the model's data: eipl-trt dataset merge")
    return 0


def _run_dagger(args: argparse.Namespace) -> int:
    from eipl_trt.sim.dagger import DaggerConfig, run_dagger

    record = {"dart_sigma": tuple(args.dart_sigma)} if args.dart_sigma else {}
    cfg = DaggerConfig(model=args.model, out=args.out, rounds=args.rounds, episodes=args.episodes, seed=args.seed,
                       first_round=args.first_round, labels=args.labels, base_data=tuple(args.base_data), val_seed=args.val_seed,
                       val_episodes=args.val_episodes, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       stdev=args.stdev, input_mix=args.input_mix, autocast=args.autocast, threads=args.threads,
                       freeze_image=args.freeze_image, select_every=args.select_every,
                       average_last=args.average_last, record=record)
    state = run_dagger(cfg, lambda line: print(line, flush=True))
    print(f"current model: {state['current']} ({state['current_val'][0]}/{cfg.val_episodes} validation layouts)")
    return 0


def _run_record(args: argparse.Namespace) -> int:
    from eipl_trt.sim.collect import RecordConfig, record

    cfg = RecordConfig(out=args.out, episodes=args.episodes, seed=args.seed, first_episode=args.first_episode,
                       frames=args.frames, clock=args.clock, latency_s=tuple(args.latency),
                       camera_jitter_s=args.camera_jitter, frame_drop=args.frame_drop,
                       joint_divisors=tuple(args.joint_divisors), appearance=args.appearance,
                       dart_sigma=tuple(args.dart_sigma), dart_tau_s=args.dart_tau, model=args.model,
                       takeover_frames=tuple(args.takeover), noise_seed=args.noise_seed,
                       node_args=tuple(args.node_param))
    last = [-1]

    def progress(data: dict) -> None:
        done = len(data.get("episodes", []))
        if done != last[0]:
            last[0] = done
            ok = sum(bool(e.get("success")) for e in data.get("episodes", []))
            print(f"recorded {done}/{cfg.episodes} episodes (expert solved {ok})", flush=True)

    summary = record(cfg, progress)
    print(f"wrote {summary['bag']}: {summary['episodes']} episodes in {summary['wall_s']:.0f} s, the expert solved "
          f"{summary['expert_success']}, {summary['limit_violations']} limit violations; messages: "
          + ", ".join(f"{t} {n}" for t, n in summary["messages"].items()))
    print("make the training set with: " + " ".join(summary["dataset_command"]) + " --out DIR --image-size 64")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run a subcommand, or generate the dataset and print a summary. Returns 0."""
    if args._sim_run is not None:
        return args._sim_run(args)
    if not args.out:
        args._sim_parser.error("the following arguments are required: --out (or a subcommand: record, dagger, perturbed, recovery)")
    from eipl_trt.errors import InputError
    from eipl_trt.sim.record import generate_dataset

    if args.bag_test_only and args.no_bag:
        raise InputError("--bag-test-only and --no-bag contradict each other; drop one")
    if args.bag_test_only and args.test < 1:
        raise InputError("--bag-test-only needs --test 1 or more")
    bag = False if args.no_bag else (args.bag if args.bag is not None else True)
    summary = generate_dataset(
        args.out, n_train=args.train, n_test=args.test, seed=args.seed, steps=args.steps,
        image_size=args.image_size, bag=bag, bag_splits=("test",) if args.bag_test_only else ("train", "test"),
        overwrite=args.overwrite, progress=not args.no_progress,
    )
    expert = summary["expert"]
    print(f"wrote {args.train} train + {args.test} test episodes of {args.steps} frames "
          f"({args.image_size}x{args.image_size} RGB, 10 Hz) to {args.out} in {summary['generation_s']:.1f} s")
    print(f"expert success {expert['success_rate'] * 100:.0f}% (object within {expert['success_radius_m'] * 100:.0f} cm "
          f"of the goal; mean error {expert['final_error_m']['mean'] * 100:.1f} cm, "
          f"max {expert['final_error_m']['max'] * 100:.1f} cm)")
    if "bag" in summary:
        print(f"rosbag2 (MCAP): {summary['bag']['path']} with {len(summary['bag']['episodes'])} episodes")
    return 0
